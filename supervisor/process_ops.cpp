// supervisor/process_ops.cpp — see process_ops.hpp.
#include "supervisor/process_ops.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "shm/clock.hpp"

namespace shoal::supervisor {

SystemProcessOps::SystemProcessOps(event_base* base, size_t slots, std::function<void(const Slot&)> child,
                                   std::vector<int> handoff_eventfds)
    : base_(base), child_(std::move(child)), handoff_eventfds_(std::move(handoff_eventfds)), restart_args_(slots) {
  for (size_t i = 0; i < slots; i++) {
    restart_args_[i] = RestartArg{this, i};
    restart_timers_.push_back(evtimer_new(base_, &SystemProcessOps::on_restart, &restart_args_[i]));
  }
  roll_timer_ = event_new(base_, -1, EV_PERSIST, &SystemProcessOps::on_roll, this);
  stop_deadline_ = evtimer_new(base_, &SystemProcessOps::on_stop_deadline, this);
  if (!roll_timer_ || !stop_deadline_) throw std::runtime_error("cannot create the supervisor's timers");
}

SystemProcessOps::~SystemProcessOps() {
  for (event* e : restart_timers_) event_free(e);
  event_free(roll_timer_);
  event_free(stop_deadline_);
}

pid_t SystemProcessOps::spawn(const Slot& s) {
  pid_t pid = fork();
  if (pid == 0) {
    child_(s);
    _exit(1);  // never reached: the child runs its worker and _exits
  }
  return pid;
}

void SystemProcessOps::wake_handoff(const Slot& s) {
  if (s.index >= handoff_eventfds_.size()) return;
  uint64_t one = 1;
  ssize_t r = write(handoff_eventfds_[s.index], &one, sizeof one);
  (void)r;  // EAGAIN: a count is already pending; the successor also looks every 10 ms
}

int SystemProcessOps::kill(pid_t pid, int sig) {
  if (pid <= 0) return errno = ESRCH, -1;  // kill(2) would signal a whole process group
  return ::kill(pid, sig);
}

pid_t SystemProcessOps::wait_nohang(int* status) {
  pid_t pid = waitpid(-1, status, WNOHANG);
  return pid < 0 ? 0 : pid;
}

void SystemProcessOps::wait_exit(pid_t pid) { waitpid(pid, nullptr, 0); }

uint64_t SystemProcessOps::now_ns() { return shm::monotonic_ns(); }

void SystemProcessOps::arm_restart(size_t slot, uint64_t delay_ms) {
  timeval tv{long(delay_ms / 1000), long((delay_ms % 1000) * 1000)};
  evtimer_add(restart_timers_[slot], &tv);
}

void SystemProcessOps::cancel_restart(size_t slot) { evtimer_del(restart_timers_[slot]); }

void SystemProcessOps::set_roll_timer(bool on) {
  if (!on) {
    evtimer_del(roll_timer_);
    return;
  }
  timeval every{0, long(WorkerCycle::kRollTickMs * 1000)};
  evtimer_add(roll_timer_, &every);
}

void SystemProcessOps::arm_stop_deadline(uint32_t seconds) {
  timeval tv{long(seconds), 0};
  evtimer_add(stop_deadline_, &tv);
}

void SystemProcessOps::stopped() { event_base_loopbreak(base_); }

void SystemProcessOps::on_restart(evutil_socket_t, short, void* arg) {
  auto* a = static_cast<RestartArg*>(arg);
  a->ops->cycle_->restart_due(a->slot);
}

void SystemProcessOps::on_roll(evutil_socket_t, short, void* arg) { static_cast<SystemProcessOps*>(arg)->cycle_->roll_step(); }

void SystemProcessOps::on_stop_deadline(evutil_socket_t, short, void* arg) {
  static_cast<SystemProcessOps*>(arg)->cycle_->stop_deadline();
}

}  // namespace shoal::supervisor
