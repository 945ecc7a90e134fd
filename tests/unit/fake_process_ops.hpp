// tests/unit/fake_process_ops.hpp — a ProcessOps (supervisor/worker_cycle.hpp) without processes
// for the worker-cycle tests: spawn hands out pids and records each process's slot, generation
// and ring set; kill records signals (SIGKILL ends a process at once, SIGTERM too unless the test
// says otherwise, SIGUSR2 ends a socket worker after drain_ms); time moves only in advance(),
// which fires the cycle's timers and the processes' scheduled events in time order and reaps
// ended ones as SIGCHLD would. After every event it checks the invariants the supervisor must
// keep whatever happens: no two live processes of a socket slot on one ring set, never two live
// swarm workers for one partition (nor two sync workers), and a slot's generations strictly
// increasing.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "supervisor/worker_cycle.hpp"

namespace shoal::supervisor::testing {

struct FakeProcess {
  pid_t pid;
  size_t slot;  // position in WorkerCycle::slots()
  shm::WorkerRole role;
  uint32_t index;
  uint32_t generation;
  uint32_t ring_set;
  bool alive = true;
  std::vector<int> signals = {};  // received, in order
};

class FakeProcessOps : public ProcessOps {
 public:
  // What the simulated workers do by themselves (the test may also act on them directly).
  std::optional<uint64_t> ready_after_ms = 10;  // report ready this long after the start; none: never
  bool exit_on_term = true;                     // SIGTERM: exit 0 at once
  uint64_t drain_ms = 50;                       // SIGUSR2 (socket worker): exit 0 after this
  bool fork_fails = false;

  uint64_t now = 1000ull * 1000000000ull;  // CLOCK_MONOTONIC, ns
  std::vector<FakeProcess> procs;          // every process ever spawned, in order
  std::vector<std::string> violations;     // invariant breaches seen (the test expects none)
  int stopped_calls = 0;

  FakeProcessOps(shm::ControlSegment* control) : control_(control) {}
  void attach(WorkerCycle* cycle) { cycle_ = cycle; }

  // --- ProcessOps ---
  pid_t spawn(const Slot& s) override {
    if (fork_fails) return errno = EAGAIN, -1;
    FakeProcess p{next_pid_++, size_t(&s - cycle_->slots().data()), s.role, s.index, s.generation, s.ring_set};
    for (const FakeProcess& q : procs)
      if (q.slot == p.slot && q.generation >= p.generation)
        violations.push_back(s.name() + ": generation " + std::to_string(p.generation) + " after " + std::to_string(q.generation));
    procs.push_back(p);
    if (ready_after_ms) at(now + *ready_after_ms * 1000000, [this, pid = p.pid] { report_ready(pid); });
    return p.pid;
  }
  int kill(pid_t pid, int sig) override {
    FakeProcess* p = find(pid);
    if (!p || (!p->alive && !unreaped(pid))) return errno = ESRCH, -1;
    p->signals.push_back(sig);
    if (!p->alive) return 0;  // a zombie takes signals and ignores them
    if (sig == SIGKILL) end(pid, sig);
    if (sig == SIGTERM && exit_on_term) end(pid, W_EXITCODE(0, 0));
    if (sig == SIGUSR2 && p->role == shm::WorkerRole::socket)
      at(now + drain_ms * 1000000, [this, pid] { end(pid, W_EXITCODE(0, 0)); });
    return 0;
  }
  pid_t wait_nohang(int* status) override {
    if (ended_.empty()) return 0;
    auto [pid, st] = ended_.front();
    ended_.erase(ended_.begin());
    *status = st;
    return pid;
  }
  void wait_exit(pid_t pid) override {
    FakeProcess* p = find(pid);
    if (!p || p->alive) violations.push_back("wait_exit on a live or unknown pid " + std::to_string(pid));
    ended_.erase(std::remove_if(ended_.begin(), ended_.end(), [&](auto& e) { return e.first == pid; }), ended_.end());
  }
  uint64_t now_ns() override { return now; }
  void arm_restart(size_t slot, uint64_t delay_ms) override { restart_at_[slot] = now + delay_ms * 1000000; }
  void cancel_restart(size_t slot) override { restart_at_.erase(slot); }
  void set_roll_timer(bool on) override { roll_next_ = on ? std::optional<uint64_t>(now + WorkerCycle::kRollTickMs * 1000000) : std::nullopt; }
  void arm_stop_deadline(uint32_t seconds) override { stop_at_ = now + uint64_t(seconds) * 1000000000; }
  void stopped() override { stopped_calls++; }

  // --- what the test does ---
  // The process ends (a crash: signal `sig`, or exit code `code` when sig is 0); SIGCHLD reaps it.
  void crash(pid_t pid, int sig = SIGSEGV, int code = 0) {
    end(pid, sig ? sig : W_EXITCODE(code, 0));
    reap();
  }
  void report_ready(pid_t pid) {
    FakeProcess* p = find(pid);
    if (!p || !p->alive) return;
    shm::WorkerSlot& ws = control_->slots[p->role == shm::WorkerRole::sync     ? shm::sync_slot()
                                          : p->role == shm::WorkerRole::socket ? shm::socket_slot(p->index)
                                                                               : shm::swarm_slot(p->index)];
    if (shm::load_u32(ws.generation) != p->generation) return;  // a stale process: the slot moved on
    shm::store_u32(ws.ready, p->generation);
    shm::store_u32(ws.last_tick, uint32_t((now - control_->header.clock_base_ns) / 1000000000ull));
  }
  // Heartbeats of every live, ready process (as their 1 s timers would write).
  void tick_all() {
    for (FakeProcess& p : procs) if (p.alive) report_ready(p.pid);
  }
  // Moves time forward by `ms`, firing whatever falls due, in order.
  void advance(uint64_t ms) {
    uint64_t target = now + ms * 1000000;
    for (;;) {
      uint64_t next = target + 1;
      for (auto& [slot, t] : restart_at_) next = std::min(next, t);
      if (roll_next_) next = std::min(next, *roll_next_);
      if (stop_at_) next = std::min(next, *stop_at_);
      if (!events_.empty()) next = std::min(next, events_.begin()->first);
      if (next > target) break;
      now = next;
      while (!events_.empty() && events_.begin()->first <= now) {
        auto fn = events_.begin()->second;
        events_.erase(events_.begin());
        fn();
      }
      reap();
      for (auto it = restart_at_.begin(); it != restart_at_.end();) {
        if (it->second > now) { ++it; continue; }
        size_t slot = it->first;
        restart_at_.erase(it);
        cycle_->restart_due(slot);
        check("restart timer");
        it = restart_at_.begin();
      }
      if (stop_at_ && *stop_at_ <= now) {
        stop_at_.reset();
        cycle_->stop_deadline();
        reap();
      }
      if (roll_next_ && *roll_next_ <= now) {
        roll_next_ = now + WorkerCycle::kRollTickMs * 1000000;
        cycle_->roll_step();
        check("roll step");
        reap();
      }
    }
    now = target;
  }
  void reap() {
    if (!ended_.empty()) cycle_->reap();
    check("reap");
  }

  // --- queries ---
  FakeProcess* find(pid_t pid) {
    for (FakeProcess& p : procs) if (p.pid == pid) return &p;
    return nullptr;
  }
  std::vector<FakeProcess*> alive_in(size_t slot) {
    std::vector<FakeProcess*> out;
    for (FakeProcess& p : procs) if (p.alive && p.slot == slot) out.push_back(&p);
    return out;
  }
  size_t spawned_in(size_t slot) const {
    return size_t(std::count_if(procs.begin(), procs.end(), [&](const FakeProcess& p) { return p.slot == slot; }));
  }
  bool restart_armed(size_t slot) const { return restart_at_.count(slot) != 0; }
  std::optional<uint64_t> restart_delay_ms(size_t slot) const {
    auto it = restart_at_.find(slot);
    if (it == restart_at_.end()) return std::nullopt;
    return (it->second - now) / 1000000;
  }
  bool roll_timer_on() const { return roll_next_.has_value(); }

  // The invariants; also called by the tests after they act. `where` names the moment.
  void check(const std::string& where) {
    size_t seen = violations.size();
    for (size_t i = 0; i < cycle_->slots().size(); i++) {
      const Slot& s = cycle_->slots()[i];
      std::vector<FakeProcess*> live = alive_in(i);
      // A partition has one writer; the sync worker is the one producer of the in rings and the
      // one consumer of the out rings (issue 14).
      if (s.role != shm::WorkerRole::socket && live.size() > 1)
        violations.push_back(where + ": two live processes of " + s.name());
      if (live.size() > 2) violations.push_back(where + ": more than two live processes of " + s.name());
      if (live.size() == 2 && live[0]->ring_set == live[1]->ring_set)
        violations.push_back(where + ": " + s.name() + " generations " + std::to_string(live[0]->generation) + " and " +
                             std::to_string(live[1]->generation) + " share ring set " + std::to_string(live[0]->ring_set));
      if (s.role == shm::WorkerRole::socket && s.pid != 0) {  // the control segment names the current process's set
        const shm::SocketSets& ss = control_->socket_sets[s.index];
        if (shm::load_u32(ss.active_set) != s.ring_set || shm::load_u32(ss.active_generation) != s.generation)
          violations.push_back(where + ": " + s.name() + " active set/generation in shm differ from the slot's");
        FakeProcess* cur = find(s.pid);
        if (cur && cur->ring_set != s.ring_set) violations.push_back(where + ": " + s.name() + " current process on another set");
      }
    }
    if (violations.size() > seen + 8) violations.resize(seen + 8);  // the first ones tell
    if (violations.size() > 64) violations.resize(64);
  }

 private:
  void end(pid_t pid, int status) {
    FakeProcess* p = find(pid);
    if (!p || !p->alive) return;
    p->alive = false;
    ended_.push_back({pid, status});
  }
  bool unreaped(pid_t pid) const {
    return std::any_of(ended_.begin(), ended_.end(), [&](auto& e) { return e.first == pid; });
  }
  void at(uint64_t t, std::function<void()> fn) { events_.emplace(t, std::move(fn)); }

  shm::ControlSegment* control_;
  WorkerCycle* cycle_ = nullptr;
  pid_t next_pid_ = 1000;
  std::vector<std::pair<pid_t, int>> ended_;  // ended, not yet reaped (zombies)
  std::map<size_t, uint64_t> restart_at_;
  std::optional<uint64_t> roll_next_, stop_at_;
  std::multimap<uint64_t, std::function<void()>> events_;
};

}  // namespace shoal::supervisor::testing
