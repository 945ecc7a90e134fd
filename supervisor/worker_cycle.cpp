// supervisor/worker_cycle.cpp — see worker_cycle.hpp: spawn, reap, back-off, crash-loop
// breaker, watchdog and stop. The rolling restart is in supervisor/rolling_restart.cpp.
#include "supervisor/worker_cycle.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "supervisor/log.hpp"
#include "supervisor/readiness.hpp"

namespace shoal::supervisor {

const char* role_name(shm::WorkerRole role) {
  return role == shm::WorkerRole::socket ? "socket" : role == shm::WorkerRole::swarm ? "swarm" : "sync";
}

std::string Slot::name() const { return std::string(role_name(role)) + " worker " + std::to_string(index); }

WorkerCycle::WorkerCycle(const conf::Config& cfg, shm::ControlSegment* control, ProcessOps* ops)
    : cfg_(cfg), control_(control), ops_(ops) {
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) slots_.push_back(Slot{shm::WorkerRole::swarm, i});
  for (uint32_t i = 0; i < cfg.socket_workers; i++) slots_.push_back(Slot{shm::WorkerRole::socket, i});
  if (cfg.cluster_enabled) slots_.push_back(Slot{shm::WorkerRole::sync, 0});
  for (Slot& s : slots_) s.generation = shm::load_u32(shm_slot(s).generation);
}

size_t WorkerCycle::live_children() const {
  return size_t(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.pid != 0 || s.draining_pid != 0; }));
}

bool WorkerCycle::all_ready() const {
  for (const Slot& s : slots_)
    if (shm::load_u32(control_->slots[slot_number(s)].ready) != s.generation) return false;
  return true;
}

void WorkerCycle::start_all() {
  for (size_t i = 0; i < slots_.size(); i++) spawn(i);
}

void WorkerCycle::spawn(size_t pos) {
  Slot& slot = slots_[pos];
  slot.generation++;
  shm::WorkerSlot& ws = shm_slot(slot);
  shm::store_u32(ws.ready, 0);
  shm::store_u32(ws.generation, slot.generation);
  if (slot.role == shm::WorkerRole::socket) {
    // The ring set: while a predecessor drains, the one it does not use (whatever happened to
    // earlier successors); otherwise the slot's own (its previous process is gone).
    if (slot.draining_pid != 0) slot.ring_set = 1 - slot.draining_set;
    shm::store_u32(control_->socket_sets[slot.index].active_set, slot.ring_set);
    shm::store_u32(control_->socket_sets[slot.index].active_generation, slot.generation);
  }
  shm::store_u32(ws.restarts, slot.restarts);
  slot.killed_hung = false;
  pid_t pid = ops_->spawn(slot);
  if (pid < 0) {
    LOG_ERROR("cannot fork %s: %s; retrying", slot.name().c_str(), strerror(errno));
    schedule_restart(pos);
    return;
  }
  slot.pid = pid;
  slot.started_ns = ops_->now_ns();
  slot.state = SlotState::running;
  shm::store_u32(ws.pid, uint32_t(pid));
  LOG_INFO("started %s (pid %d, generation %u)", slot.name().c_str(), int(pid), slot.generation);
}

void WorkerCycle::restart_due(size_t pos) {
  if (!stopping_) spawn(pos);
}

void WorkerCycle::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ops_->wait_nohang(&status);
    if (pid <= 0) break;
    for (size_t i = 0; i < slots_.size(); i++) {
      Slot& s = slots_[i];
      if (s.draining_pid != 0 && pid == s.draining_pid) {
        on_drained_exit(s, status);
        break;
      }
      if (pid == s.pid) {
        on_worker_exit(i, status);
        break;
      }
    }
  }
  if (stopping_ && live_children() == 0) ops_->stopped();
  // A rolling restart waiting for this exit goes on now, not at its next tick (kRollTickMs): a
  // swarm slot's successor starts the moment its predecessor is gone (issue 12, recovery time).
  if (rolling_ && !stopping_) roll_step();
}

void WorkerCycle::on_worker_exit(size_t pos, int status) {
  Slot& slot = slots_[pos];
  pid_t pid = slot.pid;
  slot.pid = 0;
  shm::WorkerSlot& ws = shm_slot(slot);
  shm::store_u32(ws.pid, 0);
  shm::store_u32(ws.ready, 0);
  if (slot.role == shm::WorkerRole::socket)  // its ring set is orphaned until the restart
    shm::store_u32(control_->socket_sets[slot.index].active_generation, 0);
  bool planned = slot.state == SlotState::draining;  // stopped by a rolling restart
  char cause[128];
  if (slot.killed_hung)
    snprintf(cause, sizeof cause, "was killed by the watchdog (its heartbeat had stopped)");
  else if (WIFSIGNALED(status))
    snprintf(cause, sizeof cause, "was terminated by signal %d: %s%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
             WCOREDUMP(status) ? " (core dumped)" : "");
  else
    snprintf(cause, sizeof cause, "exited with code %d", WEXITSTATUS(status));
  if (stopping_ || planned) {
    slot.state = SlotState::empty;
    LOG_INFO("%s (pid %d) %s%s", slot.name().c_str(), int(pid), cause, planned ? " (rolling restart)" : "");
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
    slot.state = SlotState::disabled;
    LOG_ERROR("%s (pid %d) %s: fatal setup error, not restarting; stopping shoald", slot.name().c_str(), int(pid), cause);
    readiness_failed(slot.name() + " could not start (" + cause + "); its error is in the log");
    begin_stop("a worker could not start", 1);
    return;
  }
  if (crash_loop_tripped(slot, status, cause)) return;
  uint64_t ran_ns = ops_->now_ns() - slot.started_ns;
  if (ran_ns >= uint64_t(cfg_.restart_healthy_after_s) * 1000000000ull) slot.crash_streak = 0;
  slot.restarts++;
  uint64_t delay = schedule_restart(pos);
  if (delay == 0)
    LOG_WARN("%s (pid %d) %s; restarting now (restart %u)", slot.name().c_str(), int(pid), cause, slot.restarts);
  else
    LOG_WARN("%s (pid %d) %s; restarting in %llu ms (restart %u)", slot.name().c_str(), int(pid), cause,
             (unsigned long long)delay, slot.restarts);
}

// The crash-loop breaker (as init systems have: systemd's StartLimitBurst): a slot whose worker
// crashed crash_loop_limit times within crash_loop_window is not restarted again, so a worker
// that dies on every start, or on a request it is handed again after each restart, stops
// burning CPU and flooding the log. SIGKILL comes from outside (an operator, the OOM killer, a
// kill -9 test) and is not counted. The rest of shoald keeps serving; the slot shows
// "disabled" in show workers and shoal_worker_disabled, and systemd's status says so. A
// rolling restart (shoalctl restart workers, SIGUSR2) starts it again.
bool WorkerCycle::crash_loop_tripped(Slot& slot, int status, const char* cause) {
  // A hang the watchdog ended counts: a request that hangs every worker it reaches is a loop too.
  if (cfg_.crash_loop_limit == 0 || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !slot.killed_hung)) return false;
  uint64_t now = ops_->now_ns(), window = uint64_t(cfg_.crash_loop_window_s) * 1000000000ull;
  std::vector<uint64_t>& t = slot.crash_times_ns;
  t.push_back(now);
  t.erase(std::remove_if(t.begin(), t.end(), [&](uint64_t x) { return now - x > window; }), t.end());
  if (t.size() < cfg_.crash_loop_limit) return false;
  slot.state = SlotState::disabled;
  slot.crash_looping = true;
  slot.restarts++;
  LOG_ERROR("%s %s: it crashed %zu times within %u s, a crash loop: not restarting it (the other workers keep "
            "serving). Fix the cause in the log above, then shoalctl restart workers (or SIGUSR2) starts it again",
            slot.name().c_str(), cause, t.size(), cfg_.crash_loop_window_s);
  readiness_status("degraded: " + slot.name() + " stopped after a crash loop; see the log");
  return true;
}

// Back-off: the first crash of a streak is restarted at once (the next turn of the loop: a
// killed swarm worker's partition must serve again fast, issue 12); then restart_backoff_min,
// doubled for each further crash in a row, capped at restart_backoff_max.
uint64_t WorkerCycle::schedule_restart(size_t pos) {
  Slot& slot = slots_[pos];
  slot.crash_streak++;
  uint64_t delay = cfg_.restart_backoff_min_ms;
  for (uint32_t i = 2; i < slot.crash_streak && delay < cfg_.restart_backoff_max_ms; i++) delay *= 2;
  delay = slot.crash_streak == 1 ? 0 : std::min<uint64_t>(delay, cfg_.restart_backoff_max_ms);
  slot.state = SlotState::backoff;
  ops_->arm_restart(pos, delay);
  return delay;
}

void WorkerCycle::begin_stop(const char* why, int exit_code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  readiness_stopping();
  LOG_INFO("stopping (%s): signalling %zu workers", why, live_children());
  for (size_t i = 0; i < slots_.size(); i++) {
    Slot& s = slots_[i];
    ops_->cancel_restart(i);
    if (s.pid) ops_->kill(s.pid, SIGTERM);
    if (s.draining_pid) ops_->kill(s.draining_pid, SIGTERM);
  }
  ops_->arm_stop_deadline(kStopGraceSeconds);
  if (live_children() == 0) ops_->stopped();
}

void WorkerCycle::stop_deadline() {
  for (Slot& s : slots_) {
    for (pid_t pid : {s.pid, s.draining_pid}) {
      if (!pid) continue;
      LOG_WARN("%s (pid %d) did not stop within %d s: sending SIGKILL", s.name().c_str(), int(pid), kStopGraceSeconds);
      ops_->kill(pid, SIGKILL);
    }
  }
}

void WorkerCycle::check_heartbeats() {
  if (stopping_) return;
  uint64_t now_ns = ops_->now_ns(), base = control_->header.clock_base_ns;
  uint32_t now = now_ns <= base ? 0 : uint32_t((now_ns - base) / 1000000000ull);
  for (Slot& s : slots_) {
    if (s.pid == 0 || s.state != SlotState::running || s.killed_hung) continue;
    const shm::WorkerSlot& ws = shm_slot(s);
    if (shm::load_u32(ws.ready) != s.generation) continue;  // still starting: no heartbeat yet
    uint32_t tick = shm::load_u32(ws.last_tick);
    if (now < tick || now - tick < cfg_.heartbeat_timeout_s) continue;
    LOG_ERROR("%s (pid %d) is hung: no heartbeat for %u s (supervisor.heartbeat_timeout %u s); killing it to restart it",
              s.name().c_str(), int(s.pid), now - tick, cfg_.heartbeat_timeout_s);
    s.killed_hung = true;
    ops_->kill(s.pid, SIGKILL);
  }
}

}  // namespace shoal::supervisor
