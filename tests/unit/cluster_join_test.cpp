// tests/unit/cluster_join_test.cpp — a node joining the cluster (issue 14, worker/cluster_join.hpp)
// without NATS: node A's partition streamed as snapshot frames (one chunk a frame, as the sync
// worker sends them) through a fake transport (a vector of messages) into JoinReceiver, and its
// entries applied to node B's partition (apply_join_entry), which then counts what A counts; a
// lost, damaged or foreign frame; and the order of deltas against snapshot entries: an entry
// never overwrites a peer that a delta stored first, and completed counts only rise.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "shm/cluster_segment.hpp"
#include "shm/cluster_ws.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/snapshot_codec.hpp"
#include "tests/unit/partition_segment.hpp"
#include "worker/cluster_join.hpp"
#include "worker/cluster_link.hpp"
#include "worker/cluster_ws_codec.hpp"

namespace shoal {
namespace {

using shm::test_support::Seg;
using Bytes = std::vector<uint8_t>;

struct Hash {
  uint8_t b[20];
};
Hash hash_of(uint32_t t) {
  Hash h{};
  for (int i = 0; i < 20; i++) h.b[i] = uint8_t(t * 31 + i * 7 + 1);
  return h;
}

shm::AnnounceResult announce(shm::Partition& p, const Hash& h, uint32_t peer, bool seeder, shm::Event ev, uint32_t now) {
  shm::AnnounceInput in{};
  in.info_hash = h.b;
  in.family = 4;
  uint32_t a = htonl(0x0a000000u + peer);
  std::memcpy(in.addr, &a, 4);
  in.port = htons(uint16_t(1000 + peer % 60000));
  in.event = uint8_t(ev);
  in.seeder = seeder;
  in.numwant = 0;
  in.now = now;
  uint8_t out[18];
  return p.announce(in, out);
}

// Node A's answer as the sync worker sends it: frame 1 the preamble and header chunk, one frame
// per data chunk (as the swarm worker's pass cuts them), the end chunk last.
std::vector<Bytes> answer_of(const shm::Partition& part, uint32_t t0, uint16_t node_id = 1, const shm::SnapshotWs* ws = nullptr) {
  std::vector<Bytes> frames;
  uint32_t seq = 0;
  auto frame = [&](uint8_t kind, const uint8_t* p, size_t n) {
    worker::JoinFrame f;
    f.kind = kind;
    f.node_id = node_id;
    f.seq = ++seq;
    f.name = "node-a";
    frames.emplace_back();
    worker::encode_join_frame(f, p, n, &frames.back());
  };
  Bytes head = shm::encode_snapshot_start(shm::SnapshotInfo{1700000000, "node-a", "shoald test", 7});
  frame(worker::kJoinData, head.data(), head.size());
  shm::SnapshotCursor c{};
  shm::DataChunkWriter w;
  std::vector<uint8_t> buf(shm::kChunkBytes);
  uint32_t chunks = 0;
  while (!c.done) {
    w.begin(buf.data());
    while (part.snapshot_step(c, w, t0, 256, ws) == 256 && !c.done) {
    }
    if (size_t len = w.seal()) frame(worker::kJoinData, buf.data(), len), chunks++;
  }
  Bytes end = shm::encode_snapshot_end(shm::SnapshotTotals{w.torrents(), w.peers(), chunks});
  frame(worker::kJoinData, end.data(), end.size());
  return frames;
}

struct Collect final : worker::JoinEntrySink {
  std::vector<shm::Delta> got;
  void put(const shm::Delta& d) override { got.push_back(d); }
};

class Join : public ::testing::Test {
 protected:
  Seg seg_a{shm::PartitionCapacity{64, 4096}}, seg_b{shm::PartitionCapacity{64, 4096}};
  shm::Partition a{seg_a.base, seg_a.size}, b{seg_b.base, seg_b.size};
  void SetUp() override {
    a.recover();
    b.recover();
  }
  // 3,000 peers in 5 swarms on A, a fifth of them seeders that completed here.
  void fill_a(uint32_t now) {
    for (uint32_t i = 0; i < 3000; i++) {
      bool seed = i % 5 == 0;
      announce(a, hash_of(i % 5), i, seed, seed ? shm::Event::completed : shm::Event::started, now);
    }
  }
};

TEST_F(Join, AStreamedAnswerMakesBCountWhatACounts) {
  fill_a(100);
  std::vector<Bytes> frames = answer_of(a, 100);
  ASSERT_GT(frames.size(), 4u) << "3,000 peers need several 16 KiB chunks";
  for (const Bytes& f : frames) EXPECT_LE(f.size(), worker::kJoinFrameHeader + 6 + shm::kChunkBytes) << "one chunk a frame";
  Collect sink;
  worker::JoinReceiver rx(&sink, 1700000000);
  for (size_t i = 0; i < frames.size(); i++) {
    worker::JoinReceiver::Result r = rx.take(frames[i].data(), frames[i].size());
    ASSERT_EQ(r, i + 1 == frames.size() ? worker::JoinReceiver::done : worker::JoinReceiver::more) << "frame " << i + 1 << ": " << rx.error();
  }
  EXPECT_EQ(rx.from_id(), 1);
  EXPECT_EQ(rx.from_name(), "node-a");
  EXPECT_EQ(rx.torrents(), 5u);
  EXPECT_EQ(rx.peers(), 3000u);
  for (const shm::Delta& d : sink.got) ASSERT_EQ(worker::apply_join_entry(b, d, 130), uint8_t(shm::ResponseStatus::ok));
  for (uint32_t t = 0; t < 5; t++) {
    shm::ScrapeResult x = a.scrape(hash_of(t).b), y = b.scrape(hash_of(t).b);
    EXPECT_EQ(y.seeders, x.seeders) << "torrent " << t;
    EXPECT_EQ(y.leechers, x.leechers) << "torrent " << t;
    EXPECT_EQ(y.completed, x.completed) << "torrent " << t;
  }
  EXPECT_EQ(b.scrape(hash_of(0).b).completed, 600u);
  // B's copies are learned peers: a resync of B sends none of them back.
  struct Own : shm::OwnPeerSink {
    size_t n = 0;
    bool put(const shm::OwnPeer&) override { return ++n, true; }
  } own;
  shm::SnapshotCursor c{};
  while (!c.done) b.replicate_step(c, own, 4096);
  EXPECT_EQ(own.n, 0u);
  EXPECT_EQ(b.validate(), "");
}

TEST_F(Join, ALostDamagedOrForeignFrameIsCaught) {
  fill_a(100);
  std::vector<Bytes> frames = answer_of(a, 100);
  Collect sink;
  {
    worker::JoinReceiver rx(&sink, 1700000000);
    ASSERT_EQ(rx.take(frames[0].data(), frames[0].size()), worker::JoinReceiver::more);
    EXPECT_EQ(rx.take(frames[2].data(), frames[2].size()), worker::JoinReceiver::failed);
    EXPECT_EQ(rx.error(), "frame 2 of node 1 lost (got frame 3)");
  }
  {
    worker::JoinReceiver rx(&sink, 1700000000);
    Bytes bad = frames[1];
    bad[bad.size() / 2] ^= 0x40;
    rx.take(frames[0].data(), frames[0].size());
    EXPECT_EQ(rx.take(bad.data(), bad.size()), worker::JoinReceiver::failed);
    EXPECT_NE(rx.error().find("checksum mismatch"), std::string::npos) << rx.error();
  }
  {
    // The end frame lost: the stream is not done, and the end chunk of another answer would
    // not pass the sequence check.
    worker::JoinReceiver rx(&sink, 1700000000);
    for (size_t i = 0; i + 1 < frames.size(); i++) ASSERT_EQ(rx.take(frames[i].data(), frames[i].size()), worker::JoinReceiver::more);
  }
  {
    // Busy before the answer starts: ask again. Another node's frames after the first node
    // answered are ignored.
    worker::JoinReceiver rx(&sink, 1700000000);
    Bytes busy;
    worker::JoinFrame f;
    f.kind = worker::kJoinBusy;
    f.node_id = 2;
    f.seq = 1;
    worker::encode_join_frame(f, nullptr, 0, &busy);
    EXPECT_EQ(rx.take(busy.data(), busy.size()), worker::JoinReceiver::busy);
    std::vector<Bytes> other = answer_of(a, 100, 3);
    ASSERT_EQ(rx.take(frames[0].data(), frames[0].size()), worker::JoinReceiver::more);
    EXPECT_EQ(rx.take(other[1].data(), other[1].size()), worker::JoinReceiver::more);
    for (size_t i = 1; i < frames.size(); i++) rx.take(frames[i].data(), frames[i].size());
    EXPECT_EQ(rx.peers(), 3000u) << "node 3's frame delivered nothing";
    static const uint8_t junk[] = "hello";
    EXPECT_EQ(worker::JoinReceiver(&sink, 0).take(junk, sizeof junk), worker::JoinReceiver::failed);
  }
  EXPECT_EQ(worker::decode_join_request(worker::encode_join_request(513).data(), 6), 513);
  EXPECT_EQ(worker::decode_join_request(reinterpret_cast<const uint8_t*>("SHJQ"), 4), 0);
}

// What arrives on B while it loads: deltas in the same in ring as the entries, in arrival order.
TEST_F(Join, ADeltaThatArrivedFirstIsNotOverwrittenBySnapshotEntries) {
  Hash h = hash_of(9);
  // A's snapshot (taken earlier) has peer 1 as a leecher seen 50 s before, and 5 completions.
  announce(a, h, 1, false, shm::Event::started, 50);
  for (uint32_t p = 10; p < 15; p++) announce(a, h, p, true, shm::Event::completed, 100);
  for (uint32_t p = 10; p < 15; p++) announce(a, h, p, true, shm::Event::stopped, 100);
  Collect sink;
  worker::JoinReceiver rx(&sink, 1700000000);
  for (const Bytes& f : answer_of(a, 100)) rx.take(f.data(), f.size());
  ASSERT_EQ(rx.peers(), 1u);
  // Meanwhile, on B, a delta says peer 1 completed (seeder now) and counted it.
  shm::RemoteInput d{};
  d.info_hash = h.b;
  d.family = 4;
  uint32_t addr = htonl(0x0a000001u);
  std::memcpy(d.addr, &addr, 4);
  d.port_be = htons(1001);
  d.flags = shm::kDeltaSeeder | shm::kDeltaCompleted | shm::kDeltaCounted;
  d.now = 200;
  ASSERT_EQ(b.apply_remote(d), uint8_t(shm::ResponseStatus::ok));
  for (const shm::Delta& e : sink.got) ASSERT_EQ(worker::apply_join_entry(b, e, 200), uint8_t(shm::ResponseStatus::ok));
  shm::ScrapeResult s = b.scrape(h.b);
  EXPECT_EQ(s.seeders, 1u) << "the snapshot's older leecher record did not replace the delta's seeder";
  EXPECT_EQ(s.leechers, 0u);
  EXPECT_EQ(s.completed, 5u) << "the count rose to the snapshot's";
  // A count already higher here stays.
  for (uint32_t p = 20; p < 27; p++) announce(b, h, p, true, shm::Event::completed, 201);
  for (const shm::Delta& e : sink.got) worker::apply_join_entry(b, e, 202);
  EXPECT_EQ(b.scrape(h.b).completed, 12u);
  // The delta's peer keeps its last_seen (200): it expires peer_ttl after that, not after the entry.
  EXPECT_EQ(b.expire_step(200 + 3600, 3600, 1000).peers_removed, 0u);
  EXPECT_EQ(b.validate(), "");
}

TEST_F(Join, EntriesKeepTheirAgeSoTheyExpireWhenTheyWouldHaveOnA) {
  Hash h = hash_of(4);
  announce(a, h, 1, false, shm::Event::started, 1000);
  Collect sink;
  worker::JoinReceiver rx(&sink, 1700000000);  // the header says created 1700000000: no extra age
  for (const Bytes& f : answer_of(a, 1600)) rx.take(f.data(), f.size());
  ASSERT_EQ(sink.got.size(), 1u);
  EXPECT_EQ(sink.got[0].join_age_s, 600u);
  worker::apply_join_entry(b, sink.got[0], 5000);  // last seen at 4400 on B's clock
  EXPECT_EQ(b.expire_step(4400 + 3600, 3600, 1000).peers_removed, 0u);
  EXPECT_EQ(b.expire_step(4400 + 3601, 3600, 1000).peers_removed, 1u);
}

// Socket slots 0..3 of this node, generation 7 live; node 4's process (slot 1, generation 3) gone.
struct FakeLive final : shm::WsLiveness {
  int ring_set(uint8_t slot, uint32_t generation) const override { return slot < 4 && generation == 7 ? 0 : -1; }
  bool remote_gone(uint16_t node, uint8_t slot, uint16_t generation) const override {
    return node == 4 && slot == 1 && generation == 3;
  }
};

TEST_F(Join, WebTorrentPeersOfEveryNodeReachTheJoinerKeyedAsItsDeltasKeyThem) {
  // Both nodes key peer_ids with the cluster's seed (as their swarm workers do).
  a.set_ws_key_seed(worker::cluster_ws_key_seed("shoaltest"));
  b.set_ws_key_seed(worker::cluster_ws_key_seed("shoaltest"));
  EXPECT_NE(worker::cluster_ws_key_seed("shoaltest"), worker::cluster_ws_key_seed("other"));
  FakeLive live;
  Hash h = hash_of(7), x = hash_of(100), y = hash_of(101), z = hash_of(102), g = hash_of(103), own = hash_of(104);
  shm::WsTarget targets[8];
  auto local = [&](const Hash& peer, uint32_t gen, uint32_t token, bool seeder) {
    shm::WsAnnounceInput in{};
    in.info_hash = h.b;
    in.peer_id = peer.b;
    in.slot = 0;
    in.generation = gen;
    in.token = token;
    in.seeder = seeder;
    in.event = uint8_t(seeder ? shm::Event::completed : shm::Event::started);
    in.now = 100;
    return a.announce_webtorrent(in, targets, live).status;
  };
  auto remote = [&](shm::Partition& p, const Hash& peer, uint16_t node, uint8_t slot, uint16_t gen, uint32_t token, uint32_t now,
                    uint8_t flags = 0) {
    shm::WsDelta w{};
    w.flags = flags;
    std::memcpy(w.info_hash, h.b, 20);
    std::memcpy(w.peer_id, peer.b, 20);
    w.slot = slot;
    w.generation = gen;
    w.token = token;
    w.origin = node;
    shm::Delta d;
    shm::pack_ws_delta(w, &d);
    return worker::apply_ws_delta(p, d, now, live);
  };
  ASSERT_EQ(local(x, 7, 55, true), uint8_t(shm::ResponseStatus::ok));    // A's own live connection, a seeder
  ASSERT_EQ(local(z, 6, 56, false), uint8_t(shm::ResponseStatus::ok));   // A's, its process gone: not sent
  ASSERT_EQ(remote(a, y, 3, 2, 9, 66, 100), uint8_t(shm::ResponseStatus::ok));  // node 3's
  ASSERT_EQ(remote(a, g, 4, 1, 3, 67, 100), uint8_t(shm::ResponseStatus::ok));  // node 4's, process gone
  ASSERT_EQ(remote(a, own, 2, 0, 1, 68, 100), uint8_t(shm::ResponseStatus::ok));  // the joiner's (node 2) old life
  shm::SnapshotWs ws{&live, 1};
  Collect sink;
  worker::JoinReceiver rx(&sink, 1700000000);
  rx.skip_node(2);
  for (const Bytes& f : answer_of(a, 130, 1, &ws)) ASSERT_NE(rx.take(f.data(), f.size()), worker::JoinReceiver::failed) << rx.error();
  EXPECT_EQ(rx.peers(), 2u) << "x and y; z and g are dead, own is the joiner's";
  for (const shm::Delta& d : sink.got) ASSERT_EQ(worker::apply_join_entry(b, d, 200), uint8_t(shm::ResponseStatus::ok));
  shm::ScrapeResult s = b.scrape_webtorrent(h.b);
  EXPECT_EQ(s.seeders, 1u);
  EXPECT_EQ(s.leechers, 1u);
  EXPECT_EQ(s.completed, 1u) << "x's completion, counted on A";
  EXPECT_EQ(b.scrape(h.b).seeders + b.scrape(h.b).leechers, 0u) << "not BitTorrent peers";
  // Later deltas for x and y key them alike: refreshed, not doubled.
  ASSERT_EQ(remote(b, x, 1, 0, 7, 55, 210, shm::kDeltaSeeder | shm::kDeltaCounted), uint8_t(shm::ResponseStatus::ok));
  ASSERT_EQ(remote(b, y, 3, 2, 9, 66, 210), uint8_t(shm::ResponseStatus::ok));
  s = b.scrape_webtorrent(h.b);
  EXPECT_EQ(s.seeders, 1u) << "no duplicate";
  EXPECT_EQ(s.leechers, 1u) << "no duplicate";
  EXPECT_EQ(s.completed, 1u) << "x's completion not counted twice";
  // An offer on B reaches x and y where their connections are: node 1 slot 0 and node 3 slot 2.
  Hash asker = hash_of(105);
  shm::WsAnnounceInput in{};
  in.info_hash = h.b;
  in.peer_id = asker.b;
  in.slot = 1;
  in.generation = 7;
  in.token = 1;
  in.offers = 5;
  in.now = 211;
  shm::WsAnnounceResult r = b.announce_webtorrent(in, targets, live);
  ASSERT_EQ(r.target_count, 2);
  std::set<std::tuple<int, int, int, uint32_t>> got, want{{1, 0, 7, 55}, {3, 2, 9, 66}};
  for (int i = 0; i < r.target_count; i++) {
    EXPECT_EQ(targets[i].ring_set, shm::kWsRemoteSet);
    got.insert({targets[i].node, targets[i].slot, int(targets[i].generation), targets[i].token});
  }
  EXPECT_EQ(got, want);
  // The entries were learned from another node: x's stopped from node 1 removes it.
  shm::WsDelta stop{};
  std::memcpy(stop.info_hash, h.b, 20);
  std::memcpy(stop.peer_id, x.b, 20);
  stop.flags = shm::kDeltaStopped;
  stop.origin = 1;
  shm::Delta d;
  shm::pack_ws_delta(stop, &d);
  ASSERT_EQ(worker::apply_ws_delta(b, d, 212, live), uint8_t(shm::ResponseStatus::ok));
  EXPECT_EQ(b.scrape_webtorrent(h.b).seeders, 0u);
  EXPECT_EQ(b.validate(), "");
}

TEST_F(Join, TheResyncSendsThisNodesLiveWebTorrentPeersByKeyAndTheyMatchLaterDeltas) {
  a.set_ws_key_seed(worker::cluster_ws_key_seed("shoaltest"));
  b.set_ws_key_seed(worker::cluster_ws_key_seed("shoaltest"));
  FakeLive live;
  Hash h = hash_of(9), x = hash_of(120), z = hash_of(121), y = hash_of(122);
  shm::WsTarget targets[4];
  auto local = [&](const Hash& peer, uint32_t gen) {
    shm::WsAnnounceInput in{};
    in.info_hash = h.b;
    in.peer_id = peer.b;
    in.generation = gen;
    in.token = 77;
    in.seeder = true;
    in.now = 100;
    return a.announce_webtorrent(in, targets, live).status;
  };
  ASSERT_EQ(local(x, 7), uint8_t(shm::ResponseStatus::ok));  // live
  ASSERT_EQ(local(z, 6), uint8_t(shm::ResponseStatus::ok));  // its process is gone
  shm::WsDelta w{};
  std::memcpy(w.info_hash, h.b, 20);
  std::memcpy(w.peer_id, y.b, 20);
  w.origin = 3;
  shm::Delta dy;
  shm::pack_ws_delta(w, &dy);
  ASSERT_EQ(worker::apply_ws_delta(a, dy, 100, live), uint8_t(shm::ResponseStatus::ok));  // node 3's: not A's to send
  announce(a, h, 1, false, shm::Event::started, 100);                                       // a BitTorrent peer
  struct Own : shm::OwnPeerSink {
    std::vector<shm::OwnPeer> got;
    bool put(const shm::OwnPeer& p) override { return got.push_back(p), true; }
  } own;
  shm::SnapshotCursor c{};
  while (!c.done) a.replicate_step(c, own, 4096, &live);
  ASSERT_EQ(own.got.size(), 2u) << "the BitTorrent peer and x";
  const shm::OwnPeer* ws = own.got[0].family == shm::kFamilyWebTorrent ? &own.got[0] : &own.got[1];
  ASSERT_EQ(ws->family, shm::kFamilyWebTorrent);
  // Over the wire (a kind-4 record) to B, from node 1.
  std::vector<uint8_t> rec;
  worker::encode_ws_delta_record(worker::resync_ws_delta(*ws), &rec);
  shm::Delta d;
  std::string why;
  ASSERT_TRUE(worker::decode_ws_delta_record(rec.data(), 1, &d, &why)) << why;
  ASSERT_EQ(worker::apply_ws_delta(b, d, 150, live), uint8_t(shm::ResponseStatus::ok));
  shm::ScrapeResult s = b.scrape_webtorrent(h.b);
  EXPECT_EQ(s.seeders, 1u);
  // x's next delta from node 1 names its peer_id: the same record, not a second one.
  std::memcpy(w.peer_id, x.b, 20);
  w.origin = 1;
  w.generation = 7;
  w.token = 77;
  w.flags = 0;  // a leecher now
  shm::pack_ws_delta(w, &d);
  ASSERT_EQ(worker::apply_ws_delta(b, d, 160, live), uint8_t(shm::ResponseStatus::ok));
  s = b.scrape_webtorrent(h.b);
  EXPECT_EQ(s.seeders, 0u);
  EXPECT_EQ(s.leechers, 1u) << "no duplicate";
  // And its offer target is node 1's connection.
  Hash asker = hash_of(123);
  shm::WsAnnounceInput in{};
  in.info_hash = h.b;
  in.peer_id = asker.b;
  in.generation = 7;
  in.token = 2;
  in.offers = 3;
  in.now = 161;
  shm::WsAnnounceResult r = b.announce_webtorrent(in, targets, live);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].node, 1);
  EXPECT_EQ(targets[0].token, 77u);
  EXPECT_EQ(b.validate(), "");
}

TEST_F(Join, AFileSnapshotLeavesWebTorrentSwarmsOut) {
  FakeLive live;
  Hash h = hash_of(8), x = hash_of(110);
  shm::WsTarget targets[4];
  shm::WsAnnounceInput in{};
  in.info_hash = h.b;
  in.peer_id = x.b;
  in.generation = 7;
  in.now = 100;
  ASSERT_EQ(a.announce_webtorrent(in, targets, live).status, uint8_t(shm::ResponseStatus::ok));
  announce(a, h, 1, false, shm::Event::started, 100);
  Collect sink;
  worker::JoinReceiver rx(&sink, 1700000000);
  for (const Bytes& f : answer_of(a, 100)) rx.take(f.data(), f.size());  // no SnapshotWs: a file's pass
  EXPECT_EQ(rx.torrents(), 1u);
  EXPECT_EQ(rx.peers(), 1u);
}

}  // namespace
}  // namespace shoal
