// shm/partition_probe.hpp — bounded, corruption-safe lookups over a partition's records and
// indexes, for the code that checks and repairs a partition (shm/partition_repair.cpp,
// shm/partition_check.cpp): unlike the hot path's probes (shm/partition_ops.hpp), they never
// trust an index entry or a record beyond the bounds the header gives.
#pragma once
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

#include "shm/partition_layout.hpp"

namespace shoal::shm::probes {

template <class... A>
inline std::string cat(const A&... a) {
  std::ostringstream o;
  (o << ... << a);
  return o.str();
}

// Where a record starts, in 4-byte words from the arena's start (records are 4-byte aligned:
// strides 12 and 32, blocks of 16-byte units), for a bitmap of records over the arena.
inline size_t record_word(const PartitionRegions& r, const uint8_t* rec) { return size_t(rec - r.arena) / 4; }

// Record of (torrent, where) if it names a live peer, else nullptr. Safe on corrupt input.
inline uint8_t* live_peer(const PartitionRegions& r, uint32_t t, uint32_t where) {
  if (t >= r.h->torrent_high || !torrent_live(r.pool[t])) return nullptr;
  uint32_t list = where_list(where), pos = where_pos(where);
  if (list >= kLists) return nullptr;
  PeerListRef pl = list_ref(r.pool[t], list);
  if (pos >= pl.count || pl.block == kNil || pos >= list_capacity(list_family(list), pl.size)) return nullptr;
  return peer_at(r, pl.block, list, pos);
}

// Slot of the first index entry for (info_hash, kind), kNil if none (bounded, corruption-safe).
inline uint32_t probe_torrent(const PartitionRegions& r, const uint8_t* ih, uint32_t tag, uint8_t kind) {
  for (uint32_t i = index_home(tag, r.tslots), n = 0; n < r.tslots; i = index_next(i, r.tslots), ++n) {
    const TorrentSlot& s = r.tindex[i];
    if (s.tag == 0) return kNil;
    if (s.tag == tag && s.torrent < r.h->torrent_high && torrent_live(r.pool[s.torrent]) &&
        torrent_kind(r.pool[s.torrent]) == kind && std::memcmp(r.pool[s.torrent].info_hash, ih, 20) == 0)
      return i;
  }
  return kNil;
}

// Slot of the first index entry for (torrent, family, addr, port), kNil if none.
inline uint32_t probe_peer(const PartitionRegions& r, uint32_t t, uint8_t family, const uint8_t* addr,
                    uint16_t port_be, uint32_t tag) {
  const uint32_t key = peer_slot_key(t);
  for (uint32_t i = index_home(tag, r.pslots), n = 0; n < r.pslots; i = index_next(i, r.pslots), ++n) {
    const PeerSlot& s = r.pindex[i];
    if (s.key() == 0) return kNil;
    if (s.key() != key || list_family(where_list(s.where()) & 3) != family) continue;
    const uint8_t* rec = live_peer(r, t, s.where());
    if (rec && std::memcmp(rec, addr, addr_len(family)) == 0 &&
        tail_of(const_cast<uint8_t*>(rec), where_list(s.where()))->port_be == port_be)
      return i;
  }
  return kNil;
}

inline uint32_t tag_of_record(const PartitionRegions& r, uint32_t t, uint32_t list, uint8_t* rec) {
  return peer_tag(r.h->hash_seed, t, list_family(list), rec, tail_of(rec, list)->port_be);
}

}  // namespace shoal::shm::probes
