// worker/background_check.cpp — see background_check.hpp.
#include "worker/background_check.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/partition.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {

BackgroundCheck::BackgroundCheck(event_base* base, const void* segment, size_t size,
                                 std::function<void(const std::string&, double)> done)
    : copy_(static_cast<uint8_t*>(std::aligned_alloc(64, (size + 63) / 64 * 64)), &std::free), size_(size),
      done_(std::move(done)) {
  if (!copy_) throw std::runtime_error("no memory for a snapshot of the partition");
  std::memcpy(copy_.get(), segment, size);
  efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd_ < 0) throw std::runtime_error("eventfd failed");
  ev_ = event_new(base, efd_, EV_READ, &on_done, this);
  event_add(ev_, nullptr);
  thread_ = std::thread([this] {
    uint64_t t0 = shm::monotonic_ns();
    problem_ = shm::Partition::validate_copy(copy_.get(), size_);
    ms_ = double(shm::monotonic_ns() - t0) / 1e6;
    wake(efd_);  // the write orders problem_ and ms_ before the loop's read of the eventfd
  });
}

BackgroundCheck::~BackgroundCheck() {
  if (thread_.joinable()) thread_.join();
  if (ev_) event_free(ev_);
  if (efd_ >= 0) close(efd_);
}

void BackgroundCheck::on_done(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<BackgroundCheck*>(arg);
  drain_eventfd(fd);
  self->thread_.join();
  self->copy_.reset();  // give the snapshot's memory back now
  self->finished_ = true;
  self->done_(self->problem_, self->ms_);
}

}  // namespace shoal::worker
