// worker/cluster_stopped.cpp — see cluster_stopped.hpp.
#include "worker/cluster_stopped.hpp"

namespace shoal::worker {

size_t StoppedMemory::note(const shm::Delta* d, size_t n, uint64_t now_ms, uint8_t mask) {
  size_t dropped = 0;
  for (size_t k = 0; k < n; k++) {
    if (!(d[k].flags & mask)) continue;
    if (kept_.size() == kStoppedKeepMax) {
      kept_.pop_front();
      dropped++;
    }
    kept_.push_back(Entry{now_ms, d[k]});
  }
  return dropped;
}

void StoppedMemory::prune(uint64_t now_ms) {
  while (!kept_.empty() && kept_.front().ms + kStoppedKeepMs < now_ms) kept_.pop_front();
}

std::vector<shm::Delta> StoppedMemory::all() const {
  std::vector<shm::Delta> out;
  out.reserve(kept_.size());
  for (const Entry& e : kept_) out.push_back(e.d);
  return out;
}

}  // namespace shoal::worker
