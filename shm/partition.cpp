// shm/partition.cpp — announce, scrape, expiry, totals and formatting of a swarm partition
// (API: shm/partition.hpp, bytes: shm/partition_layout.hpp). Runs in the swarm worker that owns
// the partition; partition_format runs in the supervisor before any worker attaches.
// Touches only its own partition segment. Every persistent write goes through the UndoTx
// (shm/partition_journal.hpp), except (a) peer records bulk-copied into an arena block taken in
// the same transaction (undo returns the block to where it came from, so its bytes don't matter)
// and (b) the selection RNG state. Hot path: no heap allocation, no locks, and no exceptions
// except those a test's crash hook throws. Attach checks, recover, validate, rebuild:
// partition_repair.cpp.
#include "shm/partition.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>

#include "shm/messages.hpp"
#include "shm/partition_journal.hpp"
#include "shm/partition_layout.hpp"

namespace shoal::shm {

namespace {

Partition::CrashHook g_crash_hook = nullptr;

// Journal bound. Taking a block writes ≤ 4 + 4 × 25 entries (pop, then up to 25 pushed split or
// alignment pieces); freeing one ≤ 4 × 25 + 4 (buddy merges, push); an index insert 1, an erase
// 1 + the probe run after it (short: load ≤ 1/2, keyed hash). An announce takes ≤ 2 blocks and
// frees ≤ 3: under ~600 entries. Expiry checkpoints (commits) before the journal passes half of
// kJournalCapacity, counting each pending free at its worst case.
constexpr uint32_t kMaxPendingFrees = 16;
constexpr uint32_t kRemovalsPerTx = 8;  // expiry commits after at most this many removals
constexpr uint32_t kWorstFreeWrites = 104;

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

[[noreturn]] void impossible(const char* what) {
  std::fprintf(stderr, "shoal: partition invariant broken: %s\n", what);
  std::abort();
}

uint32_t cap_of(const TorrentRecord& t, uint32_t list) {
  return t.cap_log2[list] ? 1u << t.cap_log2[list] : 0;
}

// ---- indexes (open addressing, linear probing, home = index_home(tag, slots)) -------------

// First slot of `tag`'s probe run whose entry satisfies `match`; kNil at an empty slot.
template <class Slot, class Match>
uint32_t probe(const Slot* tab, uint32_t slots, uint32_t tag, Match&& match) {
  for (uint32_t i = index_home(tag, slots), n = 0; n < slots; i = index_next(i, slots), ++n) {
    if (tab[i].tag == 0) return kNil;
    if (tab[i].tag == tag && match(tab[i])) return i;
  }
  return kNil;
}

uint32_t find_torrent_slot(const PartitionRegions& r, const uint8_t* info_hash, uint32_t tag) {
  return probe(r.tindex, r.tslots, tag, [&](const TorrentSlot& s) {
    return std::memcmp(r.pool[s.torrent].info_hash, info_hash, 20) == 0;
  });
}

uint32_t find_peer_slot(const PartitionRegions& r, uint32_t torrent, const PeerKey& k, uint32_t tag) {
  return probe(r.pindex, r.pslots, tag, [&](const PeerSlot& s) {
    uint32_t list = where_list(s.where);
    if (s.torrent != torrent || list >= kLists || list_family(list) != k.family) return false;
    uint8_t* rec = peer_at(r, r.pool[torrent].lists[list].block, list, where_pos(s.where));
    return std::memcmp(rec, k.addr, addr_len(k.family)) == 0 && tail_of(rec, list)->port_be == k.port_be;
  });
}

// The slot whose entry says (torrent, where); used to re-point a peer that swap-remove moved.
uint32_t find_peer_slot_at(const PartitionRegions& r, uint32_t tag, uint32_t torrent, uint32_t where) {
  return probe(r.pindex, r.pslots, tag,
               [&](const PeerSlot& s) { return s.torrent == torrent && s.where == where; });
}

template <class Slot>
void index_insert(UndoTx& tx, Slot* tab, uint32_t slots, const Slot& entry) {
  uint32_t i = index_home(entry.tag, slots);
  for (uint32_t n = 0; tab[i].tag != 0; i = index_next(i, slots))
    if (++n >= slots) impossible("index full");
  tx.write(&tab[i], &entry, sizeof(Slot));
}

// Backward-shift deletion: later entries of the probe run move into the hole when their home
// slot does not lie cyclically inside (hole, i]; no tombstones.
template <class Slot>
void index_erase(UndoTx& tx, Slot* tab, uint32_t slots, uint32_t hole) {
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

void set_free_bit(Op& op, uint32_t b, bool on) {
  uint8_t& m = free_map_byte(op.r, b);
  op.tx.set(m, uint8_t(on ? m | free_map_bit(b) : m & ~free_map_bit(b)));
}

void push_free(Op& op, uint32_t b, uint32_t cls) {
  uint32_t head = op.h.free_heads[cls];
  FreeBlock f{head, kNil, cls};
  op.tx.write(&free_block(op.r, b), &f, sizeof f);
  if (head != kNil) op.tx.set(free_block(op.r, head).prev, b);
  op.tx.set(op.h.free_heads[cls], b);
  set_free_bit(op, b, true);
}

void unlink_free(Op& op, uint32_t b) {
  const FreeBlock& f = free_block(op.r, b);
  if (f.prev == kNil)
    op.tx.set(op.h.free_heads[f.cls], f.next);
  else
    op.tx.set(free_block(op.r, f.prev).next, f.next);
  if (f.next != kNil) op.tx.set(free_block(op.r, f.next).prev, f.prev);
  set_free_bit(op, b, false);
}

uint32_t pop_free(Op& op, uint32_t cls) {
  uint32_t b = op.h.free_heads[cls];
  op.tx.save(&free_block(op.r, b), sizeof(FreeBlock));  // overwritten unjournaled after this
  unlink_free(op, b);
  return b;
}

// Takes 2^cls units at the next multiple of 2^cls; the alignment gap goes to the free lists.
uint32_t take_bump(Op& op, uint32_t cls) {
  uint64_t size = 1ull << cls;
  uint64_t at = (uint64_t(op.h.arena_bump) + size - 1) & ~(size - 1);
  if (at + size > op.h.arena_units) return kNil;
  for (uint32_t u = op.h.arena_bump; u < at; u += 1u << __builtin_ctz(u)) push_free(op, u, __builtin_ctz(u));
  op.tx.set(op.h.arena_bump, uint32_t(at + size));
  return uint32_t(at);
}

// A block of 2^cls units, or kNil (and nothing written) when the arena has no room.
uint32_t block_take(Op& op, uint32_t cls) {
  if (op.h.free_heads[cls] != kNil) return pop_free(op, cls);
  uint32_t b = take_bump(op, cls);
  if (b != kNil) return b;
  for (uint32_t big = cls + 1; big < kSizeClasses; ++big) {
    if (op.h.free_heads[big] == kNil) continue;
    b = pop_free(op, big);
    for (uint32_t c = big; c-- > cls;) push_free(op, b + (1u << c), c);  // keep the low part
    return b;
  }
  return kNil;
}

// Frees a block, merging it with its buddy while the buddy is a free block of the same class.
void release_block(Op& op, uint32_t b, uint32_t cls) {
  for (; cls + 1 < kSizeClasses; ++cls) {
    uint32_t buddy = b ^ (1u << cls);
    if (buddy >= op.h.arena_bump || !starts_free_block(op.r, buddy) || free_block(op.r, buddy).cls != cls)
      break;
    unlink_free(op, buddy);
    b = std::min(b, buddy);
  }
  push_free(op, b, cls);
}

void release_at_commit(Op& op, uint32_t b, uint32_t cls) {
  if (op.frees == kMaxPendingFrees) impossible("too many frees in one transaction");
  op.pending_block[op.frees] = b;
  op.pending_class[op.frees] = uint8_t(cls);
  ++op.frees;
}

void commit(Op& op) {
  for (uint32_t i = 0; i < op.frees; ++i) release_block(op, op.pending_block[i], op.pending_class[i]);
  op.frees = 0;
  op.tx.commit();
}

void abort_op(Op& op) {
  op.frees = 0;
  op.tx.abort();
}

// ---- peer lists --------------------------------------------------------------------------

void count_peer(Op& op, uint32_t list, int delta) {
  uint32_t& role = (list & 1) ? op.h.seeders : op.h.leechers;
  uint32_t& fam = list_family(list) == 4 ? op.h.peers_v4 : op.h.peers_v6;
  op.tx.set(role, uint32_t(role + delta));
  op.tx.set(fam, uint32_t(fam + delta));
  if (list == kV6Seeders) op.tx.set(op.h.seeders_v6, uint32_t(op.h.seeders_v6 + delta));
}

// Moves a list into a new block of 2^cap_log2 peers. False (nothing written) if no room.
bool list_rehome(Op& op, uint32_t t, uint32_t list, uint32_t cap_log2) {
  TorrentRecord& tr = op.r.pool[t];
  uint8_t fam = list_family(list);
  uint32_t b = block_take(op, block_class(fam, cap_log2));
  if (b == kNil) return false;
  PeerListRef& pl = tr.lists[list];
  if (pl.count > 0)  // fresh block: unjournaled copy (see file comment)
    std::memcpy(peer_at(op.r, b, list, 0), peer_at(op.r, pl.block, list, 0),
                size_t(pl.count) * peer_stride(fam));
  if (pl.block != kNil) release_at_commit(op, pl.block, block_class(fam, tr.cap_log2[list]));
  op.tx.set(pl.block, b);
  op.tx.set(tr.cap_log2[list], uint8_t(cap_log2));
  return true;
}

// Appends `rec` (a PeerV4/PeerV6 image) to a list and indexes it under `tag`. Returns its
// position, or kNil when the arena is full (then nothing was written).
uint32_t list_push(Op& op, uint32_t t, uint32_t list, const uint8_t* rec, uint32_t tag) {
  TorrentRecord& tr = op.r.pool[t];
  uint32_t n = tr.lists[list].count;
  if (n == cap_of(tr, list)) {
    uint32_t lg = tr.cap_log2[list] ? tr.cap_log2[list] + 1u : kMinListCapLog2;
    if (!list_rehome(op, t, list, lg)) return kNil;
  }
  op.tx.write(peer_at(op.r, tr.lists[list].block, list, n), rec, peer_stride(list_family(list)));
  op.tx.set(tr.lists[list].count, n + 1);
  index_insert(op.tx, op.r.pindex, op.r.pslots, PeerSlot{tag, t, pack_where(list, n)});
  count_peer(op, list, +1);
  return n;
}

uint32_t record_tag(const Op& op, uint32_t t, uint32_t list, const uint8_t* rec) {
  uint8_t fam = list_family(list);
  return peer_tag(op.h.hash_seed, t, fam, rec,
                  reinterpret_cast<const PeerTail*>(rec + addr_len(fam))->port_be);
}

// Swap-remove of the peer at `pos` whose index slot is `slot`; frees or shrinks the block.
void list_remove(Op& op, uint32_t t, uint32_t list, uint32_t pos, uint32_t slot) {
  index_erase(op.tx, op.r.pindex, op.r.pslots, slot);
  TorrentRecord& tr = op.r.pool[t];
  uint32_t last = tr.lists[list].count - 1;
  if (pos != last) {
    uint8_t* from = peer_at(op.r, tr.lists[list].block, list, last);
    uint32_t moved = find_peer_slot_at(op.r, record_tag(op, t, list, from), t, pack_where(list, last));
    if (moved == kNil) impossible("peer not indexed");
    op.tx.write(peer_at(op.r, tr.lists[list].block, list, pos), from, peer_stride(list_family(list)));
    op.tx.set(op.r.pindex[moved].where, pack_where(list, pos));
  }
  op.tx.set(tr.lists[list].count, last);
  count_peer(op, list, -1);
  if (last == 0) {
    release_at_commit(op, tr.lists[list].block, block_class(list_family(list), tr.cap_log2[list]));
    op.tx.set(tr.lists[list].block, kNil);
    op.tx.set(tr.cap_log2[list], uint8_t(0));
  } else if (tr.cap_log2[list] > kMinListCapLog2 && last <= cap_of(tr, list) / 4) {
    list_rehome(op, t, list, tr.cap_log2[list] - 1u);  // best effort: stays put if no room
  }
}

// ---- torrents ----------------------------------------------------------------------------

uint32_t create_torrent(Op& op, const uint8_t* info_hash, uint32_t tag) {
  uint32_t t = op.h.torrent_free;
  if (t != kNil) {
    op.tx.set(op.h.torrent_free, op.r.pool[t].completed);  // free slots link through `completed`
  } else if (op.h.torrent_high < op.h.max_torrents) {
    t = op.h.torrent_high;
    op.tx.set(op.h.torrent_high, t + 1);
  } else {
    return kNil;
  }
  TorrentRecord rec{};
  std::memcpy(rec.info_hash, info_hash, 20);
  for (PeerListRef& l : rec.lists) l = {kNil, 0};
  rec.in_use = 1;
  op.tx.write(&op.r.pool[t], &rec, sizeof rec);
  index_insert(op.tx, op.r.tindex, op.r.tslots, TorrentSlot{tag, t});
  op.tx.set(op.h.torrents, op.h.torrents + 1);
  return t;
}

void remove_torrent(Op& op, uint32_t t) {
  TorrentRecord& tr = op.r.pool[t];
  uint32_t slot = find_torrent_slot(op.r, tr.info_hash, torrent_tag(op.h.hash_seed, tr.info_hash));
  if (slot == kNil) impossible("torrent not indexed");
  index_erase(op.tx, op.r.tindex, op.r.tslots, slot);
  op.tx.set(op.h.completed, op.h.completed - tr.completed);
  op.tx.set(op.h.torrents, op.h.torrents - 1);
  op.tx.set(tr.in_use, uint8_t(0));
  op.tx.set(tr.completed, op.h.torrent_free);
  op.tx.set(op.h.torrent_free, t);
}

void count_completed(Op& op, uint32_t t) {
  op.tx.set(op.r.pool[t].completed, op.r.pool[t].completed + 1);
  op.tx.set(op.h.completed, op.h.completed + 1);
}

void fill_counts(const PartitionRegions& r, uint32_t t, uint32_t& seeders, uint32_t& leechers,
                 uint32_t& completed) {
  if (t == kNil) return;
  const TorrentRecord& tr = r.pool[t];
  seeders = tr.lists[kV4Seeders].count + tr.lists[kV6Seeders].count;
  leechers = tr.lists[kV4Leechers].count + tr.lists[kV6Leechers].count;
  completed = tr.completed;
}

// ---- announce ----------------------------------------------------------------------------

// Inserts or refreshes the asker; moves it between lists when its seeder status changed;
// counts event=completed once per peer. {kNil, kNil} when the tracker is full.
Placed upsert_peer(Op& op, uint32_t t, const AnnounceInput& in, const PeerKey& k) {
  uint32_t tag = peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be);
  uint32_t slot = find_peer_slot(op.r, t, k, tag);
  uint32_t want = list_of(k.family, in.seeder);
  uint32_t stride = peer_stride(k.family);
  uint8_t rec[32] = {};
  Placed old{kNil, kNil};
  if (slot != kNil) {
    old = {where_list(op.r.pindex[slot].where), where_pos(op.r.pindex[slot].where)};
    std::memcpy(rec, peer_at(op.r, op.r.pool[t].lists[old.list].block, old.list, old.pos), stride);
  } else if (op.h.peers_v4 + op.h.peers_v6 >= op.h.max_peers) {
    return {kNil, kNil};
  } else {
    std::memcpy(rec, k.addr, addr_len(k.family));
  }
  PeerTail* tail = reinterpret_cast<PeerTail*>(rec + addr_len(k.family));
  bool counted = tail->flags & kPeerCompletedCounted;
  // A completion counts once per peer, and only from a peer that has the whole torrent: an
  // event=completed with left > 0 is a leecher's claim and counts nothing (issue 12).
  bool count_now = in.event == uint8_t(Event::completed) && in.seeder && !counted;
  tail->port_be = k.port_be;
  // A representative stays one while it leeches (policy tiered); completing ends it.
  uint8_t rep = in.seeder ? 0 : uint8_t(tail->flags & kPeerRepresentative);
  tail->flags = uint8_t((in.seeder ? kPeerSeeder : 0) | (counted || count_now ? kPeerCompletedCounted : 0) | rep);
  tail->topology_group = in.topology_group;
  tail->progress = in.progress;
  tail->last_seen = in.now;
  if (count_now) count_completed(op, t);
  if (old.list == want) {
    op.tx.write(tail_of(peer_at(op.r, op.r.pool[t].lists[want].block, want, old.pos), want), tail,
                sizeof *tail);
    return old;
  }
  if (old.list != kNil) list_remove(op, t, old.list, old.pos, slot);
  uint32_t pos = list_push(op, t, want, rec, tag);
  return pos == kNil ? Placed{kNil, kNil} : Placed{want, pos};
}

// The candidates of a reply as a PeerView (shm/peer_view.hpp), for the selection policy: the
// leechers of the asker's family, then its seeders unless the asker is a seeder.
PeerView candidates(const PartitionRegions& r, uint32_t t, Placed at) {
  const TorrentRecord& tr = r.pool[t];
  uint8_t fam = list_family(at.list);
  bool seeder = at.list & 1;
  uint32_t a = list_of(fam, false), b = list_of(fam, true);
  PeerView v;
  v.family = fam;
  v.stride = peer_stride(fam);
  v.list_a = peer_at(r, tr.lists[a].block, a, 0);
  v.list_b = peer_at(r, tr.lists[b].block, b, 0);
  v.na = tr.lists[a].count;
  v.n = v.na + (seeder ? 0 : tr.lists[b].count);
  v.self = seeder ? PeerView::kNoSelf : at.pos;  // a leecher asker sits in list a
  return v;
}

PeerKey key_of(const AnnounceInput& in) {
  PeerKey k{};
  k.family = in.family;
  std::memcpy(k.addr, in.addr, addr_len(in.family));
  k.port_be = in.port;
  return k;
}

AnnounceResult announce_stopped(Op& op, uint32_t t, const PeerKey& k, AnnounceResult res) {
  if (t == kNil) return res;  // unknown torrent: nothing stored
  uint32_t slot = find_peer_slot(op.r, t, k, peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be));
  if (slot != kNil) {
    const PeerSlot s = op.r.pindex[slot];
    list_remove(op, t, where_list(s.where), where_pos(s.where), slot);
    commit(op);
  }
  fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
  return res;
}

// ---- expiry ------------------------------------------------------------------------------

struct Sweep {
  uint32_t torrent, list, pos;  // cursor: next peer to examine
  uint32_t examined, in_tx;     // peers examined this step; removals since the last commit
};

// A transaction of removals commits after kRemovalsPerTx of them, or before the journal could
// overflow (each removal may free blocks: kWorstFreeWrites writes each).
bool removals_due(const Op& op, uint32_t in_tx) {
  return in_tx >= kRemovalsPerTx || op.tx.pending() + op.frees * kWorstFreeWrites > kJournalCapacity / 2;
}

bool checkpoint_due(const Op& op, const Sweep& s) { return removals_due(op, s.in_tx); }

void sweep_checkpoint(Op& op, Sweep& s) {
  op.tx.set(op.h.sweep_torrent, s.torrent);
  op.tx.set(op.h.sweep_list, s.list);
  op.tx.set(op.h.sweep_pos, s.pos);
  commit(op);
  s.in_tx = 0;
}

// Examines the lists of torrent s.torrent from the cursor on. False when the budget ran out.
bool sweep_torrent(Op& op, Sweep& s, uint32_t now, uint32_t ttl, uint32_t budget, ExpireResult& res) {
  TorrentRecord& tr = op.r.pool[s.torrent];
  for (; s.list < kLists; ++s.list, s.pos = 0) {
    s.pos = std::min(s.pos, tr.lists[s.list].count);
    while (s.pos < tr.lists[s.list].count) {
      if (s.examined >= budget) return false;
      ++s.examined;
      uint8_t* rec = peer_at(op.r, tr.lists[s.list].block, s.list, s.pos);
      if (uint64_t(tail_of(rec, s.list)->last_seen) + ttl >= now) {
        ++s.pos;
        continue;
      }
      uint32_t slot = find_peer_slot_at(op.r, record_tag(op, s.torrent, s.list, rec), s.torrent,
                                        pack_where(s.list, s.pos));
      if (slot == kNil) impossible("expired peer not indexed");
      list_remove(op, s.torrent, s.list, s.pos, slot);  // the last peer moved into s.pos
      ++res.peers_removed;
      ++s.in_tx;
      if (checkpoint_due(op, s)) sweep_checkpoint(op, s);
    }
  }
  return true;
}

bool torrent_empty(const TorrentRecord& tr) {
  for (const PeerListRef& l : tr.lists)
    if (l.count) return false;
  return true;
}

}  // namespace

// ---- public API --------------------------------------------------------------------------

size_t partition_segment_bytes(const PartitionCapacity& cap) {
  return size_t(partition_geometry(cap.max_torrents, cap.max_peers).total_bytes);
}

void partition_format(void* segment_base, size_t segment_size, const PartitionCapacity& cap) {
  PartitionGeometry g = partition_geometry(cap.max_torrents, cap.max_peers);
  if (segment_base == nullptr || segment_size < g.total_bytes || g.total_bytes > 0xffffffffull)
    throw std::invalid_argument("partition_format: segment too small for its capacity (or > 4 GiB)");
  auto* l = static_cast<PartitionLayout*>(segment_base);
  if (l->segment.magic != kMagic || l->segment.kind != uint32_t(SegmentKind::partition))
    throw std::invalid_argument("partition_format: not a partition segment");
  std::random_device rd;
  PartitionHeader h{};
  h.segment_bytes = segment_size;
  h.max_torrents = cap.max_torrents;
  h.max_peers = cap.max_peers;
  h.torrent_slots = g.torrent_slots;
  h.peer_slots = g.peer_slots;
  h.arena_units = g.arena_units;
  h.torrent_index_off = uint32_t(g.torrent_index_off);
  h.torrent_pool_off = uint32_t(g.torrent_pool_off);
  h.peer_index_off = uint32_t(g.peer_index_off);
  h.arena_off = uint32_t(g.arena_off);
  h.free_map_off = uint32_t(g.free_map_off);
  h.hash_seed = uint64_t(rd()) << 32 | rd();
  h.rng_state = (uint64_t(rd()) << 32 | rd()) | 1;
  h.torrent_free = kNil;
  for (uint32_t& f : h.free_heads) f = kNil;
  std::memcpy(&l->header, &h, sizeof h);  // format is still 0
  std::memset(&l->journal, 0, sizeof l->journal);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  std::atomic_ref<uint64_t>(l->header.format).store(kPartitionFormat, std::memory_order_release);
}

void Partition::set_crash_hook_for_test(CrashHook hook) { g_crash_hook = hook; }

void Partition::prefetch_torrent(const uint8_t* info_hash) const {
  PartitionRegions r = partition_regions(p_);
  __builtin_prefetch(&r.tindex[index_home(torrent_tag(r.h->hash_seed, info_hash), r.tslots)]);
}

void Partition::prefetch_peer(const uint8_t* info_hash, uint8_t family, const uint8_t* addr,
                              uint16_t port_be) const {
  PartitionRegions r = partition_regions(p_);
  uint32_t tag = torrent_tag(r.h->hash_seed, info_hash);
  const TorrentSlot& s = r.tindex[index_home(tag, r.tslots)];  // the usual case: at its home
  if (s.tag != tag || s.torrent >= r.h->max_torrents) return;
  __builtin_prefetch(&r.pool[s.torrent]);
  if (family != 4 && family != 6) return;
  const PeerSlot* ps = &r.pindex[index_home(peer_tag(r.h->hash_seed, s.torrent, family, addr, port_be), r.pslots)];
  __builtin_prefetch(ps);
  __builtin_prefetch(ps + 1);  // a 12-byte slot may straddle two cache lines
}

AnnounceResult Partition::announce(const AnnounceInput& in, uint8_t* peers_out, const PeerPolicy& policy) {
  AnnounceResult res{};
  if (in.family != 4 && in.family != 6) {
    res.status = uint8_t(ResponseStatus::bad_request);
    return res;
  }
  Op op(p_);
  PeerKey k = key_of(in);
  uint32_t ttag = torrent_tag(op.h.hash_seed, in.info_hash);
  uint32_t tslot = find_torrent_slot(op.r, in.info_hash, ttag);
  uint32_t t = tslot == kNil ? kNil : op.r.tindex[tslot].torrent;
  if (in.event == uint8_t(Event::stopped)) return announce_stopped(op, t, k, res);
  Placed at{kNil, kNil};
  bool room_for_new = op.h.peers_v4 + op.h.peers_v6 < new_torrent_peer_limit_;  // headroom for existing swarms
  if (t != kNil || (room_for_new && (t = create_torrent(op, in.info_hash, ttag)) != kNil))
    at = upsert_peer(op, t, in, k);
  if (at.list == kNil) {  // tracker full: undo whatever this announce wrote
    abort_op(op);
    res.status = uint8_t(ResponseStatus::tracker_full);
    fill_counts(op.r, tslot == kNil ? kNil : t, res.seeders, res.leechers, res.completed);
    return res;
  }
  commit(op);
  fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
  bool elect = !in.seeder && policy.elects();
  if (in.numwant == 0 && !elect) return res;
  PeerView view = candidates(op.r, t, at);
  Asker asker{in.family, in.seeder, in.topology_group, false};
  if (elect) {  // the policy may elect the asker (tiered); the flag is stored with the peer
    uint8_t* rec = peer_at(op.r, op.r.pool[t].lists[at.list].block, at.list, at.pos);
    PeerTail* tail = tail_of(rec, at.list);
    asker.representative = tail->flags & kPeerRepresentative;
    bool elected = policy.elect(view, asker);
    if (elected != asker.representative) {
      op.tx.set(tail->flags, uint8_t(elected ? tail->flags | kPeerRepresentative : tail->flags & ~kPeerRepresentative));
      commit(op);
      asker.representative = elected;
    }
  }
  if (in.numwant != 0 && peers_out != nullptr)
    res.peer_count = policy.select(view, asker, in.numwant, &op.h.rng_state, peers_out);
  return res;
}

ScrapeResult Partition::scrape(const uint8_t* info_hash) const {
  PartitionRegions r = partition_regions(p_);
  ScrapeResult res{};
  uint32_t slot = find_torrent_slot(r, info_hash, torrent_tag(r.h->hash_seed, info_hash));
  if (slot != kNil) fill_counts(r, r.tindex[slot].torrent, res.seeders, res.leechers, res.completed);
  return res;
}

// Budget: at most `budget` peers examined and at most `budget` torrent slots visited per step
// (the second bound keeps a sweep over many free slots short). The crash hook numbers writes
// across all transactions of the step.
ExpireResult Partition::expire_step(uint32_t now, uint32_t peer_ttl, uint32_t budget) {
  ExpireResult res{};
  Op op(p_);
  Sweep s{op.h.sweep_torrent, op.h.sweep_list, op.h.sweep_pos, 0, 0};
  for (uint32_t visited = 0; visited < budget; ++visited) {
    if (s.torrent >= op.h.torrent_high) {
      s = {0, 0, 0, s.examined, s.in_tx};
      res.wrapped = true;
      break;
    }
    TorrentRecord& tr = op.r.pool[s.torrent];
    if (tr.in_use && !sweep_torrent(op, s, now, peer_ttl, budget, res)) break;
    if (tr.in_use && torrent_empty(tr)) {
      remove_torrent(op, s.torrent);
      ++res.torrents_removed;
      ++s.in_tx;
    }
    s = {s.torrent + 1, 0, 0, s.examined, s.in_tx};
    if (checkpoint_due(op, s)) sweep_checkpoint(op, s);
  }
  sweep_checkpoint(op, s);
  return res;
}

uint32_t Partition::drop_torrent(const uint8_t* info_hash) {
  Op op(p_);
  uint32_t slot = find_torrent_slot(op.r, info_hash, torrent_tag(op.h.hash_seed, info_hash));
  if (slot == kNil) return 0;
  uint32_t t = op.r.tindex[slot].torrent, removed = 0, in_tx = 0;
  TorrentRecord& tr = op.r.pool[t];
  for (uint32_t list = 0; list < kLists; ++list) {
    while (tr.lists[list].count > 0) {  // from the end: nothing moves
      uint32_t pos = tr.lists[list].count - 1;
      uint8_t* rec = peer_at(op.r, tr.lists[list].block, list, pos);
      uint32_t ps = find_peer_slot_at(op.r, record_tag(op, t, list, rec), t, pack_where(list, pos));
      if (ps == kNil) impossible("dropped peer not indexed");
      list_remove(op, t, list, pos, ps);
      ++removed;
      if (removals_due(op, ++in_tx)) {
        commit(op);
        in_tx = 0;
      }
    }
  }
  remove_torrent(op, t);
  commit(op);
  return removed;
}

PartitionTotals Partition::totals() const {
  const PartitionHeader& h = p_->header;
  return {h.torrents, h.seeders, h.leechers, h.peers_v4, h.peers_v6, h.completed, h.seeders_v6};
}

void Partition::visit_peers(const uint8_t* info_hash, PeerVisitor& v) const {
  PartitionRegions r = partition_regions(p_);
  uint32_t slot = find_torrent_slot(r, info_hash, torrent_tag(r.h->hash_seed, info_hash));
  if (slot == kNil) return;
  const TorrentRecord& tr = r.pool[r.tindex[slot].torrent];
  for (uint32_t list = 0; list < kLists; ++list) {
    for (uint32_t pos = 0; pos < tr.lists[list].count; ++pos) {
      uint8_t* rec = peer_at(r, tr.lists[list].block, list, pos);
      uint8_t addr[16] = {};
      std::memcpy(addr, rec, addr_len(list_family(list)));
      const PeerTail* tail = tail_of(rec, list);
      v.visit({list_family(list), addr, tail->port_be, bool(list & 1), bool(tail->flags & kPeerRepresentative),
               tail->topology_group, tail->progress});
    }
  }
}

}  // namespace shoal::shm
