// tests/unit/cluster_join_test.cpp — a node joining the cluster (issue 14, worker/cluster_join.hpp)
// without NATS: node A's partition streamed as snapshot frames (one chunk a frame, as the sync
// worker sends them) through a fake transport (a vector of messages) into JoinReceiver, and its
// entries applied to node B's partition (apply_join_entry), which then counts what A counts; a
// lost, damaged or foreign frame; and the order of deltas against snapshot entries: an entry
// never overwrites a peer that a delta stored first, and completed counts only rise.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "shm/cluster_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/snapshot_codec.hpp"
#include "tests/unit/partition_segment.hpp"
#include "worker/cluster_join.hpp"
#include "worker/cluster_link.hpp"

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
std::vector<Bytes> answer_of(const shm::Partition& part, uint32_t t0, uint16_t node_id = 1) {
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
    while (part.snapshot_step(c, w, t0, 256) == 256 && !c.done) {
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

}  // namespace
}  // namespace shoal
