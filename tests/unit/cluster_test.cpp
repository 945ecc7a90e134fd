// tests/unit/cluster_test.cpp — replication between nodes (issue 14) without NATS: the wire
// codec (worker/cluster_codec.hpp: round trip, every refusal), the renewal suppression rule
// (worker/cluster_link.hpp should_publish), what an announce reports for replication
// (AnnounceResult::change), and a partition applying other nodes' deltas (apply_remote: add,
// renew, seeder change, stopped, completed once per peer, own peers only in replicate_step).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shm/cluster_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "tests/unit/partition_segment.hpp"
#include "worker/cluster_codec.hpp"
#include "worker/cluster_link.hpp"

namespace shoal {
namespace {

using shm::test_support::Seg;

shm::Delta delta(uint8_t family, uint32_t id, uint8_t flags) {
  shm::Delta d{};
  for (int i = 0; i < 20; i++) d.info_hash[i] = uint8_t(i * 13 + 1);
  d.family = family;
  if (family == 4) {
    uint32_t a = htonl(0x0a000000u + id);
    std::memcpy(d.addr, &a, 4);
  } else {
    d.addr[0] = 0xfd;
    std::memcpy(d.addr + 12, &id, 4);
  }
  d.port_be = htons(uint16_t(6881 + id));
  d.flags = flags;
  d.topology_group = 7;
  d.progress = 0xffff;
  return d;
}

worker::ClusterHeader header() {
  worker::ClusterHeader h;
  h.node_id = 3;
  h.session = 0x0102030405060708ull;
  h.seq = 42;
  h.sent_ms = 1700000000123ull;
  h.name = "node-c";
  return h;
}

TEST(ClusterCodec, RoundTripKeepsEveryFieldAndNamesTheOrigin) {
  std::vector<shm::Delta> in = {delta(4, 1, shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted),
                                delta(6, 2, 0), delta(4, 3, shm::kDeltaStopped)};
  std::vector<uint8_t> wire;
  worker::encode_cluster_message(header(), in.data(), in.size(), &wire);
  EXPECT_EQ(wire.size(), worker::kClusterHeaderBytes + 6 + 3 * worker::kClusterDeltaBytes);
  EXPECT_EQ(std::memcmp(wire.data(), "SHCL\x01\x01\x00\x03", 8), 0);  // magic, version, kind, node id big-endian
  worker::ClusterHeader h;
  std::vector<shm::Delta> out;
  std::string why;
  ASSERT_TRUE(worker::decode_cluster_message(wire.data(), wire.size(), &h, &out, &why)) << why;
  EXPECT_EQ(h.node_id, 3);
  EXPECT_EQ(h.session, 0x0102030405060708ull);
  EXPECT_EQ(h.seq, 42u);
  EXPECT_EQ(h.sent_ms, 1700000000123ull);
  EXPECT_EQ(h.name, "node-c");
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; i++) {
    shm::Delta want = in[i];
    want.origin = 3;
    EXPECT_EQ(std::memcmp(&out[i], &want, sizeof want), 0) << "delta " << i;
  }
}

TEST(ClusterCodec, HelloAndHeartbeatCarryNoDeltas) {
  for (uint8_t kind : {worker::kClusterHello, worker::kClusterHeartbeat}) {
    worker::ClusterHeader h = header();
    h.kind = kind;
    std::vector<uint8_t> wire;
    worker::encode_cluster_message(h, nullptr, 0, &wire);
    worker::ClusterHeader got;
    std::vector<shm::Delta> out;
    std::string why;
    ASSERT_TRUE(worker::decode_cluster_message(wire.data(), wire.size(), &got, &out, &why)) << why;
    EXPECT_EQ(got.kind, kind);
    EXPECT_TRUE(out.empty());
  }
}

TEST(ClusterCodec, EveryMalformedMessageIsRefusedWithAReason) {
  std::vector<shm::Delta> in = {delta(4, 1, 0)};
  std::vector<uint8_t> good;
  worker::encode_cluster_message(header(), in.data(), 1, &good);
  auto refused = [](std::vector<uint8_t> w, const char* what) {
    worker::ClusterHeader h;
    std::vector<shm::Delta> out;
    std::string why;
    EXPECT_FALSE(worker::decode_cluster_message(w.data(), w.size(), &h, &out, &why)) << what;
    EXPECT_FALSE(why.empty()) << what;
    EXPECT_TRUE(out.empty()) << what;
  };
  for (size_t n = 0; n < good.size(); n++) refused(std::vector<uint8_t>(good.begin(), good.begin() + long(n)), "truncated");
  std::vector<uint8_t> w = good;
  w.push_back(0);
  refused(w, "trailing byte");
  w = good, w[0] = 'X', refused(w, "magic");
  w = good, w[4] = 2, refused(w, "version");
  w = good, w[5] = 9, refused(w, "kind");
  w = good, w[6] = w[7] = 0, refused(w, "node id 0");
  w = good, w[34] = 200, refused(w, "name length");
  w = good, w[35] = 0, refused(w, "NUL in name");
  size_t d0 = worker::kClusterHeaderBytes + 6;
  w = good, w[d0 + 20] = 5, refused(w, "family");
  w = good, w[d0 + 21] = 0x80, refused(w, "flags");
  w = good, w[5] = worker::kClusterHello, refused(w, "hello with deltas");
}

// ---- suppression ----------------------------------------------------------------------------

TEST(RenewalSuppression, ARenewalIsSentOncePerBucketAndEveryChangeAlways) {
  // Same 600 s bucket: suppressed; the next bucket: sent; 0 disables suppression.
  EXPECT_FALSE(worker::should_publish(0, 1200, 1799, 600));
  EXPECT_TRUE(worker::should_publish(0, 1799, 1800, 600));
  EXPECT_TRUE(worker::should_publish(0, 1200, 1201, 0));
  for (uint8_t c : {shm::kChangeNew, shm::kChangeSeeder, shm::kChangeCompleted, shm::kChangeRemoved})
    EXPECT_TRUE(worker::should_publish(c, 1200, 1201, 600)) << int(c);
  // A peer announcing every 30 s is sent at least every 600 + 30 s.
  uint32_t last_sent = 0, worst = 0, prev = 0;
  for (uint32_t now = 30; now < 10000; now += 30) {
    if (worker::should_publish(0, prev, now, 600)) worst = std::max(worst, now - last_sent), last_sent = now;
    prev = now;
  }
  EXPECT_LE(worst, 630u);
  EXPECT_GE(worst, 600u);
}

// ---- partition ------------------------------------------------------------------------------

class Apply : public ::testing::Test {
 protected:
  Seg seg{shm::PartitionCapacity{64, 256}};
  shm::Partition part{seg.base, seg.size};
  void SetUp() override { part.recover(); }

  uint8_t apply(const shm::Delta& d, uint32_t now) {
    return part.apply_remote(worker::remote_input(d, now));
  }
  shm::AnnounceResult announce(const shm::Delta& d, bool seeder, shm::Event ev, uint32_t now) {
    shm::AnnounceInput in{};
    in.info_hash = d.info_hash;
    in.family = d.family;
    std::memcpy(in.addr, d.addr, 16);
    in.port = d.port_be;
    in.event = uint8_t(ev);
    in.seeder = seeder;
    in.numwant = 50;
    in.now = now;
    uint8_t peers[50 * 18];
    return part.announce(in, peers);
  }
  shm::ScrapeResult counts(const shm::Delta& d) { return part.scrape(d.info_hash); }
};

TEST_F(Apply, AnnounceReportsWhatChangedForReplication) {
  shm::Delta d = delta(4, 1, 0);
  shm::AnnounceResult r = announce(d, false, shm::Event::started, 100);
  EXPECT_EQ(r.change, shm::kChangeNew);
  r = announce(d, false, shm::Event::none, 130);
  EXPECT_EQ(r.change, 0);
  EXPECT_EQ(r.prev_last_seen, 100u);
  r = announce(d, true, shm::Event::completed, 160);
  EXPECT_EQ(r.change, shm::kChangeSeeder | shm::kChangeCompleted | shm::kChangeCounted);
  r = announce(d, true, shm::Event::completed, 190);
  EXPECT_EQ(r.change, shm::kChangeCounted) << "a second completed counts nothing";
  r = announce(d, true, shm::Event::stopped, 200);
  EXPECT_EQ(r.change, shm::kChangeRemoved);
  r = announce(d, true, shm::Event::stopped, 201);
  EXPECT_EQ(r.change, 0) << "stopped of a peer not stored removes nothing";
}

TEST_F(Apply, AddRenewSeederChangeAndStopped) {
  shm::Delta d = delta(4, 1, 0);
  ASSERT_EQ(apply(d, 100), uint8_t(shm::ResponseStatus::ok));
  EXPECT_EQ(counts(d).leechers, 1u);
  EXPECT_EQ(apply(d, 150), uint8_t(shm::ResponseStatus::ok));  // renewal: still one peer
  EXPECT_EQ(counts(d).leechers, 1u);
  d.flags = shm::kDeltaSeeder;
  apply(d, 160);
  EXPECT_EQ(counts(d).seeders, 1u);
  EXPECT_EQ(counts(d).leechers, 0u);
  EXPECT_EQ(counts(d).completed, 0u) << "a seeder without a completion event counts nothing";
  shm::Delta v6 = delta(6, 2, 0);
  apply(v6, 160);
  EXPECT_EQ(counts(d).leechers, 1u);
  d.flags = shm::kDeltaStopped;
  apply(d, 170);
  v6.flags = shm::kDeltaStopped;
  apply(v6, 170);
  EXPECT_EQ(counts(d).seeders + counts(d).leechers, 0u);
  EXPECT_EQ(part.totals().torrents, 1u) << "an empty torrent goes with the expiry sweep, as for announces";
  d.family = 9;
  EXPECT_EQ(apply(d, 180), uint8_t(shm::ResponseStatus::bad_request));
  EXPECT_EQ(part.validate(), "");
}

TEST_F(Apply, RemotePeersExpireByTheirLastSeenHere) {
  apply(delta(4, 1, 0), 100);
  shm::ExpireResult r = part.expire_step(100 + 3600, 3600, 1000);
  EXPECT_EQ(r.peers_removed, 0u);
  r = part.expire_step(100 + 3601, 3600, 1000);
  EXPECT_EQ(r.peers_removed, 1u);
}

TEST_F(Apply, CompletedCountsOncePerPeerWhicheverNodeSawIt) {
  shm::Delta d = delta(4, 1, shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted);
  apply(d, 100);
  EXPECT_EQ(counts(d).completed, 1u);
  apply(d, 101);  // the same delta again (a resent batch)
  EXPECT_EQ(counts(d).completed, 1u);
  // The peer then sends completed to this node too: already counted for it here.
  shm::AnnounceResult r = announce(d, true, shm::Event::completed, 102);
  EXPECT_EQ(counts(d).completed, 1u);
  EXPECT_FALSE(r.change & shm::kChangeCompleted);
  // Another peer counted here first; the other node's delta of its completion counts nothing more.
  shm::Delta e = delta(4, 2, 0);
  announce(e, true, shm::Event::completed, 103);
  EXPECT_EQ(counts(d).completed, 2u);
  e.flags = shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted;
  apply(e, 104);
  EXPECT_EQ(counts(d).completed, 2u);
  // A renewal that says "counted" marks the peer without counting: its later completed here counts nothing.
  shm::Delta f = delta(4, 3, shm::kDeltaSeeder | shm::kDeltaCounted);
  apply(f, 105);
  EXPECT_EQ(counts(d).completed, 2u);
  announce(f, true, shm::Event::completed, 106);
  EXPECT_EQ(counts(d).completed, 2u);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(Apply, ResyncHandsOutOwnPeersOnlyAndALocalAnnounceMakesARemotePeerOwn) {
  shm::Delta own = delta(4, 1, 0), remote = delta(4, 2, 0), remote6 = delta(6, 3, 0);
  announce(own, true, shm::Event::completed, 100);
  apply(remote, 100);
  apply(remote6, 100);
  struct Sink : shm::OwnPeerSink {
    std::vector<shm::OwnPeer> got;
    size_t room = 100;
    bool put(const shm::OwnPeer& p) override {
      if (got.size() == room) return false;
      got.push_back(p);
      return true;
    }
  } sink;
  shm::SnapshotCursor c;
  part.replicate_step(c, sink, 100);
  EXPECT_TRUE(c.done);
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(std::memcmp(sink.got[0].addr, own.addr, 4), 0);
  EXPECT_EQ(sink.got[0].flags, shm::kDeltaSeeder | shm::kDeltaCounted);
  // The remote peer announces here: now it is this node's to send.
  announce(remote, false, shm::Event::none, 110);
  sink.got.clear();
  sink.room = 1;  // a full ring stops the pass before the peer it cannot take
  c = {};
  EXPECT_EQ(part.replicate_step(c, sink, 100), 1u);
  EXPECT_FALSE(c.done);
  sink.room = 100;
  part.replicate_step(c, sink, 100);
  EXPECT_TRUE(c.done);
  EXPECT_EQ(sink.got.size(), 2u);
}

TEST_F(Apply, AFullPartitionRefusesAndChangesNothing) {
  for (uint32_t i = 0; i < 256; i++) ASSERT_EQ(apply(delta(4, i, 0), 100), uint8_t(shm::ResponseStatus::ok)) << i;
  EXPECT_EQ(apply(delta(4, 999, 0), 100), uint8_t(shm::ResponseStatus::tracker_full));
  EXPECT_EQ(part.totals().peers_v4, 256u);
  EXPECT_EQ(part.validate(), "");
}

}  // namespace
}  // namespace shoal
