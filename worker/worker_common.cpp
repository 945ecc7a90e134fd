// worker/worker_common.cpp — see worker_common.hpp. Runs in every worker process after fork.
#include "worker/worker_common.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/cluster_segment.hpp"

namespace shoal::worker {

shm::Segment attach_cluster_segment(const conf::Config& config) {
  shm::Segment seg = shm::Segment::attach(shm::cluster_segment_name(config.shm_name), shm::SegmentKind::cluster);
  if (seg.size() < shm::ClusterGeometry{config.swarm_workers, config.cluster_ring_slots}.segment_bytes())
    throw std::runtime_error("cluster segment too small");
  return seg;
}

SharedState attach_shared(const WorkerContext& ctx) {
  SharedState s;
  const std::string& prefix = ctx.config->shm_name;
  s.control_seg = shm::Segment::attach(shm::control_segment_name(prefix), shm::SegmentKind::control);
  s.rings_seg = shm::Segment::attach(shm::rings_segment_name(prefix), shm::SegmentKind::rings);
  if (s.control_seg.size() < sizeof(shm::ControlSegment))
    throw std::runtime_error("control segment smaller than this binary's layout");
  s.control = static_cast<shm::ControlSegment*>(s.control_seg.base());
  s.geometry = {s.control->control.socket_workers, s.control->control.swarm_workers, ctx.config->ring_slots};
  if (s.geometry.segment_bytes() != s.rings_seg.size())
    throw std::runtime_error("rings segment size does not match the configured workers and ring_slots");
  uint32_t slot = ctx.role == shm::WorkerRole::sync     ? shm::sync_slot()
                  : ctx.role == shm::WorkerRole::socket ? shm::socket_slot(ctx.index)
                                                        : shm::swarm_slot(ctx.index);
  s.slot = &s.control->slots[slot];
  s.counters = &s.control->counters[slot];
  s.clock_base_ns = s.control->header.clock_base_ns;
  return s;
}

namespace {

// epoll with libevent's changelist: a connection whose write interest is added and removed in
// one loop pass (every HTTP response) costs no epoll_ctl; changes reach the kernel once per
// pass. Safe here: a worker never holds two descriptors of one open file (dup).
event_base* new_event_base() {
  event_config* cfg = event_config_new();
  if (!cfg) return nullptr;
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  event_base* base = event_base_new_with_config(cfg);
  event_config_free(cfg);
  return base;
}

}  // namespace

WorkerLoop::WorkerLoop(SharedState* shared) : shared_(shared), base_(new_event_base()) {
  if (!base_) throw std::runtime_error("event_base_new failed");
  if (event_base_priority_init(base_, kPriorities) != 0) throw std::runtime_error("event_base_priority_init failed");
  sigterm_ = evsignal_new(base_, SIGTERM, &WorkerLoop::on_signal, this);
  sigint_ = evsignal_new(base_, SIGINT, &WorkerLoop::on_signal, this);
  event_add(sigterm_, nullptr);
  event_add(sigint_, nullptr);
  heartbeat_ = event_new(base_, -1, EV_PERSIST, &WorkerLoop::on_heartbeat, this);
}

WorkerLoop::~WorkerLoop() {
  event_free(sigterm_);
  event_free(sigint_);
  event_free(heartbeat_);
  event_base_free(base_);
}

void WorkerLoop::set_ready(uint32_t generation) {
  on_heartbeat(-1, 0, this);
  timeval one_second{1, 0};
  event_add(heartbeat_, &one_second);
  serving_ = true;
  shm::store_u32(shared_->slot->ready, generation);
}

int WorkerLoop::run() {
  event_base_dispatch(base_);
  return 0;
}

void WorkerLoop::on_signal(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WorkerLoop*>(arg);
  self->stop_requested_ = true;
  if (self->serving_) shm::store_u32(self->shared_->slot->ready, 0);
  event_base_loopbreak(self->base_);
}

void WorkerLoop::on_heartbeat(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WorkerLoop*>(arg);
  shm::store_u32(self->shared_->slot->last_tick, shm::seconds_since(self->shared_->clock_base_ns));
}

void wake(int eventfd) {
  uint64_t one = 1;
  ssize_t r = write(eventfd, &one, sizeof one);
  (void)r;
}

void exit_at_idle_priority() {
  sched_param none{};
  sched_setscheduler(0, SCHED_IDLE, &none);
}

event* new_wakeup_event(event_base* base, int eventfd, event_callback_fn cb, void* arg) {
  return event_new(base, eventfd, EV_READ | EV_PERSIST | EV_ET, cb, arg);
}

uint64_t drain_eventfd(int eventfd) {
  uint64_t v = 0;
  ssize_t r = read(eventfd, &v, sizeof v);
  return r == sizeof v ? v : 0;
}

}  // namespace shoal::worker
