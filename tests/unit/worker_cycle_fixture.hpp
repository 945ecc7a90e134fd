// tests/unit/worker_cycle_fixture.hpp — the fixture of the worker-cycle tests
// (worker_cycle_test.cpp, worker_cycle_handoff_test.cpp): a WorkerCycle on a control segment in
// memory, driven through FakeProcessOps, whose invariant breaches fail the test at its end.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/log.hpp"
#include "tests/unit/fake_process_ops.hpp"

namespace shoal::supervisor {

using testing::FakeProcessOps;

inline std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += s + "\n";
  return out;
}

class CycleTest : public ::testing::Test {
 protected:
  void SetUp() override { log_init(LogLevel::error, false); }
  void TearDown() override { EXPECT_TRUE(ops.violations.empty()) << joined(ops.violations); }

  // Slot positions: swarm workers first, then socket workers.
  void make(uint32_t sockets, uint32_t swarms) {
    cfg.socket_workers = sockets;
    cfg.swarm_workers = swarms;
    cycle = std::make_unique<WorkerCycle>(cfg, control.get(), &ops);
    ops.attach(cycle.get());
  }
  // Starts every slot and lets them report ready.
  void start_ready() {
    cycle->start_all();
    ops.check("start");
    ops.advance(20);
    ASSERT_TRUE(cycle->all_ready());
  }
  // Advances 1 ms at a time until `done` (at most `max_ms`).
  template <class F>
  void advance_until(F done, uint64_t max_ms = 30000) {
    for (uint64_t i = 0; i < max_ms && !done(); i++) ops.advance(1);
    ASSERT_TRUE(done()) << "condition not reached within " << max_ms << " ms";
  }
  const Slot& slot(size_t i) const { return cycle->slots()[i]; }
  pid_t pid(size_t i) const { return slot(i).pid; }
  bool got(pid_t p, int sig) {
    const auto& s = ops.find(p)->signals;
    return std::find(s.begin(), s.end(), sig) != s.end();
  }

  conf::Config cfg;
  std::unique_ptr<shm::ControlSegment> control = std::make_unique<shm::ControlSegment>();
  FakeProcessOps ops{control.get()};
  std::unique_ptr<WorkerCycle> cycle;
};

}  // namespace shoal::supervisor
