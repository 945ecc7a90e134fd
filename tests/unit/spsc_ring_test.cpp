// tests/unit/spsc_ring_test.cpp — tests for shm/spsc_ring.hpp (SPSC ring in shared memory).
// Runs in the unit test binary. Each test maps its own anonymous MAP_SHARED region and forks
// producer / consumer / monitor children that are SIGKILLed at awkward moments; it touches no
// named shm, files or sockets. Every wait (pipe read, child exit, spin on the ring) has a
// deadline, after which the child is SIGKILLed and the test fails instead of hanging.
#include "shm/spsc_ring.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

namespace shoal::shm {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A 64-byte entry whose every word is derived from its sequence number, so a torn or stale
// slot is detected by intact().
struct Entry {
  uint64_t seq;
  uint64_t words[6];
  uint64_t check;
};
static_assert(sizeof(Entry) == 64 && kShmSafe<Entry>);

void fill(Entry* e, uint64_t seq) {
  e->seq = seq;
  uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1;
  for (auto& w : e->words) w = x = x * 6364136223846793005ull + 1442695040888963407ull;
  e->check = ~seq;
}
bool intact(const Entry* e, uint64_t seq) {
  Entry want;
  fill(&want, seq);
  return std::memcmp(e, &want, sizeof(Entry)) == 0;
}

// Anonymous MAP_SHARED region, inherited by forked children.
class SharedRegion {
 public:
  explicit SharedRegion(size_t bytes) : bytes_(bytes) {
    p_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p_ == MAP_FAILED) p_ = nullptr;
  }
  ~SharedRegion() {
    if (p_) munmap(p_, bytes_);
  }
  void* get() const { return p_; }

 private:
  void* p_;
  size_t bytes_;
};

// A ring in its own region, followed by a few shared control words for the tests.
struct RingFixture {
  explicit RingFixture(uint32_t capacity)
      : region(4096 + ring_bytes(capacity, sizeof(Entry))),
        ring(SpscRing<Entry>::init(static_cast<char*>(region.get()) + 4096, capacity)),
        flags(static_cast<uint64_t*>(region.get())) {}
  std::atomic_ref<uint64_t> flag(int i) { return std::atomic_ref<uint64_t>(flags[i]); }
  RingHeader* header() { return static_cast<RingHeader*>(static_cast<void*>(static_cast<char*>(region.get()) + 4096)); }
  SharedRegion region;
  SpscRing<Entry> ring;
  uint64_t* flags;
};

// Producer helper: writes and publishes `n` entries starting at `seq` (caller checked room).
void push(SpscRing<Entry>& r, uint64_t seq, uint64_t n) {
  for (uint64_t i = 0; i < n; i++) fill(r.slot_for_write(i), seq + i);
  r.publish(n);
}

// A forked child that is SIGKILLed at destruction if still running.
class Child {
 public:
  template <class F>
  explicit Child(F body) {
    if (pipe(pipe_) != 0) pipe_[0] = pipe_[1] = -1;
    pid_ = fork();
    if (pid_ == 0) {
      close(pipe_[0]);
      int rc = body(pipe_[1]);
      _exit(rc);
    }
    close(pipe_[1]);
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(pipe_[0]);
  }
  bool started() const { return pid_ > 0; }
  // Waits up to `timeout` for the child to write one byte; true if it did.
  bool wait_signal(milliseconds timeout) {
    pollfd p{pipe_[0], POLLIN, 0};
    if (poll(&p, 1, int(timeout.count())) != 1) return false;
    char c;
    return read(pipe_[0], &c, 1) == 1;
  }
  // Waits up to `timeout` for the child to exit; returns its exit code, or -1 (killed / timed out,
  // in which case it is SIGKILLed).
  int wait_exit(milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    int status = 0;
    while (Clock::now() < deadline) {
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    kill_now();
    return -1;
  }
  // SIGKILLs the child and reaps it (bounded: SIGKILL cannot be blocked).
  void kill_now() {
    if (pid_ <= 0 || reaped_) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    reaped_ = true;
  }

 private:
  int pipe_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool reaped_ = false;
};

void signal_parent(int fd) {
  char c = 1;
  (void)!write(fd, &c, 1);
}

TEST(SpscRing, FifoAndWrapAroundOverManyLaps) {
  RingFixture f(8);
  auto& r = f.ring;
  ASSERT_TRUE(r.valid());
  EXPECT_EQ(r.capacity(), 8u);
  std::mt19937 rng(7);
  uint64_t next_write = 0, next_read = 0;
  while (next_read < 8 * 5000) {  // 5000 laps
    uint64_t room = r.free_slots();
    uint64_t n = room ? 1 + rng() % room : 0;
    push(r, next_write, n);
    next_write += n;
    EXPECT_EQ(r.depth(), next_write - next_read);
    uint64_t avail = r.available();
    uint64_t take = avail ? 1 + rng() % avail : 0;
    for (uint64_t i = 0; i < take; i++) ASSERT_TRUE(intact(r.peek(i), next_read + i)) << next_read + i;
    r.retire(take);
    next_read += take;
  }
}

// The counters are u64 and the slot index is c & (capacity-1): crossing 2^64 must be seamless.
TEST(SpscRing, CountersWrapPast64Bits) {
  RingFixture f(8);
  f.header()->head = f.header()->tail = ~uint64_t(0) - 20;
  auto& r = f.ring;
  uint64_t seq = 0;
  for (int lap = 0; lap < 10; lap++) {
    EXPECT_EQ(r.free_slots(), 8u);
    push(r, seq, 5);
    EXPECT_EQ(r.available(), 5u);
    EXPECT_EQ(r.depth(), 5u);
    for (uint64_t i = 0; i < 5; i++) ASSERT_TRUE(intact(r.peek(i), seq + i));
    r.retire(5);
    seq += 5;
  }
  EXPECT_LT(f.header()->head, 100u);  // did wrap
}

TEST(SpscRing, FullRingRefuses) {
  RingFixture f(8);
  auto& r = f.ring;
  push(r, 0, 8);
  EXPECT_EQ(r.free_slots(), 0u);
  EXPECT_EQ(r.available(), 8u);
  EXPECT_EQ(r.depth(), 8u);
  r.retire(1);
  EXPECT_EQ(r.free_slots(), 1u);
  push(r, 8, 1);
  EXPECT_EQ(r.free_slots(), 0u);
  for (uint64_t i = 0; i < 8; i++) EXPECT_TRUE(intact(r.peek(i), 1 + i));
}

TEST(SpscRing, BatchPublishNothingBeforeAllAtOnce) {
  RingFixture f(16);
  auto& r = f.ring;
  for (uint64_t i = 0; i < 10; i++) {
    fill(r.slot_for_write(i), i);
    EXPECT_EQ(r.available(), 0u);
    EXPECT_EQ(r.depth(), 0u);
  }
  EXPECT_EQ(r.free_slots(), 16u);  // written-but-unpublished slots are still the producer's
  r.publish(10);
  EXPECT_EQ(r.available(), 10u);
  for (uint64_t i = 0; i < 10; i++) EXPECT_TRUE(intact(r.peek(i), i));
}

// Cross-process: a consumer child polling available() sees only 0 and then the whole batch.
TEST(SpscRing, BatchPublishSeenAtOnceByAnotherProcess) {
  RingFixture f(16);
  Child consumer([&](int fd) -> int {
    SpscRing<Entry> r = f.ring;
    signal_parent(fd);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      uint64_t a = r.available();
      if (a == 0) continue;
      if (a != 8) return 2;  // saw a partial batch
      for (uint64_t i = 0; i < 8; i++)
        if (!intact(r.peek(i), i)) return 3;
      return 0;
    }
    return 4;
  });
  ASSERT_TRUE(consumer.started());
  ASSERT_TRUE(consumer.wait_signal(milliseconds(5000)));
  for (uint64_t i = 0; i < 8; i++) {
    fill(f.ring.slot_for_write(i), i);
    std::this_thread::sleep_for(milliseconds(2));  // give the consumer time to look
  }
  f.ring.publish(8);
  EXPECT_EQ(consumer.wait_exit(milliseconds(10000)), 0);
}

// 1,000,000 sequence numbers from a producer child to this process, with random batch sizes:
// no loss, duplication, reordering or tearing. A monitor child samples depth() meanwhile; it must
// never exceed the capacity (a third-party reader racing both sides).
TEST(SpscRing, CrossProcessMillionEntries) {
  constexpr uint64_t kCount = 1000000;
  constexpr uint32_t kCap = 1024;
  RingFixture f(kCap);
  auto deadline_in_child = std::chrono::seconds(60);
  Child producer([&](int) -> int {
    SpscRing<Entry> r = f.ring;
    std::mt19937 rng(1);
    auto deadline = Clock::now() + deadline_in_child;
    uint64_t seq = 0;
    while (seq < kCount) {
      if (Clock::now() > deadline) return 2;
      uint64_t room = r.free_slots();
      if (room == 0) {
        sched_yield();
        continue;
      }
      uint64_t n = std::min<uint64_t>({room, 1 + rng() % 64, kCount - seq});
      push(r, seq, n);
      seq += n;
    }
    return 0;
  });
  Child monitor([&](int) -> int {
    SpscRing<Entry> r = f.ring;
    auto deadline = Clock::now() + deadline_in_child;
    int rc = 0;
    while (f.flag(0).load() == 0 && Clock::now() < deadline) {
      uint64_t d = r.depth();
      if (d > (uint64_t(1) << 63)) rc |= 1;  // wrapped below zero
      else if (d > kCap) rc |= 2;            // above capacity
    }
    return rc;
  });
  ASSERT_TRUE(producer.started() && monitor.started());

  auto& r = f.ring;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  uint64_t next = 0, errors = 0;
  std::mt19937 rng(2);
  while (next < kCount && Clock::now() < deadline) {
    uint64_t avail = r.available();
    if (avail == 0) {
      sched_yield();
      continue;
    }
    uint64_t take = 1 + rng() % avail;
    for (uint64_t i = 0; i < take; i++) errors += !intact(r.peek(i), next + i);
    r.retire(take);
    next += take;
  }
  f.flag(0).store(1);
  EXPECT_EQ(next, kCount) << "timed out";
  EXPECT_EQ(errors, 0u);
  EXPECT_EQ(r.available(), 0u);
  EXPECT_EQ(producer.wait_exit(milliseconds(10000)), 0);
  EXPECT_EQ(monitor.wait_exit(milliseconds(10000)), 0) << "depth() out of 0..capacity (1: wrapped negative, 2: above capacity)";
}

// A producer that writes slots but never publishes: the consumer sees nothing.
TEST(SpscRing, ProducerKilledBeforePublishLeavesNothing) {
  RingFixture f(16);
  Child producer([&](int fd) -> int {
    SpscRing<Entry> r = f.ring;
    for (uint64_t i = 0; i < 16; i++) fill(r.slot_for_write(i), i);
    signal_parent(fd);
    for (;;) pause();
  });
  ASSERT_TRUE(producer.wait_signal(milliseconds(5000)));
  producer.kill_now();
  EXPECT_EQ(f.ring.available(), 0u);
  EXPECT_EQ(f.ring.depth(), 0u);
  // A replacement producer starts from the same head and overwrites the unpublished slots.
  push(f.ring, 100, 3);
  ASSERT_EQ(f.ring.available(), 3u);
  for (uint64_t i = 0; i < 3; i++) EXPECT_TRUE(intact(f.ring.peek(i), 100 + i));
}

// A producer publishes 5 entries, then keeps scribbling over the next slots (never publishing)
// until it is SIGKILLed mid-write: the consumer sees exactly the 5, intact.
TEST(SpscRing, ProducerKilledMidWriteLeavesPublishedEntriesIntact) {
  RingFixture f(16);
  Child producer([&](int fd) -> int {
    SpscRing<Entry> r = f.ring;
    push(r, 0, 5);
    signal_parent(fd);
    for (uint64_t n = 0;; n++) {  // a torn write in progress whenever the SIGKILL lands
      Entry* e = r.slot_for_write(n % 4);
      volatile uint64_t* w = &e->seq;
      for (int i = 0; i < 8; i++) w[i] = n ^ 0xdeadbeefull;
    }
  });
  ASSERT_TRUE(producer.wait_signal(milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(20));
  producer.kill_now();
  auto& r = f.ring;
  ASSERT_EQ(r.available(), 5u);
  for (uint64_t i = 0; i < 5; i++) EXPECT_TRUE(intact(r.peek(i), i)) << i;
  r.retire(5);
  push(r, 5, 4);  // the replacement producer continues the sequence over the torn slots
  ASSERT_EQ(r.available(), 4u);
  for (uint64_t i = 0; i < 4; i++) EXPECT_TRUE(intact(r.peek(i), 5 + i)) << i;
}

// A streaming producer SIGKILLed at varied moments while this process consumes: whatever was
// published before the kill is all there, in order, intact, and nothing else.
TEST(SpscRing, ProducerKilledWhileStreaming) {
  for (int round = 0; round < 20; round++) {
    RingFixture f(64);
    Child producer([&](int fd) -> int {
      SpscRing<Entry> r = f.ring;
      std::mt19937 rng(round);
      signal_parent(fd);
      auto deadline = Clock::now() + std::chrono::seconds(30);
      for (uint64_t seq = 0; Clock::now() < deadline;) {
        uint64_t room = r.free_slots();
        if (room == 0) continue;
        uint64_t n = std::min<uint64_t>(room, 1 + rng() % 16);
        push(r, seq, n);
        seq += n;
      }
      return 2;
    });
    ASSERT_TRUE(producer.wait_signal(milliseconds(5000)));
    auto& r = f.ring;
    uint64_t next = 0, errors = 0;
    auto kill_at = Clock::now() + std::chrono::microseconds(200 + 500 * round);
    while (Clock::now() < kill_at) {
      uint64_t avail = r.available();
      for (uint64_t i = 0; i < avail; i++) errors += !intact(r.peek(i), next + i);
      r.retire(avail);
      next += avail;
    }
    producer.kill_now();
    uint64_t avail = r.available();
    EXPECT_LE(avail, 64u);
    for (uint64_t i = 0; i < avail; i++) errors += !intact(r.peek(i), next + i);
    r.retire(avail);
    next += avail;
    EXPECT_EQ(errors, 0u) << "round " << round;
    EXPECT_EQ(f.header()->head, next);
  }
}

// A consumer killed after reading but before retiring: its replacement sees the same entries
// (redo). One that retired some first: the replacement sees exactly the rest.
TEST(SpscRing, ConsumerKilledBeforeRetireEntriesRedone) {
  RingFixture f(16);
  push(f.ring, 0, 10);
  {
    Child consumer([&](int fd) -> int {
      SpscRing<Entry> r = f.ring;
      if (r.available() != 10) return 2;
      for (uint64_t i = 0; i < 10; i++)
        if (!intact(r.peek(i), i)) return 3;
      signal_parent(fd);  // "applied" all 10, never retires
      for (;;) pause();
    });
    ASSERT_TRUE(consumer.wait_signal(milliseconds(5000)));
    consumer.kill_now();
  }
  ASSERT_EQ(f.ring.available(), 10u);
  for (uint64_t i = 0; i < 10; i++) EXPECT_TRUE(intact(f.ring.peek(i), i));
  {
    Child consumer([&](int fd) -> int {
      SpscRing<Entry> r = f.ring;
      r.retire(4);
      for (uint64_t i = 0; i < 6; i++)
        if (!intact(r.peek(i), 4 + i)) return 3;
      signal_parent(fd);
      for (;;) pause();
    });
    ASSERT_TRUE(consumer.wait_signal(milliseconds(5000)));
    consumer.kill_now();
  }
  ASSERT_EQ(f.ring.available(), 6u);
  for (uint64_t i = 0; i < 6; i++) EXPECT_TRUE(intact(f.ring.peek(i), 4 + i));
  EXPECT_EQ(f.ring.free_slots(), 10u);
}

}  // namespace
}  // namespace shoal::shm
