// supervisor/rolling_restart.cpp — replaces every worker, one slot at a time, without losing
// requests (stats "restart workers", SIGUSR2). Runs in the supervisor's loop on a 20 ms timer.
//   swarm slot:  SIGTERM the worker (it finishes its batch and exits 0), start the new one; the
//                rings hold the requests in between (one writer per partition, never two).
//   socket slot: start the new worker first, on the same sockets and the other ring set; when
//                it reports ready, SIGUSR2 the old one, which stops reading, finishes its
//                in-flight work on its own ring set and exits. If the new one is not ready in
//                time it is killed and the old one keeps serving (the roll is abandoned).
#include <signal.h>
#include <sys/wait.h>

#include <cstring>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "supervisor/supervisor.hpp"

namespace shoal::supervisor {
namespace {
constexpr uint64_t kReadyTimeoutNs = 5ull * 1000000000ull;
constexpr uint64_t kExitTimeoutNs = 5ull * 1000000000ull;
constexpr uint64_t kDrainTimeoutNs = 15ull * 1000000000ull;
}  // namespace

bool Supervisor::start_rolling_restart(std::string* msg) {
  if (stopping_) return *msg = "shoald is stopping", false;
  if (roll_phase_ != RollPhase::idle || (roll_timer_ && evtimer_pending(roll_timer_, nullptr)))
    return *msg = "a rolling restart is already in progress", false;
  // Slots stopped by the crash-loop breaker start again now (fresh count); the roll then
  // skips them, since their new process is already the latest.
  uint32_t revived = 0;
  for (Slot& s : slots_) {
    if (!s.crash_looping) continue;
    s.crash_looping = false;
    s.crash_times_ns.clear();
    s.crash_streak = 0;
    LOG_INFO("%s: starting it again after its crash loop", s.name().c_str());
    spawn(s);
    revived++;
  }
  if (!roll_timer_) roll_timer_ = event_new(base_, -1, EV_PERSIST, &Supervisor::on_roll_timer, this);
  roll_next_ = 0;
  roll_done_ = 0;
  timeval every{0, 20000};
  evtimer_add(roll_timer_, &every);
  *msg = "rolling restart of " + std::to_string(slots_.size()) + " workers started";
  if (revived) *msg += " (" + std::to_string(revived) + " stopped by the crash-loop breaker started again)";
  LOG_INFO("%s", msg->c_str());
  return true;
}

void Supervisor::on_roll_timer(evutil_socket_t, short, void* arg) { static_cast<Supervisor*>(arg)->roll_step(); }

void Supervisor::roll_abort(const std::string& why) {
  LOG_ERROR("rolling restart abandoned after %u workers: %s", roll_done_, why.c_str());
  roll_phase_ = RollPhase::idle;
  evtimer_del(roll_timer_);
}

void Supervisor::on_drained_exit(Slot& slot, int status) {
  LOG_INFO("%s (pid %d, generation %u) finished draining and exited (%s %d)", slot.name().c_str(), int(slot.draining_pid),
           slot.draining_generation, WIFSIGNALED(status) ? "signal" : "code",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  slot.draining_pid = 0;
  slot.draining_generation = 0;
  shm::store_u32(control()->socket_sets[slot.index].draining_generation, 0);
}

void Supervisor::roll_step() {
  if (stopping_) return roll_abort("shoald is stopping");
  uint64_t now = shm::monotonic_ns();
  if (roll_phase_ == RollPhase::idle) {
    while (roll_next_ < slots_.size() && slots_[roll_next_].pid == 0) roll_next_++;  // in back-off: skip
    if (roll_next_ == slots_.size()) {
      LOG_INFO("rolling restart done: %u workers replaced", roll_done_);
      evtimer_del(roll_timer_);
      return;
    }
    Slot& s = slots_[roll_next_];
    if (s.role == shm::WorkerRole::swarm) {
      s.state = SlotState::draining;
      kill(s.pid, SIGTERM);
      roll_phase_ = RollPhase::swarm_wait_exit;
      roll_deadline_ns_ = now + kExitTimeoutNs;
    } else {
      s.draining_pid = s.pid;
      s.draining_generation = s.generation;
      s.draining_set = s.ring_set;
      shm::store_u32(control()->socket_sets[s.index].draining_set, s.draining_set);
      shm::store_u32(control()->socket_sets[s.index].draining_generation, s.generation);
      s.pid = 0;
      spawn(s);  // on the other ring set
      roll_phase_ = RollPhase::wait_ready;
      roll_deadline_ns_ = now + kReadyTimeoutNs;
    }
    return;
  }
  Slot& s = slots_[roll_next_];
  switch (roll_phase_) {
    case RollPhase::swarm_wait_exit:
      if (s.pid == 0) {
        spawn(s);
        roll_phase_ = RollPhase::wait_ready;
        roll_deadline_ns_ = now + kReadyTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) did not exit within 5 s: sending SIGKILL", s.name().c_str(), int(s.pid));
        kill(s.pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::wait_ready:
      if (s.pid != 0 && shm::load_u32(control()->slots[slot_number(s)].ready) == s.generation) {
        if (s.role == shm::WorkerRole::socket) {
          kill(s.draining_pid, SIGUSR2);
          roll_phase_ = RollPhase::socket_wait_drained;
          roll_deadline_ns_ = now + kDrainTimeoutNs;
        } else {
          roll_done_++;
          roll_next_++;
          roll_phase_ = RollPhase::idle;
        }
      } else if (now > roll_deadline_ns_) {
        if (s.role == shm::WorkerRole::socket && s.draining_pid != 0) {
          pid_t fresh = s.pid;
          if (fresh) {
            kill(fresh, SIGKILL);
            waitpid(fresh, nullptr, 0);
          }
          evtimer_del(s.restart_timer);  // a successor in back-off must not be started later
          s.pid = s.draining_pid;
          s.generation = s.draining_generation;
          s.ring_set = s.draining_set;
          shm::store_u32(control()->socket_sets[s.index].active_set, s.ring_set);
          s.draining_pid = 0;
          s.draining_generation = 0;
          s.state = SlotState::running;
          shm::store_u32(control()->socket_sets[s.index].active_generation, s.generation);
          shm::store_u32(control()->socket_sets[s.index].draining_generation, 0);
          shm::store_u32(control()->slots[slot_number(s)].pid, uint32_t(s.pid));
          shm::store_u32(control()->slots[slot_number(s)].generation, s.generation);
          shm::store_u32(control()->slots[slot_number(s)].ready, s.generation);
          return roll_abort("new " + s.name() + " was not ready within 5 s; the old one (pid " + std::to_string(s.pid) + ") keeps serving");
        }
        return roll_abort(s.name() + " was not ready within 5 s after its restart");
      }
      break;
    case RollPhase::socket_wait_drained:
      if (s.draining_pid == 0) {
        roll_done_++;
        roll_next_++;
        roll_phase_ = RollPhase::idle;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) still draining after 15 s: sending SIGKILL", s.name().c_str(), int(s.draining_pid));
        kill(s.draining_pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::idle: break;
  }
}

}  // namespace shoal::supervisor
