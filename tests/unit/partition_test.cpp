// tests/unit/partition_test.cpp — behaviour of shm/partition: announce upsert/refresh/stop,
// seeder/leecher moves, completed counted once, peer selection rules and randomness, IPv4/IPv6
// separation, expiry with a resumable cursor, tracker-full atomicity, list growth, and 100k
// random operations checked against a reference model. Runs in-process on a heap buffer that
// stands in for the shm segment (SegmentHeader written as shm/segment.cpp does).
#include "shm/partition.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "shm/messages.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"

namespace shoal::shm {
namespace {

using Hash = std::array<uint8_t, 20>;

using test_support::Seg;

Hash hash_of(uint32_t n) {
  Hash h{};
  for (int i = 0; i < 20; ++i) h[i] = uint8_t(n * 31 + i * 7 + (n >> 8));
  std::memcpy(h.data() + 12, &n, 4);
  return h;
}

// Peer number `id` of a family: IPv4 10.a.b.c or IPv6 fd00::id, port 1000 + id % 5000.
AnnounceInput in_for(const Hash& ih, uint8_t family, uint32_t id, bool seeder, Event ev, uint32_t now,
                     uint16_t numwant = 50) {
  AnnounceInput in{};
  in.info_hash = ih.data();
  in.family = family;
  if (family == 4) {
    uint32_t a = htonl(0x0a000000u + id);
    std::memcpy(in.addr, &a, 4);
  } else {
    in.addr[0] = 0xfd;
    std::memcpy(in.addr + 12, &id, 4);
  }
  in.port = htons(uint16_t(1000 + id % 5000));
  in.event = uint8_t(ev);
  in.seeder = seeder;
  in.numwant = numwant;
  in.topology_group = uint16_t(id % 3);
  in.now = now;
  return in;
}

using PeerId = std::tuple<uint8_t, std::array<uint8_t, 16>, uint16_t>;  // family, addr, port

PeerId id_of(const AnnounceInput& in) {
  std::array<uint8_t, 16> a{};
  std::memcpy(a.data(), in.addr, in.family == 4 ? 4 : 16);
  return {in.family, a, in.port};
}

// Decodes a reply's compact entries.
std::vector<PeerId> decode(uint8_t family, const uint8_t* out, uint16_t n) {
  std::vector<PeerId> v;
  uint32_t al = family == 4 ? 4 : 16;
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* e = out + i * (al + 2);
    std::array<uint8_t, 16> a{};
    std::memcpy(a.data(), e, al);
    uint16_t port;
    std::memcpy(&port, e + al, 2);
    v.emplace_back(family, a, port);
  }
  return v;
}

std::map<PeerId, bool> peers_of(const Partition& p, const Hash& ih) {
  std::map<PeerId, bool> m;
  p.for_each_peer(ih.data(), [&](const PeerInfo& peer) {
    std::array<uint8_t, 16> aa{};
    std::memcpy(aa.data(), peer.addr16, 16);
    EXPECT_TRUE(m.emplace(PeerId{peer.family, aa, peer.port_be}, peer.seeder).second) << "peer listed twice";
  });
  return m;
}

class PartitionTest : public ::testing::Test {
 protected:
  Seg seg{{64, 4096}};
  Partition p{seg.base, seg.size};
  uint8_t out[4096 * 18];
  AnnounceResult go(const AnnounceInput& in) { return p.announce(in, out); }
};

TEST(PartitionFormat, RejectsUnformattedAndMismatchedSegments) {
  Seg raw({4, 16}, false);
  EXPECT_THROW(Partition(raw.base, raw.size), std::runtime_error);
  Seg ok({4, 16});
  EXPECT_THROW(Partition(ok.base, ok.size - 64), std::runtime_error);
  EXPECT_NO_THROW(Partition(ok.base, ok.size));
  EXPECT_THROW(partition_segment_bytes({0, 16}), std::invalid_argument);
  EXPECT_THROW(partition_segment_bytes({4, kMaxCapacity + 1}), std::invalid_argument);
}

TEST(PartitionFormat, MemoryPerPeerAtOneMillionIpv4Peers) {
  size_t bytes = partition_segment_bytes({100000, 1000000});
  double per_peer = double(bytes) / 1e6;
  RecordProperty("bytes_per_peer", std::to_string(per_peer));
  EXPECT_LT(per_peer, 45.5);  // 6.75 index (6-byte slots × 9/8) + 32 arena (worst case) + 5.8 torrents
  EXPECT_GT(per_peer, 44.5);  // + 0.1 map (torrents: 48-byte records 4.8 + index 1.0)
}

// The peer index has max_peers × 9/8 slots (not a power of two): filled to capacity it runs at
// load 0.89, wraps around its end, and backward-shift deletion must keep every peer findable.
TEST(PartitionFull, PeerIndexFullToCapacityKeepsEveryPeerFindable) {
  Seg seg({16, 1000});
  Partition p(seg.base, seg.size);
  std::vector<Hash> hashes;
  for (uint32_t t = 0; t < 16; ++t) hashes.push_back(hash_of(t));
  std::vector<AnnounceInput> live;  // info_hash points into `hashes`
  for (uint32_t i = 0; i < 1000; ++i) {
    AnnounceInput in = in_for(hashes[i % 16], 4, i, false, Event::started, 1);
    ASSERT_EQ(p.announce(in, nullptr).status, 0) << "peer " << i;
    live.push_back(in);
  }
  EXPECT_EQ(p.totals().leechers, 1000u);
  EXPECT_EQ(p.announce(in_for(hash_of(0), 4, 5000, false, Event::started, 1), nullptr).status, 1)
      << "max_peers reached";
  std::mt19937 rng(7);
  std::shuffle(live.begin(), live.end(), rng);
  for (uint32_t i = 0; i < 500; ++i) {  // stop half, in random order
    AnnounceInput in = live.back();
    live.pop_back();
    in.event = uint8_t(Event::stopped);
    ASSERT_EQ(p.announce(in, nullptr).status, 0);
  }
  ASSERT_EQ(p.validate(), "");
  for (AnnounceInput in : live) {  // a refresh finds the stored peer: no second copy appears
    in.event = uint8_t(Event::none);
    in.now = 2;
    ASSERT_EQ(p.announce(in, nullptr).status, 0);
  }
  EXPECT_EQ(p.totals().leechers, 500u);
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, InsertRefreshAndStopped) {
  Hash ih = hash_of(1);
  AnnounceResult r = go(in_for(ih, 4, 1, false, Event::started, 10));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.leechers, 1u);
  EXPECT_EQ(r.seeders, 0u);
  EXPECT_EQ(r.peer_count, 0);                         // never itself
  r = go(in_for(ih, 4, 1, false, Event::none, 100));  // refresh, not a second peer
  EXPECT_EQ(r.leechers, 1u);
  EXPECT_EQ(p.totals().leechers, 1u);
  go(in_for(ih, 4, 2, false, Event::started, 10));
  ExpireResult e = p.expire_step(150, 60, 1000);  // 100 + 60 >= 150 keeps peer 1; peer 2 goes
  EXPECT_EQ(e.peers_removed, 1u);
  EXPECT_EQ(peers_of(p, ih).count(id_of(in_for(ih, 4, 1, false, Event::none, 0))), 1u);
  r = go(in_for(ih, 4, 1, false, Event::stopped, 160));
  EXPECT_EQ(r.leechers, 0u);
  EXPECT_EQ(r.peer_count, 0);
  r = go(in_for(ih, 4, 1, false, Event::stopped, 161));  // idempotent
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(peers_of(p, ih).empty());
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, StoppedForUnknownTorrentStoresNothing) {
  Hash ih = hash_of(2);
  AnnounceResult r = go(in_for(ih, 4, 1, true, Event::stopped, 10));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.seeders + r.leechers + r.completed, 0u);
  EXPECT_EQ(p.totals().torrents, 0u);
}

TEST_F(PartitionTest, SeederLeecherMoves) {
  Hash ih = hash_of(3);
  go(in_for(ih, 4, 1, false, Event::started, 10));
  go(in_for(ih, 4, 2, false, Event::started, 10));
  AnnounceResult r = go(in_for(ih, 4, 1, true, Event::none, 11));
  EXPECT_EQ(r.seeders, 1u);
  EXPECT_EQ(r.leechers, 1u);
  auto peers = peers_of(p, ih);
  EXPECT_TRUE(peers.at(id_of(in_for(ih, 4, 1, true, Event::none, 0))));
  EXPECT_FALSE(peers.at(id_of(in_for(ih, 4, 2, true, Event::none, 0))));
  r = go(in_for(ih, 4, 1, false, Event::none, 12));
  EXPECT_EQ(r.seeders, 0u);
  EXPECT_EQ(r.leechers, 2u);
  EXPECT_EQ(p.totals().seeders, 0u);
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, CompletedCountedOncePerPeer) {
  Hash ih = hash_of(4);
  go(in_for(ih, 4, 1, false, Event::started, 10));
  EXPECT_EQ(go(in_for(ih, 4, 1, true, Event::completed, 11)).completed, 1u);
  EXPECT_EQ(go(in_for(ih, 4, 1, true, Event::completed, 12)).completed, 1u);  // replayed request
  EXPECT_EQ(go(in_for(ih, 4, 1, false, Event::none, 13)).completed, 1u);
  EXPECT_EQ(go(in_for(ih, 4, 1, true, Event::completed, 14)).completed, 1u);  // flag survives moves
  EXPECT_EQ(go(in_for(ih, 4, 2, true, Event::completed, 15)).completed, 2u);  // first seen as seeder
  EXPECT_EQ(p.scrape(ih.data()).completed, 2u);
  EXPECT_EQ(p.totals().completed, 2u);
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, CompletedWithLeftAboveZeroCountsNothing) {
  // Issue 12: event=completed with left > 0 was counted as a download.
  Hash ih = hash_of(5);
  EXPECT_EQ(go(in_for(ih, 4, 1, false, Event::completed, 10)).completed, 0u);
  EXPECT_EQ(go(in_for(ih, 4, 1, false, Event::completed, 11)).completed, 0u);
  // When it really finishes (left = 0), it counts, once.
  EXPECT_EQ(go(in_for(ih, 4, 1, true, Event::completed, 12)).completed, 1u);
  EXPECT_EQ(go(in_for(ih, 4, 1, true, Event::completed, 13)).completed, 1u);
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, SelectionRules) {
  Hash ih = hash_of(5);
  for (uint32_t i = 0; i < 5; ++i) go(in_for(ih, 4, i, true, Event::started, 10));
  for (uint32_t i = 5; i < 10; ++i) go(in_for(ih, 4, i, false, Event::started, 10));
  for (uint32_t i = 0; i < 3; ++i) go(in_for(ih, 6, i, false, Event::started, 10));
  auto all = peers_of(p, ih);
  AnnounceInput seeder = in_for(ih, 4, 0, true, Event::none, 11);
  AnnounceResult r = go(seeder);
  EXPECT_EQ(r.seeders, 5u);
  EXPECT_EQ(r.leechers, 8u);  // both families
  ASSERT_EQ(r.peer_count, 5);
  for (const PeerId& id : decode(4, out, r.peer_count)) EXPECT_FALSE(all.at(id)) << "seeder got a seeder";
  AnnounceInput leecher = in_for(ih, 4, 7, false, Event::none, 11);
  r = go(leecher);
  ASSERT_EQ(r.peer_count, 9);
  std::set<PeerId> got;
  for (const PeerId& id : decode(4, out, r.peer_count)) {
    EXPECT_NE(id, id_of(leecher));
    EXPECT_EQ(std::get<0>(id), 4) << "only the asker's family";
    EXPECT_TRUE(all.count(id));
    got.insert(id);
  }
  EXPECT_EQ(got.size(), 9u);
  leecher.numwant = 3;
  EXPECT_EQ(go(leecher).peer_count, 3);
  leecher.numwant = 0;
  EXPECT_EQ(go(leecher).peer_count, 0);
  AnnounceInput v6 = in_for(ih, 6, 0, false, Event::none, 11);
  r = go(v6);
  ASSERT_EQ(r.peer_count, 2);
  for (const PeerId& id : decode(6, out, r.peer_count)) {
    EXPECT_TRUE(all.count(id));
    EXPECT_NE(id, id_of(v6));
  }
}

TEST_F(PartitionTest, RandomSelectionCoversSwarmWithoutDuplicates) {
  Hash ih = hash_of(6);
  std::set<PeerId> members, seen;
  for (uint32_t i = 0; i < 1000; ++i) members.insert(id_of(in_for(ih, 4, i, i % 4 == 0, Event::started, 10)));
  for (uint32_t i = 0; i < 1000; ++i) go(in_for(ih, 4, i, i % 4 == 0, Event::started, 10));
  std::mt19937 rng(7);
  for (int round = 0; round < 1000; ++round) {
    uint32_t asker = 1 + rng() % 999;
    if (asker % 4 == 0) ++asker;  // leechers ask (they may receive everybody)
    AnnounceInput in = in_for(ih, 4, asker, false, Event::none, 11, 50);
    AnnounceResult r = go(in);
    ASSERT_EQ(r.peer_count, 50);
    std::set<PeerId> reply;
    for (const PeerId& id : decode(4, out, r.peer_count)) {
      EXPECT_TRUE(reply.insert(id).second) << "duplicate in one reply";
      EXPECT_NE(id, id_of(in));
      EXPECT_TRUE(members.count(id));
      seen.insert(id);
    }
  }
  EXPECT_EQ(seen.size(), 1000u) << "every peer is returned at least once";
}

TEST_F(PartitionTest, Ipv4AndIpv6SwarmsSeparateButCountedTogether) {
  Hash ih = hash_of(7);
  uint8_t same[16] = {};
  AnnounceInput a = in_for(ih, 4, 1, false, Event::started, 10);
  AnnounceInput b = in_for(ih, 6, 1, true, Event::started, 10);
  std::memcpy(b.addr, a.addr, 4);  // same leading bytes and port, different family: two peers
  std::memcpy(b.addr + 4, same, 12);
  go(a);
  AnnounceResult r = go(b);
  EXPECT_EQ(r.seeders, 1u);
  EXPECT_EQ(r.leechers, 1u);
  EXPECT_EQ(r.peer_count, 0);  // the only other peer is IPv4
  EXPECT_EQ(p.totals().peers_v4, 1u);
  EXPECT_EQ(p.totals().peers_v6, 1u);
  go(in_for(ih, 6, 2, false, Event::started, 10));
  r = go(a);
  EXPECT_EQ(r.peer_count, 0);
  r = go(b);
  ASSERT_EQ(r.peer_count, 1);
  EXPECT_EQ(decode(6, out, 1)[0], id_of(in_for(ih, 6, 2, false, Event::started, 10)));
}

TEST_F(PartitionTest, ExpiryRemovesOldPeersAndEmptyTorrentsAndResumes) {
  for (uint32_t t = 0; t < 20; ++t)
    for (uint32_t i = 0; i < 10; ++i)
      go(in_for(hash_of(100 + t), 4, i, i % 2, Event::started, t < 10 ? 5 : 50));
  Hash stopped_only = hash_of(200);
  go(in_for(stopped_only, 6, 1, false, Event::started, 500));
  go(in_for(stopped_only, 6, 1, false, Event::stopped, 500));
  ASSERT_EQ(p.totals().torrents, 21u);
  uint32_t removed = 0, torrents_removed = 0, steps = 0;
  bool wrapped = false;
  while (!wrapped && steps < 1000) {
    ExpireResult e = p.expire_step(100, 60, 7);
    EXPECT_LE(e.peers_removed, 7u);
    removed += e.peers_removed;
    torrents_removed += e.torrents_removed;
    wrapped = e.wrapped;
    ++steps;
    ASSERT_EQ(p.validate(), "");
  }
  EXPECT_GT(steps, 20u) << "a small budget needs many steps: the cursor resumes";
  EXPECT_EQ(removed, 100u);  // peers last seen at 5 < 100 - 60
  EXPECT_EQ(torrents_removed, 11u);
  EXPECT_EQ(p.totals().torrents, 10u);
  EXPECT_EQ(p.totals().peers_v4, 100u);
  EXPECT_EQ(p.scrape(hash_of(100).data()).leechers, 0u);
  EXPECT_EQ(p.scrape(hash_of(110).data()).leechers, 5u);
  EXPECT_EQ(p.scrape(stopped_only.data()).leechers, 0u);
  // A freed torrent slot is reused.
  EXPECT_EQ(go(in_for(hash_of(300), 4, 1, false, Event::started, 100)).status, 0);
  EXPECT_EQ(p.validate(), "");
}

// Bytes that define the partition's state: all but the journal's entries and the RNG state.
bool same_state(const Seg& a, const Seg& b) {
  size_t rng = offsetof(PartitionLayout, header) + offsetof(PartitionHeader, rng_state);
  size_t hw = offsetof(PartitionLayout, journal) + offsetof(JournalHeader, high_water);
  return std::memcmp(a.base, b.base, rng) == 0 &&
         std::memcmp(a.base + rng + 8, b.base + rng + 8, hw - rng - 8) == 0 &&
         std::memcmp(a.base + sizeof(PartitionLayout), b.base + sizeof(PartitionLayout),
                     a.size - sizeof(PartitionLayout)) == 0;
}

// The swarm worker's prefetch hints read the indexes but never write, for known and unknown
// torrents, any family and any bytes.
TEST(PartitionPrefetch, HintsChangeNothing) {
  Seg seg({64, 256});
  Partition p(seg.base, seg.size);
  for (uint32_t i = 0; i < 40; ++i)
    ASSERT_EQ(p.announce(in_for(hash_of(i % 7), i % 3 ? 4 : 6, i, i % 2, Event::started, 1), nullptr).status, 0);
  Seg before({64, 256});
  std::memcpy(before.base, seg.base, seg.size);
  std::mt19937 rng(3);
  for (uint32_t i = 0; i < 1000; ++i) {
    Hash h = i % 2 ? hash_of(i % 9) : Hash{};
    for (auto& b : h) b ^= i % 4 == 0 ? uint8_t(rng()) : 0;
    AnnounceInput in = in_for(h, uint8_t(rng() % 8), i % 50, false, Event::none, 1);
    p.prefetch_torrent(h.data());
    p.prefetch_peer(h.data(), in.family, in.addr, in.port);
  }
  EXPECT_TRUE(same_state(seg, before));
  EXPECT_EQ(p.validate(), "");
}

TEST(PartitionFull, NoRoomForTorrentChangesNothing) {
  Seg seg({4, 64});
  Partition p(seg.base, seg.size);
  for (uint32_t t = 0; t < 4; ++t)
    ASSERT_EQ(p.announce(in_for(hash_of(t), 4, 1, false, Event::started, 1), nullptr).status, 0);
  Seg before({4, 64});
  std::memcpy(before.base, seg.base, seg.size);
  AnnounceResult r = p.announce(in_for(hash_of(9), 4, 1, false, Event::started, 2), nullptr);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.seeders + r.leechers, 0u);
  EXPECT_TRUE(same_state(seg, before));
  EXPECT_EQ(p.validate(), "");
  EXPECT_EQ(p.announce(in_for(hash_of(0), 4, 2, false, Event::started, 2), nullptr).status, 0);
}

TEST(PartitionFull, NoRoomForPeerChangesNothing) {
  Seg seg({8, 8});
  Partition p(seg.base, seg.size);
  for (uint32_t i = 0; i < 8; ++i)
    ASSERT_EQ(p.announce(in_for(hash_of(i % 3), 4, i, false, Event::started, 1), nullptr).status, 0);
  Seg before({8, 8});
  std::memcpy(before.base, seg.base, seg.size);
  AnnounceResult r = p.announce(in_for(hash_of(7), 4, 99, false, Event::started, 2), nullptr);
  EXPECT_EQ(r.status, 1);  // max_peers reached; the new torrent is rolled back too
  EXPECT_TRUE(same_state(seg, before));
  r = p.announce(in_for(hash_of(0), 4, 99, true, Event::completed, 2), nullptr);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.completed, 0u) << "a failed announce counts nothing";
  EXPECT_TRUE(same_state(seg, before));
  EXPECT_EQ(p.announce(in_for(hash_of(0), 4, 0, true, Event::none, 3), nullptr).status, 0)
      << "refresh still works";
  EXPECT_EQ(p.validate(), "");
}

TEST(PartitionFull, ArenaExhaustedChangesNothing) {
  Seg seg({8, 8});  // 16 arena units; IPv6 peers take 2 each and lists double when full
  Partition p(seg.base, seg.size);
  Hash ih = hash_of(1);
  uint32_t stored = 0;
  AnnounceResult r{};
  Seg before({8, 8});
  for (uint32_t i = 0; i < 8; ++i) {
    std::memcpy(before.base, seg.base, seg.size);
    r = p.announce(in_for(ih, 6, i, false, Event::started, 1), nullptr);
    if (r.status != 0) break;
    ++stored;
  }
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(stored, 4u);  // 2 → 4 peers fit; growing to 8 needs 16 free units
  EXPECT_EQ(r.leechers, stored);
  EXPECT_TRUE(same_state(seg, before));
  EXPECT_EQ(p.validate(), "");
  EXPECT_EQ(p.announce(in_for(hash_of(2), 4, 1, false, Event::started, 1), nullptr).status, 0)
      << "smaller blocks are still available";
  EXPECT_EQ(p.validate(), "");
}

TEST_F(PartitionTest, ListGrowsAndShrinksThroughSizeClasses) {
  Hash ih = hash_of(8);
  for (uint32_t i = 0; i < 300; ++i) ASSERT_EQ(go(in_for(ih, 4, i, false, Event::started, 1)).status, 0);
  for (uint32_t i = 0; i < 40; ++i) ASSERT_EQ(go(in_for(ih, 6, i, true, Event::started, 1)).status, 0);
  EXPECT_EQ(p.validate(), "");
  auto peers = peers_of(p, ih);
  EXPECT_EQ(peers.size(), 340u);
  for (uint32_t i = 0; i < 300; ++i)
    EXPECT_EQ(peers.count(id_of(in_for(ih, 4, i, false, Event::none, 0))), 1u);
  for (uint32_t i = 0; i < 290; ++i) go(in_for(ih, 4, i, false, Event::stopped, 2));
  EXPECT_EQ(p.validate(), "");
  peers = peers_of(p, ih);
  EXPECT_EQ(peers.size(), 50u);
  for (uint32_t i = 290; i < 300; ++i)
    EXPECT_EQ(peers.count(id_of(in_for(ih, 4, i, false, Event::none, 0))), 1u);
  for (uint32_t i = 0; i < 300; ++i)
    ASSERT_EQ(go(in_for(hash_of(1000 + i % 50), 4, i, false, Event::started, 3)).status, 0);
  EXPECT_EQ(p.validate(), "") << "blocks freed by the shrink are reused";
}

TEST_F(PartitionTest, BadFamilyIsRejected) {
  AnnounceInput in = in_for(hash_of(9), 4, 1, false, Event::started, 1);
  in.family = 5;
  EXPECT_EQ(go(in).status, uint8_t(ResponseStatus::bad_request));
  EXPECT_EQ(p.totals().torrents, 0u);
}

// ---- reference model -----------------------------------------------------------------------

struct Model {
  struct Peer {
    bool seeder, counted;
    uint32_t last_seen;
  };
  std::map<Hash, std::map<PeerId, Peer>> torrents;
  std::map<Hash, uint32_t> completed;

  void announce(const Hash& ih, const AnnounceInput& in) {
    PeerId id = id_of(in);
    if (in.event == uint8_t(Event::stopped)) {
      if (torrents.count(ih)) torrents[ih].erase(id);
      return;
    }
    auto& peers = torrents[ih];
    auto it = peers.find(id);
    bool counted = it != peers.end() && it->second.counted;
    if (in.event == uint8_t(Event::completed) && in.seeder && !counted) {
      ++completed[ih];
      counted = true;
    }
    peers[id] = {in.seeder, counted, in.now};
  }
  void expire_all(uint32_t now, uint32_t ttl) {
    for (auto it = torrents.begin(); it != torrents.end();) {
      std::erase_if(it->second, [&](const auto& kv) { return uint64_t(kv.second.last_seen) + ttl < now; });
      if (it->second.empty()) {
        completed.erase(it->first);
        it = torrents.erase(it);
      } else {
        ++it;
      }
    }
  }
};

void expect_same(const Partition& p, const Model& m, const std::vector<Hash>& universe) {
  uint64_t seeders = 0, leechers = 0, completed = 0;
  for (const Hash& ih : universe) {
    auto it = m.torrents.find(ih);
    std::map<PeerId, bool> want;
    if (it != m.torrents.end())
      for (const auto& [id, peer] : it->second) want[id] = peer.seeder;
    ASSERT_EQ(peers_of(p, ih), want);
    ScrapeResult s = p.scrape(ih.data());
    uint32_t ns = 0;
    for (const auto& kv : want) ns += kv.second;
    EXPECT_EQ(s.seeders, ns);
    EXPECT_EQ(s.leechers, want.size() - ns);
    uint32_t c = m.completed.count(ih) ? m.completed.at(ih) : 0;
    EXPECT_EQ(s.completed, c);
    seeders += ns;
    leechers += want.size() - ns;
    completed += c;
  }
  EXPECT_EQ(p.totals().seeders, seeders);
  EXPECT_EQ(p.totals().leechers, leechers);
  EXPECT_EQ(p.totals().completed, completed);
  EXPECT_EQ(p.totals().torrents, m.torrents.size());
}

TEST(PartitionModel, HundredThousandRandomOpsMatchReferenceModel) {
  Seg seg({256, 8192});
  Partition p(seg.base, seg.size);
  Model m;
  std::vector<Hash> universe;
  for (uint32_t i = 0; i < 40; ++i) universe.push_back(hash_of(5000 + i));
  std::mt19937 rng(12345);
  std::vector<uint8_t> out(200 * 18);
  uint32_t now = 1000;
  for (int op = 0; op < 100000; ++op) {
    if (op % 97 == 0) ++now;
    const Hash& ih = universe[rng() % universe.size()];
    uint8_t family = rng() % 4 ? 4 : 6;
    uint32_t peer = rng() % 100;  // 40 × 100 × 2 keys < max_peers
    uint32_t dice = rng() % 100;
    Event ev = dice < 10   ? Event::stopped
               : dice < 20 ? Event::completed
               : dice < 30 ? Event::started
                           : Event::none;
    AnnounceInput in = in_for(ih, family, peer, rng() % 3 == 0, ev, now, uint16_t(rng() % 60));
    AnnounceResult r = p.announce(in, out.data());
    ASSERT_EQ(r.status, 0);
    m.announce(ih, in);
    if (ev != Event::stopped) {
      auto& peers = m.torrents[ih];
      uint32_t ns = 0;
      for (const auto& kv : peers) ns += kv.second.seeder;
      ASSERT_EQ(r.seeders, ns);
      ASSERT_EQ(r.leechers, peers.size() - ns);
      ASSERT_EQ(r.completed, m.completed[ih]);
    }
    if (op % 20000 == 19999) {  // full sweep: to the end, then once round
      for (int pass = 0; pass < 2; ++pass)
        while (!p.expire_step(now, 30, 64).wrapped) {
        }
      m.expire_all(now, 30);
    }
    if (op % 5000 == 4999) {
      ASSERT_EQ(p.validate(), "") << "after op " << op;
      expect_same(p, m, universe);
    }
  }
  EXPECT_EQ(p.validate(), "");
  expect_same(p, m, universe);
}

}  // namespace
}  // namespace shoal::shm

// `transfer remove` drops the swarm: every peer of both families, over many journaled steps;
// other torrents keep theirs; the partition stays consistent.
namespace shoal::shm {
namespace {
TEST(PartitionDrop, DropTorrentRemovesEveryPeerAndKeepsTheRest) {
  Seg seg{{64, 4096}};
  Partition p{seg.base, seg.size};
  Hash a = hash_of(1), b = hash_of(2);
  for (uint32_t id = 0; id < 300; id++) {
    AnnounceInput in = in_for(a, id % 3 == 0 ? 6 : 4, id, id % 5 == 0, Event::started, 10);
    in.progress = uint16_t(id % 1001);
    EXPECT_EQ(p.announce(in, nullptr).status, 0);
  }
  EXPECT_EQ(p.announce(in_for(b, 4, 7, false, Event::started, 10), nullptr).status, 0);
  uint32_t with_progress = 0;
  p.for_each_peer(a.data(), [&](const PeerInfo& peer) { with_progress += peer.progress <= 1000; });
  EXPECT_EQ(with_progress, 300u);  // stored with the peer, shown to the stats
  EXPECT_EQ(p.drop_torrent(a.data()), 300u);
  EXPECT_EQ(p.validate(), "");
  ScrapeResult gone = p.scrape(a.data());
  EXPECT_EQ(gone.seeders + gone.leechers, 0u);
  EXPECT_EQ(p.scrape(b.data()).leechers, 1u);
  EXPECT_EQ(p.totals().torrents, 1u);
  EXPECT_EQ(p.drop_torrent(a.data()), 0u);  // twice: nothing left
  // The torrent can come back.
  EXPECT_EQ(p.announce(in_for(a, 4, 1, false, Event::started, 11), nullptr).status, 0);
  EXPECT_EQ(p.scrape(a.data()).leechers, 1u);
}
}  // namespace
}  // namespace shoal::shm

// Headroom for existing swarms (issue 12): once the partition is near full, new torrents are
// refused while stored torrents still take peers up to the capacity.
namespace shoal::shm {
namespace {
TEST(PartitionHeadroom, NewTorrentsStopShortExistingSwarmsGrowToCapacity) {
  Seg seg{{64, 100}};
  Partition p{seg.base, seg.size};
  p.set_new_torrent_peer_limit(90);
  uint32_t id = 0;
  for (uint32_t t = 0; t < 45; t++)  // 45 torrents of 2 peers: 90 peers
    for (int k = 0; k < 2; k++) ASSERT_EQ(p.announce(in_for(hash_of(t), 4, id++, false, Event::started, 10), nullptr).status, 0);
  AnnounceResult refused = p.announce(in_for(hash_of(1000), 4, id++, false, Event::started, 10), nullptr);
  EXPECT_EQ(refused.status, uint8_t(ResponseStatus::tracker_full));
  EXPECT_EQ(p.scrape(hash_of(1000).data()).leechers, 0u);
  for (uint32_t k = 0; k < 10; k++)  // an existing swarm still grows, to the capacity
    EXPECT_EQ(p.announce(in_for(hash_of(k), 4, id++, false, Event::started, 10), nullptr).status, 0);
  EXPECT_EQ(p.announce(in_for(hash_of(3), 4, id++, false, Event::started, 10), nullptr).status,
            uint8_t(ResponseStatus::tracker_full));  // full now
  EXPECT_EQ(p.totals().peers_v4, 100u);
  EXPECT_EQ(p.validate(), "");
}
}  // namespace
}  // namespace shoal::shm
