// worker/socket_worker.cpp — the socket worker process. It owns the slot's RequestPath
// (worker/request_path.hpp: access list, numwant, scrape split and merge, request and response
// rings) and its protocol front-ends: UDP (worker/udp_frontend.hpp) and, when configured,
// HTTP/HTTPS (worker/http_frontend.hpp). Responses come back on the response rings (eventfd
// wake-up, and a 100 ms poll as a safety net) and go through the path to each front-end. SIGUSR2
// (rolling restart) drains the front-ends and exits once nothing is in flight. It writes only its
// rings' producer/consumer words, its heartbeat and counters.
#include <event2/event.h>
#include <signal.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "worker/access_check.hpp"
#include "worker/http_frontend.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/udp_frontend.hpp"
#include "worker/worker_common.hpp"
#include "worker/ws_frontend.hpp"
#include "shm/relay_ring.hpp"

namespace shoal::worker {
namespace {

// First scrape id of this process: random, so parts of a previous process's scrapes still in
// the rings (its ids were consecutive from its own random start) practically never match.
uint32_t random_u32() {
  uint32_t v = 0;
  if (getrandom(&v, sizeof v, 0) != sizeof v) v = uint32_t(shm::monotonic_ns());
  return v;
}

constexpr uint64_t kDrainGraceNs = 10ull * 1000000000ull;  // rolling restart: longest drain

class SocketWorker final {
 public:
  SocketWorker(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop)
      : cfg_(*ctx.config), loop_(loop), access_(ctx.config->shm_name, shared->slot, ctx.generation) {
    std::vector<shm::SpscRing<shm::Request>> requests;
    std::vector<shm::SpscRing<shm::Response>> responses;
    for (uint32_t w = 0; w < shared->geometry.swarm_workers; w++) {
      // This process's ring set, as the supervisor assigned it (the other set may belong to a
      // predecessor still finishing its work during a rolling restart).
      uint32_t k = ctx.ring_set;
      requests.push_back(shm::request_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
      responses.push_back(shm::response_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
    }
    path_ = std::make_unique<RequestPath>(cfg_, std::move(requests), std::move(responses), ctx.swarm_eventfds,
                                          &access_, shared->counters, loop->base(), random_u32(),
                                          shared->control->control.partition_key);
    frontends_.push_back(make_udp_frontend(loop->base(), cfg_, path_.get(), &access_, shared->counters, ctx.udp_sockets,
                                           &shared->control->conn_id_keys, shared->clock_base_ns));
    std::vector<TcpListener> http, ws;
    for (const TcpListener& l : ctx.tcp_listeners) (l.websocket ? ws : http).push_back(l);
    if (!http.empty())
      frontends_.push_back(make_http_frontend(loop->base(), cfg_, path_.get(), shared->counters, http, ctx.generation));
    if (!ws.empty()) {
      // WebTorrent: offers and answers for connections of other socket workers go through the
      // relay rings (shm/relay_ring.hpp), created by the supervisor when ws or wss is on.
      relay_seg_ = shm::Segment::attach(shm::relay_segment_name(cfg_.shm_name), shm::SegmentKind::relay);
      shm::RelayGeometry g{shared->geometry.socket_workers, shm::relay_ring_bytes(cfg_.ws_relay_ring_bytes),
                           cfg_.cluster_enabled ? 1u : 0u};
      if (relay_seg_.size() < g.segment_bytes()) throw std::runtime_error("relay segment smaller than its geometry");
      WsIdentity self{ctx.index, ctx.ring_set, ctx.generation};
      auto relay = std::make_unique<WsRelay>(relay_seg_.base(), g, self, ctx.socket_eventfds, shared->counters);
      auto f = make_ws_frontend(loop->base(), cfg_, path_.get(), shared->counters, ws, self, std::move(relay));
      ws_ = f.get();
      frontends_.push_back(std::move(f));
    }
    for (auto& f : frontends_) path_->attach(f->protocol(), f.get(), f->peer_limits());
    wakeup_ = new_wakeup_event(loop->base(), ctx.socket_eventfds[ctx.index * shm::RingsGeometry::kSets + ctx.ring_set],
                               &on_wakeup, this);
    // Responses before new requests when both are ready in one loop pass: the replies leave
    // first, and the requests read after them are published (waking the swarm worker) last.
    event_priority_set(wakeup_, 0);
    event_add(wakeup_, nullptr);
    drain_signal_ = evsignal_new(loop->base(), SIGUSR2, &on_drain_signal, this);
    event_add(drain_signal_, nullptr);
    poll_ = event_new(loop->base(), -1, EV_PERSIST, &on_poll, this);
    timeval every{0, 100000};  // safety net: drain responses even if a wake-up was lost
    event_add(poll_, &every);
  }
  ~SocketWorker() {
    event_free(wakeup_);
    event_free(poll_);
    event_free(drain_signal_);
  }

  void discard_stale_responses() { path_->discard_stale_responses(); }

  void drain_responses() {
    if (ws_) ws_->poll_relay();
    path_->drain_responses();
  }

  // Whether this worker stopped because it drained (a successor serves its slot).
  bool drained() const { return draining_; }

 private:
  static void on_wakeup(evutil_socket_t, short, void* arg) {  // edge-triggered: no read
    static_cast<SocketWorker*>(arg)->drain_responses();
  }
  static void on_poll(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SocketWorker*>(arg);
    self->access_.begin_batch();  // also the access-list ack's heartbeat (every 100 ms)
    self->drain_responses();
    if (self->draining_) self->check_drained();
  }

  // SIGUSR2 from the supervisor (rolling restart): a successor already serves this slot's
  // sockets. Stop reading, let the front-ends finish, exit once nothing is in flight.
  static void on_drain_signal(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SocketWorker*>(arg);
    if (self->draining_) return;
    self->draining_ = true;
    self->drain_started_ns_ = shm::monotonic_ns();
    for (auto& f : self->frontends_) f->drain();
    LOG_INFO("draining: stopped reading new requests, finishing in-flight work");
    self->check_drained();
  }

  void check_drained() {
    bool busy = false;
    busy |= !path_->rings_empty();
    for (auto& f : frontends_) busy |= !f->idle();
    bool late = shm::monotonic_ns() - drain_started_ns_ > kDrainGraceNs;
    if (busy && !late) return;
    LOG_INFO("drained%s; exiting", late && busy ? " (grace period over, in-flight work abandoned)" : "");
    event_base_loopbreak(loop_->base());
  }

  const conf::Config& cfg_;
  WorkerLoop* loop_;
  shm::Segment relay_seg_;      // WebTorrent relay rings (only with ws/wss listeners)
  WsFrontendApi* ws_ = nullptr;  // the WebTorrent front-end in frontends_, if any
  AccessCheck access_;  // the access list snapshot of the current batch
  std::unique_ptr<RequestPath> path_;  // before frontends_, which call it until they are gone
  std::vector<std::unique_ptr<ProtocolFrontend>> frontends_;  // UDP, then HTTP/HTTPS if configured
  event* wakeup_ = nullptr;
  event* poll_ = nullptr;
  event* drain_signal_ = nullptr;
  bool draining_ = false;
  uint64_t drain_started_ns_ = 0;
};

}  // namespace

int run_socket_worker(const WorkerContext& ctx) {
  SharedState shared;
  try {
    shared = attach_shared(ctx);
  } catch (const std::exception& e) {
    LOG_ERROR("cannot attach shared memory: %s", e.what());
    return 1;
  }
  // Setup errors (the event loop included) are fatal: exit 1, which the supervisor does not
  // respawn, rather than an abort that would be respawned forever.
  std::unique_ptr<WorkerLoop> loop;
  std::unique_ptr<SocketWorker> worker;
  try {
    loop = std::make_unique<WorkerLoop>(&shared);
    worker = std::make_unique<SocketWorker>(ctx, &shared, loop.get());
  } catch (const std::exception& e) {
    LOG_ERROR("fatal: socket worker %u cannot start: %s", ctx.index, e.what());
    return 1;
  }
  worker->discard_stale_responses();
  // Fault injection for the test suite (shoald(8), ENVIRONMENT): SHOAL_TEST_SOCKET_READY_DELAY_MS
  // holds a started socket worker this many milliseconds (at most 10 s) before it reads anything
  // or reports ready, so a test can catch a rolling restart's successor before it is ready.
  if (const char* ms = getenv("SHOAL_TEST_SOCKET_READY_DELAY_MS")) {
    long delay = std::min(std::max(strtol(ms, nullptr, 10), 0L), 10000L);
    LOG_WARN("SHOAL_TEST_SOCKET_READY_DELAY_MS is set: this worker waits %ld ms before it is ready (a test)", delay);
    usleep(useconds_t(delay) * 1000);
  }
  loop->set_ready(ctx.generation);
  int rc = loop->run();
  if (worker->drained()) exit_at_idle_priority();  // the successor serves the slot
  return rc;
}

}  // namespace shoal::worker
