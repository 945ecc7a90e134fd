// shm/partition_layout.hpp — the bytes of one swarm partition segment (API: shm/partition.hpp).
// Formatted once by the supervisor (partition_format); afterwards written only by the owning
// swarm worker, through the undo journal (shm/partition_journal.hpp), and read by nobody else.
// Types and static_asserts, plus the inline *format functions* that every binary of this layout
// must compute identically (region geometry from capacities, key hashes, record addressing).
// All offsets are bytes from the segment base, all links are u32 indices (kNil = none); integers
// are host byte order except peer addresses and ports, which stay in network order.
//
// Segment (every region 64-byte aligned):
//   SegmentHeader                     64 B  shm/layout.hpp
//   PartitionHeader                  256 B  geometry, totals, sweep cursor, allocator heads
//   JournalHeader                     64 B  undo journal count
//   JournalEntry[kJournalCapacity]    24 B each
//   torrent index  TorrentSlot[torrent_slots]    8 B each (open addressing, linear probing)
//   torrent pool   TorrentRecord[max_torrents]  48 B each
//   peer index     PeerSlot[peer_slots]          6 B each (open addressing, linear probing)
//   peer arena     arena_units × 16 B           dense peer lists (PeerV4 / PeerV6 arrays)
//   free map       1 bit per 2 arena units      set where a free arena block starts
// The torrent index has capacity × 5/4 slots (load ≤ 0.8), the peer index capacity × 9/8 (load
// ≤ 0.89; peer_index_slots); any size: home = index_home(tag, slots).
// A list's block holds as many records as fit: its list_units(size) units of 16 B hold
// units × 16 / 12 IPv4 peers (2, 5, 8, 10, 16, 21, ...) or units × 16 / 32 IPv6 or WebTorrent
// peers (1, 2, 3, 4, 6, ...). Sizes grow 2, 4, 6, 8, 12, 16, 24, ... units (list_units).
//
// Arena blocks are buddies: a block of 2^c units starts at a multiple of 2^c (c ≥ 1), so a freed
// block merges with its buddy (start ^ 2^c) when that one is free too; the free map says which
// units start a free block without trusting the bytes of live blocks. A list of 3 × 2^(c-1)
// units holds two buddy blocks (class c, then class c-1 right after it): it was taken as a
// class c+1 block whose last quarter went back to the free lists.
//
// Memory at 100k torrents / 1M peers, capacities equal to that: 45.2 MB of address space, i.e.
// 45.2 B per stored IPv4 peer at worst: peer index 6.75 (1.125M × 6 B), arena 32.0 at worst (a
// 1-peer list takes a 32-byte block; a list that grew is at least 2/3 full: ≤ 18 B per peer;
// about 16 with the bench's swarm sizes), torrent pool 4.8 and index 1.0, free map 0.1. Pages
// are touched as used (tmpfs), so what a partition costs is what it stores (tools/bench, memory).
// An IPv6 peer takes 32 B (2 arena units).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "shm/layout.hpp"
#include "shm/peer_view.hpp"  // kPeerRepresentative

namespace shoal::shm {

inline constexpr uint64_t kPartitionFormat = 0x3174706c616f6873ull;  // "shoalpt1" little-endian
inline constexpr uint32_t kNil = 0xffffffffu;
inline constexpr uint32_t kJournalCapacity = 2048;  // entries; see the bound in partition.cpp
inline constexpr uint32_t kJournalMaxBytes = 16;    // old bytes per entry; larger writes split
inline constexpr uint32_t kSizeClasses = 30;        // free-list heads, class c = blocks of 2^c units
                                                    // (arena ≤ 2^25 units: classes 0..25 used)
inline constexpr uint32_t kArenaUnit = 16;          // bytes
inline constexpr uint32_t kMaxCapacity = 1u << 24;  // max_peers (arena units fit 25 bits)
inline constexpr uint32_t kMaxTorrents = kMaxCapacity - 1;  // max_torrents (PeerSlot keeps torrent + 1 in 24 bits)
inline constexpr uint32_t kMinListSize = 2;         // smallest list block (size code): 2 units (2 IPv4 / 1 IPv6 peer)

// Peer lists of a torrent: list = (family == 6 ? 2 : 0) + seeder.
enum PeerList : uint32_t { kV4Leechers = 0, kV4Seeders = 1, kV6Leechers = 2, kV6Seeders = 3 };
inline constexpr uint32_t kLists = 4;

// Peer flags (PeerTail::state bits 0-3; peer_flags()).
inline constexpr uint8_t kPeerSeeder = 1;            // the peer's last announce had left == 0
inline constexpr uint8_t kPeerCompletedCounted = 2;  // its event=completed was counted once
// kPeerRepresentative = 4 (shm/peer_view.hpp): a leecher elected by the tiered policy.
inline constexpr uint8_t kPeerRemote = 8;  // last stored from another node's delta (issue 14), not
                                           // from an announce to this node: not republished here
inline constexpr uint8_t kPeerKnownFlags = 15;

// Geometry and state of the partition, right after the SegmentHeader (offset 64).
//   format            kPartitionFormat once partition_format finished (written last)
//   segment_bytes     size of the whole segment
//   max_torrents/max_peers   capacities (PartitionCapacity)
//   torrent_slots/peer_slots index sizes, index_slots(max_torrents), peer_index_slots(max_peers)
//   arena_units       16-byte units in the peer arena (2 × max_peers)
//   *_off             region offsets from the segment base (free_map_off: the free map)
//   hash_seed         random key of the index hashes (set at format; defeats crafted collisions)
//   rng_state         xorshift64 state for peer selection; written without journaling
// Journaled state (changes only inside a transaction):
//   torrents, seeders, leechers, peers_v4, peers_v6, completed   totals over stored torrents
//                     (seeders/leechers count every family; peers_v6 only IPv6 peers)
//   peers_ws, seeders_ws  WebTorrent peers and, of them, seeders (their torrents have kind 1)
//   torrent_high      pool slots [0, torrent_high) have been handed out at least once
//   torrent_free      first free pool slot (its TorrentRecord::completed links the next)
//   arena_bump        arena units [0, arena_bump) have been handed out at least once
//   sweep_torrent/sweep_list/sweep_pos   expiry cursor (next peer to examine)
//   free_heads[c]     first free arena block of 2^c units (a FreeBlock; doubly linked)
struct PartitionHeader {
  uint64_t format;
  uint64_t segment_bytes;
  uint32_t max_torrents;
  uint32_t max_peers;
  uint32_t torrent_slots;
  uint32_t peer_slots;
  uint32_t arena_units;
  uint32_t torrent_index_off;
  uint32_t torrent_pool_off;
  uint32_t peer_index_off;
  uint32_t arena_off;
  uint32_t free_map_off;
  uint64_t hash_seed;
  uint64_t rng_state;
  uint32_t torrents;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t peers_v4;
  uint32_t peers_v6;
  uint32_t torrent_high;
  uint64_t completed;
  uint32_t torrent_free;
  uint32_t arena_bump;
  uint32_t sweep_torrent;
  uint32_t sweep_list;
  uint32_t sweep_pos;
  uint32_t seeders_v6;  // IPv6 seeders (so totals split by family and role)
  uint32_t free_heads[kSizeClasses];
  uint32_t peers_ws;
  uint32_t seeders_ws;
};
static_assert(sizeof(PartitionHeader) == 256);
static_assert(offsetof(PartitionHeader, hash_seed) == 56 && offsetof(PartitionHeader, rng_state) == 64);
static_assert(offsetof(PartitionHeader, torrents) == 72 && offsetof(PartitionHeader, completed) == 96);
static_assert(offsetof(PartitionHeader, sweep_torrent) == 112 &&
              offsetof(PartitionHeader, free_heads) == 128);
static_assert(kShmSafe<PartitionHeader>);

// Undo journal. count = entries in use: 0 means no transaction in flight. A writer appends an
// entry, release-stores count, then writes the data; commit release-stores 0. high_water is
// the largest count ever reached (statistics, not journaled).
struct JournalHeader {
  uint32_t count;
  uint32_t high_water;
  uint32_t reserved[14];
};
static_assert(sizeof(JournalHeader) == 64 && kShmSafe<JournalHeader>);

// One saved write: `len` (1..16) bytes at segment offset `offset` held `old` before it.
struct JournalEntry {
  uint32_t offset;
  uint16_t len;
  uint16_t reserved;
  uint8_t old[kJournalMaxBytes];
};
static_assert(sizeof(JournalEntry) == 24 && offsetof(JournalEntry, old) == 8 && kShmSafe<JournalEntry>);

// Torrent index slot. tag = 0: empty; else nonzero hash bits of the info_hash, and the slot the
// probe starts from (home) is index_home(tag, torrent_slots). torrent = pool index.
struct TorrentSlot {
  uint32_t tag;
  uint32_t torrent;
};
static_assert(sizeof(TorrentSlot) == 8 && kShmSafe<TorrentSlot>);

// A torrent's peer list in 6 B: three host-order 16-bit words w, value v = w0 | w1 << 16 | w2 << 32:
//   bits 0-21   count: peers stored densely from the block's first unit (at most kMaxListCount)
//   bits 22-46  node: the block as a buddy-tree node, 0 = no block (then count is 0). A block of
//               class c (2^c units at a multiple of 2^c, 1 ≤ c ≤ 25) at unit b is node
//               2^(25-c) + b / 2^c, so the class is 25 - floor(log2(node)) and needs no bits
//   bit 47      3/4 size: the block is 3 × 2^(c-1) units (size code 2c + 1), else 2^c (code 2c)
// A word of all ones (kListMarker; as a size, code 3 is never valid) is no list: it marks a free
// pool slot (in lists[kV4Leechers]) and a WebTorrent record (in lists[kV4Seeders]), and reads as
// an empty list (list_ref).
struct ListWord {
  uint16_t w[3];
  constexpr uint64_t bits() const { return uint64_t(w[0]) | uint64_t(w[1]) << 16 | uint64_t(w[2]) << 32; }
};
static_assert(sizeof(ListWord) == 6 && alignof(ListWord) == 2 && kShmSafe<ListWord>);
inline constexpr uint32_t kListCountBits = 22, kNodeBits = 25;
inline constexpr uint32_t kMaxListCount = (1u << kListCountBits) - 1;  // peers in one list
inline constexpr uint64_t kListMarker = (uint64_t(1) << 48) - 1;
inline constexpr ListWord list_word_of(uint64_t v) { return ListWord{{uint16_t(v), uint16_t(v >> 16), uint16_t(v >> 32)}}; }

// A list as the code uses it (process-local): block = first arena unit (kNil: none), size =
// its size code (0: none; list_units), count = peers stored.
struct PeerListRef {
  uint32_t block;
  uint32_t count;
  uint32_t size;
};
// Decodes a list word; the marker and any word without a node but with a count read as they
// are (the marker as empty), so check and repair see a bad word as a bad list.
inline constexpr PeerListRef list_ref(ListWord lw) {
  uint64_t v = lw.bits();
  if (v == kListMarker) return {kNil, 0, 0};
  uint32_t count = uint32_t(v) & kMaxListCount, node = uint32_t(v >> kListCountBits) & ((1u << kNodeBits) - 1);
  if (node == 0) return {kNil, count, 0};
  uint32_t c = uint32_t(__builtin_clz(node)) - (32 - kNodeBits - 1);  // 25 - floor(log2(node))
  uint32_t block = (node ^ (1u << (kNodeBits - c))) << c;
  return {block, count, 2 * c + uint32_t(v >> 47)};
}
// The word of a list: block (kNil or a block of size code `size`, aligned: list_align), count.
inline constexpr ListWord make_list_word(uint32_t block, uint32_t size, uint32_t count) {
  uint64_t v = count & kMaxListCount;
  if (block != kNil && size != 0) {
    uint32_t c = size / 2;
    v |= uint64_t((1u << (kNodeBits - c)) | (block >> c)) << kListCountBits | uint64_t(size & 1) << 47;
  }
  return list_word_of(v);
}

// Torrent pool record, 48 B.
//   info_hash   20 raw bytes (SHA-1)
//   completed   completed downloads counted (event=completed, once per peer); in a free slot it
//               instead links the next free pool slot (kNil ends the free list)
//   lists       the 4 peer lists, indexed by PeerList (ListWord: count, block and its size code)
// Two facts live in marker words (kListMarker) of the IPv4 lists:
//   live        lists[kV4Leechers] is not the marker (torrent_live); a free slot has it
//   kind        kTorrentWebTorrent when lists[kV4Seeders] is the marker, else kTorrentBitTorrent
//               (UDP/HTTP peers) (torrent_kind). One info_hash may have one record of each kind,
//               indexed apart (torrent_tag mixes the kind in). A WebTorrent record keeps its
//               peers in the two IPv6-sized lists (kV6Leechers/kV6Seeders) as PeerWs records;
//               its IPv4 lists hold no peers (both read as empty).
struct TorrentRecord {
  uint8_t info_hash[20];
  uint32_t completed;
  ListWord lists[kLists];
};
inline constexpr uint8_t kTorrentBitTorrent = 0;
inline constexpr uint8_t kTorrentWebTorrent = 1;
static_assert(sizeof(TorrentRecord) == 48);
static_assert(offsetof(TorrentRecord, completed) == 20 && offsetof(TorrentRecord, lists) == 24);
static_assert(kShmSafe<TorrentRecord>);
inline constexpr bool torrent_live(const TorrentRecord& t) { return t.lists[0].bits() != kListMarker; }
inline constexpr uint8_t torrent_kind(const TorrentRecord& t) {
  return t.lists[1].bits() == kListMarker ? kTorrentWebTorrent : kTorrentBitTorrent;
}
inline PeerListRef list_ref(const TorrentRecord& t, uint32_t list) { return list_ref(t.lists[list]); }
inline uint32_t list_count(const TorrentRecord& t, uint32_t list) { return list_ref(t.lists[list]).count; }
inline uint32_t list_block(const TorrentRecord& t, uint32_t list) { return list_ref(t.lists[list]).block; }
inline uint32_t list_size(const TorrentRecord& t, uint32_t list) { return list_ref(t.lists[list]).size; }
// A fresh live record of `kind` with empty lists (completed 0).
inline TorrentRecord new_torrent_record(const uint8_t* info_hash, uint8_t kind) {
  TorrentRecord rec{};
  std::memcpy(rec.info_hash, info_hash, 20);
  if (kind == kTorrentWebTorrent) rec.lists[kV4Seeders] = list_word_of(kListMarker);
  return rec;
}

// Where a peer sits in its torrent, as the code passes it around: list << 24 | position.
inline constexpr uint32_t pack_where(uint32_t list, uint32_t pos) { return list << 24 | pos; }
inline constexpr uint32_t where_list(uint32_t where) { return where >> 24; }
inline constexpr uint32_t where_pos(uint32_t where) { return where & 0xffffffu; }

// Peer index slot, 6 B: three host-order 16-bit words w, value v = w0 | w1 << 16 | w2 << 32:
//   bits 24-47  torrent + 1 (0 = empty slot; so max_torrents ≤ kMaxTorrents = 2^24 - 1)
//   bits 22-23  list (PeerList)
//   bits 0-21   position in that list (a list holds at most kMaxListCount = 2^22 - 1 peers)
// The slot keeps no bits of the peer's tag: its home slot is recomputed from the record it names
// (record_tag) where it is needed (erase, check, repair), and a lookup compares the torrent, then
// the record's address and port.
inline constexpr uint32_t kListPosBits = 22;
inline constexpr uint32_t kMaxListPeers = 1u << kListPosBits;
struct PeerSlot {
  uint16_t w[3];
  constexpr uint64_t bits() const { return uint64_t(w[0]) | uint64_t(w[1]) << 16 | uint64_t(w[2]) << 32; }
  // torrent + 1; 0 for an empty slot.
  constexpr uint32_t key() const { return uint32_t(bits() >> 24); }
  // pack_where(list, position) of the peer the slot names.
  constexpr uint32_t where() const {
    uint64_t v = bits();
    return pack_where(uint32_t(v >> kListPosBits) & 3, uint32_t(v) & (kMaxListPeers - 1));
  }
};
static_assert(sizeof(PeerSlot) == 6 && alignof(PeerSlot) == 2 && kShmSafe<PeerSlot>);
// The slot key of a peer of torrent `torrent` (what PeerSlot::key returns for it).
inline constexpr uint32_t peer_slot_key(uint32_t torrent) { return torrent + 1; }
// The slot of a peer of `torrent` at `where` (list < 4, position < kMaxListPeers).
inline constexpr PeerSlot make_peer_slot(uint32_t torrent, uint32_t where) {
  uint64_t v = uint64_t(torrent + 1) << 24 | uint64_t(where_list(where) & 3) << kListPosBits |
               (where_pos(where) & (kMaxListPeers - 1));
  return PeerSlot{{uint16_t(v), uint16_t(v >> 16), uint16_t(v >> 32)}};
}
inline constexpr uint32_t slot_torrent(const PeerSlot& s) { return s.key() - 1; }

// What follows the address in both peer records, 8 B.
//   port_be         port, network order (right after the address: address + port is the
//                   compact entry of a reply)
//   topology_group  location group id (0 unknown)
//   state           bits 0-3   flags: kPeerSeeder | kPeerCompletedCounted | kPeerRepresentative
//                              (leechers only) | kPeerRemote (peer_flags)
//                   bits 4-13  progress: permille of a registered transfer the peer had at its
//                              last announce, 0..1000; 1023 unknown (peer_progress)
//                   bits 14-31 last_seen: seconds since the segment's clock base (shm/clock.hpp)
//                              modulo 2^18 (peer_age: a peer's age is exact up to 71.7 hours;
//                              tracker.peer_ttl is at most 48 hours, and the expiry sweep
//                              removes a peer well before its age wraps. One left in a segment
//                              kept unused for longer shows a wrong age below 71.7 h: it is
//                              removed by a later sweep or refreshed by its next announce)
struct PeerTail {
  uint16_t port_be;
  uint16_t topology_group;
  uint32_t state;
};
static_assert(sizeof(PeerTail) == 8 && offsetof(PeerTail, state) == 4 && kShmSafe<PeerTail>);
inline constexpr uint32_t kPeerFlagsMask = 0xf;
inline constexpr uint32_t kProgressBits = 10, kProgressShift = 4, kStoredProgressUnknown = 1023;
inline constexpr uint32_t kSeenBits = 18, kSeenShift = 14, kSeenMask = (1u << kSeenBits) - 1;
inline constexpr uint8_t peer_flags(const PeerTail& t) { return uint8_t(t.state & kPeerFlagsMask); }
// The state word with the flags replaced (progress and last_seen kept).
inline constexpr uint32_t with_flags(uint32_t state, uint8_t flags) {
  return (state & ~kPeerFlagsMask) | (flags & kPeerFlagsMask);
}
// Progress as AnnounceInput::progress: 0..1000, or kProgressUnknown (0xffff).
inline constexpr uint16_t peer_progress(const PeerTail& t) {
  uint32_t p = (t.state >> kProgressShift) & ((1u << kProgressBits) - 1);
  return p == kStoredProgressUnknown ? uint16_t(0xffff) : uint16_t(p);
}
// Seconds since the peer's last_seen, at `now` (seconds since the clock base): exact for ages
// below 2^18 - kSeenAhead s (71.7 hours); a last_seen up to kSeenAhead s after `now` (a snapshot
// pass that started before the peer's announce) reads as age 0, as before 32-bit last_seen did.
inline constexpr uint32_t kSeenAhead = 4096;
inline constexpr uint32_t peer_age(const PeerTail& t, uint32_t now) {
  uint32_t age = (now - (t.state >> kSeenShift)) & kSeenMask;
  return age > kSeenMask - kSeenAhead ? 0 : age;
}
// The peer's last_seen as seconds since the clock base, seen from `now` (now - peer_age).
inline constexpr uint32_t peer_last_seen(const PeerTail& t, uint32_t now) {
  uint32_t age = peer_age(t, now);
  return now >= age ? now - age : 0;
}
// A state word: flags (kPeer*), progress (0..1000 or anything else for unknown), last_seen.
inline constexpr uint32_t pack_state(uint8_t flags, uint16_t progress, uint32_t last_seen) {
  uint32_t p = progress <= 1000 ? progress : kStoredProgressUnknown;
  return (flags & kPeerFlagsMask) | p << kProgressShift | (last_seen & kSeenMask) << kSeenShift;
}

// IPv4 peer, 12 B: addr[4] @0, port @4, topology_group @6, state @8. Records of a list are
// packed (stride 12), so a block of 2^c units holds (16 << c) / 12 of them.
struct PeerV4 {
  uint8_t addr[4];
  PeerTail tail;
};
static_assert(sizeof(PeerV4) == 12 && offsetof(PeerV4, tail) == 4 && kShmSafe<PeerV4>);

// IPv6 peer, 32 B = 2 arena units: addr[16] @0, port @16, topology_group @18, state @20.
struct PeerV6 {
  uint8_t addr[16];
  PeerTail tail;
  uint8_t reserved[8];
};
static_assert(sizeof(PeerV6) == 32 && offsetof(PeerV6, tail) == 16 && kShmSafe<PeerV6>);

// WebTorrent peer (issue 10), 32 B, the same shape as PeerV6 so list, index, expiry and repair
// code treat it as one: `key` takes the place of the address and port_be is always 0, so the
// peer index finds a WebTorrent peer by (torrent, peer_key(peer_id)). state as PeerTail::state
// (flags kPeerSeeder | kPeerCompletedCounted, progress unknown, last_seen); where PeerV6 has
// topology_group and reserved, it keeps its connection:
//   key         peer_key() of the peer_id: 16 bytes of a keyed hash (the peer_id itself is
//               not needed: offers carry the offering peer's id, sent by its socket worker)
//   slot        socket-worker slot holding the connection
//   generation  generation of that slot's process: a record whose generation is no longer the
//               slot's live process is dead (its connection went with the process)
//   token       the connection's token within that process
struct PeerWs {
  uint8_t key[16];
  uint16_t port_be;  // 0
  uint16_t slot;
  uint32_t state;
  uint32_t generation;
  uint32_t token;
};
static_assert(sizeof(PeerWs) == 32 && offsetof(PeerWs, port_be) == offsetof(PeerV6, tail) && kShmSafe<PeerWs>);
static_assert(offsetof(PeerWs, state) == offsetof(PeerV6, tail) + offsetof(PeerTail, state));
// A WebTorrent peer's port/slot/state words seen as the PeerTail they overlay (port_be 0,
// topology_group = the socket slot): peer_flags, peer_age and peer_last_seen read it.
inline const PeerTail& ws_tail(const PeerWs& p) { return *reinterpret_cast<const PeerTail*>(&p.port_be); }

// First 12 bytes of a free arena block (its free-map bit is set). next/prev: neighbours in the
// free list of class `cls` (kNil at the ends); the rest of the block is garbage.
struct FreeBlock {
  uint32_t next;
  uint32_t prev;
  uint32_t cls;
};
static_assert(sizeof(FreeBlock) == 12 && kShmSafe<FreeBlock>);

// The fixed-size front of the segment; the variable regions follow at the header's offsets.
struct PartitionLayout {
  SegmentHeader segment;
  PartitionHeader header;
  JournalHeader journal;
  JournalEntry entries[kJournalCapacity];
};
static_assert(offsetof(PartitionLayout, header) == 64 && offsetof(PartitionLayout, journal) == 320);
static_assert(offsetof(PartitionLayout, entries) == 384 && sizeof(PartitionLayout) % 64 == 0);
static_assert(kShmSafe<PartitionLayout>);

// ---- format functions --------------------------------------------------------------------

// Region sizes and offsets derived from the capacities (process-local value type).
struct PartitionGeometry {
  uint32_t torrent_slots, peer_slots, arena_units;
  uint64_t torrent_index_off, torrent_pool_off, peer_index_off, arena_off, free_map_off, total_bytes;
};

inline constexpr uint64_t align64(uint64_t n) { return (n + 63) & ~uint64_t(63); }

// Slots of an index for `capacity` entries: capacity × (1 + 1/headroom), at least 16. The
// default, × 5/4, keeps linear probing at load ≤ 0.8 (expected probes at 0.8: 3 for a hit, 13
// for a miss; at the usual load, well under 1.5 and 3): the torrent index.
inline constexpr uint32_t index_slots(uint32_t capacity, uint32_t headroom = 4) {
  uint64_t n = uint64_t(capacity) + (uint64_t(capacity) + headroom - 1) / headroom;
  return uint32_t(n < 16 ? 16 : n);
}
// Slots of the peer index for `capacity` peers: capacity × 9/8, at least 16. Every page of the
// index is touched at any usual fill (homes are uniform), so its headroom costs bytes per stored
// peer: 6.75 B a peer of capacity instead of 7.5 at × 5/4. The price is at full capacity, load
// 0.89: slots read for a hit 5.0 on average (3.0 at 0.8), for a miss (a new peer, and the run a
// removal's backward shift walks, reading the record of each slot) 41 (13), p99 316 (96);
// at the bench's fill of 0.76 × capacity, load 0.68: 2.1 and 5.3 (1.8 and 3.8 at × 5/4).
// (Linear probing with uniform homes, simulated: tools/bench/RESULTS.md, layout 11.)
inline constexpr uint32_t peer_index_slots(uint32_t capacity) { return index_slots(capacity, 8); }
// Home slot of a nonzero 32-bit tag in an index of `slots` slots: multiply-shift (Lemire's
// fast range reduction), uniform for any table size because the tag's bits are uniform.
inline constexpr uint32_t index_home(uint32_t tag, uint32_t slots) {
  return uint32_t((uint64_t(tag) * slots) >> 32);
}
// The next slot of a probe run (wraps at the end of the table).
inline constexpr uint32_t index_next(uint32_t i, uint32_t slots) { return i + 1 == slots ? 0 : i + 1; }
// Steps forward from slot `from` to slot `to`, cyclically (0 .. slots - 1).
inline constexpr uint32_t index_dist(uint32_t from, uint32_t to, uint32_t slots) {
  return to >= from ? to - from : to + slots - from;
}

// Throws std::invalid_argument if a capacity is 0 or above kMaxTorrents / kMaxCapacity.
inline PartitionGeometry partition_geometry(uint32_t max_torrents, uint32_t max_peers) {
  if (max_torrents == 0 || max_peers == 0 || max_torrents > kMaxTorrents || max_peers > kMaxCapacity)
    throw std::invalid_argument("partition capacity out of range (torrents 1 .. 16777215, peers 1 .. 16777216)");
  PartitionGeometry g{};
  g.torrent_slots = index_slots(max_torrents);
  g.peer_slots = peer_index_slots(max_peers);
  g.arena_units = 2 * max_peers;  // 32 B a peer: a 1-peer list's block, or an IPv6 peer
  g.torrent_index_off = sizeof(PartitionLayout);
  g.torrent_pool_off = align64(g.torrent_index_off + uint64_t(g.torrent_slots) * sizeof(TorrentSlot));
  g.peer_index_off = align64(g.torrent_pool_off + uint64_t(max_torrents) * sizeof(TorrentRecord));
  g.arena_off = align64(g.peer_index_off + uint64_t(g.peer_slots) * sizeof(PeerSlot));
  g.free_map_off = align64(g.arena_off + uint64_t(g.arena_units) * kArenaUnit);
  g.total_bytes = align64(g.free_map_off + (g.arena_units + 15) / 16);
  return g;
}

// murmur3's 64-bit finaliser: a bijection with full avalanche.
inline constexpr uint64_t fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}
inline uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline constexpr uint32_t tag_of(uint64_t h) {
  uint32_t t = uint32_t(h >> 32) ^ uint32_t(h);
  return t ? t : 1;
}

// Index tag of a 20-byte info_hash of a torrent kind (kTorrentBitTorrent, kTorrentWebTorrent).
// All 20 bytes are mixed with the secret seed: bytes 0..7 also choose the partition, and a
// client may send any info_hash.
inline uint32_t torrent_tag(uint64_t seed, const uint8_t* info_hash, uint8_t kind = kTorrentBitTorrent) {
  seed ^= uint64_t(kind) * 0x9e3779b97f4a7c15ull;
  uint32_t tail;
  std::memcpy(&tail, info_hash + 16, 4);
  uint64_t h = fmix64(seed ^ load_u64(info_hash + 8));
  h = fmix64(h ^ load_u64(info_hash));
  return tag_of(fmix64(h ^ tail));
}

// Index tag of a peer key: torrent pool index, family (4/6), address (4 or 16 bytes), port.
inline uint32_t peer_tag(uint64_t seed, uint32_t torrent, uint8_t family, const uint8_t* addr,
                         uint16_t port_be) {
  uint64_t h = fmix64(seed ^ (uint64_t(torrent) << 24) ^ (uint64_t(family) << 16) ^ port_be);
  if (family == 4) {
    uint32_t a;
    std::memcpy(&a, addr, 4);
    return tag_of(fmix64(h ^ a));
  }
  h = fmix64(h ^ load_u64(addr));
  return tag_of(fmix64(h ^ load_u64(addr + 8)));
}

// A WebTorrent peer's 16-byte index key: a keyed hash of its 20-byte peer_id (the partition's
// secret seed, so nobody can make two peer_ids collide on purpose).
inline void peer_key(uint64_t seed, const uint8_t* peer_id, uint8_t out[16]) {
  uint32_t tail;
  std::memcpy(&tail, peer_id + 16, 4);
  uint64_t a = fmix64(seed ^ 0x7773706565726964ull ^ load_u64(peer_id));
  a = fmix64(a ^ load_u64(peer_id + 8));
  uint64_t b = fmix64(a ^ tail ^ 0x5bd1e9955bd1e995ull);
  a = fmix64(a ^ b ^ tail);
  std::memcpy(out, &a, 8);
  std::memcpy(out + 8, &b, 8);
}

inline constexpr uint8_t list_family(uint32_t list) { return list < 2 ? 4 : 6; }
inline constexpr uint32_t list_of(uint8_t family, bool seeder) { return (family == 6 ? 2u : 0u) + seeder; }
inline constexpr uint32_t addr_len(uint8_t family) { return family == 6 ? 16 : 4; }
inline constexpr uint32_t peer_stride(uint8_t family) { return family == 6 ? 32 : 12; }  // bytes
// List block size codes (TorrentRecord::cls; 0 = no block):
//   k = 2c (c ≥ 1)      2^c units: one buddy block of class c, at a multiple of 2^c
//   k = 2c + 1 (c ≥ 2)  3 × 2^(c-1) units: a class c block at a multiple of 2^(c+1) and the
//                       class c-1 block right after it (a class c+1 block, last quarter freed)
// so a list grows 2, 4, 6, 8, 12, 16, 24, ... units: records fill about 80 % of their blocks
// where doubling left about 70 % (code 3, 3 units, would need 1-unit blocks: not used).
inline constexpr bool valid_list_size(uint32_t k) {
  return k % 2 == 0 ? k >= kMinListSize && k / 2 < kSizeClasses : k >= 5 && k / 2 + 1 < kSizeClasses;
}
// Units of a block of size code k (k valid).
inline constexpr uint32_t list_units(uint32_t k) { return k % 2 ? 3u << (k / 2 - 1) : 1u << (k / 2); }
// What a block of size code k starts at a multiple of (units; the check needs no more).
inline constexpr uint32_t list_align(uint32_t k) { return 1u << (k / 2); }
// The size a full list grows to (0: no block yet), and the about-half size it shrinks to.
inline constexpr uint32_t next_list_size(uint32_t k) { return k == 0 ? kMinListSize : k == 2 ? 4 : k + 1; }
inline constexpr uint32_t smaller_list_size(uint32_t k) { return k <= 5 ? kMinListSize : k - 2; }
// Peers of `family` a list block of size code k holds; 0 for code 0 (no block).
inline constexpr uint32_t list_capacity(uint8_t family, uint32_t k) {
  return k ? uint32_t(uint64_t(kArenaUnit) * list_units(k) / peer_stride(family)) : 0;
}

// Process-local pointers to the regions of a mapped partition (never stored in shm).
struct PartitionRegions {
  uint8_t* base;
  PartitionHeader* h;
  TorrentSlot* tindex;
  TorrentRecord* pool;
  PeerSlot* pindex;
  uint8_t* arena;
  uint8_t* free_map;
  uint32_t tslots, pslots;  // torrent_slots, peer_slots
};
inline PartitionRegions partition_regions(const PartitionLayout* l) {
  auto* b = reinterpret_cast<uint8_t*>(const_cast<PartitionLayout*>(l));
  auto* h = const_cast<PartitionHeader*>(&l->header);
  return {b,
          h,
          reinterpret_cast<TorrentSlot*>(b + h->torrent_index_off),
          reinterpret_cast<TorrentRecord*>(b + h->torrent_pool_off),
          reinterpret_cast<PeerSlot*>(b + h->peer_index_off),
          b + h->arena_off,
          b + h->free_map_off,
          h->torrent_slots,
          h->peer_slots};
}
// Address of peer `pos` of a list whose block starts at arena unit `block`.
inline uint8_t* peer_at(const PartitionRegions& r, uint32_t block, uint32_t list, uint32_t pos) {
  return r.arena + size_t(block) * kArenaUnit + size_t(pos) * peer_stride(list_family(list));
}
inline PeerTail* tail_of(uint8_t* rec, uint32_t list) {
  return reinterpret_cast<PeerTail*>(rec + addr_len(list_family(list)));
}
inline FreeBlock& free_block(const PartitionRegions& r, uint32_t block) {
  return *reinterpret_cast<FreeBlock*>(r.arena + size_t(block) * kArenaUnit);
}
// Free-map byte and bit of an (even) arena unit.
inline uint8_t& free_map_byte(const PartitionRegions& r, uint32_t block) { return r.free_map[block >> 4]; }
inline constexpr uint8_t free_map_bit(uint32_t block) { return uint8_t(1u << ((block >> 1) & 7)); }
inline bool starts_free_block(const PartitionRegions& r, uint32_t block) {
  return (free_map_byte(r, block) & free_map_bit(block)) != 0;
}

}  // namespace shoal::shm
