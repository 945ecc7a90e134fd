// worker/socket_worker.cpp — the socket worker process (UDP, BEP 15). It reads datagrams in
// batches from its slot's SO_REUSEPORT sockets, answers connects itself, checks connection
// ids, and routes each announce (and each hash of a scrape) to the request ring of the swarm
// worker owning the info_hash; rings are published and swarm workers woken once per batch.
// Responses come back on its response rings (eventfd wake-up) and are encoded and sent with
// sendmmsg. It writes only its rings' producer/consumer words, its heartbeat and counters.
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
#include "worker/request_submitter.hpp"
#include "worker/scrape_merge.hpp"
#include "worker/udp_codec.hpp"
#include "worker/udp_io.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {
namespace {

constexpr int kMaxRecvRounds = 8;           // recvmmsg batches per readable event (fairness)
constexpr uint32_t kScrapeTimeoutMs = 2000;  // a split scrape not complete by then is dropped
constexpr uint64_t kDrainGraceNs = 10ull * 1000000000ull;  // rolling restart: longest drain

using shm::Counter;

// Source address of a datagram in the forms the rest of the worker needs.
struct Source {
  int family;        // AF_INET / AF_INET6 after canonicalisation
  uint8_t addr[16];  // 4 or 16 bytes used, network order
  uint16_t port_be;
};

class SocketWorker final : public RequestSubmitter {
 public:
  SocketWorker(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop)
      : ctx_(ctx), cfg_(*ctx.config), shared_(shared), loop_(loop),
        conn_ids_(shared->control->control.conn_id_key), access_(ctx.config->shm_name, shared->slot, ctx.generation),
        recv_(std::make_unique<RecvBatch>()),
        scrapes_(std::make_unique<ScrapeTable>(ctx.generation << 16)), pending_(shared->geometry.swarm_workers, 0) {
    for (uint32_t w = 0; w < shared->geometry.swarm_workers; w++) {
      // This process's ring set: generation % 2 (the other set may belong to a predecessor
      // still finishing its work during a rolling restart).
      uint32_t k = ctx.generation % shm::RingsGeometry::kSets;
      requests_.push_back(shm::request_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
      responses_.push_back(shm::response_ring(shared->rings_seg.base(), shared->geometry, ctx.index, w, k));
    }
    for (size_t i = 0; i < ctx.udp_sockets.size(); i++) {
      sends_.push_back(std::make_unique<SendQueue>(ctx.udp_sockets[i].fd));
      events_.push_back(event_new(loop->base(), ctx.udp_sockets[i].fd, EV_READ | EV_PERSIST, &on_readable, this));
      event_add(events_.back(), nullptr);
    }
    events_.push_back(event_new(loop->base(), ctx.socket_eventfds[ctx.index], EV_READ | EV_PERSIST, &on_wakeup, this));
    event_add(events_.back(), nullptr);
    drain_signal_ = evsignal_new(loop->base(), SIGUSR2, &on_drain_signal, this);
    event_add(drain_signal_, nullptr);
    publish_soon_ = event_new(loop->base(), -1, 0, &on_publish_soon, this);
    event_priority_set(publish_soon_, kPriorityLow);
    poll_ = event_new(loop->base(), -1, EV_PERSIST, &on_poll, this);
    timeval every{0, 100000};  // safety net: drain responses even if a wake-up was lost
    event_add(poll_, &every);
    if (!ctx.tcp_listeners.empty())
      frontends_.push_back(make_http_frontend(loop->base(), cfg_, this, ctx.tcp_listeners, ctx.generation));
  }
  ~SocketWorker() {
    for (event* e : events_) event_free(e);
    event_free(poll_);
    event_free(publish_soon_);
    event_free(drain_signal_);
  }

  // At start: responses left in this ring set belong to a process two generations back (the
  // clients have long retried); drop them rather than send stale replies.
  void discard_stale_responses() {
    for (auto& ring : responses_) ring.retire(ring.available());
  }

  // RequestSubmitter, for protocol front-ends other than UDP.
  bool submit(const shm::Request& r) override {
    uint32_t w = partition_of(r.info_hash, uint32_t(requests_.size()));
    if (requests_[w].free_slots() <= pending_[w]) {
      shm::count(shared_->counters, Counter::ring_full_drops);
      return false;
    }
    std::memcpy(requests_[w].slot_for_write(pending_[w]++), &r, sizeof r);
    return true;
  }
  uint32_t partitions() override { return uint32_t(requests_.size()); }
  uint64_t room(uint32_t w) override { return requests_[w].free_slots() - pending_[w]; }
  void flush() override {
    uint64_t waiting = 0;
    for (uint64_t n : pending_) waiting += n;
    if (waiting >= kUdpBatch) {
      publish_requests();
    } else if (waiting) {
      event_active(publish_soon_, EV_TIMEOUT, 1);  // no-op while it is already active
    }
  }
  uint32_t now_s() override { return shm::seconds_since(shared_->clock_base_ns); }
  shm::CounterBlock* counters() override { return shared_->counters; }
  // Under the list of this worker's current batch snapshot; a refusal is counted here.
  bool info_hash_allowed(const uint8_t* info_hash) override {
    if (access_.allowed(info_hash)) return true;
    shm::count(shared_->counters, Counter::access_denied);
    return false;
  }

  void drain_responses() {
    for (size_t w = 0; w < responses_.size(); w++) {
      auto& ring = responses_[w];
      uint64_t n = ring.available();
      if (n == 0) continue;
      for (uint64_t k = 0; k < n; k++) handle_response(*ring.peek(k));
      ring.retire(n);
      shm::count(shared_->counters, Counter::ring_batches);
      shm::count(shared_->counters, Counter::ring_messages, n);
    }
    for (auto& f : frontends_) f->after_responses();
    flush_all();
    publish_requests();  // front-ends may have submitted follow-up work
  }

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
      if (!publish_requests()) flush_all();
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
    std::memset(c, 0, sizeof *c);
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
    if (!access_.allowed(a.info_hash)) {
      shm::count(shared_->counters, Counter::access_denied);
      reply_error(sock, i, a.transaction, "info_hash not allowed");
      return;
    }
    uint32_t w = partition_of(a.info_hash, uint32_t(requests_.size()));
    if (requests_[w].free_slots() <= pending_[w]) {
      shm::count(shared_->counters, Counter::ring_full_drops);
      return;
    }
    shm::Request* r = requests_[w].slot_for_write(pending_[w]++);
    fill_ctx(&r->ctx, sock, i, a.transaction);
    std::memcpy(r->info_hash, a.info_hash, 20);
    std::memset(r->peer_addr, 0, sizeof r->peer_addr);
    std::memcpy(r->peer_addr, src.addr, src.family == AF_INET ? 4 : 16);
    r->peer_port = htons(a.port);  // the announced port; the address is the packet source
    r->family = src.family == AF_INET ? 4 : 6;
    r->kind = uint8_t(shm::RequestKind::announce);
    r->event = uint8_t(a.event);
    r->seeder = a.left == 0;
    uint32_t cap = std::min<uint32_t>(cfg_.max_numwant, uint32_t(udp::max_udp_peers(src.family)));
    // BEP 15: numwant -1 (any negative) = the default; 0 = no peers, only the counts.
    uint32_t want = a.numwant < 0 ? cfg_.default_numwant : uint32_t(a.numwant);
    r->numwant = a.event == 3 ? 0 : uint16_t(std::min(want, cap));
    r->topology_group = 0;
    shm::count(shared_->counters, Counter::udp_announce);
  }

  // A hash the access list refuses is answered as an unknown torrent (zeros) without a ring trip.
  void route_scrape(size_t sock, const Source&, size_t i, const udp::ScrapeRequest& s) {
    uint32_t parts[shm::kMaxSwarmWorkers] = {};
    bool refused[kMaxScrapeHashes] = {};
    uint32_t served = 0;
    for (uint32_t h = 0; h < s.count; h++) {
      const uint8_t* hash = s.info_hashes + 20 * h;
      if ((refused[h] = !access_.allowed(hash))) continue;
      parts[partition_of(hash, uint32_t(requests_.size()))]++;
      served++;
    }
    for (size_t w = 0; w < requests_.size(); w++) {
      if (parts[w] && requests_[w].free_slots() < pending_[w] + parts[w]) {
        shm::count(shared_->counters, Counter::ring_full_drops);
        return;
      }
    }
    if (served < s.count) shm::count(shared_->counters, Counter::access_denied, s.count - served);
    if (served == 0) {
      uint8_t* out = sends_[sock]->next();
      size_t n = udp::encode_scrape_header(out, s.transaction);
      for (uint32_t h = 0; h < s.count; h++) n += udp::encode_scrape_entry(out + n, 0, 0, 0);
      push_reply(sock, n, recv_->source(i));
      shm::count(shared_->counters, Counter::udp_scrape);
      return;
    }
    bool expired = false;
    uint32_t id = scrapes_->start(uint16_t(s.count), now_ms(), kScrapeTimeoutMs, &expired);
    if (expired) shm::count(shared_->counters, Counter::scrape_timeouts);
    if (id == 0) {
      shm::count(shared_->counters, Counter::ring_full_drops);
      return;
    }
    for (uint32_t h = 0; h < s.count; h++) {
      if (refused[h]) {  // never completes the entry: at least one part is still out
        scrapes_->add(id, uint16_t(h), {0, 0, 0});
        continue;
      }
      const uint8_t* hash = s.info_hashes + 20 * h;
      uint32_t w = partition_of(hash, uint32_t(requests_.size()));
      shm::Request* r = requests_[w].slot_for_write(pending_[w]++);
      fill_ctx(&r->ctx, sock, i, s.transaction);
      r->ctx.scrape_id = id;
      r->ctx.scrape_index = uint16_t(h);
      r->ctx.scrape_total = uint16_t(s.count);
      std::memcpy(r->info_hash, hash, 20);
      r->kind = uint8_t(shm::RequestKind::scrape);
    }
    shm::count(shared_->counters, Counter::udp_scrape);
  }

  // Publishes the requests written since the last call and wakes their swarm workers; returns
  // whether there were any (each will come back as a response, and a drain_responses()). A
  // publish_soon_ still active afterwards then finds nothing, harmlessly.
  bool publish_requests() {
    bool any = false;
    for (size_t w = 0; w < requests_.size(); w++) {
      if (!pending_[w]) continue;
      requests_[w].publish(pending_[w]);
      pending_[w] = 0;
      wake(ctx_.swarm_eventfds[w]);
      shm::count(shared_->counters, Counter::ring_wakeups);
      any = true;
    }
    return any;
  }

  // ---- responses from swarm workers ----
  void handle_response(const shm::Response& r) {
    const shm::ReplyContext& c = r.ctx;
    if (c.protocol != uint8_t(shm::Protocol::udp)) {
      for (auto& f : frontends_)
        if (uint8_t(f->protocol()) == c.protocol) f->on_response(r);
      return;
    }
    if (c.socket_index >= sends_.size()) return;
    if (r.kind == uint8_t(shm::RequestKind::scrape)) {
      handle_scrape_part(r);
      return;
    }
    uint8_t* out = sends_[c.socket_index]->next();
    size_t n;
    if (r.status != uint8_t(shm::ResponseStatus::ok)) {
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

  void handle_scrape_part(const shm::Response& r) {
    const shm::ReplyContext& c = r.ctx;
    PendingScrape* e = scrapes_->add(c.scrape_id, c.scrape_index, {r.seeders, r.completed, r.leechers});
    if (!e) return;
    uint8_t* out = sends_[c.socket_index]->next();
    size_t n = udp::encode_scrape_header(out, c.transaction);
    for (uint16_t h = 0; h < e->total; h++)
      n += udp::encode_scrape_entry(out + n, e->counts[h].seeders, e->counts[h].completed, e->counts[h].leechers);
    scrapes_->finish(c.scrape_id);
    push_to(c, n);
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

  uint32_t now_ms() const { return uint32_t(shm::monotonic_ns() / 1000000ull); }

  static void on_readable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<SocketWorker*>(arg);
    for (size_t s = 0; s < self->ctx_.udp_sockets.size(); s++)
      if (self->ctx_.udp_sockets[s].fd == fd) self->on_socket(s);
  }
  static void on_publish_soon(evutil_socket_t, short, void* arg) {
    static_cast<SocketWorker*>(arg)->publish_requests();
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
    for (auto& r : requests_) busy |= r.depth() != 0;
    for (auto& r : responses_) busy |= r.depth() != 0;
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
  std::unique_ptr<ScrapeTable> scrapes_;
  std::vector<std::unique_ptr<SendQueue>> sends_;
  std::vector<shm::SpscRing<shm::Request>> requests_;
  std::vector<shm::SpscRing<shm::Response>> responses_;
  std::vector<uint64_t> pending_;  // requests written but not yet published, per swarm worker
  std::vector<event*> events_;
  std::vector<std::unique_ptr<ProtocolFrontend>> frontends_;  // HTTP/HTTPS, ... (UDP is built in)
  event* poll_ = nullptr;
  event* publish_soon_ = nullptr;  // low priority: publishes front-end requests after a loop pass
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
