// shm/topology_segment.hpp — the topology segment "/<shm_name>-topology" (issue 11): the
// longest-prefix-match table that gives each peer address its location group, and the location
// table that says where each group sits (region/zone/rack). The supervisor is the only writer
// (at start and with every access-list reload, supervisor/topology_load.cpp); socket workers
// search the ranges (worker/topology_lookup.hpp), swarm workers read the location table
// (worker/peer_policy_location.cpp).
//
// Longest prefix match as a range table: the prefixes of a family are flattened into sorted,
// disjoint address ranges, each with the group of the longest prefix covering it (the default
// location where none does). A lookup is one binary search over the range starts: 18 steps for
// 100,000 prefixes (at most 2n + 1 ranges), all in flat arrays, so the table is
// position-independent and lives in shared memory as it is.
//
// Reload protocol: the range buffers are double-buffered and flipped together with the access
// list's buffers under the access segment's generation (shm/access_segment.hpp): the writer
// fills buffer 1-active only when every socket worker acked the current access generation, then
// release-stores the counts and `active` before the access segment's generation. A socket
// worker reads both actives after the generation (worker/access_check.cpp), so one ack covers
// both. The location table is append-only: an entry, once published (count release-stored), never
// changes, so a group id held by a stored peer always names the same location.
//
// Layout:
//   SegmentHeader    64 B   kind topology
//   TopologyHeader   64 B
//   locations        location_capacity × LocationEntry (64 B), group g at index g - 1
//   buffer 0, 1      each: v4 starts u32[cap], v4 groups u16[cap], v6 starts hi u64[cap],
//                    v6 starts lo u64[cap], v6 groups u16[cap] (each array 8-byte aligned)
// With topology.mode "off" or "prefix", cap and location_capacity are 0.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/layout.hpp"

namespace shoal::shm {

enum class TopologyMode : uint32_t { off = 0, file = 1, prefix = 2 };

// mode            TopologyMode; written once, before fork
// prefix4/6       group prefix lengths of mode prefix (bits)
// active          range buffer in use: 0 or 1
// capacity        ranges per family per buffer (2 × topology.max_prefixes + 1)
// count4/count6   ranges in buffer b (IPv4 / IPv6); 0 means "no table yet": every address → 0
// locations       location entries published (append-only); group ids 1..locations
// location_capacity  entries the table can hold (topology.max_locations)
// default_group   group of addresses no prefix covers (the default location)
struct TopologyHeader {
  uint32_t mode;
  uint8_t prefix4;
  uint8_t prefix6;
  uint16_t default_group;
  uint32_t active;
  uint32_t capacity;
  uint32_t count4[2];
  uint32_t count6[2];
  uint32_t locations;
  uint32_t location_capacity;
  uint8_t reserved[24];
};
static_assert(sizeof(TopologyHeader) == 64 && kShmSafe<TopologyHeader>);

// One location: its path and the id of each of its levels' prefixes. level[d] identifies the
// path's first d + 1 levels among the prefixes of that depth (1-based; 0 past `depth`), so two
// groups share a zone when their level[0] and level[1] are equal and non-zero.
struct LocationEntry {
  uint16_t level[4];
  uint8_t depth;  // 1..4
  char name[55];  // the path, NUL-terminated
};
static_assert(sizeof(LocationEntry) == 64 && kShmSafe<LocationEntry>);

inline constexpr size_t kTopologyHeaderOffset = sizeof(SegmentHeader);
inline constexpr size_t kLocationsOffset = kTopologyHeaderOffset + sizeof(TopologyHeader);
inline constexpr uint32_t kMaxGroups = 65535;  // group ids are u16; 0 = unknown

inline constexpr size_t align8(size_t n) { return (n + 7) & ~size_t(7); }

// Byte offsets of one range buffer's arrays, relative to the buffer start.
struct RangeBufferLayout {
  size_t v4_starts, v4_groups, v6_hi, v6_lo, v6_groups, bytes;
  static constexpr RangeBufferLayout of(uint32_t cap) {
    RangeBufferLayout l{};
    l.v4_starts = 0;
    l.v4_groups = align8(size_t(cap) * 4);
    l.v6_hi = l.v4_groups + align8(size_t(cap) * 2);
    l.v6_lo = l.v6_hi + size_t(cap) * 8;
    l.v6_groups = l.v6_lo + size_t(cap) * 8;
    l.bytes = l.v6_groups + align8(size_t(cap) * 2);
    return l;
  }
};

inline constexpr size_t range_buffer_offset(uint32_t location_capacity, uint32_t cap, uint32_t b) {
  return kLocationsOffset + size_t(location_capacity) * sizeof(LocationEntry) + b * RangeBufferLayout::of(cap).bytes;
}
inline constexpr size_t topology_segment_bytes(uint32_t location_capacity, uint32_t cap) {
  return range_buffer_offset(location_capacity, cap, 2);
}
inline TopologyHeader* topology_header(void* base) {
  return reinterpret_cast<TopologyHeader*>(static_cast<char*>(base) + kTopologyHeaderOffset);
}
inline LocationEntry* location_entries(void* base) {
  return reinterpret_cast<LocationEntry*>(static_cast<char*>(base) + kLocationsOffset);
}

// One family's ranges, as read by a lookup (pointers into a buffer or into vectors).
struct RangesV4 {
  const uint32_t* starts = nullptr;  // host order, ascending, starts[0] == 0
  const uint16_t* groups = nullptr;
  uint32_t n = 0;
};
struct RangesV6 {
  const uint64_t* hi = nullptr;  // host order; (hi, lo) ascending, the first is (0, 0)
  const uint64_t* lo = nullptr;
  const uint16_t* groups = nullptr;
  uint32_t n = 0;
};

// Group of an IPv4 address (4 bytes, network order); 0 when the table is empty.
inline uint16_t range_lookup_v4(const RangesV4& r, const uint8_t* addr) {
  if (r.n == 0) return 0;
  uint32_t a;
  std::memcpy(&a, addr, 4);
  a = __builtin_bswap32(a);
  uint32_t lo = 0, len = r.n;  // last start <= a: branch-free lower half search
  while (len > 1) {
    uint32_t half = len / 2;
    lo = r.starts[lo + half] <= a ? lo + half : lo;
    len -= half;
  }
  return r.groups[lo];
}

// Group of an IPv6 address (16 bytes, network order); 0 when the table is empty.
inline uint16_t range_lookup_v6(const RangesV6& r, const uint8_t* addr) {
  if (r.n == 0) return 0;
  uint64_t h, l;
  std::memcpy(&h, addr, 8);
  std::memcpy(&l, addr + 8, 8);
  h = __builtin_bswap64(h);
  l = __builtin_bswap64(l);
  uint32_t lo = 0, len = r.n;
  while (len > 1) {
    uint32_t half = len / 2;
    uint32_t m = lo + half;
    bool le = r.hi[m] < h || (r.hi[m] == h && r.lo[m] <= l);
    lo = le ? m : lo;
    len -= half;
  }
  return r.groups[lo];
}

// Group of an address in mode prefix: its first prefix4 / prefix6 bits hashed onto 1..65535.
// Two blocks may share a group (a collision merges them into one location; with 1,000 racks about
// 8 pairs do): the price of needing no table.
inline uint16_t prefix_group(uint8_t family, const uint8_t* addr, uint8_t prefix4, uint8_t prefix6) {
  uint8_t bytes[16] = {};
  uint32_t n = family == 4 ? 4 : 16, bits = family == 4 ? prefix4 : prefix6;
  for (uint32_t i = 0; i < n; i++) {
    int keep = int(bits) - int(i) * 8;
    bytes[i] = keep >= 8 ? addr[i] : keep <= 0 ? 0 : uint8_t(addr[i] & (0xff << (8 - keep)));
  }
  uint64_t x = 0xcbf29ce484222325ull ^ family;  // FNV-1a, then a final mix
  for (uint32_t i = 0; i < n; i++) x = (x ^ bytes[i]) * 0x100000001b3ull;
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return uint16_t(1 + x % kMaxGroups);
}

}  // namespace shoal::shm
