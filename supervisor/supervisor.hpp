// supervisor/supervisor.hpp — the supervisor process: owns the listening sockets, eventfds and
// shm segments (all created before any fork), runs the worker cycle (supervisor/worker_cycle.hpp:
// fixed slots, restart with back-off, crash-loop breaker, rolling restart, stop on
// SIGTERM/SIGINT) over the real fork/kill/wait (supervisor/process_ops.hpp), re-reads the
// connection-id key file on SIGHUP (supervisor/conn_id_keys.hpp) and forwards SIGHUP to the
// socket workers (they reload the TLS certificate). It never touches partition data or
// the rings' contents.
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
#include "supervisor/worker_cycle.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {

class StatsSocket;
class MetricsHttp;
class TransferStore;
class TransferProgressPoller;
class AdminHttp;
class ClusterTransferLink;
class SystemProcessOps;

class Supervisor {
 public:
  Supervisor(const conf::Config& cfg, SegmentSet segments, std::vector<std::vector<worker::UdpSocket>> udp,
             std::vector<std::vector<worker::TcpListener>> tcp);
  ~Supervisor();
  // Forks all workers and runs until stopped. Returns the process exit code.
  int run();

  // Read-only views for the stats socket and the metrics endpoint.
  const std::vector<Slot>& slots() const { return cycle_->slots(); }
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
  [[noreturn]] void become_worker(const Slot& slot);
  void check_ready();
  void forward_reload();

  static void on_signal(evutil_socket_t sig, short, void* arg);
  static void on_ready_check(evutil_socket_t, short, void* arg);
  static void on_watchdog(evutil_socket_t, short, void* arg);

  const conf::Config& cfg_;
  SegmentSet segments_;
  std::vector<std::vector<worker::UdpSocket>> udp_;
  std::vector<std::vector<worker::TcpListener>> tcp_;
  std::vector<int> socket_eventfds_, swarm_eventfds_, handoff_eventfds_;
  event_base* base_ = nullptr;
  int signal_fd_ = -1;
  event* signal_event_ = nullptr;
  event* ready_check_ = nullptr;
  event* watchdog_ = nullptr;  // supervisor.heartbeat_timeout, every second
  std::unique_ptr<StatsSocket> stats_;
  std::unique_ptr<MetricsHttp> metrics_;
  std::unique_ptr<TransferStore> transfers_;  // null when transfers.state_dir is ""
  std::unique_ptr<TransferProgressPoller> progress_;  // with transfers_
  std::unique_ptr<ClusterTransferLink> cluster_transfers_;  // with transfers_ on a cluster node
  std::map<std::string, uint32_t> transfer_slots_;  // raw info_hash → stats slot
  uint32_t next_slot_ = 0;
  std::unique_ptr<AdminHttp> admin_;
  uint64_t start_unix_ = 0;
  std::unique_ptr<SystemProcessOps> ops_;
  std::unique_ptr<WorkerCycle> cycle_;  // spawn, reap, back-off, crash loops, rolling restart, stop
  bool announced_ready_ = false;
  pid_t self_pid_ = 0;
};

}  // namespace shoal::supervisor
