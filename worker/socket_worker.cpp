// worker/socket_worker.cpp — the socket worker process, and its UDP front-end (BEP 15). It reads
// datagrams in batches from its slot's SO_REUSEPORT sockets, answers connects itself, checks
// connection ids, and hands each announce and scrape to the RequestPath (worker/request_path.hpp),
// which every front-end (UDP, HTTP/HTTPS) shares; it publishes the batch's requests and wakes the
// swarm workers once per recvmmsg batch. Responses come back through the RequestPath (eventfd
// wake-up) and are encoded and sent with sendmmsg. It writes only its rings' producer/consumer
// words, its heartbeat and counters.
#include <arpa/inet.h>
#include <event2/event.h>
#include <signal.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "worker/access_check.hpp"
#include "worker/connection_id.hpp"
#include "worker/http_frontend.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/udp_codec.hpp"
#include "worker/udp_io.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {
namespace {

constexpr int kMaxRecvRounds = 8;           // recvmmsg batches per readable event (fairness)
constexpr uint64_t kDrainGraceNs = 10ull * 1000000000ull;  // rolling restart: longest drain

using shm::Counter;

// Source address of a datagram in the forms the rest of the worker needs.
struct Source {
  int family;        // AF_INET / AF_INET6 after canonicalisation
  uint8_t addr[16];  // 4 or 16 bytes used, network order
  uint16_t port_be;
};

// The UDP front-end is built in: SocketWorker is its ResponseSink.
class SocketWorker final : public ResponseSink {
 public:
  SocketWorker(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop)
      : ctx_(ctx), cfg_(*ctx.config), shared_(shared), loop_(loop),
        conn_ids_(shared->control->control.conn_id_key), access_(ctx.config->shm_name, shared->slot, ctx.generation),
        recv_(std::make_unique<RecvBatch>()) {
    std::vector<shm::SpscRing<shm::Request>> requests;
    std::vector<shm::SpscRing<shm::Response>> responses;
    for (uint32_t w = 0; w < shared->geometry.swarm_workers; w++) {
      // This process's ring set: generation % 2 (the other set may belong to a predecessor
      // still finishing its work during a rolling restart).
      uint32_t k = ctx.generation % shm::RingsGeometry::kSets;
      requests.push_back(shm::request_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
      responses.push_back(shm::response_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
    }
    path_ = std::make_unique<RequestPath>(cfg_, std::move(requests), std::move(responses), ctx.swarm_eventfds,
                                          &access_, shared->counters, loop->base(), ctx.generation << 16);
    path_->attach(shm::Protocol::udp, this, {uint16_t(udp::max_udp_peers(AF_INET)), uint16_t(udp::max_udp_peers(AF_INET6))});
    for (size_t i = 0; i < ctx.udp_sockets.size(); i++) {
      sends_.push_back(std::make_unique<SendQueue>(ctx.udp_sockets[i].fd));
      events_.push_back(event_new(loop->base(), ctx.udp_sockets[i].fd, EV_READ | EV_PERSIST, &on_readable, this));
      event_add(events_.back(), nullptr);
    }
    events_.push_back(event_new(loop->base(), ctx.socket_eventfds[ctx.index], EV_READ | EV_PERSIST, &on_wakeup, this));
    event_add(events_.back(), nullptr);
    drain_signal_ = evsignal_new(loop->base(), SIGUSR2, &on_drain_signal, this);
    event_add(drain_signal_, nullptr);
    poll_ = event_new(loop->base(), -1, EV_PERSIST, &on_poll, this);
    timeval every{0, 100000};  // safety net: drain responses even if a wake-up was lost
    event_add(poll_, &every);
    if (!ctx.tcp_listeners.empty())
      frontends_.push_back(make_http_frontend(loop->base(), cfg_, path_.get(), shared->counters, ctx.tcp_listeners, ctx.generation));
    for (auto& f : frontends_) path_->attach(f->protocol(), f.get(), f->peer_limits());
  }
  ~SocketWorker() {
    for (event* e : events_) event_free(e);
    event_free(poll_);
    event_free(drain_signal_);
  }

  void discard_stale_responses() { path_->discard_stale_responses(); }

  // ResponseSink (UDP): encode into the send queue of the socket the request came in on.
  void on_announce(const shm::ReplyContext& c, const AnnounceResult& r) override {
    if (c.socket_index >= sends_.size()) return;
    uint8_t* out = sends_[c.socket_index]->next();
    size_t n;
    if (r.status != PathStatus::ok) {
      n = udp::encode_error(out, kUdpBufferBytes, c.transaction, "tracker is full, try again later");
      shm::count(shared_->counters, Counter::udp_error_sent);
    } else {
      n = udp::encode_announce_header(out, c.transaction, cfg_.announce_interval, r.leechers, r.seeders);
      size_t peer_bytes = size_t(r.peer_count) * (r.family == 6 ? 18 : 6);
      peer_bytes = std::min(peer_bytes, kUdpBufferBytes - n);
      std::memcpy(out + n, r.peers, peer_bytes);
      n += peer_bytes;
    }
    push_to(c, n);
  }
  void on_scrape(const shm::ReplyContext& c, const ScrapeResult& r) override {
    if (c.socket_index >= sends_.size()) return;
    uint8_t* out = sends_[c.socket_index]->next();
    size_t n = udp::encode_scrape_header(out, c.transaction);
    for (uint32_t h = 0; h < r.count; h++)
      n += udp::encode_scrape_entry(out + n, r.counts[h].seeders, r.counts[h].completed, r.counts[h].leechers);
    push_to(c, n);
  }
  // After the front-ends' (HTTP...) after_responses: one sendmmsg per socket for the batch.
  void after_responses() override { flush_all(); }

  void drain_responses() { path_->drain_responses(); }

 private:
  // ---- incoming datagrams ----
  void on_socket(size_t sock) {
    for (int round = 0; round < kMaxRecvRounds; round++) {
      size_t n = recv_->receive(ctx_.udp_sockets[sock].fd);
      if (n == 0) break;
      now_s_ = shm::seconds_since(shared_->clock_base_ns);
      access_.begin_batch();  // one access list for the whole batch, and the ack
      shm::count(shared_->counters, Counter::udp_received, n);
      for (size_t i = 0; i < n; i++) handle_datagram(sock, i);
      // Replies this worker wrote itself (connect, errors) wait for the swarm workers' answers
      // to this batch when there are any: drain_responses() sends them all in one sendmmsg.
      if (!path_->publish()) flush_all();
      if (n < kUdpBatch) break;
    }
  }

  void handle_datagram(size_t sock, size_t i) {
    Source src;
    if (!source_of(recv_->source(i), &src)) return;
    if (src.port_be == 0) {
      shm::count(shared_->counters, Counter::udp_source_port_zero);
      return;
    }
    size_t len = recv_->truncated(i) ? 0 : recv_->length(i);
    udp::ParsedRequest rq = udp::parse_request(recv_->data(i), len, std::min<uint32_t>(cfg_.max_scrape_hashes, kMaxScrapeHashes));
    if (!rq.has_transaction) {
      shm::count(shared_->counters, Counter::udp_malformed);
      return;
    }
    if (rq.action == udp::Action::connect) {
      if (rq.error != udp::ParseError::none) {
        shm::count(shared_->counters, Counter::udp_malformed);
        return;
      }
      reply_connect(sock, src, i, rq.transaction);
      return;
    }
    // Everything else must carry a connection id we issued to this address: no reply at all
    // otherwise, so the tracker cannot be used to reflect traffic at a spoofed source.
    if (!conn_ids_.valid(rq.connection_id, src.family, src.addr, now_s_)) {
      shm::count(shared_->counters, Counter::udp_bad_connection_id);
      return;
    }
    if (rq.error != udp::ParseError::none) {
      reply_error(sock, i, rq.transaction, error_text(rq.error));
      shm::count(shared_->counters, Counter::udp_bad_request);
      return;
    }
    if (rq.action == udp::Action::announce)
      route_announce(sock, src, i, rq.announce);
    else if (rq.action == udp::Action::scrape)
      route_scrape(sock, src, i, rq.scrape);
  }

  static const char* error_text(udp::ParseError e) {
    switch (e) {
      case udp::ParseError::too_short: return "malformed request: too short";
      case udp::ParseError::unknown_action: return "unknown action";
      case udp::ParseError::no_info_hashes: return "scrape without info_hash";
      case udp::ParseError::bad_event: return "invalid event";
      case udp::ParseError::bad_port: return "invalid port";
      default: return "malformed request";
    }
  }

  void reply_connect(size_t sock, const Source& src, size_t i, uint32_t transaction) {
    uint8_t* out = sends_[sock]->next();
    size_t n = udp::encode_connect(out, transaction, conn_ids_.make(src.family, src.addr, now_s_));
    push_reply(sock, n, recv_->source(i));
    shm::count(shared_->counters, Counter::udp_connect);
  }

  void reply_error(size_t sock, size_t i, uint32_t transaction, const char* msg) {
    uint8_t* out = sends_[sock]->next();
    size_t n = udp::encode_error(out, kUdpBufferBytes, transaction, msg);
    push_reply(sock, n, recv_->source(i));
    shm::count(shared_->counters, Counter::udp_error_sent);
  }

  void push_reply(size_t sock, size_t n, const sockaddr_storage& to) {
    socklen_t len = to.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    sends_[sock]->push(n, reinterpret_cast<const sockaddr*>(&to), len);
  }

  // Fills the reply context every ring request carries back.
  void fill_ctx(shm::ReplyContext* c, size_t sock, size_t i, uint32_t transaction) {
    const sockaddr_storage& ss = recv_->source(i);
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      std::memcpy(c->addr, &a->sin_addr, 4);
      c->port = a->sin_port;
      c->family = 4;
    } else {
      auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      std::memcpy(c->addr, &a->sin6_addr, 16);
      c->port = a->sin6_port;
      c->family = 6;
    }
    c->protocol = uint8_t(shm::Protocol::udp);
    c->socket_index = uint8_t(sock);
    c->transaction = transaction;
  }

  void route_announce(size_t sock, const Source& src, size_t i, const udp::AnnounceRequest& a) {
    shm::ReplyContext c{};
    fill_ctx(&c, sock, i, a.transaction);
    AnnounceIn in;
    in.info_hash = a.info_hash;
    in.peer_addr = src.addr;  // the packet source; the announced port
    in.family = src.family == AF_INET ? 4 : 6;
    in.peer_port = a.port;
    in.event = shm::Event(a.event);
    in.seeder = a.left == 0;
    in.numwant = a.numwant;  // BEP 15: -1 (any negative) = default
    PathStatus st = path_->announce(in, c);
    if (st == PathStatus::access_denied) return reply_error(sock, i, a.transaction, "info_hash not allowed");
    if (st != PathStatus::ok) return;  // ring full: no reply, the client retries (counted)
    shm::count(shared_->counters, Counter::udp_announce);
  }

  void route_scrape(size_t sock, const Source&, size_t i, const udp::ScrapeRequest& s) {
    shm::ReplyContext c{};
    fill_ctx(&c, sock, i, s.transaction);
    // Ring full or too many scrapes in flight: no reply, the client retries (counted).
    if (path_->scrape({s.info_hashes, s.count}, c) == PathStatus::ok) shm::count(shared_->counters, Counter::udp_scrape);
  }

  // Queues `n` bytes written at next() of the context's socket, addressed to the client.
  void push_to(const shm::ReplyContext& c, size_t n) {
    sockaddr_storage ss{};
    socklen_t len;
    if (c.family == 4) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      std::memcpy(&a->sin_addr, c.addr, 4);
      a->sin_port = c.port;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      std::memcpy(&a->sin6_addr, c.addr, 16);
      a->sin6_port = c.port;
      len = sizeof *a;
    }
    sends_[c.socket_index]->push(n, reinterpret_cast<const sockaddr*>(&ss), len);
  }

  void flush_all() {
    for (auto& q : sends_) {
      if (!q->pending()) continue;
      size_t sent = 0;
      size_t failed = q->flush(&sent);
      if (sent) shm::count(shared_->counters, Counter::udp_sent, sent);
      if (failed) shm::count(shared_->counters, Counter::udp_send_errors, failed);
    }
  }

  // ---- helpers ----
  static bool source_of(const sockaddr_storage& ss, Source* out) {
    uint8_t raw[16];
    int fam;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      std::memcpy(raw, &a->sin_addr, 4);
      out->port_be = a->sin_port;
      fam = AF_INET;
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      std::memcpy(raw, &a->sin6_addr, 16);
      out->port_be = a->sin6_port;
      fam = AF_INET6;
    } else {
      return false;
    }
    out->family = canonical_address(fam, raw, out->addr);
    return true;
  }

  static void on_readable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<SocketWorker*>(arg);
    for (size_t s = 0; s < self->ctx_.udp_sockets.size(); s++)
      if (self->ctx_.udp_sockets[s].fd == fd) self->on_socket(s);
  }
  static void on_wakeup(evutil_socket_t fd, short, void* arg) {
    drain_eventfd(fd);
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
    for (size_t i = 0; i < self->ctx_.udp_sockets.size(); i++) event_del(self->events_[i]);
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

  const WorkerContext& ctx_;
  const conf::Config& cfg_;
  SharedState* shared_;
  WorkerLoop* loop_;
  ConnectionIds conn_ids_;
  AccessCheck access_;  // the access list snapshot of the current batch
  std::unique_ptr<RecvBatch> recv_;
  std::vector<std::unique_ptr<SendQueue>> sends_;
  std::unique_ptr<RequestPath> path_;  // before frontends_: they outlive none of its calls
  std::vector<event*> events_;
  std::vector<std::unique_ptr<ProtocolFrontend>> frontends_;  // HTTP/HTTPS, ... (UDP is built in)
  event* poll_ = nullptr;
  event* drain_signal_ = nullptr;
  bool draining_ = false;
  uint64_t drain_started_ns_ = 0;
  uint32_t now_s_ = 0;
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
  WorkerLoop loop(&shared);
  std::unique_ptr<SocketWorker> worker;
  try {
    worker = std::make_unique<SocketWorker>(ctx, &shared, &loop);
  } catch (const std::exception& e) {
    LOG_ERROR("socket worker setup failed: %s", e.what());
    return 1;
  }
  worker->discard_stale_responses();
  loop.set_ready(ctx.generation);
  return loop.run();
}

}  // namespace shoal::worker
