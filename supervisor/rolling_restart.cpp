// supervisor/rolling_restart.cpp — replaces every worker, one slot at a time, without losing
// requests (stats "restart workers", SIGUSR2). Part of WorkerCycle (worker_cycle.hpp); runs in
// the supervisor's loop on a 20 ms timer.
//   swarm slot (and the sync worker's): SIGTERM the worker (it finishes its batch and exits 0), start the new one; the
//                rings hold the requests in between (one writer per partition, never two).
//   socket slot: start the new worker first, on the same sockets and the other ring set; when
//                it reports ready, SIGUSR2 the old one, which stops reading, finishes its
//                in-flight work on its own ring set and exits. If the new one is not ready in
//                time it is killed and the old one keeps serving (the roll is abandoned).
#include <signal.h>

#include "supervisor/log.hpp"
#include "supervisor/worker_cycle.hpp"

namespace shoal::supervisor {

bool WorkerCycle::start_rolling_restart(std::string* msg) {
  if (stopping_) return *msg = "shoald is stopping", false;
  if (rolling_) return *msg = "a rolling restart is already in progress", false;
  // Slots stopped by the crash-loop breaker start again now (fresh count); the roll then
  // skips them, since their new process is already the latest.
  uint32_t revived = 0;
  for (size_t i = 0; i < slots_.size(); i++) {
    Slot& s = slots_[i];
    if (!s.crash_looping) continue;
    s.crash_looping = false;
    s.crash_times_ns.clear();
    s.crash_streak = 0;
    LOG_INFO("%s: starting it again after its crash loop", s.name().c_str());
    spawn(i);
    revived++;
  }
  rolling_ = true;
  roll_phase_ = RollPhase::idle;
  roll_next_ = 0;
  roll_done_ = 0;
  ops_->set_roll_timer(true);
  *msg = "rolling restart of " + std::to_string(slots_.size()) + " workers started";
  if (revived) *msg += " (" + std::to_string(revived) + " stopped by the crash-loop breaker started again)";
  LOG_INFO("%s", msg->c_str());
  return true;
}

void WorkerCycle::roll_abort(const std::string& why) {
  LOG_ERROR("rolling restart abandoned after %u workers: %s", roll_done_, why.c_str());
  roll_phase_ = RollPhase::idle;
  rolling_ = false;
  ops_->set_roll_timer(false);
}

void WorkerCycle::on_drained_exit(Slot& slot, int status) {
  LOG_INFO("%s (pid %d, generation %u) finished draining and exited (%s %d)", slot.name().c_str(), int(slot.draining_pid),
           slot.draining_generation, WIFSIGNALED(status) ? "signal" : "code",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  slot.draining_pid = 0;
  slot.draining_generation = 0;
  shm::store_u32(control_->socket_sets[slot.index].draining_generation, 0);
}

// The successor of a socket slot was not ready in time: it is killed (or, in back-off, never
// started), and the draining process, which still owns its ring set, is the slot's worker again.
void WorkerCycle::roll_keep_old(Slot& s) {
  if (pid_t fresh = s.pid) {
    ops_->kill(fresh, SIGKILL);
    ops_->wait_exit(fresh);
  }
  ops_->cancel_restart(size_t(&s - slots_.data()));  // a successor in back-off must not be started later
  s.pid = s.draining_pid;
  s.generation = s.draining_generation;
  s.ring_set = s.draining_set;
  shm::store_u32(control_->socket_sets[s.index].active_set, s.ring_set);
  s.draining_pid = 0;
  s.draining_generation = 0;
  s.state = SlotState::running;
  shm::store_u32(control_->socket_sets[s.index].active_generation, s.generation);
  shm::store_u32(control_->socket_sets[s.index].draining_generation, 0);
  shm::store_u32(shm_slot(s).pid, uint32_t(s.pid));
  shm::store_u32(shm_slot(s).generation, s.generation);
  shm::store_u32(shm_slot(s).ready, s.generation);
}

void WorkerCycle::roll_step() {
  if (!rolling_) return;
  if (stopping_) return roll_abort("shoald is stopping");
  uint64_t now = ops_->now_ns();
  if (roll_phase_ == RollPhase::idle) {
    while (roll_next_ < slots_.size() && slots_[roll_next_].pid == 0) roll_next_++;  // in back-off: skip
    if (roll_next_ == slots_.size()) {
      LOG_INFO("rolling restart done: %u workers replaced", roll_done_);
      rolling_ = false;
      ops_->set_roll_timer(false);
      return;
    }
    Slot& s = slots_[roll_next_];
    if (s.role != shm::WorkerRole::socket) {  // swarm and sync workers: one process at a time
      s.state = SlotState::draining;
      ops_->kill(s.pid, SIGTERM);
      roll_phase_ = RollPhase::swarm_wait_exit;
      roll_deadline_ns_ = now + kExitTimeoutNs;
    } else {
      s.draining_pid = s.pid;
      s.draining_generation = s.generation;
      s.draining_set = s.ring_set;
      shm::store_u32(control_->socket_sets[s.index].draining_set, s.draining_set);
      shm::store_u32(control_->socket_sets[s.index].draining_generation, s.generation);
      s.pid = 0;
      spawn(roll_next_);  // on the other ring set
      roll_phase_ = RollPhase::wait_ready;
      roll_deadline_ns_ = now + kReadyTimeoutNs;
    }
    return;
  }
  Slot& s = slots_[roll_next_];
  switch (roll_phase_) {
    case RollPhase::swarm_wait_exit:
      if (s.pid == 0) {
        spawn(roll_next_);
        roll_phase_ = RollPhase::wait_ready;
        roll_deadline_ns_ = now + kReadyTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) did not exit within 5 s: sending SIGKILL", s.name().c_str(), int(s.pid));
        ops_->kill(s.pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::wait_ready:
      if (s.pid != 0 && shm::load_u32(shm_slot(s).ready) == s.generation) {
        if (s.role == shm::WorkerRole::socket) {
          ops_->kill(s.draining_pid, SIGUSR2);
          roll_phase_ = RollPhase::socket_wait_drained;
          roll_deadline_ns_ = now + kDrainTimeoutNs;
        } else {
          roll_done_++;
          roll_next_++;
          roll_phase_ = RollPhase::idle;
        }
      } else if (now > roll_deadline_ns_) {
        if (s.role == shm::WorkerRole::socket && s.draining_pid != 0) {
          roll_keep_old(s);
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
        ops_->kill(s.draining_pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::idle: break;
  }
}

}  // namespace shoal::supervisor
