// shm/partition_snapshot.cpp — a partition as snapshot records and back (issue 14; API:
// shm/partition.hpp, format: shm/snapshot_codec.hpp). Runs in the swarm worker that owns the
// partition: snapshot_step reads only (between the worker's batches, so it never sees a
// transaction half done); restore_peer writes through the undo journal like announce.
#include <cstring>

#include "shm/cluster_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "shm/partition_ops.hpp"
#include "shm/snapshot_codec.hpp"

namespace shoal::shm {

using namespace pops;

namespace {

SnapPeer snap_peer(const uint8_t* rec, uint32_t list, uint32_t t0) {
  SnapPeer p;
  uint8_t fam = list_family(list);
  const PeerTail* tail = reinterpret_cast<const PeerTail*>(rec + addr_len(fam));
  const uint8_t flags = peer_flags(*tail);
  p.family = fam;
  p.flags = uint8_t(((flags & kPeerSeeder) ? kSnapPeerSeeder : 0) |
                    ((flags & kPeerCompletedCounted) ? kSnapPeerCompletedCounted : 0) |
                    ((flags & kPeerRepresentative) ? kSnapPeerRepresentative : 0));
  std::memcpy(p.addr, rec, addr_len(fam));
  p.port_be = tail->port_be;
  p.age_s = peer_age(*tail, t0);
  p.topology_group = tail->topology_group;
  p.progress = peer_progress(*tail);
  return p;
}

// Walks the live BitTorrent torrents (with `webtorrent` the WebTorrent ones too) of a partition
// and their peers from cursor `c`, in pool order, resumably: on_torrent(tr) as a torrent is
// entered (false stops before it: the next walk enters it again), then on_peer(tr, record, list)
// for each of its peers (false stops at that peer: the next walk starts with it; a WebTorrent
// record is a PeerWs). A torrent freed or replaced between two walks is left
// (the rest of its peers with it). Sets c.done once every torrent was walked. Reads only.
template <class OnTorrent, class OnPeer>
void walk_peers(const PartitionRegions& r, SnapshotCursor& c, bool webtorrent, OnTorrent on_torrent, OnPeer on_peer) {
  for (; c.torrent < r.h->torrent_high; ++c.torrent, c.inside = false) {
    const TorrentRecord& tr = r.pool[c.torrent];
    bool live = torrent_live(tr) && (torrent_kind(tr) == kTorrentBitTorrent || (webtorrent && torrent_kind(tr) == kTorrentWebTorrent));
    if (c.inside && (!live || std::memcmp(tr.info_hash, c.info_hash, 20) != 0)) continue;  // replaced meanwhile
    if (!c.inside) {
      if (!live) continue;
      if (!on_torrent(tr)) return;
      std::memcpy(c.info_hash, tr.info_hash, 20);
      c.inside = true;
      c.list = c.pos = 0;
    }
    for (; c.list < kLists; ++c.list, c.pos = 0) {
      const PeerListRef pl = list_ref(tr, c.list);  // on_peer only reads
      for (; c.pos < pl.count; ++c.pos) {
        if (!on_peer(tr, peer_at(r, pl.block, c.list, c.pos), c.list)) return;
      }
    }
  }
  c.done = true;
}

// The snapshot record of a WebTorrent peer, or false when it is not to be written: this node's
// connection whose process is gone, or another node's whose process that node said is gone.
bool snap_ws_peer(const PeerWs& p, uint32_t t0, const SnapshotWs& ws, SnapWsPeer* out) {
  const uint8_t flags = peer_flags(ws_tail(p));
  bool remote = flags & kPeerRemote;
  out->node = remote ? uint16_t(p.generation >> 16) : ws.node;
  out->slot = uint8_t(p.slot);
  out->generation = uint16_t(p.generation);
  if (remote ? ws.live->remote_gone(out->node, out->slot, out->generation) : ws.live->ring_set(uint8_t(p.slot), p.generation) < 0)
    return false;
  out->flags = uint8_t(((flags & kPeerSeeder) ? kSnapPeerSeeder : 0) | ((flags & kPeerCompletedCounted) ? kSnapPeerCompletedCounted : 0));
  std::memcpy(out->key, p.key, 16);
  out->token = p.token;
  out->age_s = peer_age(ws_tail(p), t0);
  return out->node != 0;
}

}  // namespace

uint32_t Partition::snapshot_step(SnapshotCursor& c, DataChunkWriter& w, uint32_t t0, uint32_t budget, const SnapshotWs* ws) const {
  uint32_t written = 0, peers = 0;
  walk_peers(
      partition_regions(p_), c, ws != nullptr,
      [&](const TorrentRecord& tr) {
        SnapTorrent st{};
        std::memcpy(st.info_hash, tr.info_hash, 20);
        st.kind = torrent_kind(tr) == kTorrentWebTorrent ? 1 : 0;
        st.completed = tr.completed;
        if (!w.add_torrent(st)) return false;
        ++written;
        return true;
      },
      [&](const TorrentRecord& tr, const uint8_t* rec, uint32_t list) {
        if (peers >= budget) return false;
        if (torrent_kind(tr) == kTorrentWebTorrent) {
          SnapWsPeer sp;
          if (!snap_ws_peer(*reinterpret_cast<const PeerWs*>(rec), t0, *ws, &sp)) return true;  // dead: left out
          if (!w.add_ws_peer(sp)) return false;
          ++written;
          ++peers;
          return true;
        }
        if (!w.add_peer(snap_peer(rec, list, t0))) return false;
        ++written;
        ++peers;
        return true;
      });
  return written;
}

uint32_t Partition::replicate_step(SnapshotCursor& c, OwnPeerSink& sink, uint32_t budget, const WsLiveness* ws_live) const {
  uint32_t handed = 0, visited = 0;
  walk_peers(
      partition_regions(p_), c, ws_live != nullptr, [](const TorrentRecord&) { return true; },
      [&](const TorrentRecord& tr, const uint8_t* rec, uint32_t list) {
        if (handed >= budget || visited >= 4 * budget) return false;  // remote peers cost a look too
        ++visited;
        if (torrent_kind(tr) == kTorrentWebTorrent) {
          const PeerWs& w = *reinterpret_cast<const PeerWs*>(rec);
          const uint8_t flags = peer_flags(ws_tail(w));
          if ((flags & kPeerRemote) || ws_live->ring_set(uint8_t(w.slot), w.generation) < 0) return true;  // not ours, or dead
          OwnPeer p{tr.info_hash, kFamilyWebTorrent, w.key, 0,
                    uint8_t(((flags & kPeerSeeder) ? kDeltaSeeder : 0) | ((flags & kPeerCompletedCounted) ? kDeltaCounted : 0)), 0, 0};
          p.slot = uint8_t(w.slot);
          p.generation = w.generation;
          p.token = w.token;
          if (!sink.put(p)) return false;
          ++handed;
          return true;
        }
        uint8_t fam = list_family(list);
        const PeerTail* tail = reinterpret_cast<const PeerTail*>(rec + addr_len(fam));
        const uint8_t flags = peer_flags(*tail);
        if (flags & kPeerRemote) return true;
        OwnPeer p{tr.info_hash, fam, rec, tail->port_be,
                  uint8_t(((flags & kPeerSeeder) ? kDeltaSeeder : 0) | ((flags & kPeerCompletedCounted) ? kDeltaCounted : 0)),
                  tail->topology_group, peer_progress(*tail)};
        if (!sink.put(p)) return false;
        ++handed;
        return true;
      });
  return handed;
}

uint8_t Partition::restore_peer(const RestoreInput& in) {
  if (in.family != 4 && in.family != 6 && !(in.join && in.family == 0)) return uint8_t(ResponseStatus::bad_request);
  Op op(p_);
  uint8_t kind = in.join && in.family == 0 && in.kind == kTorrentWebTorrent ? kTorrentWebTorrent : kTorrentBitTorrent;
  uint32_t ttag = torrent_tag(op.h.hash_seed, in.info_hash, kind);
  uint32_t tslot = find_torrent_slot(op.r, in.info_hash, ttag, kind);
  uint32_t t = tslot == kNil ? create_torrent(op, in.info_hash, ttag, kind) : op.r.tindex[tslot].torrent;
  if (t == kNil) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  TorrentRecord& tr = op.r.pool[t];
  if (tr.completed != in.completed && !(in.join && tr.completed > in.completed)) {
    op.tx.set(op.h.completed, op.h.completed - tr.completed + in.completed);
    op.tx.set(tr.completed, in.completed);
  }
  if (in.family == 0) return commit(op), uint8_t(ResponseStatus::ok);
  PeerKey k{};
  k.family = in.family;
  std::memcpy(k.addr, in.addr, addr_len(in.family));
  k.port_be = in.port_be;
  uint32_t ptag = peer_tag(op.h.hash_seed, t, k.family, k.addr, k.port_be);
  uint32_t pslot = find_peer_slot(op.r, t, k, ptag);
  if (pslot != kNil && in.join) return commit(op), uint8_t(ResponseStatus::ok);  // a delta was newer
  if (pslot != kNil) {  // a second copy of a peer (a snapshot pass saw it twice): the later wins
    list_remove(op, t, where_list(op.r.pindex[pslot].where()), where_pos(op.r.pindex[pslot].where()), pslot);
  } else if (stored_peers(op.h) >= op.h.max_peers) {
    return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  }
  bool seeder = in.flags & kPeerSeeder;
  uint8_t rec[32] = {};
  std::memcpy(rec, k.addr, addr_len(k.family));
  PeerTail* tail = reinterpret_cast<PeerTail*>(rec + addr_len(k.family));
  tail->port_be = k.port_be;
  tail->topology_group = in.topology_group;
  tail->state = pack_state(uint8_t(in.flags & (kPeerSeeder | kPeerCompletedCounted | (seeder ? 0 : kPeerRepresentative) | (in.join ? kPeerRemote : 0))),
                           in.progress, in.last_seen);
  if (list_push(op, t, list_of(k.family, seeder), rec, ptag) == kNil) return abort_op(op), uint8_t(ResponseStatus::tracker_full);
  commit(op);
  return uint8_t(ResponseStatus::ok);
}

}  // namespace shoal::shm
