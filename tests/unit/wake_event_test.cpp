// tests/unit/wake_event_test.cpp — the ring wake-ups (worker/worker_common.hpp
// new_wakeup_event): an edge-triggered eventfd that is never read still calls its callback
// once per write (every write is a new edge, whatever the counter holds), and not again
// without one; the kernel behaviour the socket and swarm workers rely on to skip the read.
#include <gtest/gtest.h>
#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "worker/worker_common.hpp"

namespace shoal::worker {
namespace {

struct Loop {
  event_base* base;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int calls = 0;
  event* ev = nullptr;
  Loop() {
    event_config* cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);  // as the workers' loops
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    ev = new_wakeup_event(base, fd, [](evutil_socket_t, short, void* arg) { ++*static_cast<int*>(arg); }, &calls);
    event_add(ev, nullptr);
  }
  ~Loop() {
    event_free(ev);
    event_base_free(base);
    close(fd);
  }
  void pass() { event_base_loop(base, EVLOOP_NONBLOCK); }
};

TEST(WakeEvent, EveryWriteCallsBackOnceWithoutAnyRead) {
  Loop l;
  ASSERT_GE(l.fd, 0);
  l.pass();
  EXPECT_EQ(l.calls, 0) << "no write, no call";
  wake(l.fd);
  l.pass();
  EXPECT_EQ(l.calls, 1);
  l.pass();
  l.pass();
  EXPECT_EQ(l.calls, 1) << "the counter is 1 and unread, but no new write: no new call";
  for (int round = 2; round <= 50; round++) {
    wake(l.fd);
    l.pass();
    ASSERT_EQ(l.calls, round) << "a write to an unread eventfd must call back again";
  }
  wake(l.fd);
  wake(l.fd);
  l.pass();
  EXPECT_EQ(l.calls, 51) << "two writes before one loop pass: one call";
  uint64_t v = 0;
  ASSERT_EQ(read(l.fd, &v, sizeof v), ssize_t(sizeof v));
  EXPECT_EQ(v, 52u) << "the callbacks never read the counter";
}

}  // namespace
}  // namespace shoal::worker
