// supervisor/rolling_restart.cpp — replaces every worker, one slot at a time, without losing
// requests (stats "restart workers", SIGUSR2). Part of WorkerCycle (worker_cycle.hpp); runs in
// the supervisor's loop on a 20 ms timer and at every reap.
//   swarm slot:  a partition has one writer, so the successor is started while the old worker
//                still serves, attaches everything and waits without writing (its `standby` word
//                in the control segment). Then the old worker gets SIGTERM: it finishes its batch,
//                stores `released` = its generation as its last write and wakes the successor
//                (worker/swarm_handoff.hpp), which rolls back anything unfinished and serves at
//                once; the old one's exit (the kernel tearing down its mapping of the partition)
//                is no longer on the way. If the old one dies before it releases, the supervisor
//                reaps it, then releases on its behalf; the successor rolls back the undo journal
//                as after a crash. The rings hold the requests in between.
//   sync worker: one process at a time (it alone produces the cluster in rings and consumes the
//                out rings): SIGTERM, wait until it is reaped, then start the new one.
//   socket slot: start the new worker first, on the same sockets and the other ring set; when
//                it reports ready, SIGUSR2 the old one, which stops reading, finishes its
//                in-flight work on its own ring set and exits.
// If the new worker is not ready (swarm: standby) in time it is killed and the old one keeps
// serving (the roll is abandoned).
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

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
  roll_deadline_ns_ = 0;
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

void WorkerCycle::set_draining(Slot& s, pid_t pid, uint32_t generation) {
  s.draining_pid = pid;
  s.draining_generation = generation;
  shm::store_u32(shm_slot(s).draining_pid, uint32_t(pid));
}

void WorkerCycle::on_drained_exit(Slot& slot, int status) {
  char how[64];
  snprintf(how, sizeof how, "%s %d", WIFSIGNALED(status) ? "signal" : "code", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
  if (slot.role == shm::WorkerRole::swarm) {
    // Reaped: it can write nothing any more. If it died before its release, release its
    // partition on its behalf; the successor then rolls back what it left unfinished.
    shm::WorkerSlot& ws = shm_slot(slot);
    bool released = shm::load_u32(ws.released) >= slot.draining_generation;
    shm::raise_u32(ws.released, slot.draining_generation);
    if (slot.pid != 0) ops_->wake_handoff(slot);
    if (released)
      LOG_INFO("%s (pid %d, generation %u) released its partition and exited (%s)", slot.name().c_str(),
               int(slot.draining_pid), slot.draining_generation, how);
    else
      LOG_WARN("%s (pid %d, generation %u) died before it released its partition (%s); its successor takes the "
               "partition and rolls back what it left unfinished", slot.name().c_str(), int(slot.draining_pid),
               slot.draining_generation, how);
  } else {
    LOG_INFO("%s (pid %d, generation %u) finished draining and exited (%s)", slot.name().c_str(), int(slot.draining_pid),
             slot.draining_generation, how);
    if (slot.role == shm::WorkerRole::socket) shm::store_u32(control_->socket_sets[slot.index].draining_generation, 0);
  }
  set_draining(slot, 0, 0);
}

// The successor was not ready (swarm: standby) in time: it is killed (or, in back-off, never
// started), and the draining process, which still owns its ring set (swarm: its partition; it
// was never asked to release it), is the slot's worker again.
void WorkerCycle::roll_keep_old(Slot& s) {
  if (pid_t fresh = s.pid) {
    ops_->kill(fresh, SIGKILL);
    ops_->wait_exit(fresh);
  }
  ops_->cancel_restart(size_t(&s - slots_.data()));  // a successor in back-off must not be started later
  s.pid = s.draining_pid;
  s.generation = s.draining_generation;
  s.handoff_from = 0;
  set_draining(s, 0, 0);
  s.state = SlotState::running;
  if (s.role == shm::WorkerRole::socket) {
    s.ring_set = s.draining_set;
    shm::store_u32(control_->socket_sets[s.index].active_set, s.ring_set);
    shm::store_u32(control_->socket_sets[s.index].active_generation, s.generation);
    shm::store_u32(control_->socket_sets[s.index].draining_generation, 0);
  }
  shm::store_u32(shm_slot(s).pid, uint32_t(s.pid));
  shm::store_u32(shm_slot(s).generation, s.generation);
  shm::store_u32(shm_slot(s).ready, s.generation);
}

void WorkerCycle::roll_next_slot() {
  roll_done_++;
  roll_next_++;
  roll_phase_ = RollPhase::idle;
  roll_deadline_ns_ = 0;
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
    if (s.draining_pid != 0) {  // its process of an earlier roll has released, and still exits
      if (roll_deadline_ns_ == 0) {
        roll_deadline_ns_ = now + kExitTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) of an earlier roll has not exited within 5 s: sending SIGKILL", s.name().c_str(),
                 int(s.draining_pid));
        ops_->kill(s.draining_pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      return;
    }
    set_draining(s, s.pid, s.generation);
    s.pid = 0;
    if (s.role == shm::WorkerRole::sync) {  // no successor before the old one is reaped
      ops_->kill(s.draining_pid, SIGTERM);
      roll_phase_ = RollPhase::sync_wait_exit;
      roll_deadline_ns_ = now + kExitTimeoutNs;
      return;
    }
    if (s.role == shm::WorkerRole::socket) {
      s.draining_set = s.ring_set;
      shm::store_u32(control_->socket_sets[s.index].draining_set, s.draining_set);
      shm::store_u32(control_->socket_sets[s.index].draining_generation, s.draining_generation);
    }
    spawn(roll_next_);  // socket: on the other ring set; swarm: waits for the partition
    roll_phase_ = s.role == shm::WorkerRole::swarm ? RollPhase::swarm_wait_standby : RollPhase::wait_ready;
    roll_deadline_ns_ = now + kReadyTimeoutNs;
    return;
  }
  Slot& s = slots_[roll_next_];
  bool ready = s.pid != 0 && shm::load_u32(shm_slot(s).ready) == s.generation;
  switch (roll_phase_) {
    case RollPhase::swarm_wait_standby:
      if (s.draining_pid == 0) {  // the old one died meanwhile: its successor takes over
        roll_phase_ = RollPhase::wait_ready;
        roll_deadline_ns_ = now + kReadyTimeoutNs;
      } else if (s.pid != 0 && shm::load_u32(shm_slot(s).standby) == s.generation) {
        ops_->kill(s.draining_pid, SIGTERM);  // finish the batch, release the partition, exit
        roll_phase_ = RollPhase::swarm_wait_handoff;
        roll_deadline_ns_ = now + kExitTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        roll_keep_old(s);
        return roll_abort("new " + s.name() + " was not waiting for its partition within 5 s; the old one (pid " +
                          std::to_string(s.pid) + ") keeps serving");
      }
      break;
    case RollPhase::sync_wait_exit:
      if (s.draining_pid == 0) {  // reaped (on_drained_exit): now the successor
        spawn(roll_next_);
        roll_phase_ = RollPhase::wait_ready;
        roll_deadline_ns_ = now + kReadyTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) did not exit within 5 s: sending SIGKILL", s.name().c_str(), int(s.draining_pid));
        ops_->kill(s.draining_pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::swarm_wait_handoff:
      if (ready) {
        roll_next_slot();  // (the old one may still be exiting: reaped later)
      } else if (s.draining_pid == 0) {
        roll_phase_ = RollPhase::wait_ready;
        roll_deadline_ns_ = now + kReadyTimeoutNs;
      } else if (now > roll_deadline_ns_) {
        LOG_WARN("%s (pid %d) did not release its partition within 5 s: sending SIGKILL", s.name().c_str(),
                 int(s.draining_pid));
        ops_->kill(s.draining_pid, SIGKILL);
        roll_deadline_ns_ = now + kExitTimeoutNs;
      }
      break;
    case RollPhase::wait_ready:
      if (ready) {
        if (s.role == shm::WorkerRole::socket && s.draining_pid != 0) {  // (0: it died meanwhile)
          ops_->kill(s.draining_pid, SIGUSR2);
          roll_phase_ = RollPhase::socket_wait_drained;
          roll_deadline_ns_ = now + kDrainTimeoutNs;
        } else {
          roll_next_slot();
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
        roll_next_slot();
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
