// shm/partition_check.cpp — Partition::check_step: the consistency check of a partition in slices,
// run by its swarm worker between batches while it serves (issue 12, recovery time). Each slice
// runs at a consistent moment (no transaction open), so what it checks holds there: every live
// torrent record is found by the torrent index under its own key, its lists are in range, and
// every peer of them is found by the peer index at its own position; every torrent index slot and
// every peer index slot names a live record with the right key and is reachable from its home
// slot. Global sums (totals, free lists, arena ownership) change between slices and are left to
// validate(); two lists sharing a block show up here as a peer the index finds in another list.
#include <cstring>
#include <string>

#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "shm/partition_probe.hpp"

namespace shoal::shm {

namespace {

using namespace probes;

// Torrent t's record: found by the torrent index under its own key. "" when consistent.
std::string check_torrent_record(const PartitionRegions& r, uint32_t t) {
  const TorrentRecord& tr = r.pool[t];
  uint32_t tag = torrent_tag(r.h->hash_seed, tr.info_hash, torrent_kind(tr));
  uint32_t slot = probe_torrent(r, tr.info_hash, tag, torrent_kind(tr));
  if (slot == kNil || r.tindex[slot].torrent != t) return cat("torrent ", t, ": not found by the torrent index");
  return "";
}

// Torrent t's lists from (st.list, st.pos) on, at most until *items reaches stop: each list in
// range, each peer found by the peer index at its place. Sets *done when t is finished.
std::string check_torrent_peers(const PartitionRegions& r, uint32_t t, Partition::IncrementalCheck& st,
                                uint64_t stop, bool* done) {
  const TorrentRecord& tr = r.pool[t];
  *done = false;
  for (; st.list < kLists; ++st.list, st.pos = 0) {
    const PeerListRef pl = list_ref(tr, st.list);
    uint32_t list = st.list, cls = pl.size;
    if (pl.count == 0) continue;
    if (torrent_kind(tr) == kTorrentWebTorrent && list_family(list) == 4)
      return cat("torrent ", t, ": a WebTorrent torrent holds IPv4-sized records");
    if (!valid_list_size(cls) || pl.count > list_capacity(list_family(list), cls))
      return cat("torrent ", t, " list ", list, ": count ", pl.count, " > capacity of size ", cls);
    uint64_t units = list_units(cls);
    if (pl.block % list_align(cls) != 0 || uint64_t(pl.block) + units > r.h->arena_bump)
      return cat("torrent ", t, " list ", list, ": block ", pl.block, " misaligned or outside the arena in use");
    for (; st.pos < pl.count; ++st.pos, ++st.items) {
      if (st.items >= stop) return "";  // go on from here in the next slice
      uint8_t* rec = peer_at(r, pl.block, list, st.pos);
      const PeerTail* tail = tail_of(rec, list);
      if ((peer_flags(*tail) & kPeerSeeder) != (list & 1))
        return cat("torrent ", t, " list ", list, " peer ", st.pos, ": seeder flag disagrees with its list");
      uint32_t s = probe_peer(r, t, list_family(list), rec, tail->port_be, tag_of_record(r, t, list, rec));
      if (s == kNil || r.pindex[s].where() != pack_where(list, st.pos))
        return cat("torrent ", t, " list ", list, " peer ", st.pos, ": not found by the peer index at its place");
    }
  }
  *done = true;
  return "";
}

}  // namespace

std::string Partition::check_step(IncrementalCheck& st, uint32_t budget) const {
  PartitionRegions r = partition_regions(p_);
  const PartitionHeader& h = p_->header;
  if (h.torrent_high > h.max_torrents || h.arena_bump > h.arena_units)
    return cat("header out of range: torrent_high ", h.torrent_high, ", arena_bump ", h.arena_bump);
  uint64_t stop = st.items + budget;
  while (st.phase < 3 && st.items < stop) {
    if (st.phase == 0) {  // torrent records → indexes; a torrent's peers may span slices
      if (st.inside) {  // the peers of torrent next - 1, from (list, pos) on, if it is still live
        uint32_t t = st.next - 1;
        bool done = true;
        if (t < h.torrent_high && torrent_live(r.pool[t])) {
          std::string problem = check_torrent_peers(r, t, st, stop, &done);
          if (!problem.empty()) return problem;
        }
        if (done) st.inside = 0, st.list = st.pos = 0;
        continue;
      }
      if (st.next >= h.torrent_high) {
        st.phase = 1, st.next = 0;
        continue;
      }
      uint32_t t = st.next++;
      ++st.items;
      if (torrent_live(r.pool[t])) {
        std::string problem = check_torrent_record(r, t);
        if (!problem.empty()) return problem;
        st.inside = 1, st.list = st.pos = 0;
      }
    } else if (st.phase == 1) {  // torrent index → records
      if (st.next >= r.tslots) {
        st.phase = 2, st.next = 0;
        continue;
      }
      uint32_t i = st.next++;
      ++st.items;
      const TorrentSlot& s = r.tindex[i];
      if (s.tag == 0) continue;
      if (s.torrent >= h.torrent_high || !torrent_live(r.pool[s.torrent]))
        return cat("torrent index slot ", i, " points at dead torrent ", s.torrent);
      const TorrentRecord& tr = r.pool[s.torrent];
      if (s.tag != torrent_tag(h.hash_seed, tr.info_hash, torrent_kind(tr)) || probe_torrent(r, tr.info_hash, s.tag, torrent_kind(tr)) != i)
        return cat("torrent index slot ", i, " (torrent ", s.torrent, ") unreachable or duplicate");
    } else {  // peer index → records
      if (st.next >= r.pslots) {
        st.phase = 3;
        break;
      }
      uint32_t i = st.next++;
      ++st.items;
      const PeerSlot& s = r.pindex[i];
      if (s.key() == 0) continue;
      uint8_t* rec = live_peer(r, slot_torrent(s), s.where());
      if (!rec) return cat("peer index slot ", i, " points at no live peer");
      uint32_t list = where_list(s.where()), tag = tag_of_record(r, slot_torrent(s), list, rec);
      if (s.key() != peer_slot_key(slot_torrent(s)) ||
          probe_peer(r, slot_torrent(s), list_family(list), rec, tail_of(rec, list)->port_be, tag) != i)
        return cat("peer index slot ", i, ": wrong tag, unreachable or duplicate key");
    }
  }
  return "";
}

}  // namespace shoal::shm
