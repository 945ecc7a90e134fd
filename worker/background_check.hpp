// worker/background_check.hpp — the full check of a swarm worker's partition while the worker
// already serves (issue 12, recovery time). A replacement worker rolls back its predecessor's
// unfinished transaction and serves at once (Partition::recover_fast); this class then runs
// Partition::check_step in slices from the worker's event loop, one slice every 2 ms at the
// loop's lowest priority (after the ready requests), each slice at most ~0.3 ms of work, so no
// request waits longer than that for it. Damage found is repaired at once (Partition::recover: validate, rebuild).
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <string>

#include "shm/counters.hpp"
#include "shm/partition.hpp"

namespace shoal::worker {

class BackgroundCheck {
 public:
  // Checks `part` (partition `index`) from `base`'s loop, `budget` records and slots a slice;
  // counts a repair into `counters`. Logs the outcome. Throws std::runtime_error if libevent fails.
  BackgroundCheck(event_base* base, shm::Partition* part, uint32_t index, shm::CounterBlock* counters,
                  uint32_t budget = 256);
  ~BackgroundCheck();
  BackgroundCheck(const BackgroundCheck&) = delete;
  BackgroundCheck& operator=(const BackgroundCheck&) = delete;

  bool finished() const { return finished_; }

 private:
  static void on_slice(evutil_socket_t, short, void* arg);
  shm::Partition* part_;
  uint32_t index_;
  shm::CounterBlock* counters_;
  uint32_t budget_;
  shm::Partition::IncrementalCheck st_;
  event* ev_ = nullptr;
  uint64_t started_ns_;
  uint32_t slices_ = 0;
  bool finished_ = false;
};

}  // namespace shoal::worker
