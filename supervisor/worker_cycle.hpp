// supervisor/worker_cycle.hpp — the supervisor's worker life cycle, apart from the processes
// themselves: the fixed slot table, spawn into a slot (generation and ring set), reap and
// classify an exit, respawn with back-off, the crash-loop breaker, the heartbeat watchdog,
// the rolling restart (supervisor/rolling_restart.cpp) and the stop. Everything it does to the
// world goes through ProcessOps (fork, kill, wait, the clock, timers), so unit tests drive the
// whole cycle with a fake (tests/unit/fake_process_ops.hpp) and no real process; the supervisor
// gives it SystemProcessOps (supervisor/process_ops.hpp). It writes the control segment's
// worker slots and socket ring sets, nothing else in shm. Runs in the supervisor process only.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"

namespace shoal::supervisor {

enum class SlotState { empty, running, backoff, disabled, draining };

// One worker slot: its identity is (role, index); pid and generation change on each restart.
struct Slot {
  shm::WorkerRole role;
  uint32_t index;
  pid_t pid = 0;
  uint32_t generation = 0;
  uint32_t restarts = 0;       // restarts after a crash (not counting the first start)
  uint32_t crash_streak = 0;   // crashes in a row without reaching restart_healthy_after
  std::vector<uint64_t> crash_times_ns = {};  // counted crashes within crash_loop_window (monotonic)
  bool crash_looping = false;  // disabled by the crash-loop breaker (state == disabled)
  uint64_t started_ns = 0;
  SlotState state = SlotState::empty;
  pid_t draining_pid = 0;      // previous process finishing its work (rolling restart)
  uint32_t draining_generation = 0;
  bool killed_hung = false;    // the watchdog killed the current process (its heartbeat stopped)
  uint32_t ring_set = 0;       // socket slots: ring set of the current process (assigned by spawn)
  uint32_t draining_set = 0;   // and of the draining one
  std::string name() const;    // "socket worker 0"
};

// "socket", "swarm" or "sync" (logs, stats, metrics).
const char* role_name(shm::WorkerRole role);

// Index of a slot in the control segment's slots[] and counters[].
inline uint32_t slot_number(const Slot& s) {
  if (s.role == shm::WorkerRole::sync) return shm::sync_slot();
  return s.role == shm::WorkerRole::socket ? shm::socket_slot(s.index) : shm::swarm_slot(s.index);
}

// The seam between the cycle and the operating system. `slot` arguments are positions in
// WorkerCycle::slots(). Timers are one-shot (restart) or periodic (roll); when one fires, the
// owner calls the matching WorkerCycle method (restart_due, roll_step, stop_deadline).
class ProcessOps {
 public:
  virtual ~ProcessOps() = default;
  // Starts the worker process of `s` (its generation and ring set already chosen). Returns its
  // pid (> 0), or -1 with errno set when no process could be made. The real one forks; the
  // child never returns from it.
  virtual pid_t spawn(const Slot& s) = 0;
  // kill(2): 0, or -1 with errno (ESRCH: no such process).
  virtual int kill(pid_t pid, int sig) = 0;
  // waitpid(-1, status, WNOHANG): a child that ended and its wait status, or 0 when none has.
  virtual pid_t wait_nohang(int* status) = 0;
  // Blocks until `pid` (already sent SIGKILL) has ended, and reaps it: wait_nohang never
  // reports it.
  virtual void wait_exit(pid_t pid) = 0;
  // CLOCK_MONOTONIC in nanoseconds.
  virtual uint64_t now_ns() = 0;
  // One-shot timer: restart_due(slot) after delay_ms. Re-arming replaces the pending one.
  virtual void arm_restart(size_t slot, uint64_t delay_ms) = 0;
  virtual void cancel_restart(size_t slot) = 0;
  // Periodic timer: roll_step() every 20 ms while on.
  virtual void set_roll_timer(bool on) = 0;
  // One-shot timer: stop_deadline() after `seconds`.
  virtual void arm_stop_deadline(uint32_t seconds) = 0;
  // The cycle is stopping and no child is left: the supervisor's loop may end.
  virtual void stopped() = 0;
};

class WorkerCycle {
 public:
  static constexpr int kStopGraceSeconds = 5;
  static constexpr uint64_t kRollTickMs = 20;
  static constexpr uint64_t kReadyTimeoutNs = 5ull * 1000000000ull;   // roll: new worker ready
  static constexpr uint64_t kExitTimeoutNs = 5ull * 1000000000ull;    // roll: old swarm worker exits
  static constexpr uint64_t kDrainTimeoutNs = 15ull * 1000000000ull;  // roll: old socket worker drains

  // One slot per configured worker, swarm workers first (so partitions are served when socket
  // workers start routing), and with cluster.enabled the sync worker last (issue 14: it talks to
  // NATS; restarted, rolled and stopped like a swarm worker, and nothing waits for it). Generations go on from the ones `control` holds (0 in fresh
  // segments, a previous shoald's after a re-attach), so a reply token or ring-set owner of a
  // previous process can never match a new one. `cfg`, `control` and `ops` outlive the cycle.
  WorkerCycle(const conf::Config& cfg, shm::ControlSegment* control, ProcessOps* ops);

  const std::vector<Slot>& slots() const { return slots_; }
  bool stopping() const { return stopping_; }
  int exit_code() const { return exit_code_; }
  bool rolling() const { return rolling_; }
  // Slots with a process (current or draining) not yet reaped.
  size_t live_children() const;
  // True when every slot's current process reported ready for its generation.
  bool all_ready() const;

  // Spawns every slot (start).
  void start_all();
  // SIGCHLD: reaps every ended child and handles its exit (respawn, drain done, stop).
  void reap();
  // A slot's back-off ended: spawn it (not while stopping).
  void restart_due(size_t slot);
  // SIGTERM/SIGINT or a fatal worker error: SIGTERM to every process, SIGKILL after 5 s.
  void begin_stop(const char* why, int exit_code);
  // The stop's grace period ended: SIGKILL to every process left.
  void stop_deadline();
  // Kills a ready worker whose heartbeat is older than supervisor.heartbeat_timeout (a hung
  // worker: stuck in a loop or a blocking call); reap() then restarts it like a crashed one.
  void check_heartbeats();
  // Rolling restart of every worker (stats "restart workers", SIGUSR2); false with *msg when
  // one is already running or shoald stops. supervisor/rolling_restart.cpp.
  bool start_rolling_restart(std::string* msg);
  // One step of the rolling restart (every 20 ms while it runs).
  void roll_step();

 private:
  void spawn(size_t pos);
  void on_worker_exit(size_t pos, int status);
  void on_drained_exit(Slot& slot, int status);
  uint64_t schedule_restart(size_t pos);  // returns the delay in ms
  bool crash_loop_tripped(Slot& slot, int status, const char* cause);  // true: slot disabled
  void roll_abort(const std::string& why);
  void roll_keep_old(Slot& s);  // a socket slot's successor failed: the draining process serves again
  shm::WorkerSlot& shm_slot(const Slot& s) { return control_->slots[slot_number(s)]; }

  const conf::Config& cfg_;
  shm::ControlSegment* control_;
  ProcessOps* ops_;
  std::vector<Slot> slots_;
  bool stopping_ = false;
  int exit_code_ = 0;
  // Rolling restart state: which slot, which phase, and until when the phase may take.
  enum class RollPhase { idle, swarm_wait_exit, wait_ready, socket_wait_drained };
  bool rolling_ = false;
  RollPhase roll_phase_ = RollPhase::idle;
  size_t roll_next_ = 0;
  uint64_t roll_deadline_ns_ = 0;
  uint32_t roll_done_ = 0;
};

}  // namespace shoal::supervisor
