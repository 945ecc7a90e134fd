// worker/cluster_relay.hpp — the sync worker's end of WebTorrent offers across nodes (issue 14;
// docs/cluster.md "WebTorrent across nodes"). On a cluster node the sync worker is one more
// endpoint of the relay rings (shm/relay_ring.hpp: endpoint number socket_workers, ring set 0):
//   out: a socket worker whose offer targets a peer held by another node (WsTarget::node), or
//        whose client answers an offer that came from another node, writes the record to the
//        sync worker; step() publishes each as a relay message (worker/cluster_ws_codec.hpp) on
//        <cluster.subject>.relay.<node id of the holding node>;
//   in:  step() takes the relay messages for this node (its own subject), finds the socket
//        process holding the target connection (the slot's active process, whose generation
//        must match in its low 16 bits; else the connection is gone: dropped and counted) and
//        writes the record into the ring to that process, which delivers it like a local one:
//        an offer is recorded in the connection's table of delivered offers (with the offering
//        node), so its answer is bound to it exactly as on one node.
// Never waits: a full ring or a refused publish drops the record and counts it.
#pragma once
#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"
#include "shm/counters.hpp"
#include "shm/relay_ring.hpp"

namespace shoal::worker {

class ClusterRelay {
 public:
  // `relay_base`: the mapped relay segment of geometry `g` (g.sync == 1); `control`: the control
  // segment (socket slots' active processes); `socket_eventfds[d * 2 + k]` wakes socket slot d's
  // process on ring set k. All outlive the relay.
  ClusterRelay(const conf::Config& cfg, void* relay_base, shm::RelayGeometry g, uint16_t node_id,
               const shm::ControlSegment* control, std::vector<int> socket_eventfds, shm::CounterBlock* counters);
  ~ClusterRelay();
  ClusterRelay(const ClusterRelay&) = delete;
  ClusterRelay& operator=(const ClusterRelay&) = delete;

  // Subscribes to this node's relay subject. False (logged) when the client refuses.
  bool listen(natsConnection* nc);
  // Sends what the socket workers queued and hands what arrived to them. Returns whether
  // anything moved (the caller may poll again sooner).
  bool step();

 private:
  bool send_out();
  bool take_in();

  void* base_;
  shm::RelayGeometry g_;
  uint16_t node_id_;
  const shm::ControlSegment* control_;
  std::vector<int> wake_fds_;
  shm::CounterBlock* counters_;
  std::string subject_prefix_;  // "<cluster.subject>.relay."
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::vector<shm::RelayRing> from_socket_;  // [s * 2 + ks] → sync
  std::vector<shm::RelayRing> to_socket_;    // sync → [d * 2 + kd]
  std::vector<uint8_t> dirty_;               // to_socket_ rings with unpublished records
  std::vector<uint8_t> buf_;
  uint32_t bad_logged_ = 0;
};

}  // namespace shoal::worker
