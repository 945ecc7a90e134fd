// tests/unit/partition_record_test.cpp — the packed peer records of layout 8 (issue 13, memory):
// IPv4 lists hold as many 12-byte records as their block fits, and the state word keeps flags,
// progress and last_seen (seconds modulo 2^18) apart, so what announce, expiry and replication
// see is what they saw with wider fields.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"

namespace shoal::shm {
namespace {

using test_support::Seg;

const std::array<uint8_t, 20> kHash = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

AnnounceInput v4(uint32_t id, uint32_t now, bool seeder = false, uint16_t progress = kProgressUnknown) {
  AnnounceInput in{};
  in.info_hash = kHash.data();
  in.family = 4;
  uint32_t a = htonl(0x0a000000u + id);
  std::memcpy(in.addr, &a, 4);
  in.port = htons(uint16_t(2000 + id));
  in.event = uint8_t(Event::started);
  in.seeder = seeder;
  in.now = now;
  in.progress = progress;
  in.topology_group = uint16_t(id + 1);
  return in;
}

TEST(PeerRecord, Ipv4ListBlocksHoldAsManyTwelveByteRecordsAsFit) {
  EXPECT_EQ(sizeof(PeerV4), 12u);
  EXPECT_EQ(list_capacity(4, 2), 2u);  // size code 2: 32 B
  EXPECT_EQ(list_capacity(4, 4), 5u);  // 64 B
  EXPECT_EQ(list_capacity(4, 5), 8u);  // 96 B (3/4 of 128)
  EXPECT_EQ(list_capacity(4, 6), 10u);
  EXPECT_EQ(list_capacity(6, 2), 1u);
  Seg seg({4, 64});
  Partition p(seg.base, seg.size);
  PartitionRegions r = partition_regions(seg.layout());
  for (uint32_t i = 0; i < 5; ++i) ASSERT_EQ(p.announce(v4(i, 10), nullptr).status, 0);
  EXPECT_EQ(list_size(r.pool[0], kV4Leechers), 4) << "5 IPv4 peers in one 64-byte block";
  ASSERT_EQ(p.announce(v4(5, 10), nullptr).status, 0);
  EXPECT_EQ(list_size(r.pool[0], kV4Leechers), 5) << "the 6th grows it to 96 bytes";
  EXPECT_EQ(p.validate(), "") << "the freed last quarter of the 128-byte block is on a free list";
  for (uint32_t i = 6; i < 9; ++i) ASSERT_EQ(p.announce(v4(i, 10), nullptr).status, 0);
  EXPECT_EQ(list_size(r.pool[0], kV4Leechers), 6) << "the 9th grows it to 128 bytes";
  for (uint32_t i = 0; i < 9; ++i) {  // every peer still found under its own key (stopped removes it)
    AnnounceInput in = v4(i, 11);
    in.event = uint8_t(Event::stopped);
    EXPECT_EQ(p.announce(in, nullptr).change, kChangeRemoved) << "peer " << i;
  }
  EXPECT_EQ(p.validate(), "");
  EXPECT_EQ(p.totals().peers_v4, 0u);
}

// Layout 11: a torrent record is 48 bytes, each list a 6-byte word (count and its block as a
// buddy-tree node); every block the arena can hold reads back as written.
TEST(TorrentRecord, ListWordsKeepEveryBlockSizeAndCount) {
  EXPECT_EQ(sizeof(TorrentRecord), 48u);
  const uint32_t arena = 1u << 25;  // the largest arena: 2 x kMaxCapacity units
  for (uint32_t k = 0; k < 2 * kSizeClasses; ++k) {
    if (!valid_list_size(k) || k / 2 > 25 || (k % 2 && k / 2 + 1 > 25)) continue;
    uint32_t span = k % 2 ? 2 * list_align(k) : list_align(k);  // a 3/4 size sits in a class c+1 block
    for (uint32_t block : {0u, span, arena - span, (arena / 2 / span) * span}) {
      if (uint64_t(block) + span > arena) continue;
      for (uint32_t count : {1u, list_capacity(4, k) < kMaxListCount ? list_capacity(4, k) : kMaxListCount}) {
        PeerListRef got = list_ref(make_list_word(block, k, count));
        EXPECT_EQ(got.block, block) << "size " << k;
        EXPECT_EQ(got.size, k) << "block " << block;
        EXPECT_EQ(got.count, count) << "size " << k;
      }
    }
  }
  PeerListRef none = list_ref(make_list_word(kNil, 0, 0));
  EXPECT_EQ(none.block, kNil);
  EXPECT_EQ(none.size, 0u);
  EXPECT_EQ(none.count, 0u);
  PeerListRef marker = list_ref(list_word_of(kListMarker));
  EXPECT_EQ(marker.block, kNil) << "the marker reads as an empty list";
  EXPECT_EQ(marker.count, 0u);
  EXPECT_FALSE(valid_list_size(3)) << "the marker's own size code is never a list's";
}

TEST(TorrentRecord, LiveAndKindSurviveListChanges) {
  TorrentRecord bt = new_torrent_record(kHash.data(), kTorrentBitTorrent);
  TorrentRecord ws = new_torrent_record(kHash.data(), kTorrentWebTorrent);
  EXPECT_TRUE(torrent_live(bt));
  EXPECT_TRUE(torrent_live(ws));
  EXPECT_EQ(torrent_kind(bt), kTorrentBitTorrent);
  EXPECT_EQ(torrent_kind(ws), kTorrentWebTorrent);
  EXPECT_EQ(list_count(ws, kV4Seeders), 0u) << "the kind marker is no peer";
  ws.lists[kV6Seeders] = make_list_word(64, 6, 3);
  bt.lists[kV4Seeders] = make_list_word(kMaxCapacity * 2 - 2, 2, kMaxListCount);
  EXPECT_EQ(torrent_kind(ws), kTorrentWebTorrent);
  EXPECT_EQ(torrent_kind(bt), kTorrentBitTorrent) << "a full list at the arena's last unit is not the marker";
  EXPECT_TRUE(torrent_live(bt));
  bt.lists[kV4Leechers] = list_word_of(kListMarker);
  EXPECT_FALSE(torrent_live(bt));

  Seg seg({4, 64});  // a dropped torrent frees its slot; the next torrent reuses it
  Partition p(seg.base, seg.size);
  PartitionRegions r = partition_regions(seg.layout());
  for (uint32_t i = 0; i < 7; ++i) ASSERT_EQ(p.announce(v4(i, 10, i % 2 == 1), nullptr).status, 0);
  EXPECT_TRUE(torrent_live(r.pool[0]));
  EXPECT_EQ(list_count(r.pool[0], kV4Leechers), 4u);
  EXPECT_EQ(list_count(r.pool[0], kV4Seeders), 3u);
  EXPECT_EQ(p.drop_torrent(kHash.data()), 7u);
  EXPECT_FALSE(torrent_live(r.pool[0]));
  EXPECT_EQ(p.validate(), "");
  ASSERT_EQ(p.announce(v4(0, 12), nullptr).status, 0);
  EXPECT_TRUE(torrent_live(r.pool[0])) << "the free slot is handed out again";
  EXPECT_EQ(torrent_kind(r.pool[0]), kTorrentBitTorrent);
  EXPECT_EQ(p.totals().torrents, 1u);
  EXPECT_EQ(p.validate(), "");
}

TEST(PeerRecord, FlagsProgressAndGroupKeepTheirValues) {
  Seg seg({4, 64});
  Partition p(seg.base, seg.size);
  ASSERT_EQ(p.announce(v4(0, 10, false, 0), nullptr).status, 0);
  ASSERT_EQ(p.announce(v4(1, 10, false, 1000), nullptr).status, 0);
  ASSERT_EQ(p.announce(v4(2, 10, false, kProgressUnknown), nullptr).status, 0);
  AnnounceInput done = v4(3, 10, true, 1000);
  done.event = uint8_t(Event::completed);
  ASSERT_EQ(p.announce(done, nullptr).status, 0);
  std::vector<PeerInfo> seen;
  p.for_each_peer(kHash.data(), [&](const PeerInfo& pi) { seen.push_back(pi); });
  ASSERT_EQ(seen.size(), 4u);
  uint16_t want_progress[4] = {0, 1000, kProgressUnknown, 1000};
  for (const PeerInfo& pi : seen) {
    uint32_t id = ntohs(pi.port_be) - 2000;
    ASSERT_LT(id, 4u);
    EXPECT_EQ(pi.progress, want_progress[id]) << "peer " << id;
    EXPECT_EQ(pi.topology_group, id + 1) << "peer " << id;
    EXPECT_EQ(pi.seeder, id == 3) << "peer " << id;
    EXPECT_FALSE(pi.representative);
  }
  EXPECT_EQ(p.scrape(kHash.data()).completed, 1u);
  done.now = 20;  // a second completed from the same peer counts nothing (the flag is kept)
  EXPECT_EQ(p.announce(done, nullptr).change & kChangeCompleted, 0);
  EXPECT_EQ(p.scrape(kHash.data()).completed, 1u);
  EXPECT_EQ(p.validate(), "");
}

TEST(PeerRecord, AgesAreExactForTwoDayTtlsAndALastSeenAheadIsFresh) {
  const uint32_t ttl = 172800;  // tracker.peer_ttl's maximum
  const uint32_t t0 = 100;
  Seg seg({4, 64});
  Partition p(seg.base, seg.size);
  ASSERT_EQ(p.announce(v4(0, t0), nullptr).status, 0);
  ASSERT_EQ(p.announce(v4(1, t0 + 1000), nullptr).status, 0);
  EXPECT_EQ(p.expire_step(t0 + 500, ttl, 100).peers_removed, 0u) << "a last_seen after now is not old";
  EXPECT_EQ(p.expire_step(t0 + ttl, ttl, 100).peers_removed, 0u);
  EXPECT_EQ(p.expire_step(t0 + ttl + 1, ttl, 100).peers_removed, 1u) << "48 h + 1 s: past the ttl";
  EXPECT_EQ(p.totals().peers_v4, 1u);
  // 70 hours (252,000 s, below 2^18 = 262,144): the age and last_seen are still exact.
  AnnounceResult again = p.announce(v4(1, t0 + 1000 + 252000), nullptr);
  EXPECT_EQ(again.change & kChangeNew, 0);
  EXPECT_EQ(again.prev_last_seen, t0 + 1000);
  EXPECT_EQ(p.validate(), "");
}

}  // namespace
}  // namespace shoal::shm
