// shm/partition_repair.cpp — attaching a partition (header checks), Partition::recover/validate,
// and the rebuild of derived tables (indexes, free lists, totals) from the torrent records.
// Runs in the swarm worker that attaches a partition, before it serves (recover), and in tests
// (validate). Touches only that partition segment. Not hot path: it allocates process memory
// (bitmaps over the arena and the pool) freely. Rebuild writes without the journal; it works
// from the records alone, so a rebuild killed half-way is redone by the next recover.
#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "shm/partition.hpp"
#include "shm/partition_journal.hpp"
#include "shm/partition_layout.hpp"
#include "shm/partition_probe.hpp"

namespace shoal::shm {

namespace {

using namespace probes;

constexpr uint64_t kRngFallback = 0x9e3779b97f4a7c15ull;

// ---- validate ----------------------------------------------------------------------------

struct Checker {
  PartitionRegions r;
  const PartitionHeader& h;
  std::vector<uint8_t> owner;  // per arena unit: 0 unclaimed, 1 live list block, 2 free block
  std::string problem;

  bool fail(std::string msg) {
    if (problem.empty()) problem = std::move(msg);
    return false;
  }
  bool claim(uint32_t block, uint64_t units, uint8_t who, const char* what) {
    if (block == kNil || block + units > h.arena_bump)
      return fail(cat(what, " block ", block, "+", units, " outside the arena in use (", h.arena_bump, ")"));
    for (uint64_t u = block; u < block + units; ++u) {
      if (owner[u]) return fail(cat(what, " block ", block, " overlaps another block at unit ", u));
      owner[u] = who;
    }
    return true;
  }
};

bool check_header(Checker& c) {
  const PartitionHeader& h = c.h;
  if (reinterpret_cast<const PartitionLayout*>(c.r.base)->journal.count != 0)
    return c.fail("journal holds an unfinished transaction");
  if (h.torrent_high > h.max_torrents || h.arena_bump > h.arena_units || h.torrents > h.max_torrents)
    return c.fail(cat("header out of range: torrent_high ", h.torrent_high, ", arena_bump ", h.arena_bump));
  if (h.sweep_torrent > h.torrent_high || h.sweep_list >= kLists)
    return c.fail(cat("sweep cursor out of range: torrent ", h.sweep_torrent, " list ", h.sweep_list));
  if (h.torrent_free != kNil && h.torrent_free >= h.torrent_high)
    return c.fail(cat("torrent free list head ", h.torrent_free, " out of range"));
  return true;
}

bool check_list(Checker& c, uint32_t t, uint32_t list) {
  const TorrentRecord& tr = c.r.pool[t];
  const PeerListRef pl = list_ref(tr, list);
  uint32_t cls = pl.size;
  if (pl.count == 0) {
    if (pl.block != kNil || cls != 0)
      return c.fail(cat("torrent ", t, " list ", list, ": empty list keeps a block"));
    return true;
  }
  if (!valid_list_size(cls) || pl.count > list_capacity(list_family(list), cls))
    return c.fail(cat("torrent ", t, " list ", list, ": count ", pl.count, " > capacity of size ", cls));
  uint64_t units = list_units(cls);
  if (pl.block % list_align(cls) != 0)
    return c.fail(cat("torrent ", t, " list ", list, ": block ", pl.block, " misaligned"));
  if (!c.claim(pl.block, units, 1, "peer list")) return false;
  for (uint32_t pos = 0; pos < pl.count; ++pos) {
    uint8_t flags = peer_flags(*tail_of(peer_at(c.r, pl.block, list, pos), list));
    if ((flags & ~unsigned(kPeerKnownFlags)) != 0 || (flags & kPeerSeeder) != (list & 1) || ((flags & kPeerRepresentative) && (list & 1)))
      return c.fail(cat("torrent ", t, " list ", list, " peer ", pos, ": bad flags ", unsigned(flags)));
  }
  return true;
}

// Pool slots from torrent_high on were never handed out: nothing reads them (and their pages,
// never touched, cost no memory), so neither does the check.
bool check_records(Checker& c) {
  for (uint32_t t = 0; t < c.h.torrent_high; ++t) {
    if (!torrent_live(c.r.pool[t])) continue;
    for (uint32_t list = 0; list < kLists; ++list)
      if (!check_list(c, t, list)) return false;
  }
  return true;
}

// Free lists: doubly linked, aligned buddies of their class, each start marked in the free map.
bool check_free_blocks(Checker& c) {
  uint64_t listed = 0, marked = 0;
  for (uint32_t cls = 0; cls < kSizeClasses; ++cls) {
    uint32_t prev = kNil;
    for (uint32_t b = c.h.free_heads[cls]; b != kNil; prev = b, b = free_block(c.r, b).next) {
      if (cls == 0 || b % (1u << cls) != 0 || b >= c.h.arena_bump)
        return c.fail(cat("free list ", cls, ": block ", b, " misaligned or out of range"));
      const FreeBlock& f = free_block(c.r, b);
      if (f.prev != prev || f.cls != cls || !starts_free_block(c.r, b))
        return c.fail(cat("free list ", cls, ": block ", b, " has bad links, class or map bit"));
      if (!c.claim(b, 1ull << cls, 2, "free")) return false;  // a cycle shows up as an overlap
      ++listed;
    }
  }
  for (uint32_t u = 0; u < c.h.arena_bump; ++u)
    if (!c.owner[u]) return c.fail(cat("arena unit ", u, " is neither in a list nor free (leak)"));
  for (uint32_t u = 0; u < c.h.arena_units; u += 2) marked += starts_free_block(c.r, u);
  if (marked != listed) return c.fail(cat("free map marks ", marked, " blocks, free lists hold ", listed));
  return true;
}

bool check_torrent_free_list(Checker& c) {
  std::vector<uint8_t> on_list(c.h.torrent_high, 0);
  uint32_t free_count = 0, live = 0;
  for (uint32_t t = c.h.torrent_free; t != kNil; t = c.r.pool[t].completed) {
    if (t >= c.h.torrent_high || on_list[t] || torrent_live(c.r.pool[t]))
      return c.fail(cat("torrent free list broken at slot ", t));
    on_list[t] = 1;
    ++free_count;
  }
  for (uint32_t t = 0; t < c.h.torrent_high; ++t) live += torrent_live(c.r.pool[t]);
  if (free_count + live != c.h.torrent_high)
    return c.fail(cat("torrent slots leak: ", live, " live + ", free_count, " free != ", c.h.torrent_high));
  return true;
}

bool check_torrent_index(Checker& c) {
  std::vector<uint8_t> indexed(c.h.torrent_high, 0);
  for (uint32_t i = 0; i < c.r.tslots; ++i) {
    const TorrentSlot& s = c.r.tindex[i];
    if (s.tag == 0) continue;
    if (s.torrent >= c.h.torrent_high || !torrent_live(c.r.pool[s.torrent]))
      return c.fail(cat("torrent index slot ", i, " points at dead torrent ", s.torrent));
    const uint8_t* ih = c.r.pool[s.torrent].info_hash;
    uint8_t kind = torrent_kind(c.r.pool[s.torrent]);
    if (s.tag != torrent_tag(c.h.hash_seed, ih, kind) || probe_torrent(c.r, ih, s.tag, kind) != i || indexed[s.torrent]++)
      return c.fail(cat("torrent index slot ", i, " (torrent ", s.torrent, ") unreachable or duplicate"));
  }
  for (uint32_t t = 0; t < c.h.torrent_high; ++t)
    if (torrent_live(c.r.pool[t]) && !indexed[t]) return c.fail(cat("torrent ", t, " is not indexed"));
  return true;
}

bool check_peer_index(Checker& c) {
  std::vector<uint8_t> indexed(size_t(c.h.arena_units) * (kArenaUnit / 4), 0);  // by record_word
  for (uint32_t i = 0; i < c.r.pslots; ++i) {
    const PeerSlot& s = c.r.pindex[i];
    if (s.key() == 0) continue;
    uint32_t t = slot_torrent(s);
    uint8_t* rec = live_peer(c.r, t, s.where());
    if (!rec) return c.fail(cat("peer index slot ", i, " points at no live peer"));
    uint32_t list = where_list(s.where()), tag = tag_of_record(c.r, t, list, rec);
    uint16_t port = tail_of(rec, list)->port_be;
    if (s.key() != peer_slot_key(t) || probe_peer(c.r, t, list_family(list), rec, port, tag) != i)
      return c.fail(cat("peer index slot ", i, ": wrong tag, unreachable or duplicate key"));
    if (indexed[record_word(c.r, rec)]++) return c.fail(cat("peer index slot ", i, ": peer indexed twice"));
  }
  for (uint32_t t = 0; t < c.h.torrent_high; ++t) {
    if (!torrent_live(c.r.pool[t])) continue;
    for (uint32_t list = 0; list < kLists; ++list) {
      const PeerListRef pl = list_ref(c.r.pool[t], list);
      for (uint32_t pos = 0; pos < pl.count; ++pos)
        if (!indexed[record_word(c.r, peer_at(c.r, pl.block, list, pos))])
          return c.fail(cat("torrent ", t, " list ", list, " peer ", pos, " is not indexed"));
    }
  }
  return true;
}

bool check_totals(Checker& c) {
  uint64_t n[kLists] = {}, ws[kLists] = {}, torrents = 0, completed = 0;
  for (uint32_t t = 0; t < c.h.torrent_high; ++t) {
    const TorrentRecord& tr = c.r.pool[t];
    if (!torrent_live(tr)) continue;
    ++torrents;
    completed += tr.completed;
    for (uint32_t list = 0; list < kLists; ++list) (torrent_kind(tr) == kTorrentWebTorrent ? ws : n)[list] += list_count(tr, list);
  }
  const PartitionHeader& h = c.h;
  uint64_t ws_peers = ws[0] + ws[1] + ws[2] + ws[3];
  if (ws[0] + ws[1]) return c.fail("a WebTorrent torrent holds IPv4-sized records");
  if (ws_peers != h.peers_ws || ws[3] != h.seeders_ws)
    return c.fail(cat("WebTorrent totals disagree with records: peers ", h.peers_ws, "/", ws_peers));
  n[2] += ws[2];  // seeders/leechers count every family
  n[3] += ws[3];
  if (torrents != h.torrents || completed != h.completed || n[0] + n[2] != h.leechers ||
      n[1] + n[3] != h.seeders || n[0] + n[1] != h.peers_v4 || n[2] + n[3] - ws_peers != h.peers_v6 ||
      n[3] - ws[3] != h.seeders_v6)
    return c.fail(cat("totals disagree with records: torrents ", h.torrents, "/", torrents, ", seeders ",
                      h.seeders, "/", n[1] + n[3], ", leechers ", h.leechers, "/", n[0] + n[2]));
  if (h.peers_v4 + uint64_t(h.peers_v6) + h.peers_ws > h.max_peers) return c.fail("more peers than max_peers");
  return true;
}

// ---- rebuild -----------------------------------------------------------------------------

// Drops a list whose block is out of range or overlaps an earlier one; claims its units.
void sanitize_list(const PartitionRegions& r, std::vector<uint8_t>& used, TorrentRecord& tr, uint32_t list,
                   uint32_t& dropped) {
  PeerListRef pl = list_ref(tr, list);
  uint32_t cls = pl.size;
  bool ok = pl.count > 0 && valid_list_size(cls) && pl.count <= list_capacity(list_family(list), cls) &&
            pl.block != kNil;
  uint64_t units = ok ? list_units(cls) : 0;
  ok = ok && pl.block % list_align(cls) == 0 && pl.block + units <= r.h->arena_units;
  for (uint64_t u = pl.block; ok && u < pl.block + units; ++u) ok = !used[u];
  if (!ok) {
    dropped += pl.count;
    if (tr.lists[list].bits() != kListMarker) tr.lists[list] = make_list_word(kNil, 0, 0);
    return;
  }
  for (uint64_t u = pl.block; u < pl.block + units; ++u) used[u] = 1;
}

// Indexes every peer of a list and fixes its flags; drops peers whose key is already indexed
// and peers beyond max_peers (`kept` counts the peers indexed so far).
void reindex_list(const PartitionRegions& r, std::vector<uint8_t>& used, uint32_t t, uint32_t list,
                  uint32_t& kept, uint32_t& dropped) {
  TorrentRecord& tr = r.pool[t];
  PeerListRef pl = list_ref(tr, list);
  if (pl.count == 0) return;  // sanitize_list left no block (or the kind marker) here
  uint32_t stride = peer_stride(list_family(list));
  for (uint32_t pos = 0; pos < pl.count;) {
    uint8_t* rec = peer_at(r, pl.block, list, pos);
    PeerTail* tail = tail_of(rec, list);
    uint8_t flags = peer_flags(*tail);
    tail->state = with_flags(tail->state, uint8_t((flags & (kPeerCompletedCounted | kPeerRemote)) |
                                                  ((list & 1) ? kPeerSeeder : flags & kPeerRepresentative)));
    uint32_t tag = tag_of_record(r, t, list, rec);
    if (kept >= r.h->max_peers || probe_peer(r, t, list_family(list), rec, tail->port_be, tag) != kNil) {
      std::memmove(rec, peer_at(r, pl.block, list, pl.count - 1), stride);
      --pl.count;
      ++dropped;
      continue;
    }
    uint32_t i = index_home(tag, r.pslots);
    while (r.pindex[i].key() != 0) i = index_next(i, r.pslots);
    r.pindex[i] = make_peer_slot(t, pack_where(list, pos));
    ++pos;
    ++kept;
  }
  if (pl.count == 0) {
    uint64_t units = list_units(pl.size);
    for (uint64_t u = pl.block; u < pl.block + units; ++u) used[u] = 0;
    tr.lists[list] = make_list_word(kNil, 0, 0);
  } else {
    tr.lists[list] = make_list_word(pl.block, pl.size, pl.count);
  }
}

// Keeps live torrents with valid flags and distinct info_hashes; rebuilds the torrent index.
void rebuild_torrents(const PartitionRegions& r, uint32_t& dropped_torrents) {
  PartitionHeader& h = *r.h;
  if (h.torrent_high > h.max_torrents) h.torrent_high = h.max_torrents;
  std::memset(r.tindex, 0, sizeof(TorrentSlot) * size_t(r.tslots));
  for (uint32_t t = 0; t < h.torrent_high; ++t) {  // create_torrent writes a whole record past it
    TorrentRecord& tr = r.pool[t];
    if (!torrent_live(tr)) continue;
    uint8_t kind = torrent_kind(tr);
    if (kind == kTorrentWebTorrent) tr.lists[kV4Leechers] = make_list_word(kNil, 0, 0);
    uint32_t tag = torrent_tag(h.hash_seed, tr.info_hash, kind);
    if (probe_torrent(r, tr.info_hash, tag, kind) != kNil) {  // duplicate key: keep the first
      tr.lists[kV4Leechers] = list_word_of(kListMarker);
      ++dropped_torrents;
      continue;
    }
    uint32_t i = index_home(tag, r.tslots);
    while (r.tindex[i].tag != 0) i = index_next(i, r.tslots);
    r.tindex[i] = TorrentSlot{tag, t};
  }
}

void push_free_raw(const PartitionRegions& r, uint32_t b, uint32_t cls) {
  uint32_t head = r.h->free_heads[cls];
  free_block(r, b) = FreeBlock{head, kNil, cls};
  if (head != kNil) free_block(r, head).prev = b;
  r.h->free_heads[cls] = b;
  free_map_byte(r, b) |= free_map_bit(b);
}

// Bump pointer after the last live block; every gap below it goes to the free lists as the
// largest aligned buddies that fit (this also merges free space that fragmented over time).
// Live blocks (2^c or 3 × 2^(c-1) units, c ≥ 1 and ≥ 2) are aligned and even-sized, so gaps are too.
void rebuild_arena(const PartitionRegions& r, const std::vector<uint8_t>& used) {
  PartitionHeader& h = *r.h;
  uint32_t bump = 0;
  for (uint32_t u = 0; u < h.arena_units; ++u)
    if (used[u]) bump = u + 1;
  h.arena_bump = bump;
  for (uint32_t& f : h.free_heads) f = kNil;
  std::memset(r.free_map, 0, (h.arena_units + 15) / 16);
  for (uint32_t u = 0; u < bump;) {
    if (used[u]) {
      ++u;
      continue;
    }
    uint32_t end = u;
    while (end < bump && !used[end]) ++end;
    while (u < end) {
      uint32_t cls = 31 - uint32_t(__builtin_clz(end - u));
      if (u != 0) cls = std::min<uint32_t>(cls, uint32_t(__builtin_ctz(u)));
      push_free_raw(r, u, cls);
      u += 1u << cls;
    }
  }
}

void rebuild_counts(const PartitionRegions& r) {
  PartitionHeader& h = *r.h;
  h.torrents = h.seeders = h.leechers = h.peers_v4 = h.peers_v6 = h.seeders_v6 = h.peers_ws = h.seeders_ws = 0;
  h.completed = 0;
  h.torrent_free = kNil;
  for (uint32_t t = h.torrent_high; t-- > 0;) {
    TorrentRecord& tr = r.pool[t];
    if (!torrent_live(tr)) {
      tr.completed = h.torrent_free;
      h.torrent_free = t;
      continue;
    }
    ++h.torrents;
    h.completed += tr.completed;
    h.leechers += list_count(tr, kV4Leechers) + list_count(tr, kV6Leechers);
    h.seeders += list_count(tr, kV4Seeders) + list_count(tr, kV6Seeders);
    h.peers_v4 += list_count(tr, kV4Leechers) + list_count(tr, kV4Seeders);
    bool ws = torrent_kind(tr) == kTorrentWebTorrent;
    (ws ? h.peers_ws : h.peers_v6) += list_count(tr, kV6Leechers) + list_count(tr, kV6Seeders);
    (ws ? h.seeders_ws : h.seeders_v6) += list_count(tr, kV6Seeders);
  }
  if (h.sweep_torrent > h.torrent_high || h.sweep_list >= kLists) h.sweep_torrent = 0;
  if (h.sweep_list >= kLists) h.sweep_list = h.sweep_pos = 0;
}

// Returns how many peers were dropped (bad blocks, duplicate keys, duplicate torrents' peers).
uint32_t rebuild(PartitionLayout* l) {
  PartitionRegions r = partition_regions(l);
  uint32_t dropped = 0, dropped_torrents = 0, kept = 0;
  rebuild_torrents(r, dropped_torrents);
  std::vector<uint8_t> used(r.h->arena_units, 0);
  for (uint32_t t = 0; t < r.h->torrent_high; ++t)
    for (uint32_t list = 0; torrent_live(r.pool[t]) && list < kLists; ++list)
      sanitize_list(r, used, r.pool[t], list, dropped);
  std::memset(r.pindex, 0, sizeof(PeerSlot) * size_t(r.pslots));
  for (uint32_t t = 0; t < r.h->torrent_high; ++t)
    for (uint32_t list = 0; torrent_live(r.pool[t]) && list < kLists; ++list)
      reindex_list(r, used, t, list, kept, dropped);
  rebuild_arena(r, used);
  rebuild_counts(r);
  return dropped;
}

// Last resort when even a rebuild does not validate: an empty partition (capacities kept).
void reset(PartitionLayout* l) {
  PartitionRegions r = partition_regions(l);
  PartitionHeader& h = l->header;
  std::memset(r.tindex, 0, sizeof(TorrentSlot) * size_t(r.tslots));
  std::memset(r.pindex, 0, sizeof(PeerSlot) * size_t(r.pslots));
  std::memset(r.pool, 0, sizeof(TorrentRecord) * std::min(h.torrent_high, h.max_torrents));
  h.torrent_high = h.arena_bump = h.sweep_torrent = h.sweep_list = h.sweep_pos = 0;
  for (uint32_t& f : h.free_heads) f = kNil;
  std::memset(r.free_map, 0, (h.arena_units + 15) / 16);
  rebuild_counts(r);
}

}  // namespace

Partition::Partition(void* segment_base, size_t segment_size)
    : p_(static_cast<PartitionLayout*>(segment_base)) {
  if (segment_base == nullptr || reinterpret_cast<uintptr_t>(segment_base) % 64 != 0 ||
      segment_size < sizeof(PartitionLayout))
    throw std::runtime_error("partition: segment missing, misaligned or too small");
  const PartitionHeader& h = p_->header;
  if (p_->segment.magic != kMagic || p_->segment.kind != uint32_t(SegmentKind::partition))
    throw std::runtime_error("partition: not a partition segment");
  if (h.format != kPartitionFormat) throw std::runtime_error("partition: segment is not formatted");
  if (h.segment_bytes != segment_size)
    throw std::runtime_error("partition: header says " + std::to_string(h.segment_bytes) + " bytes, mapped " +
                             std::to_string(segment_size));
  if (h.max_torrents == 0 || h.max_peers == 0 || h.max_torrents > kMaxTorrents || h.max_peers > kMaxCapacity)
    throw std::runtime_error("partition: header capacities out of range");
  PartitionGeometry g = partition_geometry(h.max_torrents, h.max_peers);
  if (g.total_bytes > segment_size || g.torrent_slots != h.torrent_slots || g.peer_slots != h.peer_slots ||
      g.arena_units != h.arena_units || g.torrent_index_off != h.torrent_index_off ||
      g.torrent_pool_off != h.torrent_pool_off || g.peer_index_off != h.peer_index_off ||
      g.arena_off != h.arena_off || g.free_map_off != h.free_map_off)
    throw std::runtime_error("partition: header geometry disagrees with its capacities");
}

std::string Partition::validate() const {
  Checker c{partition_regions(p_), p_->header, std::vector<uint8_t>(p_->header.arena_units, 0), {}};
  check_header(c) && check_records(c) && check_free_blocks(c) && check_torrent_free_list(c) &&
      check_torrent_index(c) && check_peer_index(c) && check_totals(c);
  return c.problem;
}

// The first step of both recoveries: roll back an interrupted transaction (*bad: unusable
// journal entries) and mend the RNG state.
static RecoverReport roll_back(PartitionLayout* p, uint32_t* bad) {
  RecoverReport rep{};
  rep.was_dirty = std::atomic_ref<uint32_t>(p->journal.count).load(std::memory_order_acquire) != 0;
  rep.undone_writes = undo_journal(p, bad);
  if (p->header.rng_state == 0) p->header.rng_state = kRngFallback;
  return rep;
}

RecoverReport Partition::recover_fast() {
  uint32_t bad = 0;
  RecoverReport rep = roll_back(p_, &bad);
  Checker c{partition_regions(p_), p_->header, {}, {}};
  if (bad || !check_header(c)) return recover();  // the journal or the header is damaged: check it all
  rep.torrents = p_->header.torrents;
  rep.peers = p_->header.peers_v4 + p_->header.peers_v6 + p_->header.peers_ws;
  return rep;
}

RecoverReport Partition::recover() {
  uint32_t bad = 0;
  RecoverReport rep = roll_back(p_, &bad);
  rep.problem = validate();
  if (bad) rep.problem = cat(bad, " unusable journal entries", rep.problem.empty() ? "" : "; ", rep.problem);
  if (!rep.problem.empty()) {
    uint32_t dropped = rebuild(p_);
    rep.rebuilt = true;
    if (dropped) rep.problem += cat("; rebuild dropped ", dropped, " peers");
    std::string again = validate();
    if (!again.empty()) {
      reset(p_);
      rep.problem += cat("; rebuilt partition still invalid (", again, "), reset to empty");
    }
  }
  rep.torrents = p_->header.torrents;
  rep.peers = p_->header.peers_v4 + p_->header.peers_v6 + p_->header.peers_ws;
  return rep;
}

}  // namespace shoal::shm
