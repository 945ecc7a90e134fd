// tests/unit/partition_crash_test.cpp — crash-point injection for shm/partition (the failure
// model of ARCHITECTURE in README: a swarm worker killed at any instruction). For random
// operation sequences, every
// journaled write k of the next operation becomes a kill point: the crash hook throws there,
// leaving the segment image exactly as a killed swarm worker would; recover() must then yield a
// clean partition whose state is the state before the announce (all-or-nothing), or, for an
// expiry step (several commits), a state between before and after. Also: recover() twice, a
// recovery killed half-way, and corrupted tables rebuilt without losing peers.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"

namespace shoal::shm {
namespace {

using Hash = std::array<uint8_t, 20>;
using Record = std::vector<uint8_t>;
using PeerKeyT = std::tuple<Hash, uint8_t, Record>;  // info_hash, family, addr+port bytes

constexpr PartitionCapacity kCap{24, 160};
constexpr PartitionCapacity kSmallCap{6, 40};  // fills up: exercises tracker-full rollbacks

struct Killed {};
uint32_t g_kill_at = 0;  // write number to die at (0 = never)
uint32_t g_last_write = 0;
void kill_hook(uint32_t n) {
  g_last_write = n;
  if (n == g_kill_at) throw Killed{};
}

// Installs the hook for one test and removes it afterwards (other tests share the binary).
struct HookGuard {
  HookGuard() { Partition::set_crash_hook_for_test(kill_hook); }
  ~HookGuard() {
    Partition::set_crash_hook_for_test(nullptr);
    g_kill_at = 0;
  }
};

using test_support::Seg;

// Logical state: per torrent, its completed count and the exact bytes of every peer record,
// list by list, in position order.
struct Torrent {
  uint32_t completed;
  std::array<std::vector<Record>, kLists> lists;
  bool operator==(const Torrent&) const = default;
};
using Snapshot = std::map<Hash, Torrent>;

Snapshot snapshot(const Seg& s) {
  PartitionRegions r = partition_regions(s.layout());
  Snapshot out;
  for (uint32_t t = 0; t < r.h->torrent_high; ++t) {
    const TorrentRecord& tr = r.pool[t];
    if (!torrent_live(tr)) continue;
    Hash ih;
    std::memcpy(ih.data(), tr.info_hash, 20);
    Torrent& o = out[ih];
    o.completed = tr.completed;
    for (uint32_t list = 0; list < kLists; ++list)
      for (uint32_t pos = 0; pos < list_count(tr, list); ++pos) {
        const uint8_t* rec = peer_at(r, list_block(tr, list), list, pos);
        o.lists[list].emplace_back(rec, rec + peer_stride(list_family(list)));
      }
  }
  return out;
}

std::set<PeerKeyT> keys(const Snapshot& s) {
  std::set<PeerKeyT> k;
  for (const auto& [ih, t] : s)
    for (uint32_t list = 0; list < kLists; ++list)
      for (const Record& rec : t.lists[list]) {
        uint32_t n = addr_len(list_family(list)) + 2;  // address and port
        k.emplace(ih, list_family(list), Record(rec.begin(), rec.begin() + n));
      }
  return k;
}

// Header (minus RNG state), journal count, every table before the arena and the free map,
// byte for byte.
bool same_tables(const Seg& a, const Seg& b) {
  size_t rng = offsetof(PartitionLayout, header) + offsetof(PartitionHeader, rng_state);
  size_t count = offsetof(PartitionLayout, journal);
  size_t arena = a.layout()->header.arena_off, map = a.layout()->header.free_map_off;
  return std::memcmp(a.base, b.base, rng) == 0 &&
         std::memcmp(a.base + rng + 8, b.base + rng + 8, count + 4 - rng - 8) == 0 &&
         std::memcmp(a.base + sizeof(PartitionLayout), b.base + sizeof(PartitionLayout),
                     arena - sizeof(PartitionLayout)) == 0 &&
         std::memcmp(a.base + map, b.base + map, a.size - map) == 0;
}

Hash hash_of(uint32_t n) {
  Hash h{};
  for (int i = 0; i < 20; ++i) h[i] = uint8_t(n * 131 + i);
  return h;
}

// One operation of a sequence: an announce, or an expiry step when expire_budget > 0.
struct Step {
  Hash ih;
  AnnounceInput in;
  uint32_t expire_budget;
  uint32_t ttl;
};

Step random_step(std::mt19937& rng, uint32_t now) {
  Step s{};
  uint32_t dice = rng() % 100;
  if (dice < 8) {
    s.expire_budget = 1 + rng() % 40;
    s.ttl = 20 + rng() % 40;
    s.in.now = now;
    return s;
  }
  uint32_t torrent = rng() % 3 == 0 ? rng() % 9 : 0;  // torrent 0 gets big (list growth)
  s.ih = hash_of(torrent);
  AnnounceInput& in = s.in;
  in.family = rng() % 4 ? 4 : 6;
  uint32_t id = rng() % 60;
  if (in.family == 4) {
    uint32_t a = htonl(0xc0a80000u + id);
    std::memcpy(in.addr, &a, 4);
  } else {
    in.addr[0] = 0x20;
    in.addr[15] = uint8_t(id);
  }
  in.port = htons(uint16_t(6881 + id % 3));
  in.event = uint8_t(dice < 25   ? Event::stopped
                     : dice < 40 ? Event::completed
                     : dice < 50 ? Event::started
                                 : Event::none);
  in.seeder = rng() % 3 == 0;
  in.numwant = uint16_t(rng() % 8);
  in.topology_group = uint16_t(rng() % 4);
  in.now = now;
  return s;
}

void run(Seg& s, Step& st) {
  Partition p(s.base, s.size);
  if (st.expire_budget) {
    p.expire_step(st.in.now, st.ttl, st.expire_budget);
    return;
  }
  uint8_t out[8 * 18];
  st.in.info_hash = st.ih.data();
  p.announce(st.in, out);
}

// Kills the step at every write and checks what recover() makes of each image.
uint32_t crash_every_write(const Seg& before, Step st) {
  Seg after(before);
  g_kill_at = 0;
  g_last_write = 0;
  run(after, st);
  uint32_t writes = g_last_write;
  Snapshot s_before = snapshot(before), s_after = snapshot(after);
  std::set<PeerKeyT> k_before = keys(s_before), k_after = keys(s_after);
  for (uint32_t k = 1; k <= writes; ++k) {
    Seg work(before);
    g_kill_at = k;
    EXPECT_THROW(run(work, st), Killed) << "write " << k;
    g_kill_at = 0;
    Partition p(work.base, work.size);
    RecoverReport rep = p.recover();
    EXPECT_FALSE(rep.rebuilt) << "kill at write " << k << ": " << rep.problem;
    EXPECT_EQ(p.validate(), "") << "kill at write " << k;
    Snapshot got = snapshot(work);
    if (st.expire_budget == 0) {
      EXPECT_TRUE(got == s_before) << "announce not undone, kill at write " << k;
      EXPECT_TRUE(same_tables(work, before)) << "tables differ, kill at write " << k;
    } else {
      std::set<PeerKeyT> k_got = keys(got);
      EXPECT_TRUE(std::includes(k_before.begin(), k_before.end(), k_got.begin(), k_got.end()));
      EXPECT_TRUE(std::includes(k_got.begin(), k_got.end(), k_after.begin(), k_after.end()))
          << "a peer the expiry keeps was lost, kill at write " << k;
    }
    RecoverReport again = p.recover();  // idempotent
    EXPECT_FALSE(again.was_dirty);
    EXPECT_FALSE(again.rebuilt);
    EXPECT_TRUE(snapshot(work) == got);
    if (st.expire_budget == 0) {  // the replacement replays the request: same result as no crash
      run(work, st);
      EXPECT_TRUE(snapshot(work) == s_after) << "replay after kill at write " << k;
    }
    if (::testing::Test::HasFailure()) return writes;
  }
  return writes;
}

TEST(PartitionCrash, EveryWriteOfRandomSequencesIsAllOrNothing) {
  HookGuard guard;
  std::mt19937 rng(2024);
  uint64_t kill_points = 0, max_writes = 0;
  for (int seq = 0; seq < 80 && !HasFailure(); ++seq) {
    Seg seg(seq % 4 == 3 ? kSmallCap : kCap);
    uint32_t now = 100;
    for (int i = 0; i < 150 && !HasFailure(); ++i) {
      now += rng() % 4 == 0;
      Step st = random_step(rng, now);
      uint32_t w = crash_every_write(seg, st);
      kill_points += w;
      max_writes = std::max<uint64_t>(max_writes, w);
      g_kill_at = 0;
      run(seg, st);  // advance the sequence
      ASSERT_EQ(Partition(seg.base, seg.size).validate(), "");
    }
  }
  RecordProperty("kill_points", std::to_string(kill_points));
  RecordProperty("max_writes_per_op", std::to_string(max_writes));
  EXPECT_GT(kill_points, 10000u);
}

// Builds a partition with peers on several torrents and lists (for the repair tests).
Seg populated(uint32_t n) {
  Seg seg(kCap);
  Partition p(seg.base, seg.size);
  std::mt19937 rng(99);
  for (uint32_t i = 0; i < n; ++i) {
    Step st = random_step(rng, 100);
    if (st.expire_budget || st.in.event == uint8_t(Event::stopped)) continue;
    run(seg, st);
  }
  EXPECT_EQ(p.validate(), "");
  return seg;
}

TEST(PartitionCrash, RecoveryKilledHalfWayIsRedone) {
  HookGuard guard;
  Seg before = populated(120);
  Step st{hash_of(0), {}, 0, 0};
  st.in.family = 6;
  st.in.addr[0] = 0x30;  // a new peer: grows a list, touches indexes and totals
  st.in.port = htons(7000);
  st.in.event = uint8_t(Event::completed);
  st.in.seeder = true;  // a completion counts only from a seeder (left = 0): touches the counts
  st.in.now = 200;
  Seg after(before);
  g_last_write = 0;
  run(after, st);
  uint32_t writes = g_last_write;
  ASSERT_EQ(keys(snapshot(after)).size(), keys(snapshot(before)).size() + 1) << "the announce must succeed";
  ASSERT_GT(writes, 6u);
  for (uint32_t k = 2; k <= writes; ++k) {
    Seg work(before);
    g_kill_at = k;
    EXPECT_THROW(run(work, st), Killed);
    g_kill_at = 0;
    PartitionLayout* l = work.layout();
    uint32_t n = l->journal.count;
    ASSERT_EQ(n, k - 1);
    for (uint32_t i = n; i-- > n / 2;)  // the dead recoverer restored the newest half only
      std::memcpy(work.base + l->entries[i].offset, l->entries[i].old, l->entries[i].len);
    Partition p(work.base, work.size);
    RecoverReport rep = p.recover();
    EXPECT_TRUE(rep.was_dirty);
    EXPECT_EQ(rep.undone_writes, n);
    EXPECT_EQ(p.validate(), "");
    EXPECT_TRUE(snapshot(work) == snapshot(before)) << "kill at write " << k;
    EXPECT_TRUE(same_tables(work, before));
  }
}

// Fast start (issue 12, recovery time): recover_fast rolls back a killed transaction exactly as
// recover() does, so the partition is consistent at once; damage beyond the header is left to
// the check in slices (check_step finds it, recover() then repairs it); a damaged header makes
// recover_fast check and rebuild everything itself.
std::string check_in_slices(const Partition& p, uint32_t budget, uint32_t* slices) {
  Partition::IncrementalCheck st;
  *slices = 0;
  while (st.phase < 3) {
    ++*slices;
    std::string problem = p.check_step(st, budget);
    if (!problem.empty()) return problem;
  }
  return "";
}

TEST(PartitionCrash, FastRecoveryRollsBackAtOnceAndLeavesTheFullCheckToSlices) {
  HookGuard guard;
  Seg before = populated(120);
  Step st{hash_of(1), {}, 0, 0};
  st.in.family = 4;
  st.in.port = htons(7001);
  st.in.now = 200;
  Seg work(before);
  g_kill_at = 5;
  EXPECT_THROW(run(work, st), Killed);
  g_kill_at = 0;
  Partition p(work.base, work.size);
  RecoverReport rep = p.recover_fast();
  EXPECT_TRUE(rep.was_dirty);
  EXPECT_EQ(rep.undone_writes, 4u);
  EXPECT_FALSE(rep.rebuilt);
  EXPECT_TRUE(snapshot(work) == snapshot(before));
  uint32_t slices = 0;
  EXPECT_EQ(check_in_slices(p, 16, &slices), "");
  EXPECT_GT(slices, 10u) << "many small slices";
  EXPECT_EQ(check_in_slices(p, 1, &slices), "") << "slices that end inside a torrent's lists";

  PartitionRegions r = partition_regions(work.layout());  // damage the fast start cannot see
  for (uint32_t i = 0; i < r.pslots; ++i)
    if (r.pindex[i].key()) {
      r.pindex[i] = PeerSlot{};
      break;
    }
  EXPECT_FALSE(Partition(work.base, work.size).recover_fast().rebuilt) << "O(1): the header only";
  EXPECT_NE(check_in_slices(p, 16, &slices), "") << "the check in slices sees it";
  EXPECT_TRUE(p.recover().rebuilt);
  EXPECT_EQ(check_in_slices(p, 1000, &slices), "");

  // Serving between slices never makes the check see damage that is not there.
  Partition::IncrementalCheck cs;
  std::mt19937 rng(5);
  uint32_t now = 300;
  while (cs.phase < 3) {
    ASSERT_EQ(p.check_step(cs, 3), "");
    Step s2 = random_step(rng, ++now);
    run(work, s2);
  }
  EXPECT_EQ(p.validate(), "");

  work.layout()->header.torrent_high = work.layout()->header.max_torrents + 1;  // a damaged header
  RecoverReport full = Partition(work.base, work.size).recover_fast();
  EXPECT_TRUE(full.rebuilt) << "a bad header makes the fast start check everything";
  EXPECT_EQ(p.validate(), "");
}

// Corrupts one thing, then checks validate() notices and recover() rebuilds without loss.
template <class Scribble>
void expect_rebuilt(const char* what, Scribble scribble, size_t lost = 0) {
  Seg seg = populated(400);
  std::set<PeerKeyT> before = keys(snapshot(seg));
  ASSERT_GT(before.size(), 60u);
  scribble(seg);
  Partition p(seg.base, seg.size);
  EXPECT_NE(p.validate(), "") << what << " went unnoticed";
  RecoverReport rep = p.recover();
  EXPECT_TRUE(rep.rebuilt) << what;
  EXPECT_FALSE(rep.problem.empty());
  EXPECT_EQ(p.validate(), "") << what;
  std::set<PeerKeyT> after = keys(snapshot(seg));
  EXPECT_EQ(after.size() + lost, before.size()) << what;
  EXPECT_TRUE(std::includes(before.begin(), before.end(), after.begin(), after.end())) << what;
  EXPECT_EQ(rep.peers, after.size());
  Step st{hash_of(0), {}, 0, 0};
  st.in.family = 4;
  st.in.port = htons(9);
  st.in.now = 300;
  run(seg, st);  // still serves
  EXPECT_EQ(p.validate(), "") << what;
}

TEST(PartitionRepair, ScribbledPeerIndexEntryIsRebuilt) {
  expect_rebuilt("zeroed peer index entry", [](Seg& s) {
    PartitionRegions r = partition_regions(s.layout());
    for (uint32_t i = 0; i < r.pslots; ++i)
      if (r.pindex[i].key()) {
        r.pindex[i] = PeerSlot{};
        return;
      }
  });
  expect_rebuilt("peer index entry pointing elsewhere", [](Seg& s) {
    PartitionRegions r = partition_regions(s.layout());
    for (uint32_t i = 0; i < r.pslots; ++i)
      if (r.pindex[i].key()) r.pindex[i].w[0] ^= 1;  // position bit 0
  });
}

TEST(PartitionRepair, ScribbledTorrentIndexAndFreeListsAreRebuilt) {
  expect_rebuilt("torrent index entry", [](Seg& s) {
    PartitionRegions r = partition_regions(s.layout());
    for (uint32_t i = 0; i < r.tslots; ++i)
      if (r.tindex[i].tag) r.tindex[i].tag ^= 0x5a5a0000;
  });
  expect_rebuilt("free-list cycle", [](Seg& s) {
    PartitionRegions r = partition_regions(s.layout());
    for (uint32_t c = 0; c < kSizeClasses; ++c)
      if (r.h->free_heads[c] != kNil) {
        free_block(r, r.h->free_heads[c]).next = r.h->free_heads[c];
        return;
      }
    r.h->free_heads[3] = 0;  // no free block yet: point a free list into live data
  });
  expect_rebuilt("totals", [](Seg& s) { s.layout()->header.seeders += 3; });
  expect_rebuilt("journal garbage", [](Seg& s) {
    s.layout()->journal.count = 1;
    s.layout()->entries[0] = JournalEntry{1u << 31, 4, 0, {}};
  });
}

TEST(PartitionRepair, DuplicatePeerRecordIsDropped) {
  expect_rebuilt(
      "duplicate peer record",
      [](Seg& s) {
        PartitionRegions r = partition_regions(s.layout());
        PeerListRef l = list_ref(r.pool[0], kV4Leechers);
        for (uint32_t t = 1; t < r.h->torrent_high; ++t)
          if (list_count(r.pool[t], kV4Leechers) > l.count) l = list_ref(r.pool[t], kV4Leechers);
        ASSERT_GE(l.count, 2u);
        std::memcpy(peer_at(r, l.block, kV4Leechers, 1), peer_at(r, l.block, kV4Leechers, 0), 16);
      },
      1);
}

TEST(PartitionRepair, OutOfRangeBlockDropsOnlyItsList) {
  Seg probe = populated(400);
  PartitionRegions pr = partition_regions(probe.layout());
  size_t lost = list_count(pr.pool[0], kV4Seeders);
  ASSERT_GT(lost, 0u);
  expect_rebuilt(
      "out-of-range block",
      [](Seg& s) {
        PartitionRegions r = partition_regions(s.layout());
        PeerListRef l = list_ref(r.pool[0], kV4Seeders);
        uint32_t align = list_align(l.size), past_end = (r.h->arena_units + align - 1) / align * align;
        r.pool[0].lists[kV4Seeders] = make_list_word(past_end, l.size, l.count);
      },
      lost);
}

}  // namespace
}  // namespace shoal::shm
