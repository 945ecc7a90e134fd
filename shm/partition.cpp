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

#include "shm/cluster_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition_journal.hpp"
#include "shm/partition_layout.hpp"
#include "shm/partition_ops.hpp"

namespace shoal::shm {

namespace {

using namespace pops;

// ---- announce ----------------------------------------------------------------------------

// Inserts or refreshes the asker; moves it between lists when its seeder status changed;
// counts event=completed once per peer. {kNil, kNil} when the tracker is full.
// extra: flags stored on top (kPeerRemote, kPeerCompletedCounted from another node's delta);
// *change gets kChange* bits and *prev_last_seen the peer's last_seen before (0 when new).
Placed upsert_peer(Op& op, uint32_t t, const AnnounceInput& in, const PeerKey& k, uint8_t extra, uint8_t* change,
                   uint32_t* prev_last_seen) {
  uint32_t tag = peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be);
  uint32_t slot = find_peer_slot(op.r, t, k, tag);
  uint32_t want = list_of(k.family, in.seeder);
  uint32_t stride = peer_stride(k.family);
  uint8_t rec[32] = {};
  Placed old{kNil, kNil};
  if (slot != kNil) {
    old = {where_list(op.r.pindex[slot].where()), where_pos(op.r.pindex[slot].where())};
    std::memcpy(rec, peer_at(op.r, list_block(op.r.pool[t], old.list), old.list, old.pos), stride);
  } else if (stored_peers(op.h) >= op.h.max_peers) {
    return {kNil, kNil};
  } else {
    std::memcpy(rec, k.addr, addr_len(k.family));
  }
  PeerTail* tail = reinterpret_cast<PeerTail*>(rec + addr_len(k.family));
  const uint8_t flags = peer_flags(*tail);
  bool counted = flags & kPeerCompletedCounted;
  // A completion counts once per peer, and only from a peer that has the whole torrent: an
  // event=completed with left > 0 is a leecher's claim and counts nothing (issue 12).
  bool count_now = in.event == uint8_t(Event::completed) && in.seeder && !counted;
  *change = uint8_t((slot == kNil ? kChangeNew : 0) | (old.list != kNil && old.list != want ? kChangeSeeder : 0) |
                    (count_now ? kChangeCompleted : 0) |
                    (counted || count_now || (extra & kPeerCompletedCounted) ? kChangeCounted : 0) |
                    (flags & kPeerRemote ? kChangeWasRemote : 0));
  *prev_last_seen = slot == kNil ? 0 : peer_last_seen(*tail, in.now);
  tail->port_be = k.port_be;
  // A representative stays one while it leeches (policy tiered); completing ends it.
  uint8_t rep = in.seeder ? 0 : uint8_t(flags & kPeerRepresentative);
  tail->topology_group = in.topology_group;
  tail->state = pack_state(uint8_t((in.seeder ? kPeerSeeder : 0) | (counted || count_now ? kPeerCompletedCounted : 0) | rep | extra),
                           in.progress, in.now);
  if (count_now) count_completed(op, t);
  if (old.list == want) {
    op.tx.write(tail_of(peer_at(op.r, list_block(op.r.pool[t], want), want, old.pos), want), tail,
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
  v.list_a = peer_at(r, list_block(tr, a), a, 0);
  v.list_b = peer_at(r, list_block(tr, b), b, 0);
  v.na = list_count(tr, a);
  v.n = v.na + (seeder ? 0 : list_count(tr, b));
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
    list_remove(op, t, where_list(s.where()), where_pos(s.where()), slot);
    commit(op);
    res.change = kChangeRemoved;
  }
  fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
  return res;
}

// ---- expiry ------------------------------------------------------------------------------

struct Sweep {
  uint32_t torrent, list, pos;  // cursor: next peer to examine
  uint32_t examined, in_tx;     // peers examined this step; removals since the last commit
};

bool checkpoint_due(const Op& op, const Sweep& s) { return removals_due(op, s.in_tx); }

void sweep_checkpoint(Op& op, Sweep& s) {
  op.tx.set(op.h.sweep_torrent, s.torrent);
  op.tx.set(op.h.sweep_list, s.list);
  op.tx.set(op.h.sweep_pos, s.pos);
  commit(op);
  s.in_tx = 0;
}

// Examines the lists of torrent s.torrent from the cursor on. False when the budget ran out.
// A WebTorrent peer whose socket-worker process is gone (its connection went with it).
bool ws_dead(const TorrentRecord& tr, const uint8_t* rec, const WsLiveness* live) {
  if (!live || torrent_kind(tr) != kTorrentWebTorrent) return false;
  const PeerWs* p = reinterpret_cast<const PeerWs*>(rec);
  if (peer_flags(ws_tail(*p)) & kPeerRemote)  // another node's connection: expires by last_seen, or its process is gone
    return live->remote_gone(uint16_t(p->generation >> 16), uint8_t(p->slot), uint16_t(p->generation));
  return live->ring_set(uint8_t(p->slot), p->generation) < 0;
}

bool sweep_torrent(Op& op, Sweep& s, uint32_t now, uint32_t ttl, uint32_t budget, ExpireResult& res,
                   const WsLiveness* live) {
  TorrentRecord& tr = op.r.pool[s.torrent];
  for (; s.list < kLists; ++s.list, s.pos = 0) {
    s.pos = std::min(s.pos, list_count(tr, s.list));
    while (s.pos < list_count(tr, s.list)) {
      if (s.examined >= budget) return false;
      ++s.examined;
      uint8_t* rec = peer_at(op.r, list_block(tr, s.list), s.list, s.pos);
      if (peer_age(*tail_of(rec, s.list), now) <= ttl && !ws_dead(tr, rec, live)) {
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
  for (uint32_t list = 0; list < kLists; ++list)
    if (list_count(tr, list)) return false;
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
  __builtin_prefetch(&r.pindex[index_home(peer_tag(r.h->hash_seed, s.torrent, family, addr, port_be), r.pslots)]);
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
  bool room_for_new = stored_peers(op.h) < new_torrent_peer_limit_;  // headroom for existing swarms
  if (t == kNil && room_for_new && in.gate && !in.gate->allow_new_torrent(in.family, in.addr)) {
    res.status = uint8_t(ResponseStatus::source_quota);  // nothing written yet
    return res;
  }
  if (t != kNil || (room_for_new && (t = create_torrent(op, in.info_hash, ttag)) != kNil))
    at = upsert_peer(op, t, in, k, 0, &res.change, &res.prev_last_seen);
  if (at.list == kNil) {  // tracker full: undo whatever this announce wrote
    abort_op(op);
    res.change = 0;
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
    uint8_t* rec = peer_at(op.r, list_block(op.r.pool[t], at.list), at.list, at.pos);
    PeerTail* tail = tail_of(rec, at.list);
    asker.representative = peer_flags(*tail) & kPeerRepresentative;
    bool elected = policy.elect(view, asker);
    if (elected != asker.representative) {
      uint8_t f = peer_flags(*tail);
      op.tx.set(tail->state, with_flags(tail->state, uint8_t(elected ? f | kPeerRepresentative : f & ~kPeerRepresentative)));
      commit(op);
      asker.representative = elected;
    }
  }
  if (in.numwant != 0 && peers_out != nullptr)
    res.peer_count = policy.select(view, asker, in.numwant, &op.h.rng_state, peers_out);
  return res;
}

uint8_t Partition::apply_remote(const RemoteInput& in) {
  if (in.family != 4 && in.family != 6) return uint8_t(ResponseStatus::bad_request);
  AnnounceInput a{};
  a.info_hash = in.info_hash;
  a.family = in.family;
  std::memcpy(a.addr, in.addr, sizeof a.addr);
  a.port = in.port_be;
  a.seeder = in.flags & kDeltaSeeder;
  a.event = uint8_t((in.flags & kDeltaStopped) ? Event::stopped : (in.flags & kDeltaCompleted) ? Event::completed : Event::none);
  a.topology_group = in.topology_group;
  a.progress = in.progress;
  a.now = in.now;
  Op op(p_);
  PeerKey k = key_of(a);
  uint32_t ttag = torrent_tag(op.h.hash_seed, in.info_hash);
  uint32_t tslot = find_torrent_slot(op.r, in.info_hash, ttag);
  uint32_t t = tslot == kNil ? kNil : op.r.tindex[tslot].torrent;
  if (a.event == uint8_t(Event::stopped)) {
    announce_stopped(op, t, k, AnnounceResult{});
    return uint8_t(ResponseStatus::ok);
  }
  if (t == kNil && (stored_peers(op.h) >= new_torrent_peer_limit_ || (t = create_torrent(op, in.info_hash, ttag)) == kNil))
    return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  uint8_t extra = uint8_t(kPeerRemote | ((in.flags & (kDeltaCounted | kDeltaCompleted)) ? kPeerCompletedCounted : 0));
  uint8_t change = 0;
  uint32_t prev = 0;
  if (upsert_peer(op, t, a, k, extra, &change, &prev).list == kNil) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  commit(op);
  return uint8_t(ResponseStatus::ok);
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
ExpireResult Partition::expire_step(uint32_t now, uint32_t peer_ttl, uint32_t budget, const WsLiveness* live,
                                    bool webtorrent_only) {
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
    bool visit = torrent_live(tr) && (!webtorrent_only || torrent_kind(tr) == kTorrentWebTorrent);
    // webtorrent_only: dead connections' peers go, nothing expires by time (ttl: never)
    if (visit && !sweep_torrent(op, s, now, webtorrent_only ? UINT32_MAX : peer_ttl, budget, res, live)) break;
    if (visit && torrent_empty(tr)) {
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
    while (list_count(tr, list) > 0) {  // from the end: nothing moves
      uint32_t pos = list_count(tr, list) - 1;
      uint8_t* rec = peer_at(op.r, list_block(tr, list), list, pos);
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
  return {h.torrents, h.seeders, h.leechers, h.peers_v4, h.peers_v6, h.completed, h.seeders_v6, h.peers_ws, h.seeders_ws};
}

void Partition::visit_peers(const uint8_t* info_hash, PeerVisitor& v) const {
  PartitionRegions r = partition_regions(p_);
  uint32_t slot = find_torrent_slot(r, info_hash, torrent_tag(r.h->hash_seed, info_hash));
  if (slot == kNil) return;
  const TorrentRecord& tr = r.pool[r.tindex[slot].torrent];
  for (uint32_t list = 0; list < kLists; ++list) {
    const PeerListRef pl = list_ref(tr, list);
    for (uint32_t pos = 0; pos < pl.count; ++pos) {
      uint8_t* rec = peer_at(r, pl.block, list, pos);
      uint8_t addr[16] = {};
      std::memcpy(addr, rec, addr_len(list_family(list)));
      const PeerTail* tail = tail_of(rec, list);
      v.visit({list_family(list), addr, tail->port_be, bool(list & 1), bool(peer_flags(*tail) & kPeerRepresentative),
               tail->topology_group, peer_progress(*tail)});
    }
  }
}

}  // namespace shoal::shm
