// The partition handoff of a swarm slot's rolling restart (supervisor/rolling_restart.cpp,
// worker/swarm_handoff.hpp; issue 12, recovery time) without real processes: the successor is
// started while the old worker serves, waits writing nothing, and takes the partition when the
// old one has released it (or, if it died first, once the supervisor has reaped it), without
// waiting for the old one's exit. Every interleaving of deaths is driven through FakeProcessOps,
// which checks after every event that a partition never has two writers and that `released`
// is never raised for a process that still writes or is not yet reaped.
#include <gtest/gtest.h>

#include "tests/unit/worker_cycle_fixture.hpp"

namespace shoal::supervisor {
namespace {

constexpr size_t kSwarm = 0, kSock = 1;
constexpr uint64_t kReadyMs = WorkerCycle::kReadyTimeoutNs / 1000000, kExitMs = WorkerCycle::kExitTimeoutNs / 1000000;

class HandoffTest : public CycleTest {
 protected:
  // One swarm slot and one socket slot, a roll started; returns once the swarm slot's successor
  // has been started next to the old worker.
  void begin_handoff() {
    make(1, 1);
    start_ready();
    old_ = pid(kSwarm);
    old_gen_ = slot(kSwarm).generation;
    std::string msg;
    ASSERT_TRUE(cycle->start_rolling_restart(&msg));
    advance_until([&] { return ops.spawned_in(kSwarm) == 2; });
    succ_ = pid(kSwarm);
    ASSERT_NE(succ_, old_);
    EXPECT_TRUE(ops.writer(old_));  // it still serves
    EXPECT_FALSE(ops.writer(succ_));
    EXPECT_EQ(ops.find(succ_)->waits_for, old_gen_);
    EXPECT_EQ(slot(kSwarm).draining_pid, old_);
    // Both pids are in the control segment: a shoald re-attaching after a supervisor crash waits for both.
    EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].draining_pid), uint32_t(old_));
    EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].pid), uint32_t(succ_));
  }
  // The roll finished with one process in the swarm slot, which writes its partition and serves.
  void expect_rolled() {
    advance_until([&] { return !cycle->rolling(); });
    ops.advance(100);
    auto live = ops.alive_in(kSwarm);
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0]->pid, pid(kSwarm));
    EXPECT_TRUE(live[0]->writer());
    EXPECT_GT(slot(kSwarm).generation, old_gen_);
    EXPECT_EQ(slot(kSwarm).draining_pid, 0);
    EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].draining_pid), 0u);
    EXPECT_FALSE(ops.find(old_)->alive);
    EXPECT_GE(ops.released_word(0), old_gen_);
    EXPECT_TRUE(cycle->all_ready());
  }
  pid_t old_ = 0, succ_ = 0;
  uint32_t old_gen_ = 0;
};

TEST_F(HandoffTest, TheSuccessorTakesThePartitionAtTheReleaseNotAtTheOldOnesExit) {
  ops.release_exit_ms = 30;  // the kernel tearing down the old one's mapping
  begin_handoff();
  advance_until([&] { return got(old_, SIGTERM); });
  EXPECT_TRUE(ops.find(succ_)->standby) << "the old worker was asked to release before its successor waited";
  // The same instant: the old worker released (its last write), the successor writes now.
  EXPECT_EQ(ops.released_word(0), old_gen_);
  EXPECT_TRUE(ops.writer(succ_));
  EXPECT_TRUE(ops.find(old_)->alive);
  advance_until([&] { return cycle->all_ready(); });
  EXPECT_TRUE(ops.find(old_)->alive) << "the successor served only after the old one's exit";
  expect_rolled();
  EXPECT_FALSE(got(old_, SIGKILL));
  EXPECT_EQ(ops.takeovers, 1);
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u);
}

TEST_F(HandoffTest, ASuccessorNeverWaitingIsKilledAndTheOldWorkerKeepsItsPartition) {
  ops.standby_after_ms.reset();  // stuck before it reports standby
  begin_handoff();
  ops.advance(kReadyMs + 100);
  EXPECT_TRUE(got(succ_, SIGKILL));
  EXPECT_FALSE(got(old_, SIGTERM)) << "asked to release for a successor that never waited";
  EXPECT_FALSE(cycle->rolling());
  EXPECT_EQ(pid(kSwarm), old_);
  EXPECT_EQ(slot(kSwarm).generation, old_gen_);
  EXPECT_EQ(slot(kSwarm).draining_pid, 0);
  EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].pid), uint32_t(old_));
  EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].draining_pid), 0u);
  EXPECT_EQ(shm::load_u32(control->slots[shm::swarm_slot(0)].ready), old_gen_);
  EXPECT_TRUE(ops.writer(old_));
  EXPECT_LT(ops.released_word(0), old_gen_);
}

TEST_F(HandoffTest, TheOldWorkerHungInItsLastBatchIsKilledAndItsSuccessorRollsBack) {
  begin_handoff();
  ops.exit_on_term = false;  // never releases
  advance_until([&] { return got(old_, SIGTERM); });
  ops.advance(kExitMs - 10);
  EXPECT_FALSE(ops.writer(succ_));
  EXPECT_FALSE(got(old_, SIGKILL));
  advance_until([&] { return got(old_, SIGKILL); });
  EXPECT_TRUE(ops.writer(succ_));  // released by the supervisor once reaped
  expect_rolled();
}

// The old worker dies before it released: while its successor is still starting, while the
// successor waits and it was not asked yet, or after it was asked (its last batch running).
enum class OldDies { successor_starting, successor_waiting, asked };
struct OldDeath {
  OldDies when;
  int sig;
};
std::string old_death_name(const ::testing::TestParamInfo<OldDeath>& info) {
  static const char* const w[] = {"successor_starting", "successor_waiting", "asked"};
  return std::string(w[int(info.param.when)]) + (info.param.sig == SIGKILL ? "_SIGKILL" : "_SIGSEGV");
}
class HandoffOldDies : public HandoffTest, public ::testing::WithParamInterface<OldDeath> {};

TEST_P(HandoffOldDies, TheSuccessorTakesThePartitionOnceTheOldOneIsReaped) {
  if (GetParam().when == OldDies::successor_starting) ops.standby_after_ms = 200;
  ops.release_after_ms = 100;  // its last batch
  begin_handoff();
  if (GetParam().when == OldDies::successor_waiting) advance_until([&] { return ops.find(succ_)->standby; });
  if (GetParam().when == OldDies::asked) advance_until([&] { return got(old_, SIGTERM); });
  int wakes = ops.wakes;
  ops.crash(old_, GetParam().sig);  // reaped at once: the supervisor releases on its behalf
  EXPECT_EQ(ops.released_word(0), old_gen_);
  EXPECT_EQ(ops.wakes, wakes + 1);
  if (GetParam().when == OldDies::successor_starting) {
    EXPECT_FALSE(ops.writer(succ_));  // it takes the partition after its setup, not before
    advance_until([&] { return ops.find(succ_)->standby; });
  }
  EXPECT_TRUE(ops.writer(succ_));
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u) << "the dead old worker was restarted";
  EXPECT_EQ(slot(kSwarm).restarts, 0u);
  expect_rolled();
  EXPECT_EQ(pid(kSwarm), succ_);
}

INSTANTIATE_TEST_SUITE_P(EachMoment, HandoffOldDies,
                         ::testing::Values(OldDeath{OldDies::successor_starting, SIGSEGV},
                                           OldDeath{OldDies::successor_starting, SIGKILL},
                                           OldDeath{OldDies::successor_waiting, SIGSEGV},
                                           OldDeath{OldDies::successor_waiting, SIGKILL},
                                           OldDeath{OldDies::asked, SIGSEGV}, OldDeath{OldDies::asked, SIGKILL}),
                         old_death_name);

// The successor dies: before it waits, while it waits (the old worker not asked yet), after the
// old one was asked but before it released, or right after it took the partition while the old
// one is still exiting. Its restart waits for the same release (or takes the partition at once
// when the release is already there) and the roll completes.
enum class SuccDies { starting, waiting, old_asked, just_took_over };
struct SuccDeath {
  SuccDies when;
  int sig;
};
std::string succ_death_name(const ::testing::TestParamInfo<SuccDeath>& info) {
  static const char* const w[] = {"starting", "waiting", "old_asked", "just_took_over"};
  return std::string(w[int(info.param.when)]) + (info.param.sig == SIGKILL ? "_SIGKILL" : "_SIGSEGV");
}
class HandoffSuccessorDies : public HandoffTest, public ::testing::WithParamInterface<SuccDeath> {};

TEST_P(HandoffSuccessorDies, ItsRestartWaitsForTheSameReleaseAndTheRollCompletes) {
  ops.standby_after_ms = 50;
  ops.release_after_ms = 100;
  ops.release_exit_ms = 200;
  begin_handoff();
  switch (GetParam().when) {
    case SuccDies::starting: ops.advance(10); break;
    case SuccDies::waiting: advance_until([&] { return ops.find(succ_)->standby; }); break;
    case SuccDies::old_asked: advance_until([&] { return got(old_, SIGTERM); }); break;
    case SuccDies::just_took_over: advance_until([&] { return ops.writer(succ_); }); break;
  }
  ASSERT_EQ(ops.find(succ_)->standby, GetParam().when != SuccDies::starting);
  ops.crash(succ_, GetParam().sig);
  ops.advance(0);  // the first crash of a streak is restarted at once
  ASSERT_EQ(ops.spawned_in(kSwarm), 3u);
  pid_t again = pid(kSwarm);
  if (ops.find(old_)->alive) {
    EXPECT_EQ(ops.find(again)->waits_for, old_gen_) << "the restart did not wait for the old worker";
  }
  EXPECT_FALSE(ops.writer(again));  // not before its standby, in any case
  expect_rolled();
  EXPECT_EQ(pid(kSwarm), again);
  EXPECT_FALSE(got(old_, SIGKILL));
  EXPECT_EQ(std::count(ops.find(old_)->signals.begin(), ops.find(old_)->signals.end(), SIGTERM), 1);
}

INSTANTIATE_TEST_SUITE_P(EachMoment, HandoffSuccessorDies,
                         ::testing::Values(SuccDeath{SuccDies::starting, SIGSEGV}, SuccDeath{SuccDies::starting, SIGKILL},
                                           SuccDeath{SuccDies::waiting, SIGSEGV}, SuccDeath{SuccDies::waiting, SIGKILL},
                                           SuccDeath{SuccDies::old_asked, SIGSEGV}, SuccDeath{SuccDies::old_asked, SIGKILL},
                                           SuccDeath{SuccDies::just_took_over, SIGSEGV},
                                           SuccDeath{SuccDies::just_took_over, SIGKILL}),
                         succ_death_name);

TEST_F(HandoffTest, TheOldWorkerCrashingInItsExitAfterTheReleaseChangesNothing) {
  ops.release_exit_ms = 50;
  begin_handoff();
  advance_until([&] { return ops.writer(succ_); });
  ASSERT_TRUE(ops.find(old_)->alive);
  ops.crash(old_, SIGSEGV);  // e.g. in a destructor, after its last write
  EXPECT_EQ(ops.released_word(0), old_gen_);
  EXPECT_TRUE(ops.writer(succ_));
  EXPECT_EQ(slot(kSwarm).draining_pid, 0);
  EXPECT_NE(slot(kSwarm).state, SlotState::backoff);
  expect_rolled();
  EXPECT_EQ(pid(kSwarm), succ_);
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u);
  EXPECT_EQ(slot(kSwarm).restarts, 0u);
}

TEST_F(HandoffTest, AStopDuringTheHandoffEndsBothAndTheWaitingSuccessorNeverWrites) {
  ops.release_after_ms = 20;
  begin_handoff();
  advance_until([&] { return ops.find(succ_)->standby; });
  cycle->begin_stop("SIGTERM", 0);
  EXPECT_TRUE(got(old_, SIGTERM));
  EXPECT_TRUE(got(succ_, SIGTERM));
  ops.advance(100);
  EXPECT_FALSE(ops.find(succ_)->held);
  EXPECT_FALSE(ops.find(succ_)->alive);
  EXPECT_FALSE(ops.find(old_)->alive);
  EXPECT_EQ(ops.released_word(0), old_gen_);  // the old one released as it stopped
  EXPECT_EQ(ops.stopped_calls, 1);
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u);
}

// The supervisor dies in the middle of a handoff (its workers get SIGTERM from the kernel); a
// new shoald re-attaches the same control segment once they are gone. Its swarm worker takes
// the partition at once (no predecessor of its own), with a newer generation.
enum class SupervisorDies { successor_waiting, old_releasing, old_exiting };
std::string supervisor_death_name(const ::testing::TestParamInfo<SupervisorDies>& info) {
  static const char* const w[] = {"successor_waiting", "old_releasing", "old_exiting"};
  return w[int(info.param)];
}
class HandoffSupervisorDies : public HandoffTest, public ::testing::WithParamInterface<SupervisorDies> {};

TEST_P(HandoffSupervisorDies, TheNextShoaldStartsTheSlotWithoutAHandoff) {
  ops.release_after_ms = 100;
  ops.release_exit_ms = 100;
  begin_handoff();
  switch (GetParam()) {
    case SupervisorDies::successor_waiting: advance_until([&] { return ops.find(succ_)->standby; }); break;
    case SupervisorDies::old_releasing: advance_until([&] { return got(old_, SIGTERM); }); break;
    case SupervisorDies::old_exiting: advance_until([&] { return ops.writer(succ_); }); break;
  }
  uint32_t last_gen = slot(kSwarm).generation;
  ops.supervisor_dies();
  EXPECT_GE(ops.released_word(0), old_gen_);  // the old one released on SIGTERM
  // What reattach_segments does after waiting for every pid of the control segment.
  for (uint32_t s = 0; s < shm::kMaxWorkerSlots; s++) {
    shm::store_u32(control->slots[s].pid, 0);
    shm::store_u32(control->slots[s].draining_pid, 0);
    shm::store_u32(control->slots[s].ready, 0);
  }
  WorkerCycle second(cfg, control.get(), &ops);
  ops.attach(&second);
  second.start_all();
  ops.check("re-attached");
  const Slot& sw = second.slots()[kSwarm];
  EXPECT_EQ(sw.handoff_from, 0u);
  EXPECT_GT(sw.generation, last_gen);
  EXPECT_TRUE(ops.writer(sw.pid));
  ops.advance(100);
  EXPECT_TRUE(second.all_ready());
  ops.attach(cycle.get());  // (the first cycle is gone with its supervisor; TearDown checks the invariants)
  cycle.reset();
}

INSTANTIATE_TEST_SUITE_P(EachMoment, HandoffSupervisorDies,
                         ::testing::Values(SupervisorDies::successor_waiting, SupervisorDies::old_releasing,
                                           SupervisorDies::old_exiting),
                         supervisor_death_name);

TEST_F(HandoffTest, ASecondRollWaitsForTheSlotsPreviousProcessToExit) {
  ops.release_exit_ms = 3000;  // a slow teardown
  begin_handoff();
  advance_until([&] { return !cycle->rolling(); });
  ASSERT_TRUE(ops.find(old_)->alive);
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  ops.advance(1000);
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u) << "a third process next to two";
  advance_until([&] { return ops.spawned_in(kSwarm) == 3; });
  EXPECT_FALSE(ops.find(old_)->alive);
  advance_until([&] { return !cycle->rolling(); });
  EXPECT_EQ(slot(kSwarm).generation, old_gen_ + 2);
  EXPECT_TRUE(ops.writer(pid(kSwarm)));
}

TEST_F(HandoffTest, AReleasedWorkerStuckInItsExitIsKilledBeforeTheSlotRollsAgain) {
  ops.release_exit_ms = 60000;  // never exits by itself (a bug after its release)
  begin_handoff();
  advance_until([&] { return !cycle->rolling(); });
  std::string msg;
  ASSERT_TRUE(cycle->start_rolling_restart(&msg));
  ops.advance(kExitMs - 100);
  EXPECT_FALSE(got(old_, SIGKILL));
  EXPECT_EQ(ops.spawned_in(kSwarm), 2u);
  advance_until([&] { return got(old_, SIGKILL); });
  advance_until([&] { return !cycle->rolling(); });
  EXPECT_EQ(ops.spawned_in(kSwarm), 3u);
  EXPECT_TRUE(ops.writer(pid(kSwarm)));
}

TEST_F(HandoffTest, ACrashOutsideARollIsRestartedWithoutAHandoff) {
  make(1, 1);
  start_ready();
  pid_t first = pid(kSwarm);
  ops.crash(first, SIGKILL);
  ops.advance(0);
  ASSERT_NE(pid(kSwarm), 0);
  EXPECT_EQ(slot(kSwarm).handoff_from, 0u);
  EXPECT_TRUE(ops.writer(pid(kSwarm)));  // at once: its predecessor is reaped
  EXPECT_EQ(ops.wakes, 0);
}

}  // namespace
}  // namespace shoal::supervisor
