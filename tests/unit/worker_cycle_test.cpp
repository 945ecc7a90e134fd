// The supervisor's worker cycle (supervisor/worker_cycle.hpp, issue 12) without real processes:
// spawn, reap, respawn with back-off, the crash-loop breaker, the watchdog, the stop, and the
// rolling restart with its successor dying at each step, driven through FakeProcessOps, which
// checks after every event that no two live processes of a socket slot share a ring set, that a
// partition never has two swarm workers, and that generations only grow (also across a
// supervisor restart on the same control segment).
#include <gtest/gtest.h>

#include <memory>

#include "supervisor/log.hpp"
#include "tests/unit/fake_process_ops.hpp"

namespace shoal::supervisor {
namespace {

using testing::FakeProcessOps;

std::string joined(const std::vector<std::string>& v) {
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

TEST_F(CycleTest, StartGoesOnFromThePreviousShoaldsGenerations) {
  control->slots[shm::swarm_slot(0)].generation = 3;
  control->slots[shm::socket_slot(0)].generation = 7;
  make(2, 1);
  cycle->start_all();
  ASSERT_EQ(ops.procs.size(), 3u);
  EXPECT_EQ(ops.procs[0].role, shm::WorkerRole::swarm);  // partitions are served before routing starts
  EXPECT_EQ(ops.procs[0].generation, 4u);
  EXPECT_EQ(ops.procs[1].generation, 8u);
  EXPECT_EQ(ops.procs[2].generation, 1u);
  EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].pid), uint32_t(ops.procs[1].pid));
  EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].generation), 8u);
  EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].ready), 0u);
  EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_generation), 8u);
  EXPECT_FALSE(cycle->all_ready());
  ops.advance(20);
  EXPECT_TRUE(cycle->all_ready());
}

TEST_F(CycleTest, GenerationsStayUniqueAcrossASupervisorRestart) {
  make(1, 1);
  start_ready();
  ops.crash(pid(1));
  ops.advance(200);
  ops.crash(pid(1), SIGKILL);
  ops.advance(500);
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  ops.advance(2000);
  ASSERT_FALSE(cycle->rolling());
  uint32_t last_swarm = slot(0).generation, last_socket = slot(1).generation;
  EXPECT_EQ(last_socket, 4u);  // start, two restarts, the roll
  // The supervisor dies (its workers with it); a new one re-attaches the same control segment.
  for (testing::FakeProcess& p : ops.procs) p.alive = false;
  WorkerCycle second(cfg, control.get(), &ops);
  ops.attach(&second);
  second.start_all();
  EXPECT_EQ(second.slots()[0].generation, last_swarm + 1);
  EXPECT_EQ(second.slots()[1].generation, last_socket + 1);
  // (the fake flags any generation that is not above every earlier one of its slot)
}

TEST_F(CycleTest, ACrashRestartsAfterADoublingCappedBackoffThatResetsOnceHealthy) {
  cfg.restart_backoff_min_ms = 100;
  cfg.restart_backoff_max_ms = 1000;
  cfg.crash_loop_limit = 0;  // restarts forever
  make(1, 1);
  start_ready();
  const size_t sock = 1;
  uint64_t expected[] = {0, 100, 200, 400, 800, 1000, 1000};  // the first of a streak at once
  for (uint64_t delay : expected) {
    uint32_t gen = slot(sock).generation;
    ops.crash(pid(sock));
    EXPECT_EQ(slot(sock).state, SlotState::backoff);
    EXPECT_EQ(slot(sock).pid, 0);
    EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].pid), 0u);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_generation), 0u);  // orphaned set
    ASSERT_EQ(ops.restart_delay_ms(sock), delay);
    if (delay) {
      ops.advance(delay - 1);
      EXPECT_EQ(slot(sock).pid, 0) << "restarted before its back-off of " << delay << " ms";
    }
    ops.advance(delay ? 1 : 0);
    ASSERT_NE(slot(sock).pid, 0);
    EXPECT_EQ(slot(sock).generation, gen + 1);
    EXPECT_EQ(slot(sock).state, SlotState::running);
  }
  EXPECT_EQ(slot(sock).restarts, 7u);
  EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].restarts), 7u);
  EXPECT_EQ(ops.alive_in(0).size(), 1u);  // the swarm worker never noticed
  ops.advance(cfg.restart_healthy_after_s * 1000ull);  // ran long enough: the streak is over
  ops.crash(pid(sock));
  EXPECT_EQ(ops.restart_delay_ms(sock), 0u);
}

TEST_F(CycleTest, TheCrashLoopBreakerStopsASlotAndARollingRestartStartsItAgain) {
  cfg.crash_loop_limit = 3;
  cfg.crash_loop_window_s = 60;
  make(2, 1);
  start_ready();
  const size_t sock = 1;
  for (int i = 0; i < 2; i++) {
    ops.crash(pid(sock), SIGABRT);
    ops.advance(10000);
    ASSERT_NE(pid(sock), 0);
  }
  ops.crash(pid(sock), SIGABRT);
  EXPECT_EQ(slot(sock).state, SlotState::disabled);
  EXPECT_TRUE(slot(sock).crash_looping);
  EXPECT_FALSE(ops.restart_armed(sock));
  ops.advance(120000);
  EXPECT_EQ(ops.spawned_in(sock), 3u) << "a crash-looping slot was restarted";
  EXPECT_EQ(ops.alive_in(0).size(), 1u);
  EXPECT_EQ(ops.alive_in(2).size(), 1u);  // the other socket worker keeps serving
  EXPECT_FALSE(cycle->stopping());
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  EXPECT_NE(msg.find("1 stopped by the crash-loop breaker started again"), std::string::npos) << msg;
  EXPECT_EQ(slot(sock).state, SlotState::running);
  EXPECT_FALSE(slot(sock).crash_looping);
  ops.advance(5000);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_TRUE(cycle->all_ready());
}

TEST_F(CycleTest, SigkillFromOutsideAndSlowCrashesDoNotTripTheBreaker) {
  cfg.crash_loop_limit = 3;
  cfg.crash_loop_window_s = 60;
  cfg.restart_backoff_max_ms = 1000;
  make(1, 1);
  start_ready();
  for (int i = 0; i < 10; i++) {  // kill -9 from an operator, the OOM killer, a test
    ops.crash(pid(1), SIGKILL);
    ops.advance(1000);
    ASSERT_NE(pid(1), 0) << "after " << i + 1 << " SIGKILLs";
  }
  for (int i = 0; i < 5; i++) {  // a crash every 31 s: never 3 within 60 s
    ops.crash(pid(1), SIGSEGV);
    ops.advance(31000);
    ASSERT_NE(pid(1), 0) << "after " << i + 1 << " slow crashes";
  }
}

TEST_F(CycleTest, TheWatchdogKillsAHungWorkerAndTheHangCountsAsACrash) {
  cfg.heartbeat_timeout_s = 10;
  cfg.crash_loop_limit = 2;
  make(1, 1);
  start_ready();
  pid_t hung = pid(1);
  ops.advance(9000);
  ops.report_ready(pid(0));  // the swarm worker's heartbeat goes on; the socket worker's stopped
  cycle->check_heartbeats();
  EXPECT_TRUE(ops.find(hung)->alive);
  ops.advance(2000);
  ops.report_ready(pid(0));
  cycle->check_heartbeats();
  EXPECT_FALSE(ops.find(hung)->alive);
  EXPECT_TRUE(got(hung, SIGKILL));
  EXPECT_TRUE(ops.find(pid(0))->alive);
  ops.reap();
  EXPECT_EQ(slot(1).state, SlotState::backoff);  // a SIGKILL of its own: restarted, and counted
  ops.advance(200);
  ASSERT_NE(pid(1), 0);
  ops.advance(11000);
  ops.report_ready(pid(0));
  cycle->check_heartbeats();  // hangs again
  ops.reap();
  EXPECT_EQ(slot(1).state, SlotState::disabled);
}

TEST_F(CycleTest, AFatalSetupErrorStopsShoaldWithExitCode1) {
  make(2, 1);
  start_ready();
  ops.crash(pid(1), 0, 1);  // exit code 1: "do not respawn"
  EXPECT_EQ(slot(1).state, SlotState::disabled);
  EXPECT_TRUE(cycle->stopping());
  EXPECT_EQ(cycle->exit_code(), 1);
  EXPECT_FALSE(ops.restart_armed(1));
  EXPECT_EQ(ops.stopped_calls, 1);  // the others took SIGTERM and exited
  EXPECT_EQ(cycle->live_children(), 0u);
}

TEST_F(CycleTest, StopSendsSigtermThenSigkillAfterTheGraceAndRestartsNothing) {
  cfg.restart_backoff_min_ms = 1000;
  make(2, 1);
  start_ready();
  ops.exit_on_term = false;  // workers that take their time
  ops.crash(pid(2));         // in back-off when the stop comes
  ASSERT_TRUE(ops.restart_armed(2));
  pid_t a = pid(0), b = pid(1);
  cycle->begin_stop("SIGTERM", 0);
  EXPECT_TRUE(got(a, SIGTERM));
  EXPECT_TRUE(got(b, SIGTERM));
  EXPECT_FALSE(ops.restart_armed(2));
  ops.crash(b);  // a crash during the stop is not restarted
  EXPECT_EQ(slot(1).state, SlotState::empty);
  ops.advance(WorkerCycle::kStopGraceSeconds * 1000 - 1);
  EXPECT_TRUE(ops.find(a)->alive);
  EXPECT_EQ(ops.stopped_calls, 0);
  ops.advance(1);
  EXPECT_TRUE(got(a, SIGKILL));
  EXPECT_EQ(ops.stopped_calls, 1);
  EXPECT_EQ(ops.spawned_in(2), 1u);
  cycle->restart_due(2);  // a timer that fired anyway
  EXPECT_EQ(ops.spawned_in(2), 1u);
}

TEST_F(CycleTest, AFailedForkIsRetriedWithBackoff) {
  make(1, 1);
  ops.fork_fails = true;
  cycle->start_all();
  EXPECT_EQ(slot(0).state, SlotState::backoff);
  EXPECT_EQ(slot(1).state, SlotState::backoff);
  ops.fork_fails = false;
  ops.advance(200);
  EXPECT_TRUE(cycle->all_ready());
}

// --- rolling restart ---

TEST_F(CycleTest, ARollReplacesEverySlotOneAtATime) {
  make(2, 2);
  start_ready();
  std::vector<pid_t> before;
  std::vector<uint32_t> sets;
  for (const Slot& s : cycle->slots()) before.push_back(s.pid), sets.push_back(s.ring_set);
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  EXPECT_FALSE(cycle->start_rolling_restart(&msg));
  EXPECT_EQ(msg, "a rolling restart is already in progress");
  ops.advance(10000);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_FALSE(ops.roll_timer_on());
  for (size_t i = 0; i < cycle->slots().size(); i++) {
    EXPECT_FALSE(ops.find(before[i])->alive);
    ASSERT_EQ(ops.alive_in(i).size(), 1u);
    EXPECT_EQ(slot(i).generation, 2u);
    if (slot(i).role == shm::WorkerRole::socket) {
      EXPECT_NE(slot(i).ring_set, sets[i]) << "a socket successor takes the other ring set";
      EXPECT_TRUE(got(before[i], SIGUSR2));  // drained, not killed
      EXPECT_FALSE(got(before[i], SIGKILL));
    } else {
      EXPECT_TRUE(got(before[i], SIGTERM));
    }
  }
  // One slot at a time: each new process started after the previous slot's was replaced.
  for (size_t i = 1; i < cycle->slots().size(); i++) EXPECT_GT(pid(i), pid(i - 1));
  EXPECT_TRUE(cycle->all_ready());
}

// Roll fixture: one swarm slot (position 0) and one socket slot (position 1); successors report
// ready only when the test says. Returns once the socket slot's successor runs.
class RollTest : public CycleTest {
 protected:
  static constexpr size_t kSock = 1;
  void roll_to_socket_successor() {
    make(1, 1);
    start_ready();
    old_ = pid(kSock);
    old_gen_ = slot(kSock).generation;
    old_set_ = slot(kSock).ring_set;
    ops.ready_after_ms.reset();
    std::string msg;
    ASSERT_TRUE(cycle->start_rolling_restart(&msg));
    advance_until([&] { return ops.spawned_in(0) == 2; });  // the swarm slot: stopped, then started
    ops.report_ready(pid(0));
    advance_until([&] { return ops.spawned_in(kSock) == 2; });
    succ_ = pid(kSock);
    ASSERT_NE(succ_, old_);
    EXPECT_TRUE(ops.find(old_)->alive);  // both run now: on different ring sets
    EXPECT_NE(slot(kSock).ring_set, old_set_);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].draining_set), old_set_);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].draining_generation), old_gen_);
  }
  // The old worker still serves as the slot's worker, on its own ring set.
  void expect_old_serves() {
    EXPECT_EQ(pid(kSock), old_);
    EXPECT_EQ(slot(kSock).generation, old_gen_);
    EXPECT_EQ(slot(kSock).ring_set, old_set_);
    EXPECT_EQ(slot(kSock).draining_pid, 0);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_set), old_set_);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_generation), old_gen_);
    EXPECT_EQ(shm::load_u32(control->socket_sets[0].draining_generation), 0u);
    EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].pid), uint32_t(old_));
    EXPECT_EQ(shm::load_u32(control->slots[shm::socket_slot(0)].ready), old_gen_);
    ASSERT_EQ(ops.alive_in(kSock).size(), 1u);
    EXPECT_EQ(ops.alive_in(kSock)[0]->pid, old_);
  }
  pid_t old_ = 0, succ_ = 0;
  uint32_t old_gen_ = 0, old_set_ = 0;
};

TEST_F(RollTest, ASuccessorNeverReadyIsKilledAndTheOldWorkerKeepsServing) {
  roll_to_socket_successor();
  ops.advance(WorkerCycle::kReadyTimeoutNs / 1000000 + 100);
  EXPECT_TRUE(got(succ_, SIGKILL));
  EXPECT_FALSE(got(old_, SIGUSR2));  // never asked to drain
  EXPECT_FALSE(cycle->rolling());
  expect_old_serves();
}

TEST_F(RollTest, AnAbandonedRollNeverStartsASuccessorWaitingInBackoff) {
  cfg.restart_backoff_min_ms = 10000;  // the successor's back-off outlasts the 5 s for readiness
  roll_to_socket_successor();
  ops.crash(succ_);
  ops.advance(0);  // the first crash of a streak is restarted at once, on the same ring set
  ASSERT_EQ(ops.spawned_in(kSock), 3u);
  ops.crash(pid(kSock));  // the second waits out its back-off
  EXPECT_EQ(slot(kSock).state, SlotState::backoff);
  EXPECT_TRUE(ops.restart_armed(kSock));
  ops.advance(WorkerCycle::kReadyTimeoutNs / 1000000 + 100);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_FALSE(ops.restart_armed(kSock));
  ops.advance(60000);
  EXPECT_EQ(ops.spawned_in(kSock), 3u) << "a successor started after the roll was abandoned";
  expect_old_serves();
  EXPECT_EQ(slot(kSock).state, SlotState::running);
}

TEST_F(RollTest, ADrainingWorkerThatCrashesIsNotRestartedAndTheRollGoesOn) {
  roll_to_socket_successor();
  ops.report_ready(succ_);
  advance_until([&] { return got(old_, SIGUSR2); });
  ops.crash(old_);
  EXPECT_EQ(slot(kSock).draining_pid, 0);
  ops.advance(1000);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_EQ(ops.spawned_in(kSock), 2u);
  EXPECT_EQ(pid(kSock), succ_);
}

TEST_F(RollTest, AStopDuringARollSignalsTheDrainingWorkerToo) {
  roll_to_socket_successor();
  cycle->begin_stop("SIGTERM", 0);
  EXPECT_TRUE(got(old_, SIGTERM));
  EXPECT_TRUE(got(succ_, SIGTERM));
  ops.advance(100);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_EQ(ops.stopped_calls, 1);
  std::string msg;
  EXPECT_FALSE(cycle->start_rolling_restart(&msg));
  EXPECT_EQ(msg, "shoald is stopping");
}

// The successor dies at each step of a socket slot's roll, by a crash (counted) or SIGKILL.
enum class Step { before_ready, ready_not_yet_seen, while_old_drains, after_old_exited };
struct Death {
  Step step;
  int sig;
};

std::string death_name(const ::testing::TestParamInfo<Death>& info) {
  static const char* const steps[] = {"before_ready", "ready_not_yet_seen", "while_old_drains", "after_old_exited"};
  return std::string(steps[int(info.param.step)]) + (info.param.sig == SIGKILL ? "_SIGKILL" : "_SIGSEGV");
}

class RollDeath : public RollTest, public ::testing::WithParamInterface<Death> {};

TEST_P(RollDeath, TheRespawnTakesTheFreeRingSetAndTheRollCompletes) {
  roll_to_socket_successor();
  uint32_t succ_gen = slot(kSock).generation;
  switch (GetParam().step) {
    case Step::before_ready: break;
    case Step::ready_not_yet_seen: ops.report_ready(succ_); break;
    case Step::while_old_drains:
      ops.report_ready(succ_);
      advance_until([&] { return got(old_, SIGUSR2); });
      ASSERT_TRUE(ops.find(old_)->alive);
      break;
    case Step::after_old_exited:
      ops.report_ready(succ_);
      advance_until([&] { return !ops.find(old_)->alive; });
      break;
  }
  ops.crash(succ_, GetParam().sig);
  EXPECT_NE(slot(kSock).state, SlotState::disabled);
  ops.ready_after_ms = 10;  // later successors start normally
  ops.advance(30000);  // (the fake checks the ring sets after every event)
  EXPECT_FALSE(cycle->rolling());
  auto live = ops.alive_in(kSock);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0]->pid, pid(kSock));
  EXPECT_GT(slot(kSock).generation, succ_gen);
  EXPECT_FALSE(ops.find(old_)->alive);
  EXPECT_TRUE(got(old_, SIGUSR2)) << "the old worker drained (it was not killed)";
  EXPECT_FALSE(got(old_, SIGKILL));
  EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_set), live[0]->ring_set);
  EXPECT_EQ(shm::load_u32(control->socket_sets[0].active_generation), slot(kSock).generation);
  EXPECT_TRUE(cycle->all_ready());
}

INSTANTIATE_TEST_SUITE_P(EachStep, RollDeath,
                         ::testing::Values(Death{Step::before_ready, SIGSEGV}, Death{Step::before_ready, SIGKILL},
                                           Death{Step::ready_not_yet_seen, SIGSEGV},
                                           Death{Step::ready_not_yet_seen, SIGKILL},
                                           Death{Step::while_old_drains, SIGSEGV}, Death{Step::while_old_drains, SIGKILL},
                                           Death{Step::after_old_exited, SIGSEGV},
                                           Death{Step::after_old_exited, SIGKILL}),
                         death_name);

}  // namespace
}  // namespace shoal::supervisor

namespace shoal::supervisor {
namespace {

// The sync worker (issue 14): one more slot, last, only with cluster.enabled; its own control
// slot; restarted after a crash like any worker, replaced one process at a time by a roll (its
// rings have one producer and one consumer), stopped with the rest.
class SyncSlotTest : public ::testing::Test {
 protected:
  void SetUp() override { log_init(LogLevel::error, false); }
  void TearDown() override { EXPECT_TRUE(ops.violations.empty()) << joined(ops.violations); }
  conf::Config cfg;
  std::unique_ptr<shm::ControlSegment> control = std::make_unique<shm::ControlSegment>();
  FakeProcessOps ops{control.get()};
  std::unique_ptr<WorkerCycle> cycle;
  void make(bool cluster) {
    cfg.socket_workers = 2;
    cfg.swarm_workers = 2;
    cfg.cluster_enabled = cluster;
    cycle = std::make_unique<WorkerCycle>(cfg, control.get(), &ops);
    ops.attach(cycle.get());
    cycle->start_all();
    ops.advance(20);
  }
};

TEST_F(SyncSlotTest, NoSyncWorkerWithoutCluster) {
  make(false);
  EXPECT_EQ(cycle->slots().size(), 4u);
  for (const Slot& s : cycle->slots()) EXPECT_NE(s.role, shm::WorkerRole::sync);
}

TEST_F(SyncSlotTest, TheSyncWorkerIsTheLastSlotWithItsOwnControlSlot) {
  make(true);
  ASSERT_EQ(cycle->slots().size(), 5u);
  const Slot& s = cycle->slots().back();
  EXPECT_EQ(s.role, shm::WorkerRole::sync);
  EXPECT_EQ(s.name(), "sync worker 0");
  EXPECT_EQ(slot_number(s), shm::sync_slot());
  EXPECT_NE(slot_number(s), slot_number(cycle->slots()[0]));
  EXPECT_EQ(shm::load_u32(control->slots[shm::sync_slot()].pid), uint32_t(s.pid));
  EXPECT_TRUE(cycle->all_ready());
}

TEST_F(SyncSlotTest, ACrashedSyncWorkerIsRestartedAtOnce) {
  make(true);
  size_t pos = cycle->slots().size() - 1;
  pid_t old = cycle->slots()[pos].pid;
  ops.crash(old, SIGSEGV);
  ops.advance(1);
  EXPECT_NE(cycle->slots()[pos].pid, 0);
  EXPECT_NE(cycle->slots()[pos].pid, old);
  EXPECT_EQ(cycle->slots()[pos].restarts, 1u);
}

TEST_F(SyncSlotTest, ARollReplacesTheSyncWorkerOneProcessAtATimeAndAStopEndsIt) {
  make(true);
  size_t pos = cycle->slots().size() - 1;
  pid_t old = cycle->slots()[pos].pid;
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  ops.advance(10000);
  EXPECT_FALSE(cycle->rolling());
  EXPECT_FALSE(ops.find(old)->alive);
  EXPECT_EQ(ops.find(old)->signals.front(), SIGTERM);  // stopped before its successor started
  EXPECT_EQ(ops.alive_in(pos).size(), 1u);
  EXPECT_EQ(cycle->slots()[pos].generation, 2u);
  pid_t current = cycle->slots()[pos].pid;
  cycle->begin_stop("test", 0);
  EXPECT_TRUE(std::count(ops.find(current)->signals.begin(), ops.find(current)->signals.end(), SIGTERM));
  ops.advance(WorkerCycle::kStopGraceSeconds * 1000);
  EXPECT_EQ(cycle->live_children(), 0u);
  EXPECT_EQ(ops.stopped_calls, 1);
}

}  // namespace
}  // namespace shoal::supervisor
