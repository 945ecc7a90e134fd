// shm/partition_ws.cpp — WebTorrent peers in a swarm partition (issue 10; API: shm/partition.hpp,
// records: PeerWs in shm/partition_layout.hpp). A WebTorrent swarm is the torrent record of kind
// kTorrentWebTorrent of its info_hash; its peers live in that record's two IPv6-sized lists, keyed
// in the peer index by peer_key(peer_id) with port 0, so insertion, removal, expiry and repair
// are the same code as for IPv6 peers. What is different: a peer_id is bound to the connection
// that announced it first (another live connection is refused), and an announce returns offer
// targets (the connections of other peers) instead of addresses.
#include <cstring>

#include "shm/cluster_segment.hpp"
#include "shm/cluster_ws.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "shm/partition_ops.hpp"
#include "shm/peer_view.hpp"

namespace shoal::shm {

namespace {

using namespace pops;

constexpr uint32_t kMaxDeadRemoved = 8;  // dead peers removed per announce (the sweep does the rest)

PeerKey ws_key(uint64_t seed, const uint8_t* peer_id) {
  PeerKey k{};
  k.family = 6;  // PeerWs has PeerV6's shape
  peer_key(seed, peer_id, k.addr);
  k.port_be = 0;
  return k;
}

PeerWs* ws_at(const PartitionRegions& r, uint32_t t, uint32_t list, uint32_t pos) {
  return reinterpret_cast<PeerWs*>(peer_at(r, list_block(r.pool[t], list), list, pos));
}

bool same_conn(const PeerWs& p, const WsAnnounceInput& in) {
  return p.slot == in.slot && p.generation == in.generation && p.token == in.token;
}

// Removes the peer keyed `k` of torrent t if it is indexed. True if removed.
bool remove_key(Op& op, uint32_t t, const PeerKey& k) {
  uint32_t slot = find_peer_slot(op.r, t, k, peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be));
  if (slot == kNil) return false;
  const PeerSlot s = op.r.pindex[slot];
  list_remove(op, t, where_list(s.where()), where_pos(s.where()), slot);
  return true;
}

// Where the WebTorrent peer `peer_id` of the swarm `info_hash` stands: its key, the swarm's
// torrent tag and record (t, kNil when there is no such swarm), the peer's tag and its index
// slot (kNil when not stored).
struct WsFind {
  PeerKey k;
  uint32_t ttag, t, tag, slot;
};
WsFind ws_find_key(const Op& op, const uint8_t* info_hash, const PeerKey& k) {
  WsFind f{};
  f.k = k;
  f.ttag = torrent_tag(op.h.hash_seed, info_hash, kTorrentWebTorrent);
  uint32_t tslot = find_torrent_slot(op.r, info_hash, f.ttag, kTorrentWebTorrent);
  f.t = tslot == kNil ? kNil : op.r.tindex[tslot].torrent;
  f.tag = f.t == kNil ? 0 : peer_tag(op.h.hash_seed, f.t, f.k.family, f.k.addr, f.k.port_be);
  f.slot = f.t == kNil ? kNil : find_peer_slot(op.r, f.t, f.k, f.tag);
  return f;
}
WsFind ws_find(const Op& op, uint64_t seed, const uint8_t* info_hash, const uint8_t* peer_id) {
  return ws_find_key(op, info_hash, ws_key(seed, peer_id));
}

bool is_remote(const PeerWs& p) { return peer_flags(ws_tail(p)) & kPeerRemote; }

// Writes rec as the peer of torrent t in its list for `seeder`: in place when it already is in
// that list at old.pos, else moved there (index slot `slot`, tag `tag`). Its position, or kNil
// when the arena is full (the caller aborts the operation).
uint32_t place_ws(Op& op, uint32_t t, Placed old, uint32_t slot, const PeerWs& rec, uint32_t tag, bool seeder) {
  uint32_t want = list_of(6, seeder);
  if (old.list == want) {
    op.tx.write(ws_at(op.r, t, want, old.pos), &rec, sizeof rec);
    return old.pos;
  }
  if (old.list != kNil) list_remove(op, t, old.list, old.pos, slot);
  return list_push(op, t, want, reinterpret_cast<const uint8_t*>(&rec), tag);
}

}  // namespace

uint64_t Partition::ws_seed() const { return ws_seed_set_ ? ws_seed_ : p_->header.hash_seed; }

WsAnnounceResult Partition::announce_webtorrent(const WsAnnounceInput& in, WsTarget* targets_out, const WsLiveness& live) {
  WsAnnounceResult res{};
  Op op(p_);
  WsFind f = ws_find(op, ws_seed(), in.info_hash, in.peer_id);
  PeerKey k = f.k;
  uint32_t ttag = f.ttag, t = f.t, tag = f.tag, slot = f.slot;
  Placed old{kNil, kNil};
  PeerWs rec{};
  if (slot != kNil) {
    old = {where_list(op.r.pindex[slot].where()), where_pos(op.r.pindex[slot].where())};
    rec = *ws_at(op.r, t, old.list, old.pos);
    res.prev_last_seen = peer_last_seen(ws_tail(rec), in.now);
    // A remote peer (another node's connection) is taken over: the peer moved to this node.
    if (!same_conn(rec, in) && !is_remote(rec) && live.ring_set(uint8_t(rec.slot), rec.generation) >= 0) {
      res.status = uint8_t(ResponseStatus::peer_id_taken);  // bound to another live connection
      fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
      return res;
    }
  }
  if (in.event == uint8_t(Event::stopped)) {
    if (slot != kNil && !is_remote(rec)) {  // another node's peer leaves by that node's delta
      list_remove(op, t, old.list, old.pos, slot);
      commit(op);
      res.change = kChangeRemoved;
    }
    if (t != kNil) fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
    return res;
  }
  // Insert or refresh (a dead connection's record is taken over by the asking one).
  bool created = false;
  // No room: undo what this announce wrote; the counts are the swarm's as it was (none if this
  // announce would have created it).
  auto tracker_full = [&] {
    abort_op(op);
    res.status = uint8_t(ResponseStatus::tracker_full);
    if (!created) fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
    return res;
  };
  if (t == kNil) {
    if (stored_peers(op.h) < new_torrent_peer_limit_ && in.gate && in.addr && !in.gate->allow_new_torrent(in.family, in.addr)) {
      res.status = uint8_t(ResponseStatus::source_quota);
      return res;
    }
    if (stored_peers(op.h) >= new_torrent_peer_limit_ || (t = create_torrent(op, in.info_hash, ttag, kTorrentWebTorrent)) == kNil) {
      return tracker_full();
    }
    created = true;
    tag = peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be);
  }
  if (slot == kNil && stored_peers(op.h) >= op.h.max_peers) return tracker_full();
  if (slot == kNil) std::memcpy(rec.key, k.addr, 16);
  bool counted = (rec.state & kPeerFlagsMask) & kPeerCompletedCounted;
  bool count_now = in.event == uint8_t(Event::completed) && in.seeder && !counted;
  // New to the other nodes also when the peer_id changed connection (their offers go there).
  res.change = uint8_t((slot == kNil || is_remote(rec) || !same_conn(rec, in) ? kChangeNew : 0) |
                       (slot != kNil && old.list != list_of(6, in.seeder) ? kChangeSeeder : 0) |
                       (count_now ? kChangeCompleted : 0) | (counted || count_now ? kChangeCounted : 0));
  rec.port_be = 0;
  rec.state = pack_state(uint8_t((in.seeder ? kPeerSeeder : 0) | (counted || count_now ? kPeerCompletedCounted : 0)),
                         kProgressUnknown, in.now);
  rec.slot = in.slot;
  rec.generation = in.generation;
  rec.token = in.token;
  if (count_now) count_completed(op, t);
  Placed at{list_of(6, in.seeder), place_ws(op, t, old, slot, rec, tag, in.seeder)};
  if (at.pos == kNil) return tracker_full();
  commit(op);

  // Offer targets: distinct random live peers of the swarm other than the asker; a seeder gets
  // leechers only. Dead peers met on the way are removed afterwards (by key: positions move).
  const TorrentRecord& tr = op.r.pool[t];
  uint32_t nl = list_count(tr, kV6Leechers);
  uint32_t n = nl + (in.seeder ? 0 : list_count(tr, kV6Seeders));
  uint32_t picked[kMaxResponsePeerBytes / sizeof(WsTarget)];
  uint8_t dead_keys[kMaxDeadRemoved][16];
  uint32_t dead = 0;
  uint16_t got = 0;
  uint32_t want_targets = in.offers;
  if (want_targets > kMaxResponsePeerBytes / sizeof(WsTarget)) want_targets = kMaxResponsePeerBytes / sizeof(WsTarget);
  for (uint32_t tries = 0; got < want_targets && n > 0 && tries < want_targets * 4 + 8; ++tries) {
    uint32_t i = uint32_t(xorshift_next(&op.h.rng_state) % n);
    bool seen = false;
    for (uint32_t j = 0; j < got && !seen; ++j) seen = picked[j] == i;
    if (seen) continue;
    uint32_t list = i < nl ? kV6Leechers : kV6Seeders;
    uint32_t pos = i < nl ? i : i - nl;
    if (list == at.list && pos == at.pos) continue;  // the asker
    const PeerWs* p = ws_at(op.r, t, list, pos);
    if (is_remote(*p) && live.remote_gone(uint16_t(p->generation >> 16), uint8_t(p->slot), uint16_t(p->generation))) {
      bool known = false;  // its node said that connection's process is gone
      for (uint32_t d = 0; d < dead && !known; ++d) known = std::memcmp(dead_keys[d], p->key, 16) == 0;
      if (!known && dead < kMaxDeadRemoved) std::memcpy(dead_keys[dead++], p->key, 16);
      continue;
    }
    if (is_remote(*p)) {  // held by another node: the offer goes there (alive until it expires)
      picked[got] = i;
      WsTarget& w = targets_out[got++];
      w = WsTarget{};
      w.generation = p->generation & 0xffff;
      w.token = p->token;
      w.slot = p->slot;
      w.ring_set = kWsRemoteSet;
      w.node = uint16_t(p->generation >> 16);
      continue;
    }
    int set = live.ring_set(uint8_t(p->slot), p->generation);
    if (set < 0) {
      bool known = false;
      for (uint32_t d = 0; d < dead && !known; ++d) known = std::memcmp(dead_keys[d], p->key, 16) == 0;
      if (!known && dead < kMaxDeadRemoved) std::memcpy(dead_keys[dead++], p->key, 16);
      continue;
    }
    picked[got] = i;
    WsTarget& w = targets_out[got++];
    w = WsTarget{};
    w.generation = p->generation;
    w.token = p->token;
    w.slot = uint8_t(p->slot);
    w.ring_set = uint8_t(set);
  }
  res.target_count = got;
  if (dead) {
    uint32_t in_tx = 0;
    for (uint32_t d = 0; d < dead; ++d) {
      PeerKey dk{};
      dk.family = 6;
      std::memcpy(dk.addr, dead_keys[d], 16);
      if (remove_key(op, t, dk) && removals_due(op, ++in_tx)) {
        commit(op);
        in_tx = 0;
      }
    }
    commit(op);
  }
  fill_counts(op.r, t, res.seeders, res.leechers, res.completed);
  return res;
}

uint8_t Partition::apply_remote_webtorrent(const WsRemoteInput& in, const WsLiveness& live) {
  if (in.node == 0) return uint8_t(ResponseStatus::bad_request);
  Op op(p_);
  PeerKey keyed{};  // kDeltaWsKeyed: the sender's key (the cluster's seed), not a peer_id
  keyed.family = 6;
  std::memcpy(keyed.addr, in.peer_id, 16);
  WsFind f = (in.flags & kDeltaWsKeyed) ? ws_find_key(op, in.info_hash, keyed) : ws_find(op, ws_seed(), in.info_hash, in.peer_id);
  PeerKey k = f.k;
  uint32_t ttag = f.ttag, t = f.t, tag = f.tag, slot = f.slot;
  uint32_t gen = ws_remote_generation(in.node, in.generation);
  Placed old{kNil, kNil};
  PeerWs rec{};
  if (slot != kNil) {
    old = {where_list(op.r.pindex[slot].where()), where_pos(op.r.pindex[slot].where())};
    rec = *ws_at(op.r, t, old.list, old.pos);
    if (!is_remote(rec) && live.ring_set(rec.slot, rec.generation) >= 0) return uint8_t(ResponseStatus::ok);  // ours
  }
  if (in.flags & kDeltaStopped) {
    // Only that node's own record of the peer: a stopped of an older connection elsewhere
    // must not remove the peer where it moved to.
    if (slot != kNil && is_remote(rec) && rec.generation >> 16 == in.node) {
      list_remove(op, t, old.list, old.pos, slot);
      commit(op);
    }
    return uint8_t(ResponseStatus::ok);
  }
  if (t == kNil) {
    if (stored_peers(op.h) >= new_torrent_peer_limit_ || (t = create_torrent(op, in.info_hash, ttag, kTorrentWebTorrent)) == kNil)
      return abort_op(op), uint8_t(ResponseStatus::tracker_full);
    tag = peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be);
  }
  if (slot == kNil && stored_peers(op.h) >= op.h.max_peers) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  if (slot == kNil) std::memcpy(rec.key, k.addr, 16);
  bool seeder = in.flags & kDeltaSeeder;
  bool counted = peer_flags(ws_tail(rec)) & kPeerCompletedCounted;
  if ((in.flags & kDeltaCompleted) && !counted) count_completed(op, t);  // counted once cluster-wide
  rec.port_be = 0;
  rec.state = pack_state(uint8_t(kPeerRemote | (seeder ? kPeerSeeder : 0) |
                                 (counted || (in.flags & (kDeltaCompleted | kDeltaCounted)) ? kPeerCompletedCounted : 0)),
                         kProgressUnknown, in.now);
  rec.slot = in.slot;
  rec.generation = gen;
  rec.token = in.token;
  if (place_ws(op, t, old, slot, rec, tag, seeder) == kNil) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  commit(op);
  return uint8_t(ResponseStatus::ok);
}

uint8_t Partition::restore_webtorrent(const WsRestoreInput& in) {
  if (in.node == 0) return uint8_t(ResponseStatus::bad_request);
  Op op(p_);
  PeerKey key{};
  key.family = 6;
  std::memcpy(key.addr, in.key, 16);
  WsFind f = ws_find_key(op, in.info_hash, key);
  uint32_t t = f.t, tag = f.tag;
  if (f.slot != kNil) return uint8_t(ResponseStatus::ok);  // a delta stored it first: newer
  if (stored_peers(op.h) >= op.h.max_peers) return uint8_t(ResponseStatus::tracker_full);
  if (t == kNil) {
    if ((t = create_torrent(op, in.info_hash, f.ttag, kTorrentWebTorrent)) == kNil)
      return abort_op(op), uint8_t(ResponseStatus::tracker_full);
    tag = peer_tag(op.h.hash_seed, t, key.family, key.addr, key.port_be);
  }
  bool seeder = in.flags & kPeerSeeder;
  PeerWs rec{};
  std::memcpy(rec.key, in.key, 16);
  rec.state = pack_state(uint8_t(kPeerRemote | (in.flags & (kPeerSeeder | kPeerCompletedCounted))), kProgressUnknown, in.last_seen);
  rec.slot = in.slot;
  rec.generation = ws_remote_generation(in.node, in.generation);
  rec.token = in.token;
  if (place_ws(op, t, Placed{kNil, kNil}, kNil, rec, tag, seeder) == kNil) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  commit(op);
  return uint8_t(ResponseStatus::ok);
}

ScrapeResult Partition::scrape_webtorrent(const uint8_t* info_hash) const {
  PartitionRegions r = partition_regions(p_);
  ScrapeResult res{};
  uint32_t slot = find_torrent_slot(r, info_hash, torrent_tag(r.h->hash_seed, info_hash, kTorrentWebTorrent), kTorrentWebTorrent);
  if (slot != kNil) fill_counts(r, r.tindex[slot].torrent, res.seeders, res.leechers, res.completed);
  return res;
}

}  // namespace shoal::shm
