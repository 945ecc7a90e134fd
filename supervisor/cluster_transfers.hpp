// supervisor/cluster_transfers.hpp — the supervisor's side of deploy transfers on every node of a
// cluster (issue 14; the sync worker's side and the message format: worker/cluster_transfers.hpp).
// A transfer registered or removed here (shoalctl, admin API) is queued for the sync worker,
// which publishes it; another node's registration arrives as a notice plus the .torrent in
// <state_dir>/.cluster-in/, and is registered here like an upload (validated, stored durably in
// state_dir, published to the socket workers), a removal likewise. Polled every 100 ms.
#pragma once
#include <event2/event.h>

#include <cstdint>

#include "shm/cluster_segment.hpp"

namespace shoal::supervisor {

class TransferStore;

class ClusterTransferLink {
 public:
  // `store` and the cluster segment at `cluster_base` outlive this object.
  ClusterTransferLink(TransferStore* store, event_base* base, void* cluster_base, const shm::ClusterGeometry& g);
  ~ClusterTransferLink();
  // TransferStore's change hook: queues a change made on this node for the other nodes (changes
  // this object makes for another node are not sent back).
  void local_change(const uint8_t* info_hash, bool added);

 private:
  static void on_timer(evutil_socket_t, short, void* arg);
  void poll();

  TransferStore* store_;
  event* timer_;
  shm::SpscRing<shm::TransferNotice> out_, in_;
  bool applying_ = false;
};

}  // namespace shoal::supervisor
