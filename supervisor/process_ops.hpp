// supervisor/process_ops.hpp — the real ProcessOps (supervisor/worker_cycle.hpp): fork, kill(2),
// waitpid(2), CLOCK_MONOTONIC, and libevent timers on the supervisor's loop that call back into
// the WorkerCycle. Runs in the supervisor process only.
#pragma once
#include <event2/event.h>

#include <functional>
#include <vector>

#include "supervisor/worker_cycle.hpp"

namespace shoal::supervisor {

class SystemProcessOps final : public ProcessOps {
 public:
  // `child` runs in the forked child with the slot it is for and never returns (it _exits).
  // `slots`: size of the cycle's slot table (one restart timer each). `handoff_eventfds`: one
  // per swarm slot, by index (the supervisor owns them).
  SystemProcessOps(event_base* base, size_t slots, std::function<void(const Slot&)> child, std::vector<int> handoff_eventfds);
  ~SystemProcessOps() override;
  SystemProcessOps(const SystemProcessOps&) = delete;
  SystemProcessOps& operator=(const SystemProcessOps&) = delete;
  // The cycle the timers call back into (set once, before the loop runs).
  void set_cycle(WorkerCycle* cycle) { cycle_ = cycle; }

  pid_t spawn(const Slot& s) override;
  void wake_handoff(const Slot& s) override;
  int kill(pid_t pid, int sig) override;
  pid_t wait_nohang(int* status) override;
  void wait_exit(pid_t pid) override;
  uint64_t now_ns() override;
  void arm_restart(size_t slot, uint64_t delay_ms) override;
  void cancel_restart(size_t slot) override;
  void set_roll_timer(bool on) override;
  void arm_stop_deadline(uint32_t seconds) override;
  void stopped() override;

 private:
  struct RestartArg {
    SystemProcessOps* ops;
    size_t slot;
  };
  static void on_restart(evutil_socket_t, short, void* arg);
  static void on_roll(evutil_socket_t, short, void* arg);
  static void on_stop_deadline(evutil_socket_t, short, void* arg);

  event_base* base_;
  std::function<void(const Slot&)> child_;
  std::vector<int> handoff_eventfds_;
  WorkerCycle* cycle_ = nullptr;
  std::vector<RestartArg> restart_args_;
  std::vector<event*> restart_timers_;
  event* roll_timer_ = nullptr;
  event* stop_deadline_ = nullptr;
};

}  // namespace shoal::supervisor
