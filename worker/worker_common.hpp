// worker/worker_common.hpp — pieces both worker roles use: attaching the shared segments,
// the event loop's stop signals, heartbeats and eventfd wake-ups.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <memory>

#include "shm/control_segment.hpp"
#include "shm/rings_layout.hpp"
#include "shm/segment.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

// The control and rings segments as a worker sees them, plus its own slot and counters.
struct SharedState {
  shm::Segment control_seg;
  shm::Segment rings_seg;
  shm::ControlSegment* control = nullptr;
  shm::RingsGeometry geometry{};
  shm::WorkerSlot* slot = nullptr;
  shm::CounterBlock* counters = nullptr;
  uint64_t clock_base_ns = 0;
};

// Attaches and validates the control and rings segments for `ctx`'s slot. Throws
// std::runtime_error with the reason.
SharedState attach_shared(const WorkerContext& ctx);

// Attaches the cluster segment (issue 14: the rings between the swarm workers and the sync
// worker) and checks it is large enough for the configured swarm_workers and
// cluster.ring_slots. Throws std::runtime_error with the reason.
shm::Segment attach_cluster_segment(const conf::Config& config);

// Event priorities of a worker's event_base (it has 3; libevent gives every event the middle
// one unless told otherwise). An active event at kPriorityLow runs only once no event of a
// higher priority is active: at the end of a loop pass, after every ready socket was served.
inline constexpr int kPriorities = 3;
inline constexpr int kPriorityLow = 2;

// Event-loop plumbing common to both roles: SIGTERM/SIGINT stop the loop, a 1 s heartbeat
// timer writes last_tick from set_ready on. Owns the event_base. Before set_ready it writes
// nothing to shared memory (a swarm worker waiting for its partition runs this loop).
class WorkerLoop {
 public:
  WorkerLoop(SharedState* shared);
  ~WorkerLoop();
  event_base* base() const { return base_; }
  // Marks the slot ready for this generation (after setup, before serving) and starts the heartbeat.
  void set_ready(uint32_t generation);
  int run();  // returns 0 when stopped by a signal (or by event_base_loopbreak)
  // Whether SIGTERM or SIGINT has asked this process to stop.
  bool stop_requested() const { return stop_requested_; }

 private:
  static void on_signal(evutil_socket_t, short, void* arg);
  static void on_heartbeat(evutil_socket_t, short, void* arg);
  SharedState* shared_;
  event_base* base_;
  event* sigterm_ = nullptr;
  event* sigint_ = nullptr;
  event* heartbeat_ = nullptr;
  bool serving_ = false;  // set_ready was called
  bool stop_requested_ = false;
};

// Adds 1 to an eventfd (wakes its owner). Errors other than EAGAIN are ignored: the
// consumer also drains on its own timers.
void wake(int eventfd);
// Reads (and so resets) an eventfd; returns the count read, 0 if none.
uint64_t drain_eventfd(int eventfd);
// The event (EV_READ | EV_PERSIST | EV_ET, not yet added) for a worker's ring wake-up eventfd,
// whose callback need not read it: edge-triggered epoll reports the eventfd again after every
// write, whatever its counter holds (eventfd_write() wakes the waiters on each write, and
// ep_poll_callback() queues the edge-triggered item again), and never without one. One
// syscall less per wake-up. The counter only grows (by 1 per wake(); 2^64 - 2 is out of reach).
// As after a read, the callback must take everything the rings hold (or set itself a timer):
// no new call comes for what it leaves until the next write.
event* new_wakeup_event(event_base* base, int eventfd, event_callback_fn cb, void* arg);

// For a worker whose successor already serves (rolling restart) and that is about to exit:
// the rest of this process runs at idle priority (SCHED_IDLE), so that its exit, mostly the
// kernel unmapping its shared memory, takes only CPU time nobody else wants and any waking
// worker preempts it. Lowering the priority is always allowed.
void exit_at_idle_priority();

}  // namespace shoal::worker
