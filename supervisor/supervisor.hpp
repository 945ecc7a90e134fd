// supervisor/supervisor.hpp — the supervisor process: owns the listening sockets, eventfds and
// shm segments (all created before any fork), forks the socket and swarm workers into fixed
// slots, restarts a worker that dies into the same slot with back-off, and stops everything on
// SIGTERM/SIGINT. It never touches partition data or the rings' contents.
#pragma once
#include <event2/event.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "supervisor/segments.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {

enum class SlotState { empty, running, backoff, disabled };

// One worker slot: its identity is (role, index); pid and generation change on each restart.
struct Slot {
  shm::WorkerRole role;
  uint32_t index;
  pid_t pid = 0;
  uint32_t generation = 0;
  uint32_t restarts = 0;       // restarts after a crash (not counting the first start)
  uint32_t crash_streak = 0;   // crashes in a row without reaching restart_healthy_after
  uint64_t started_ns = 0;
  SlotState state = SlotState::empty;
  event* restart_timer = nullptr;
  class Supervisor* owner = nullptr;
  std::string name() const;  // "socket worker 0"
};

class Supervisor {
 public:
  Supervisor(const conf::Config& cfg, SegmentSet segments, std::vector<std::vector<worker::UdpSocket>> udp);
  ~Supervisor();
  // Forks all workers and runs until stopped. Returns the process exit code.
  int run();

 private:
  void spawn(Slot& slot);
  [[noreturn]] void become_worker(Slot& slot);
  void reap();
  void on_worker_exit(Slot& slot, int status);
  uint64_t schedule_restart(Slot& slot);  // returns the delay in ms
  void begin_stop(const char* why, int exit_code);
  void check_ready();
  Slot* slot_by_pid(pid_t pid);
  size_t live_children() const;

  static void on_signal(evutil_socket_t sig, short, void* arg);
  static void on_restart_timer(evutil_socket_t, short, void* arg);
  static void on_stop_deadline(evutil_socket_t, short, void* arg);
  static void on_ready_check(evutil_socket_t, short, void* arg);

  const conf::Config& cfg_;
  SegmentSet segments_;
  std::vector<std::vector<worker::UdpSocket>> udp_;
  std::vector<int> socket_eventfds_, swarm_eventfds_;
  std::vector<Slot> slots_;
  event_base* base_ = nullptr;
  int signal_fd_ = -1;
  event* signal_event_ = nullptr;
  event* stop_deadline_ = nullptr;
  event* ready_check_ = nullptr;
  bool stopping_ = false;
  bool announced_ready_ = false;
  int exit_code_ = 0;
  pid_t self_pid_ = 0;
};

}  // namespace shoal::supervisor
