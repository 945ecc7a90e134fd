// shm/cluster_ws.hpp — WebTorrent peers in the cluster rings (issue 14). A WebTorrent delta
// (a change to a peer whose WebSocket connection this node holds) travels through the same
// rings of 52-byte shm::Delta as the BitTorrent deltas (shm/cluster_segment.hpp), marked by
// family kFamilyWebTorrent ('w'); its fields are packed into the Delta's bytes:
//
//   Delta field      WebTorrent delta
//   info_hash        info_hash
//   addr[16]         peer_id bytes 0-15
//   port_be          generation: low 16 bits of the socket process's generation (host order)
//   family           'w'
//   flags            kDelta* (seeder, stopped, completed now, counted)
//   topology_group   peer_id bytes 16-17 (as bytes)
//   progress         peer_id bytes 18-19 (as bytes)
//   origin           node id holding the connection (0 on the way out: the sync worker's header
//                    names this node)
//   reserved[0]      socket slot holding the connection
//   join_age_s       token of the connection in that socket process
//
// Packing keeps one ring type, one ring order and the poison guard for both kinds of deltas.
//
// Flag kDeltaWsGone (WebTorrent deltas only): the socket process (origin, slot, generation) is
// gone (it died or was replaced), and every WebTorrent peer held by one of its connections with
// it; info_hash and peer_id are zero. The holding node's sync worker sends it when it sees the
// slot's active process change; every swarm worker of the receiving nodes gets it.
#pragma once
#include <cstdint>
#include <cstring>

#include "shm/cluster_segment.hpp"
#include "shm/messages.hpp"

namespace shoal::shm {

// A WebTorrent delta, unpacked.
struct WsDelta {
  uint8_t info_hash[20];
  uint8_t peer_id[20];
  uint8_t flags;        // kDelta*
  uint8_t slot;         // socket slot holding the connection
  uint16_t generation;  // low 16 bits of that socket process's generation
  uint32_t token;       // the connection's token there
  uint16_t origin;      // node holding the connection (0: this node)
};

inline constexpr uint8_t kDeltaWsGone = 0x10;

// Flag kDeltaWsKeyed (WebTorrent deltas only): the peer_id field holds the peer's 16-byte key
// (peer_key() with the cluster's seed, shm::Partition::set_ws_key_seed) and 4 zero bytes, not a
// peer_id. The resync after an outage sends this node's WebTorrent peers so (ClusterLink: the
// partition keeps keys, not peer_ids); a receiver looks the peer up by that key.
inline constexpr uint8_t kDeltaWsKeyed = 0x20;

inline bool is_ws_delta(const Delta& d) { return d.family == kFamilyWebTorrent; }
inline bool is_ws_gone(const Delta& d) { return is_ws_delta(d) && (d.flags & kDeltaWsGone); }

inline void pack_ws_delta(const WsDelta& w, Delta* d) {
  *d = Delta{};
  std::memcpy(d->info_hash, w.info_hash, 20);
  std::memcpy(d->addr, w.peer_id, 16);
  std::memcpy(&d->topology_group, w.peer_id + 16, 2);
  std::memcpy(&d->progress, w.peer_id + 18, 2);
  d->port_be = w.generation;
  d->family = kFamilyWebTorrent;
  d->flags = w.flags;
  d->origin = w.origin;
  d->reserved[0] = w.slot;
  d->join_age_s = w.token;
}

inline WsDelta unpack_ws_delta(const Delta& d) {
  WsDelta w{};
  std::memcpy(w.info_hash, d.info_hash, 20);
  std::memcpy(w.peer_id, d.addr, 16);
  std::memcpy(w.peer_id + 16, &d.topology_group, 2);
  std::memcpy(w.peer_id + 18, &d.progress, 2);
  w.generation = d.port_be;
  w.flags = d.flags;
  w.origin = d.origin;
  w.slot = d.reserved[0];
  w.token = d.join_age_s;
  return w;
}

}  // namespace shoal::shm
