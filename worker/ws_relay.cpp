// worker/ws_relay.cpp — see ws_relay.hpp. Runs in a socket worker; writes only its outbound
// rings' heads and its inbound rings' tails.
#include "worker/ws_relay.hpp"

#include <cstring>

#include "worker/worker_common.hpp"

namespace shoal::worker {

WsRelay::WsRelay(void* base, shm::RelayGeometry g, WsIdentity self, std::vector<int> wake_fds, shm::CounterBlock* counters)
    : g_(g), slot_(self.slot), set_(self.ring_set & 1), generation_(self.generation), wake_fds_(std::move(wake_fds)),
      counters_(counters) {
  for (uint32_t d = 0; d < g_.endpoints(); d++)
    for (uint32_t k = 0; k < g_.kSets; k++) {
      out_.push_back(shm::relay_ring(base, g_, slot_, set_, d, k));
      in_.push_back(shm::relay_ring(base, g_, d, k, slot_, set_));
    }
  dirty_.assign(out_.size(), 0);
}

bool WsRelay::send(const RelayTarget& to, uint16_t kind, const RelayHead& head, std::string_view sdp_json) {
  bool remote = to.node != 0;
  size_t i = remote ? size_t(g_.workers) * g_.kSets : size_t(to.slot) * g_.kSets + (to.ring_set & 1);
  if (remote ? !g_.sync : to.slot >= g_.workers || (to.slot == slot_ && (to.ring_set & 1) == set_)) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return false;
  }
  uint32_t payload = uint32_t(sizeof head + sdp_json.size());
  uint8_t* at = out_[i].reserve(payload);
  if (!at) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return false;
  }
  shm::RelayRecord rec{payload, kind, uint16_t(remote ? to.slot : 0), to.generation, to.token};
  RelayHead h = head;
  h.node = to.node;
  std::memcpy(at, &rec, sizeof rec);
  std::memcpy(at + sizeof rec, &h, sizeof h);
  std::memcpy(at + sizeof rec + sizeof head, sdp_json.data(), sdp_json.size());
  out_[i].commit();
  dirty_[i] = 1;
  return true;
}

void WsRelay::flush() {
  for (size_t i = 0; i < out_.size(); i++) {
    if (!dirty_[i]) continue;
    dirty_[i] = 0;
    // i = d * kSets + kd: that process's own eventfd (the sync worker polls on its timer)
    if (out_[i].publish() && i < wake_fds_.size()) wake(wake_fds_[i]);
  }
}

uint64_t WsRelay::poll(const Handler& fn) {
  uint64_t n = 0;
  for (shm::RelayRing& ring : in_) {
    if (!ring.valid()) continue;
    while (const shm::RelayRecord* r = ring.next()) {
      if (r->target_generation == generation_ && r->length >= sizeof(RelayHead)) {
        RelayHead head;
        const uint8_t* p = reinterpret_cast<const uint8_t*>(r + 1);
        std::memcpy(&head, p, sizeof head);
        fn(r->kind, r->target_token, head,
           std::string_view(reinterpret_cast<const char*>(p + sizeof head), r->length - sizeof head));
        n++;
      } else {
        shm::count(counters_, shm::Counter::ws_relay_dropped);  // for an older process of this slot
      }
      ring.consume(r);
    }
    ring.release();
  }
  return n;
}

}  // namespace shoal::worker
