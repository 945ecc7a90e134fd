// worker/background_check.cpp — see background_check.hpp.
#include "worker/background_check.hpp"

#include <stdexcept>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {

namespace {
constexpr timeval kEvery{0, 2000};  // one slice every 2 ms: ~15 % of a CPU at most
}

BackgroundCheck::BackgroundCheck(event_base* base, shm::Partition* part, uint32_t index, shm::CounterBlock* counters,
                                 uint32_t budget)
    : part_(part), index_(index), counters_(counters), budget_(budget), started_ns_(shm::monotonic_ns()) {
  ev_ = event_new(base, -1, EV_PERSIST, &on_slice, this);
  if (!ev_) throw std::runtime_error("event_new failed");
  event_priority_set(ev_, kPriorityLow);
  event_add(ev_, &kEvery);
}

BackgroundCheck::~BackgroundCheck() { event_free(ev_); }

void BackgroundCheck::on_slice(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<BackgroundCheck*>(arg);
  self->slices_++;
  // A slice ends after ~0.3 ms of work, in steps of `budget_` items: the first passes over a
  // fresh process's mapping take a page fault per partition page (~15,000 at 1,000,000 peers),
  // which made fixed-size slices stall requests for up to ~35 ms.
  std::string problem;
  uint64_t t0 = shm::monotonic_ns();
  do {
    problem = self->part_->check_step(self->st_, self->budget_);
  } while (problem.empty() && self->st_.phase < 3 && shm::monotonic_ns() - t0 < 300000);
  double ms = double(shm::monotonic_ns() - self->started_ns_) / 1e6;
  if (!problem.empty()) {
    shm::RecoverReport rep = self->part_->recover();  // validates it all, rebuilds it if damaged
    shm::count(self->counters_, shm::Counter::partition_repairs);
    LOG_ERROR("partition %u: the check in the background found damage (%s); repaired: %s; %u torrents, %u peers kept",
              self->index_, problem.c_str(), rep.rebuilt ? ("rebuilt, " + rep.problem).c_str() : "it checks clean now",
              rep.torrents, rep.peers);
  } else if (self->st_.phase < 3) {
    return;
  } else {
    LOG_INFO("partition %u checked in full in the background: consistent (%llu records and index slots, %u slices, %.0f ms)",
             self->index_, (unsigned long long)self->st_.items, self->slices_, ms);
  }
  self->finished_ = true;
  event_del(self->ev_);
}

}  // namespace shoal::worker
