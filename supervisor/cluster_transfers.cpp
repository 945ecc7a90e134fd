// supervisor/cluster_transfers.cpp — see cluster_transfers.hpp.
#include "supervisor/cluster_transfers.hpp"

#include <unistd.h>

#include <cstring>
#include <string>

#include "supervisor/log.hpp"
#include "supervisor/transfer_store.hpp"

namespace shoal::supervisor {

ClusterTransferLink::ClusterTransferLink(TransferStore* store, event_base* base, void* cluster_base,
                                         const shm::ClusterGeometry& g)
    : store_(store),
      out_(shm::cluster_transfer_out_ring(cluster_base, g)),
      in_(shm::cluster_transfer_in_ring(cluster_base, g)) {
  timer_ = event_new(base, -1, EV_PERSIST, &on_timer, this);
  timeval every{0, 100000};
  event_add(timer_, &every);
}

ClusterTransferLink::~ClusterTransferLink() { event_free(timer_); }

void ClusterTransferLink::on_timer(evutil_socket_t, short, void* arg) { static_cast<ClusterTransferLink*>(arg)->poll(); }

void ClusterTransferLink::local_change(const uint8_t* info_hash, bool added) {
  if (applying_) return;
  if (out_.free_slots() == 0) {
    LOG_WARN("cluster: transfer %s not sent to the other nodes: the sync worker does not take changes (ring full); "
             "they receive it when this node reconnects", info_hash_hex(info_hash).c_str());
    return;
  }
  shm::TransferNotice* n = out_.slot_for_write(0);
  *n = shm::TransferNotice{};
  std::memcpy(n->info_hash, info_hash, 20);
  n->op = added ? shm::kTransferNoticeAdd : shm::kTransferNoticeRemove;
  out_.publish(1);
}

void ClusterTransferLink::poll() {
  uint64_t n = in_.available();
  for (uint64_t k = 0; k < n; k++) {
    const shm::TransferNotice t = *in_.peek(k);
    std::string hex = info_hash_hex(t.info_hash), why;
    applying_ = true;
    if (t.op == shm::kTransferNoticeRemove) {
      if (store_->find(t.info_hash) && store_->remove(t.info_hash, &why))
        LOG_INFO("cluster: transfer %s removed (by another node)", hex.c_str());
      else if (!why.empty())
        LOG_WARN("cluster: transfer %s removed by another node: %s", hex.c_str(), why.c_str());
    } else if (t.op == shm::kTransferNoticeAdd) {
      std::string path = store_->dir() + "/.cluster-in/" + hex + ".torrent", bytes;
      const Transfer* added = nullptr;
      if (access(path.c_str(), F_OK) != 0) {
        // a repeated notice: the first one took the file
      } else if (!read_torrent_file(path, false, &bytes, &why)) {
        LOG_WARN("cluster: transfer from another node: cannot read %s", why.c_str());
      } else if (store_->add(bytes, &added, &why) == TransferStore::AddResult::added) {
        if (std::memcmp(added->meta.info_hash, t.info_hash, 20) == 0)
          LOG_INFO("cluster: transfer %s (%s) registered (by another node)", hex.c_str(), added->meta.name.c_str());
        else  // the sender's info_hash was not its .torrent's: registered under its own
          LOG_WARN("cluster: another node sent transfer %s as %s", info_hash_hex(added->meta.info_hash).c_str(), hex.c_str());
      } else if (!why.empty()) {
        LOG_WARN("cluster: transfer %s of another node not registered: %s", hex.c_str(), why.c_str());
      }
      unlink(path.c_str());
    }
    applying_ = false;
  }
  in_.retire(n);
}

}  // namespace shoal::supervisor
