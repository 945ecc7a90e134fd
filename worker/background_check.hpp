// worker/background_check.hpp — the full validation of a swarm worker's partition, run on a
// snapshot while the worker already serves (issue 12, recovery time). A replacement worker rolls
// back its predecessor's unfinished transaction and serves at once (Partition::recover_fast);
// this class then copies the segment between two batches (one memcpy: ~10 ms at 1,000,000
// peers), validates the copy on a helper thread (Partition::validate_copy, ~0.2-0.5 s), and
// reports back in the worker's event loop. Only the copy is shared with the thread; the live
// segment is read once, by the worker's own thread, at a point where no transaction is open.
#pragma once
#include <event2/event.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace shoal::worker {

class BackgroundCheck {
 public:
  // Copies `size` bytes of the mapped partition at `segment` (call between transactions), then
  // validates the copy on a thread; `done(problem, ms)` runs in `base`'s loop when it finishes
  // (problem "" when consistent; ms = validation time). Throws std::runtime_error if the copy
  // cannot be allocated or the thread not started.
  BackgroundCheck(event_base* base, const void* segment, size_t size,
                  std::function<void(const std::string& problem, double ms)> done);
  ~BackgroundCheck();  // waits for the thread
  BackgroundCheck(const BackgroundCheck&) = delete;
  BackgroundCheck& operator=(const BackgroundCheck&) = delete;

  bool finished() const { return finished_; }

 private:
  static void on_done(evutil_socket_t fd, short, void* arg);
  std::unique_ptr<uint8_t, void (*)(void*)> copy_;
  size_t size_;
  int efd_ = -1;
  event* ev_ = nullptr;
  std::thread thread_;
  std::string problem_;
  double ms_ = 0;
  bool finished_ = false;
  std::function<void(const std::string&, double)> done_;
};

}  // namespace shoal::worker
