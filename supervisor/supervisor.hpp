// supervisor/supervisor.hpp — the supervisor process: owns the listening sockets, eventfds and
// shm segments (all created before any fork), forks the socket and swarm workers into fixed
// slots, restarts a worker that dies into the same slot with back-off, and stops everything on
// SIGTERM/SIGINT, and forwards SIGHUP to the socket workers (they reload the TLS certificate). It
// never touches partition data or the rings' contents.
#pragma once
#include <event2/event.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/transfers_segment.hpp"
#include "supervisor/segments.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {

class StatsSocket;
class MetricsHttp;
class TransferStore;
class TransferProgressPoller;
class AdminHttp;

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
  event* restart_timer = nullptr;
  class Supervisor* owner = nullptr;
  std::string name() const;  // "socket worker 0"
};

// Index of a slot in the control segment's slots[] and counters[].
inline uint32_t slot_number(const Slot& s) {
  return s.role == shm::WorkerRole::socket ? shm::socket_slot(s.index) : shm::swarm_slot(s.index);
}

class Supervisor {
 public:
  Supervisor(const conf::Config& cfg, SegmentSet segments, std::vector<std::vector<worker::UdpSocket>> udp,
             std::vector<std::vector<worker::TcpListener>> tcp);
  ~Supervisor();
  // Forks all workers and runs until stopped. Returns the process exit code.
  int run();

  // Read-only views for the stats socket and the metrics endpoint.
  const std::vector<Slot>& slots() const { return slots_; }
  shm::ControlSegment* control() const { return segments_.control_view(); }
  void* rings_base() const { return segments_.rings.base(); }
  const conf::Config& config() const { return cfg_; }
  uint64_t start_unix() const { return start_unix_; }
  pid_t pid() const { return self_pid_; }
  event_base* base() const { return base_; }
  // Registered deploy transfers, or nullptr when transfers.state_dir is "".
  TransferStore* transfers() const { return transfers_.get(); }
  // The registered transfers as the transfers segment holds them (sorted by info_hash), each
  // with its stats slot: a transfer keeps its slot while registered; a new one gets a free slot
  // (taken in rotation, so a slot just given up is reused last), zeroed first.
  std::vector<shm::TransferEntry> transfer_entries();
  // Deploy progress of the registered transfers, or nullptr without transfers.state_dir.
  TransferProgressPoller* progress() const { return progress_.get(); }
  const SegmentSet& segments() const { return segments_; }
  // Wakes swarm worker j (after writing its query mailbox).
  void wake_swarm_worker(uint32_t j) const;
  // Re-reads the access list (stats "reload", SIGUSR1). *msg says what happened.
  bool reload_access_list(std::string* msg);
  // Starts a rolling restart of every worker (stats "restart workers", SIGUSR2).
  bool start_rolling_restart(std::string* msg);

 private:
  void spawn(Slot& slot);
  [[noreturn]] void become_worker(Slot& slot);
  void reap();
  void on_worker_exit(Slot& slot, int status);
  void on_drained_exit(Slot& slot, int status);
  void roll_step();
  void roll_abort(const std::string& why);
  static void on_roll_timer(evutil_socket_t, short, void* arg);
  uint64_t schedule_restart(Slot& slot);  // returns the delay in ms
  bool crash_loop_tripped(Slot& slot, int status, const char* cause);  // true: slot disabled
  void begin_stop(const char* why, int exit_code);
  void check_ready();
  void forward_reload();
  Slot* slot_by_pid(pid_t pid);
  size_t live_children() const;

  static void on_signal(evutil_socket_t sig, short, void* arg);
  static void on_restart_timer(evutil_socket_t, short, void* arg);
  static void on_stop_deadline(evutil_socket_t, short, void* arg);
  static void on_ready_check(evutil_socket_t, short, void* arg);
  static void on_watchdog(evutil_socket_t, short, void* arg);
  // Kills a ready worker whose heartbeat is older than supervisor.heartbeat_timeout (a hung
  // worker: stuck in a loop or a blocking call); reap() then restarts it like a crashed one.
  void check_heartbeats();

  const conf::Config& cfg_;
  SegmentSet segments_;
  std::vector<std::vector<worker::UdpSocket>> udp_;
  std::vector<std::vector<worker::TcpListener>> tcp_;
  std::vector<int> socket_eventfds_, swarm_eventfds_;
  std::vector<Slot> slots_;
  event_base* base_ = nullptr;
  int signal_fd_ = -1;
  event* signal_event_ = nullptr;
  event* stop_deadline_ = nullptr;
  event* ready_check_ = nullptr;
  event* watchdog_ = nullptr;  // supervisor.heartbeat_timeout, every second
  std::unique_ptr<StatsSocket> stats_;
  std::unique_ptr<MetricsHttp> metrics_;
  std::unique_ptr<TransferStore> transfers_;  // null when transfers.state_dir is ""
  std::unique_ptr<TransferProgressPoller> progress_;  // with transfers_
  std::map<std::string, uint32_t> transfer_slots_;  // raw info_hash → stats slot
  uint32_t next_slot_ = 0;
  std::unique_ptr<AdminHttp> admin_;
  uint64_t start_unix_ = 0;
  // Rolling restart state: which slot, which phase, and until when the phase may take.
  enum class RollPhase { idle, swarm_wait_exit, wait_ready, socket_wait_drained };
  RollPhase roll_phase_ = RollPhase::idle;
  size_t roll_next_ = 0;
  uint64_t roll_deadline_ns_ = 0;
  uint32_t roll_done_ = 0;
  event* roll_timer_ = nullptr;
  bool stopping_ = false;
  bool announced_ready_ = false;
  int exit_code_ = 0;
  pid_t self_pid_ = 0;
};

}  // namespace shoal::supervisor
