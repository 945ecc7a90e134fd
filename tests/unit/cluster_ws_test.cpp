// tests/unit/cluster_ws_test.cpp — WebTorrent across cluster nodes (issue 14) without NATS: the
// WebTorrent delta (packing into the ring's shm::Delta, the 48-byte wire record inside a cluster
// message of kind 4), the relay message that carries an offer or answer to another node (round
// trip, every refusal, every truncation), and a partition holding another node's WebTorrent
// peers (offered through that node, counted by scrape, expired by time not by this node's socket
// liveness, removed by that node's stopped only, never taking a live local peer_id's place).
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "shm/cluster_ws.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/relay_ring.hpp"
#include "tests/unit/partition_segment.hpp"
#include "worker/cluster_codec.hpp"
#include "worker/cluster_link.hpp"
#include "worker/cluster_ws_codec.hpp"

namespace shoal {
namespace {

using Id = std::array<uint8_t, 20>;
using shm::test_support::Seg;

Id id_of(uint32_t n, uint8_t salt = 0) {
  Id h{};
  for (int i = 0; i < 20; ++i) h[i] = uint8_t(n * 29 + i * 7 + salt);
  return h;
}

shm::WsDelta ws_delta(uint32_t peer, uint8_t flags, uint16_t origin = 0) {
  shm::WsDelta w{};
  Id h = id_of(1, 50), p = id_of(peer);
  std::memcpy(w.info_hash, h.data(), 20);
  std::memcpy(w.peer_id, p.data(), 20);
  w.flags = flags;
  w.slot = 3;
  w.generation = 0xbeef;
  w.token = 0x01020304u + peer;
  w.origin = origin;
  return w;
}

bool same(const shm::WsDelta& a, const shm::WsDelta& b) {
  return std::memcmp(a.info_hash, b.info_hash, 20) == 0 && std::memcmp(a.peer_id, b.peer_id, 20) == 0 &&
         a.flags == b.flags && a.slot == b.slot && a.generation == b.generation && a.token == b.token && a.origin == b.origin;
}

// ---- WebTorrent deltas ------------------------------------------------------------------

TEST(ClusterWsDelta, PacksIntoARingDeltaAndBack) {
  shm::WsDelta w = ws_delta(7, shm::kDeltaSeeder | shm::kDeltaCounted, 12);
  shm::Delta d;
  shm::pack_ws_delta(w, &d);
  EXPECT_TRUE(shm::is_ws_delta(d));
  EXPECT_EQ(d.family, shm::kFamilyWebTorrent);
  EXPECT_TRUE(same(shm::unpack_ws_delta(d), w));
  shm::Delta bt{};
  bt.family = 4;
  EXPECT_FALSE(shm::is_ws_delta(bt));
}

worker::ClusterHeader header(uint8_t kind) {
  worker::ClusterHeader h;
  h.kind = kind;
  h.node_id = 9;
  h.session = 77;
  h.seq = 5;
  h.sent_ms = 1000;
  h.name = "node-9";
  return h;
}

TEST(ClusterWsDelta, MessageRoundTripNamesTheHoldingNode) {
  std::vector<shm::Delta> in(3);
  for (uint32_t i = 0; i < 3; i++) shm::pack_ws_delta(ws_delta(i + 1, i == 2 ? shm::kDeltaStopped : shm::kDeltaSeeder), &in[i]);
  std::vector<uint8_t> buf;
  worker::encode_cluster_message(header(worker::kClusterWsDeltas), in.data(), in.size(), &buf);
  EXPECT_EQ(buf.size(), worker::kClusterHeaderBytes + 6 + 3 * worker::kClusterWsDeltaBytes);
  worker::ClusterHeader h;
  std::vector<shm::Delta> out;
  std::string why;
  ASSERT_TRUE(worker::decode_cluster_message(buf.data(), buf.size(), &h, &out, &why)) << why;
  EXPECT_EQ(h.kind, worker::kClusterWsDeltas);
  ASSERT_EQ(out.size(), 3u);
  for (uint32_t i = 0; i < 3; i++) {
    shm::WsDelta want = shm::unpack_ws_delta(in[i]);
    want.origin = 9;  // the sender's node id: the node holding the connection
    EXPECT_TRUE(same(shm::unpack_ws_delta(out[i]), want)) << i;
  }
}

TEST(ClusterWsDelta, BadRecordsAreRefusedWhole) {
  std::vector<shm::Delta> in(2);
  for (uint32_t i = 0; i < 2; i++) shm::pack_ws_delta(ws_delta(i + 1, 0), &in[i]);
  std::vector<uint8_t> buf;
  worker::encode_cluster_message(header(worker::kClusterWsDeltas), in.data(), in.size(), &buf);
  worker::ClusterHeader h;
  std::vector<shm::Delta> out;
  std::string why;
  std::vector<uint8_t> bad = buf;
  bad[worker::kClusterHeaderBytes + 6 + worker::kClusterWsDeltaBytes + 40] = 0x40;  // unknown flag, second record
  EXPECT_FALSE(worker::decode_cluster_message(bad.data(), bad.size(), &h, &out, &why));
  EXPECT_NE(why.find("delta 1"), std::string::npos) << why;
  EXPECT_TRUE(out.empty());
  // A BitTorrent-sized record count (44 bytes each) does not pass as WebTorrent records.
  bad = buf;
  bad.resize(bad.size() - 8);
  EXPECT_FALSE(worker::decode_cluster_message(bad.data(), bad.size(), &h, &out, &why));
  // Every truncation is refused, never read past.
  for (size_t n = 0; n < buf.size(); n++) {
    std::vector<uint8_t> cut(buf.begin(), buf.begin() + long(n));
    EXPECT_FALSE(worker::decode_cluster_message(cut.data(), cut.size(), &h, &out, &why)) << n;
  }
}

// ---- relay messages ---------------------------------------------------------------------

worker::RelayMessage offer_message(const std::string& sdp) {
  worker::RelayMessage m;
  m.kind = shm::kRelayOffer;
  m.from_node = 1;
  m.to_node = 2;
  m.target_slot = 1;
  m.from_slot = 0;
  m.target_generation = 0x1234;
  m.target_token = 99;
  m.from_generation = 0x10005;
  m.from_token = 42;
  Id h = id_of(1), p = id_of(2), o = id_of(3);
  std::memcpy(m.info_hash, h.data(), 20);
  std::memcpy(m.peer_id, p.data(), 20);
  std::memcpy(m.offer_id, o.data(), 20);
  m.sdp_json = sdp;
  return m;
}

TEST(ClusterRelayMessage, RoundTrip) {
  std::string sdp = R"({"type":"offer","sdp":"v=0\r\n"})";
  worker::RelayMessage m = offer_message(sdp);
  std::vector<uint8_t> buf;
  worker::encode_relay_message(m, &buf);
  ASSERT_EQ(buf.size(), worker::kRelayMessageHeaderBytes + sdp.size());
  worker::RelayMessage d;
  std::string why;
  ASSERT_TRUE(worker::decode_relay_message(buf.data(), buf.size(), &d, &why)) << why;
  EXPECT_EQ(d.kind, m.kind);
  EXPECT_EQ(d.from_node, 1);
  EXPECT_EQ(d.to_node, 2);
  EXPECT_EQ(d.target_slot, 1);
  EXPECT_EQ(d.target_generation, 0x1234u);
  EXPECT_EQ(d.target_token, 99u);
  EXPECT_EQ(d.from_generation, 0x10005u);
  EXPECT_EQ(d.from_token, 42u);
  EXPECT_EQ(std::memcmp(d.info_hash, m.info_hash, 20), 0);
  EXPECT_EQ(std::memcmp(d.peer_id, m.peer_id, 20), 0);
  EXPECT_EQ(std::memcmp(d.offer_id, m.offer_id, 20), 0);
  EXPECT_EQ(d.sdp_json, sdp);
}

TEST(ClusterRelayMessage, EveryRefusal) {
  std::string sdp = R"({"type":"answer","sdp":"x"})";
  std::vector<uint8_t> good;
  worker::encode_relay_message(offer_message(sdp), &good);
  worker::RelayMessage d;
  std::string why;
  auto refused = [&](std::vector<uint8_t> b, const char* what) {
    why.clear();
    EXPECT_FALSE(worker::decode_relay_message(b.data(), b.size(), &d, &why)) << what;
    EXPECT_NE(why.find(what), std::string::npos) << "want \"" << what << "\", got \"" << why << "\"";
  };
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[at] = v;
    return b;
  };
  refused(with(0, 'X'), "magic");
  refused(with(4, 2), "version");
  refused(with(5, 3), "kind");
  refused(with(5, 0), "kind");
  refused(with(7, 0), "node id 0");   // from_node 0
  refused(with(9, 0), "node id 0");   // to_node 0
  refused(with(89, uint8_t(sdp.size() + 1)), "header says");  // sdp_len one more than sent
  std::vector<uint8_t> b = good;
  b.push_back('x');
  refused(b, "header says");
  b = with(88, 0);
  b[89] = 0;
  refused(b, "sdp of 0 bytes");
  b = with(88, 0x40);
  b[89] = 0x01;  // 16385
  refused(b, "sdp of 16385 bytes");
  // Not one JSON object: it would be spliced as is into a client's message.
  for (std::string bad : {std::string(R"(["offer"])"), std::string(R"({"type":"offer")"), std::string("{\"a\":\"\xff\"}"),
                          std::string(R"({"a":1} {"b":2})"), std::string("null")}) {
    std::vector<uint8_t> m;
    worker::encode_relay_message(offer_message(bad), &m);
    refused(m, "JSON object");
  }
  for (size_t n = 0; n < good.size(); n++) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + long(n));
    EXPECT_FALSE(worker::decode_relay_message(cut.data(), cut.size(), &d, &why)) << n;
  }
}

// ---- another node's WebTorrent peers in a partition ----------------------------------------

struct FakeLive final : shm::WsLiveness {
  uint32_t live_gen[4] = {7, 7, 7, 7};
  uint16_t gone_node = 0;  // with slot 3, generation 0xbeef (ws_delta's): said gone
  int ring_set(uint8_t slot, uint32_t generation) const override {
    return slot < 4 && live_gen[slot] == generation ? 1 : -1;
  }
  bool remote_gone(uint16_t node, uint8_t slot, uint16_t generation) const override {
    return node == gone_node && slot == 3 && generation == 0xbeef;
  }
};

struct RemoteWs : ::testing::Test {
  Seg seg{shm::PartitionCapacity{64, 256}};
  shm::Partition part{seg.base, seg.size};
  FakeLive live;
  Id hash = id_of(1, 50);  // ws_delta's info_hash
  shm::WsTarget targets[64];

  shm::WsAnnounceResult ann(uint32_t peer, uint8_t slot, uint32_t token, bool seeder = false,
                            shm::Event ev = shm::Event::none, uint16_t offers = 10, uint32_t now = 100) {
    Id pid = id_of(peer);
    shm::WsAnnounceInput in{};
    in.info_hash = hash.data();
    in.peer_id = pid.data();
    in.slot = slot;
    in.generation = 7;
    in.token = token;
    in.event = uint8_t(ev);
    in.seeder = seeder;
    in.offers = offers;
    in.now = now;
    return part.announce_webtorrent(in, targets, live);
  }
  uint8_t remote(uint32_t peer, uint8_t flags, uint16_t node, uint32_t now = 100) {
    shm::Delta d;
    shm::pack_ws_delta(ws_delta(peer, flags, node), &d);
    return worker::apply_ws_delta(part, d, now, live);
  }
};

TEST_F(RemoteWs, AnotherNodesPeerIsAnOfferTargetThroughThatNode) {
  ASSERT_EQ(remote(2, 0, 5), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 1u) << "scrape counts it in the WebTorrent family";
  EXPECT_EQ(part.scrape(hash.data()).leechers, 0u) << "not a UDP/HTTP peer";
  shm::WsAnnounceResult r = ann(1, 0, 11);
  EXPECT_EQ(r.leechers, 2u);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].ring_set, shm::kWsRemoteSet) << "never handed out as a local connection";
  EXPECT_EQ(targets[0].node, 5);
  EXPECT_EQ(targets[0].slot, 3);
  EXPECT_EQ(targets[0].generation, 0xbeefu);
  EXPECT_EQ(targets[0].token, 0x01020306u);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(RemoteWs, ExpiresByLastSeenNotByThisNodesSocketLiveness) {
  ASSERT_EQ(remote(2, 0, 5, 100), 0);
  ASSERT_EQ(ann(1, 0, 11, false, shm::Event::none, 0, 100).status, 0);
  // The purge after a local socket worker died leaves the remote peer alone.
  live.live_gen[3] = 0;
  part.expire_step(150, 60, 1000, &live, true);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 2u);
  // Renewed by its node at 150, then silent: gone once peer_ttl (60 s) has passed.
  ASSERT_EQ(remote(2, 0, 5, 150), 0);
  ASSERT_EQ(ann(1, 0, 11, false, shm::Event::none, 0, 200).status, 0);
  part.expire_step(205, 60, 1000, &live);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 2u) << "seen 55 s ago";
  part.expire_step(215, 60, 1000, &live);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 1u) << "seen 65 s ago: expired";
  EXPECT_EQ(part.validate(), "");
}

TEST_F(RemoteWs, StoppedOfItsNodeRemovesItAndNoOtherDoes) {
  ASSERT_EQ(remote(2, shm::kDeltaSeeder, 5), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).seeders, 1u);
  EXPECT_EQ(remote(2, shm::kDeltaStopped, 6), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).seeders, 1u) << "node 6 does not hold it";
  // A local client claiming its peer_id with a stopped removes nothing either.
  ann(2, 0, 11, false, shm::Event::stopped);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).seeders, 1u);
  EXPECT_EQ(remote(2, shm::kDeltaStopped, 5), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).seeders, 0u);
  EXPECT_EQ(part.totals().peers_ws, 0u);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(RemoteWs, ALiveLocalPeerIdKeepsItsConnectionADeadOneIsTakenOver) {
  ASSERT_EQ(ann(2, 1, 21).status, 0);
  ASSERT_EQ(remote(2, 0, 5), 0);
  ann(1, 0, 11);
  shm::WsAnnounceResult r = ann(1, 0, 11);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_NE(targets[0].ring_set, shm::kWsRemoteSet) << "the local live connection keeps the peer_id";
  EXPECT_EQ(targets[0].token, 21u);
  live.live_gen[1] = 8;  // that connection's socket process died
  ASSERT_EQ(remote(2, 0, 5), 0);
  r = ann(1, 0, 11);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].node, 5) << "the peer moved to node 5";
  EXPECT_EQ(part.validate(), "");
}

TEST_F(RemoteWs, ALocalAnnounceTakesOverARemotePeerAndReportsItNew) {
  ASSERT_EQ(remote(2, 0, 5), 0);
  shm::WsAnnounceResult r = ann(2, 1, 21);  // the client moved to this node
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.change & shm::kChangeNew) << "the other nodes must learn the new connection";
  EXPECT_EQ(r.leechers, 1u);
  r = ann(2, 1, 21, false, shm::Event::none, 10, 130);
  EXPECT_FALSE(r.change & shm::kChangeNew) << "a renewal";
  EXPECT_EQ(r.prev_last_seen, 100u);
  r = ann(2, 1, 21, true, shm::Event::completed, 10, 131);
  EXPECT_EQ(r.change & (shm::kChangeSeeder | shm::kChangeCompleted | shm::kChangeCounted),
            shm::kChangeSeeder | shm::kChangeCompleted | shm::kChangeCounted);
  r = ann(2, 1, 21, true, shm::Event::stopped);
  EXPECT_TRUE(r.change & shm::kChangeRemoved);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(RemoteWs, CompletedCountsOncePerPeerAcrossNodes) {
  ASSERT_EQ(remote(2, shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted, 5), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).completed, 1u);
  ASSERT_EQ(remote(2, shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted, 6), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).completed, 1u) << "the same peer, sent again from another node";
  ASSERT_EQ(remote(3, shm::kDeltaSeeder | shm::kDeltaCounted, 5), 0);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).completed, 1u) << "counted elsewhere before: not again";
}

TEST_F(RemoteWs, PeersOfASocketProcessItsNodeSaidGoneAreNeverOfferedAndArePurged) {
  ASSERT_EQ(remote(2, 0, 5), 0);
  ASSERT_EQ(remote(3, 0, 6), 0);  // same slot and generation, another node
  ASSERT_EQ(remote(4, 0, 5), 0);
  live.gone_node = 5;
  ann(1, 0, 11, false, shm::Event::none, 0);
  // Purge pass (as the swarm worker runs it): node 5's two peers go, node 6's stays.
  part.expire_step(101, 3600, 1000, &live, true);
  part.expire_step(101, 3600, 1000, &live, true);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 2u);
  shm::WsAnnounceResult r = ann(1, 0, 11);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].node, 6);
  // Before any purge, an announce never hands them out and removes those it meets.
  ASSERT_EQ(remote(2, 0, 5), 0);
  for (int i = 0; i < 20; i++) {
    r = ann(1, 0, 11);
    for (uint16_t k = 0; k < r.target_count; k++) EXPECT_NE(targets[k].node, 5);
  }
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 2u) << "met and removed";
  EXPECT_EQ(part.validate(), "");
}

TEST(ClusterWsDelta, TheGoneFlagPassesOnlyWebTorrentRecords) {
  shm::WsDelta w{};
  w.flags = shm::kDeltaWsGone;
  w.slot = 1;
  w.generation = 3;
  std::vector<shm::Delta> in(1);
  shm::pack_ws_delta(w, &in[0]);
  std::vector<uint8_t> buf;
  worker::encode_cluster_message(header(worker::kClusterWsDeltas), in.data(), 1, &buf);
  worker::ClusterHeader h;
  std::vector<shm::Delta> out;
  std::string why;
  ASSERT_TRUE(worker::decode_cluster_message(buf.data(), buf.size(), &h, &out, &why)) << why;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(shm::is_ws_gone(out[0]));
  EXPECT_EQ(shm::unpack_ws_delta(out[0]).origin, 9);
  buf[worker::kClusterHeaderBytes + 6 + 40] = 0x40;  // unknown (0x20 is kDeltaWsKeyed)
  EXPECT_FALSE(worker::decode_cluster_message(buf.data(), buf.size(), &h, &out, &why));
}

TEST_F(RemoteWs, NodeZeroAndAFullPartitionChangeNothing) {
  EXPECT_EQ(remote(2, 0, 0), uint8_t(shm::ResponseStatus::bad_request));
  // A partition for 2 peers; with one swarm its arena may run out first (a list grows into a
  // larger block while the old one is held), so it is full after 1 or 2 deltas.
  Seg small{shm::PartitionCapacity{4, 2}};
  shm::Partition p(small.base, small.size);
  uint32_t stored = 0;
  uint8_t st = 0;
  for (uint32_t i = 1; i <= 3 && st == 0; i++) {
    shm::Delta d;
    shm::pack_ws_delta(ws_delta(i, 0, 5), &d);
    st = worker::apply_ws_delta(p, d, 100, live);
    if (st == 0) ++stored;
  }
  EXPECT_EQ(st, uint8_t(shm::ResponseStatus::tracker_full)) << "a partition for 2 peers took 3";
  EXPECT_GE(stored, 1u);
  EXPECT_EQ(p.totals().peers_ws, stored) << "the refused delta stored nothing";
  EXPECT_EQ(p.validate(), "");
}

}  // namespace
}  // namespace shoal
