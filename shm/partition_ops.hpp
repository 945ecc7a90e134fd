// shm/partition_ops.hpp — the primitives every partition operation is built from (private to
// shm/partition*.cpp; nothing else includes it): one operation's transaction (Op), the two
// open-addressing indexes, the buddy arena, peer lists and torrent records. Inline, so the hot
// announce path compiles as one unit. Layout: shm/partition_layout.hpp; journal:
// shm/partition_journal.hpp. Same rules as partition.cpp: every persistent write through the
// UndoTx, frees deferred to the commit.
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_journal.hpp"
#include "shm/partition_layout.hpp"

namespace shoal::shm::pops {

inline Partition::CrashHook g_crash_hook = nullptr;  // Partition::set_crash_hook_for_test

// Journal bound. Taking a block writes ≤ 4 + 4 × 25 entries (pop, then up to 25 pushed split or
// alignment pieces); freeing one ≤ 4 × 25 + 4 (buddy merges, push); an index insert 1, an erase
// 1 + the probe run after it (short: load ≤ 1/2, keyed hash). An announce takes ≤ 2 blocks and
// frees ≤ 8 (a 3/4-size list block is two buddy blocks, and taking one frees a quarter):
// under ~1,100 entries. Expiry checkpoints (commits) before the journal passes half of
// kJournalCapacity, counting each pending free at its worst case.
inline constexpr uint32_t kMaxPendingFrees = 16;
inline constexpr uint32_t kRemovalsPerTx = 8;  // expiry commits after at most this many removals
inline constexpr uint32_t kWorstFreeWrites = 104;

// One operation on a partition: region pointers, its transaction, and the arena blocks to free
// at commit. Frees wait for the commit so that a block freed in a transaction is never taken
// again by the same transaction: its unjournaled bulk copy would clobber bytes undo restores.
struct Op {
  PartitionRegions r;
  PartitionHeader& h;
  UndoTx tx;
  uint32_t pending_block[kMaxPendingFrees];
  uint8_t pending_class[kMaxPendingFrees];
  uint32_t frees = 0;
  explicit Op(PartitionLayout* l) : r(partition_regions(l)), h(l->header), tx(l, g_crash_hook) {}
};

// A peer's identity inside its torrent; addr and port in network order, addr zero-padded.
struct PeerKey {
  uint8_t family;
  uint8_t addr[16];
  uint16_t port_be;
};

// Where a peer sits: list (kNil = nowhere) and position.
struct Placed {
  uint32_t list;
  uint32_t pos;
};

[[noreturn]] inline void impossible(const char* what) {
  std::fprintf(stderr, "shoal: partition invariant broken: %s\n", what);
  std::abort();
}

// The peer_tag of a stored record of list `list` of torrent t (its address and port).
inline uint32_t record_tag(const PartitionRegions& r, uint32_t t, uint32_t list, const uint8_t* rec) {
  uint8_t fam = list_family(list);
  return peer_tag(r.h->hash_seed, t, fam, rec, reinterpret_cast<const PeerTail*>(rec + addr_len(fam))->port_be);
}

// ---- indexes (open addressing, linear probing, home = index_home(tag, slots)) -------------

// First slot of `tag`'s probe run whose entry satisfies `match`; kNil at an empty slot.
template <class Slot, class Match>
inline uint32_t probe(const Slot* tab, uint32_t slots, uint32_t tag, Match&& match) {
  for (uint32_t i = index_home(tag, slots), n = 0; n < slots; i = index_next(i, slots), ++n) {
    if (tab[i].tag == 0) return kNil;
    if (tab[i].tag == tag && match(tab[i])) return i;
  }
  return kNil;
}

// Slot of the torrent (info_hash, kind) whose tag is torrent_tag(seed, info_hash, kind).
inline uint32_t find_torrent_slot(const PartitionRegions& r, const uint8_t* info_hash, uint32_t tag,
                                  uint8_t kind = kTorrentBitTorrent) {
  return probe(r.tindex, r.tslots, tag, [&](const TorrentSlot& s) {
    return std::memcmp(r.pool[s.torrent].info_hash, info_hash, 20) == 0 && torrent_kind(r.pool[s.torrent]) == kind;
  });
}

// Slot of peer k of torrent t (tag = its peer_tag), kNil if not stored. The key compares the
// torrent and 8 bits of the tag at once; only an equal key costs a look at the record.
inline uint32_t find_peer_slot(const PartitionRegions& r, uint32_t torrent, const PeerKey& k, uint32_t tag) {
  const uint32_t key = peer_slot_key(torrent);
  for (uint32_t i = index_home(tag, r.pslots), n = 0; n < r.pslots; i = index_next(i, r.pslots), ++n) {
    const PeerSlot& s = r.pindex[i];
    if (s.key() == 0) return kNil;
    if (s.key() != key) continue;
    uint32_t list = where_list(s.where());
    if (list >= kLists || list_family(list) != k.family) continue;
    uint8_t* rec = peer_at(r, list_block(r.pool[torrent], list), list, where_pos(s.where()));
    if (std::memcmp(rec, k.addr, addr_len(k.family)) == 0 && tail_of(rec, list)->port_be == k.port_be) return i;
  }
  return kNil;
}

// The slot whose entry says (torrent, where); used to re-point a peer that swap-remove moved.
inline uint32_t find_peer_slot_at(const PartitionRegions& r, uint32_t tag, uint32_t torrent, uint32_t where) {
  const uint32_t key = peer_slot_key(torrent);
  for (uint32_t i = index_home(tag, r.pslots), n = 0; n < r.pslots; i = index_next(i, r.pslots), ++n) {
    const PeerSlot& s = r.pindex[i];
    if (s.key() == 0) return kNil;
    if (s.key() == key && s.where() == where) return i;
  }
  return kNil;
}

// Inserts peer slot {key, where} of the peer whose peer_tag is `tag` (a free slot of its run).
inline void peer_index_insert(UndoTx& tx, const PartitionRegions& r, uint32_t tag, uint32_t torrent, uint32_t where) {
  uint32_t i = index_home(tag, r.pslots);
  for (uint32_t n = 0; r.pindex[i].key() != 0; i = index_next(i, r.pslots))
    if (++n >= r.pslots) impossible("peer index full");
  PeerSlot e = make_peer_slot(torrent, where);
  tx.write(&r.pindex[i], &e, sizeof e);
}

// Backward-shift deletion in the peer index (as index_erase); an entry's home slot comes from
// the record it names, so every record the run names must be in place (no list mid-move).
inline void peer_index_erase(UndoTx& tx, const PartitionRegions& r, uint32_t hole) {
  const uint32_t slots = r.pslots;
  for (uint32_t i = index_next(hole, slots), n = 0; r.pindex[i].key() != 0 && n + 1 < slots; i = index_next(i, slots), ++n) {
    const PeerSlot& s = r.pindex[i];
    uint32_t t = slot_torrent(s), list = where_list(s.where());
    const uint8_t* rec = peer_at(r, list_block(r.pool[t], list), list, where_pos(s.where()));
    uint32_t home = index_home(record_tag(r, t, list, rec), slots);
    if (index_dist(home, i, slots) >= index_dist(hole, i, slots)) {
      tx.write(&r.pindex[hole], &r.pindex[i], sizeof(PeerSlot));
      hole = i;
    }
  }
  PeerSlot empty{};
  tx.write(&r.pindex[hole], &empty, sizeof(PeerSlot));
}

template <class Slot>
inline void index_insert(UndoTx& tx, Slot* tab, uint32_t slots, const Slot& entry) {
  uint32_t i = index_home(entry.tag, slots);
  for (uint32_t n = 0; tab[i].tag != 0; i = index_next(i, slots))
    if (++n >= slots) impossible("index full");
  tx.write(&tab[i], &entry, sizeof(Slot));
}

// Backward-shift deletion: later entries of the probe run move into the hole when their home
// slot does not lie cyclically inside (hole, i]; no tombstones.
template <class Slot>
inline void index_erase(UndoTx& tx, Slot* tab, uint32_t slots, uint32_t hole) {
  for (uint32_t i = index_next(hole, slots), n = 0; tab[i].tag != 0 && n + 1 < slots; i = index_next(i, slots), ++n) {
    uint32_t home = index_home(tab[i].tag, slots);
    if (index_dist(home, i, slots) >= index_dist(hole, i, slots)) {
      tx.write(&tab[hole], &tab[i], sizeof(Slot));
      hole = i;
    }
  }
  Slot empty{};
  tx.write(&tab[hole], &empty, sizeof(Slot));
}

// ---- arena blocks: buddies; per-class free lists, then the bump pointer, then a split -------

inline void set_free_bit(Op& op, uint32_t b, bool on) {
  uint8_t& m = free_map_byte(op.r, b);
  op.tx.set(m, uint8_t(on ? m | free_map_bit(b) : m & ~free_map_bit(b)));
}

inline void push_free(Op& op, uint32_t b, uint32_t cls) {
  uint32_t head = op.h.free_heads[cls];
  FreeBlock f{head, kNil, cls};
  op.tx.write(&free_block(op.r, b), &f, sizeof f);
  if (head != kNil) op.tx.set(free_block(op.r, head).prev, b);
  op.tx.set(op.h.free_heads[cls], b);
  set_free_bit(op, b, true);
}

inline void unlink_free(Op& op, uint32_t b) {
  const FreeBlock& f = free_block(op.r, b);
  if (f.prev == kNil)
    op.tx.set(op.h.free_heads[f.cls], f.next);
  else
    op.tx.set(free_block(op.r, f.prev).next, f.next);
  if (f.next != kNil) op.tx.set(free_block(op.r, f.next).prev, f.prev);
  set_free_bit(op, b, false);
}

inline uint32_t pop_free(Op& op, uint32_t cls) {
  uint32_t b = op.h.free_heads[cls];
  op.tx.save(&free_block(op.r, b), sizeof(FreeBlock));  // overwritten unjournaled after this
  unlink_free(op, b);
  return b;
}

// Takes 2^cls units at the next multiple of 2^cls; the alignment gap goes to the free lists.
inline uint32_t take_bump(Op& op, uint32_t cls) {
  uint64_t size = 1ull << cls;
  uint64_t at = (uint64_t(op.h.arena_bump) + size - 1) & ~(size - 1);
  if (at + size > op.h.arena_units) return kNil;
  for (uint32_t u = op.h.arena_bump; u < at; u += 1u << __builtin_ctz(u)) push_free(op, u, __builtin_ctz(u));
  op.tx.set(op.h.arena_bump, uint32_t(at + size));
  return uint32_t(at);
}

// A block of 2^cls units, or kNil (and nothing written) when the arena has no room. A larger
// free block is split before the bump pointer moves: units below arena_bump have been touched
// already, units above it cost no memory yet (tmpfs pages are allocated when first written).
inline uint32_t block_take(Op& op, uint32_t cls) {
  if (op.h.free_heads[cls] != kNil) return pop_free(op, cls);
  for (uint32_t big = cls + 1; big < kSizeClasses; ++big) {
    if (op.h.free_heads[big] == kNil) continue;
    uint32_t b = pop_free(op, big);
    for (uint32_t c = big; c-- > cls;) push_free(op, b + (1u << c), c);  // keep the low part
    return b;
  }
  return take_bump(op, cls);
}

// Frees a block, merging it with its buddy while the buddy is a free block of the same class.
inline void release_block(Op& op, uint32_t b, uint32_t cls) {
  for (; cls + 1 < kSizeClasses; ++cls) {
    uint32_t buddy = b ^ (1u << cls);
    if (buddy >= op.h.arena_bump || !starts_free_block(op.r, buddy) || free_block(op.r, buddy).cls != cls)
      break;
    unlink_free(op, buddy);
    b = std::min(b, buddy);
  }
  push_free(op, b, cls);
}

inline void release_at_commit(Op& op, uint32_t b, uint32_t cls) {
  if (op.frees == kMaxPendingFrees) impossible("too many frees in one transaction");
  op.pending_block[op.frees] = b;
  op.pending_class[op.frees] = uint8_t(cls);
  ++op.frees;
}

inline void commit(Op& op) {
  for (uint32_t i = 0; i < op.frees; ++i) release_block(op, op.pending_block[i], op.pending_class[i]);
  op.frees = 0;
  op.tx.commit();
}

inline void abort_op(Op& op) {
  op.frees = 0;
  op.tx.abort();
}

// ---- peer lists --------------------------------------------------------------------------

// Peers stored in the partition, every family (the max_peers capacity counts all of them).
inline uint64_t stored_peers(const PartitionHeader& h) { return uint64_t(h.peers_v4) + h.peers_v6 + h.peers_ws; }

// Totals of a peer joining (+1) or leaving (-1) list `list` of torrent t; a WebTorrent torrent's
// peers count as peers_ws / seeders_ws, not IPv6.
inline void count_peer(Op& op, uint32_t t, uint32_t list, int delta) {
  uint32_t& role = (list & 1) ? op.h.seeders : op.h.leechers;
  bool ws = torrent_kind(op.r.pool[t]) == kTorrentWebTorrent;
  uint32_t& fam = ws ? op.h.peers_ws : list_family(list) == 4 ? op.h.peers_v4 : op.h.peers_v6;
  op.tx.set(role, uint32_t(role + delta));
  op.tx.set(fam, uint32_t(fam + delta));
  if (list == kV6Seeders) {
    uint32_t& fs = ws ? op.h.seeders_ws : op.h.seeders_v6;
    op.tx.set(fs, uint32_t(fs + delta));
  }
}

// Writes list `list` of tr (journaled): block of size code `size` (kNil/0: none), count peers.
inline void set_list(Op& op, TorrentRecord& tr, uint32_t list, uint32_t block, uint32_t size, uint32_t count) {
  op.tx.set(tr.lists[list], make_list_word(block, size, count));
}

// A block for a list of size code k (list_units(k) units; layout: valid_list_size), or kNil
// (nothing written). A 3/4 size takes a block of twice its top class and frees the last
// quarter at commit.
inline uint32_t list_block_take(Op& op, uint32_t k) {
  if (k % 2 == 0) return block_take(op, k / 2);
  uint32_t c = k / 2, b = block_take(op, c + 1);
  if (b != kNil) release_at_commit(op, b + (3u << (c - 1)), c - 1);
  return b;
}

// Frees (at commit) the block of a list of size code k: one buddy block, or two for a 3/4 size.
inline void list_block_release(Op& op, uint32_t b, uint32_t k) {
  if (k % 2 == 0) return release_at_commit(op, b, k / 2);
  release_at_commit(op, b, k / 2);
  release_at_commit(op, b + (1u << (k / 2)), k / 2 - 1);
}

// Moves a list into a new block of size code k. False (nothing written) if no room.
inline bool list_rehome(Op& op, uint32_t t, uint32_t list, uint32_t k) {
  TorrentRecord& tr = op.r.pool[t];
  uint8_t fam = list_family(list);
  uint32_t b = list_block_take(op, k);
  if (b == kNil) return false;
  PeerListRef pl = list_ref(tr, list);
  if (pl.count > 0)  // fresh block: unjournaled copy (see file comment)
    std::memcpy(peer_at(op.r, b, list, 0), peer_at(op.r, pl.block, list, 0),
                size_t(pl.count) * peer_stride(fam));
  if (pl.block != kNil) list_block_release(op, pl.block, pl.size);
  set_list(op, tr, list, b, k, pl.count);
  return true;
}

// Appends `rec` (a PeerV4/PeerV6 image) to a list and indexes it under `tag`. Returns its
// position, or kNil when the arena is full or the list holds kMaxListCount (then nothing was
// written).
inline uint32_t list_push(Op& op, uint32_t t, uint32_t list, const uint8_t* rec, uint32_t tag) {
  TorrentRecord& tr = op.r.pool[t];
  PeerListRef pl = list_ref(tr, list);
  uint32_t n = pl.count;
  if (n >= kMaxListCount) return kNil;  // a ListWord's count has 22 bits
  if (n == list_capacity(list_family(list), pl.size)) {
    if (!list_rehome(op, t, list, next_list_size(pl.size))) return kNil;
    pl = list_ref(tr, list);
  }
  op.tx.write(peer_at(op.r, pl.block, list, n), rec, peer_stride(list_family(list)));
  set_list(op, tr, list, pl.block, pl.size, n + 1);
  peer_index_insert(op.tx, op.r, tag, t, pack_where(list, n));
  count_peer(op, t, list, +1);
  return n;
}

inline uint32_t record_tag(const Op& op, uint32_t t, uint32_t list, const uint8_t* rec) {
  return record_tag(op.r, t, list, rec);
}

// Swap-remove of the peer at `pos` whose index slot is `slot`; frees or shrinks the block.
inline void list_remove(Op& op, uint32_t t, uint32_t list, uint32_t pos, uint32_t slot) {
  peer_index_erase(op.tx, op.r, slot);
  TorrentRecord& tr = op.r.pool[t];
  PeerListRef pl = list_ref(tr, list);
  uint32_t last = pl.count - 1;
  if (pos != last) {
    uint8_t* from = peer_at(op.r, pl.block, list, last);
    uint32_t moved = find_peer_slot_at(op.r, record_tag(op, t, list, from), t, pack_where(list, last));
    if (moved == kNil) impossible("peer not indexed");
    op.tx.write(peer_at(op.r, pl.block, list, pos), from, peer_stride(list_family(list)));
    PeerSlot re = make_peer_slot(t, pack_where(list, pos));
    op.tx.write(&op.r.pindex[moved], &re, sizeof re);
  }
  count_peer(op, t, list, -1);
  if (last == 0) {
    list_block_release(op, pl.block, pl.size);
    set_list(op, tr, list, kNil, 0, 0);
  } else {
    set_list(op, tr, list, pl.block, pl.size, last);
    if (pl.size > kMinListSize && last <= list_capacity(list_family(list), pl.size) / 4)
      list_rehome(op, t, list, smaller_list_size(pl.size));  // best effort: stays put if no room
  }
}

// ---- torrents ----------------------------------------------------------------------------

inline uint32_t create_torrent(Op& op, const uint8_t* info_hash, uint32_t tag, uint8_t kind = kTorrentBitTorrent) {
  uint32_t t = op.h.torrent_free;
  if (t != kNil) {
    op.tx.set(op.h.torrent_free, op.r.pool[t].completed);  // free slots link through `completed`
  } else if (op.h.torrent_high < op.h.max_torrents) {
    t = op.h.torrent_high;
    op.tx.set(op.h.torrent_high, t + 1);
  } else {
    return kNil;
  }
  TorrentRecord rec = new_torrent_record(info_hash, kind);
  op.tx.write(&op.r.pool[t], &rec, sizeof rec);
  index_insert(op.tx, op.r.tindex, op.r.tslots, TorrentSlot{tag, t});
  op.tx.set(op.h.torrents, op.h.torrents + 1);
  return t;
}

inline void remove_torrent(Op& op, uint32_t t) {
  TorrentRecord& tr = op.r.pool[t];
  uint8_t kind = torrent_kind(tr);
  uint32_t slot = find_torrent_slot(op.r, tr.info_hash, torrent_tag(op.h.hash_seed, tr.info_hash, kind), kind);
  if (slot == kNil) impossible("torrent not indexed");
  index_erase(op.tx, op.r.tindex, op.r.tslots, slot);
  op.tx.set(op.h.completed, op.h.completed - tr.completed);
  op.tx.set(op.h.torrents, op.h.torrents - 1);
  op.tx.set(tr.lists[kV4Leechers], list_word_of(kListMarker));  // a free slot (its lists are empty)
  op.tx.set(tr.completed, op.h.torrent_free);
  op.tx.set(op.h.torrent_free, t);
}

inline void count_completed(Op& op, uint32_t t) {
  op.tx.set(op.r.pool[t].completed, op.r.pool[t].completed + 1);
  op.tx.set(op.h.completed, op.h.completed + 1);
}

inline void fill_counts(const PartitionRegions& r, uint32_t t, uint32_t& seeders, uint32_t& leechers,
                 uint32_t& completed) {
  if (t == kNil) return;
  const TorrentRecord& tr = r.pool[t];
  seeders = list_count(tr, kV4Seeders) + list_count(tr, kV6Seeders);
  leechers = list_count(tr, kV4Leechers) + list_count(tr, kV6Leechers);
  completed = tr.completed;
}

// A transaction of removals commits after kRemovalsPerTx of them, or before the journal could
// overflow (each removal may free blocks: kWorstFreeWrites writes each).
inline bool removals_due(const Op& op, uint32_t in_tx) {
  return in_tx >= kRemovalsPerTx || op.tx.pending() + op.frees * kWorstFreeWrites > kJournalCapacity / 2;
}

}  // namespace shoal::shm::pops
