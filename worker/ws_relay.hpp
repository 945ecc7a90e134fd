// worker/ws_relay.hpp — a socket worker's end of the WebTorrent relay (issue 10): it forwards an
// offer to the socket worker holding the target peer's connection, and an answer back to the one
// holding the offering peer's, over the socket-to-socket rings of shm/relay_ring.hpp; records
// for this process come out of its inbound rings. A record for a connection of this very
// process never touches a ring (the front-end delivers it directly).
//
// Record payload (after the RelayRecord header): RelayHead, then the offer or answer object as
// compact JSON text (worker/webtorrent_codec.hpp keeps it; at most kMaxSdpJsonBytes).
#pragma once
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "shm/counters.hpp"
#include "shm/relay_ring.hpp"

namespace shoal::worker {

// Who sent a relayed message and about what. For an offer, peer_id is the offering peer's and
// (from_slot, from_set, from_generation, from_token) its connection, so the target's socket
// worker can route the answer back with no swarm lookup; for an answer, peer_id is the
// answering peer's (the from_* fields are not used).
// node: 0 between socket workers of this node. On a cluster node (issue 14) a record to the
// sync worker names the node holding the target connection, and one from the sync worker the
// node the offer or answer came from (then from_* are that node's: its slot, generation and
// token of the offering connection; from_set is not used, that node finds it).
struct RelayHead {
  uint8_t info_hash[20];
  uint8_t peer_id[20];
  uint8_t offer_id[20];
  uint8_t from_slot;
  uint8_t from_set;
  uint16_t node;
  uint32_t from_generation;
  uint32_t from_token;
};
static_assert(sizeof(RelayHead) == 72);

// Where a relayed message goes: a connection (token) of socket slot `slot`'s process of
// `generation`, which uses ring set `ring_set`. node 0: on this node; else the cluster node
// holding that connection (ring_set unused; the record goes to the sync worker).
struct RelayTarget {
  uint8_t slot;
  uint8_t ring_set;
  uint32_t generation;
  uint32_t token;
  uint16_t node = 0;
};

// Where this process sits, for the offers it relays: socket slot, its ring set and generation.
struct WsIdentity {
  uint32_t slot = 0;
  uint32_t ring_set = 0;
  uint32_t generation = 0;
};

class WsRelay {
 public:
  // `base`: the relay segment's mapping (shm/relay_ring.hpp geometry `g`); `self`: this
  // process; `wake_fds[d * 2 + k]` wakes the process of socket slot d on ring set k. Counts
  // drops into `counters`.
  WsRelay(void* base, shm::RelayGeometry g, WsIdentity self, std::vector<int> wake_fds, shm::CounterBlock* counters);

  // Queues one record for `to` (kind shm::kRelayOffer or kRelayAnswer). False (counted in
  // ws_relay_dropped) when the ring to that process is full or the payload too large. A target
  // on another node (to.node != 0) goes to the sync worker (head.node set to to.node); false
  // when this node has none (not a cluster node).
  bool send(const RelayTarget& to, uint16_t kind, const RelayHead& head, std::string_view sdp_json);

  // Publishes what send() queued and wakes each target worker once. Call after each batch.
  void flush();

  // Hands every record addressed to this process to `fn(kind, token, head, sdp_json)` (records
  // for another generation of this slot are dropped), then frees their ring space. Returns the
  // records delivered.
  using Handler = std::function<void(uint16_t kind, uint32_t token, const RelayHead& head, std::string_view sdp_json)>;
  uint64_t poll(const Handler& fn);

 private:
  shm::RelayGeometry g_;
  uint32_t slot_, set_, generation_;
  std::vector<int> wake_fds_;
  shm::CounterBlock* counters_;
  std::vector<shm::RelayRing> out_;  // [d * 2 + kd]: this process → (d, kd)
  std::vector<shm::RelayRing> in_;   // [s * 2 + ks]: (s, ks) → this process
  std::vector<uint8_t> dirty_;       // out_ rings with unpublished records
};

}  // namespace shoal::worker
