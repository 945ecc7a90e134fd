// worker/ws_frontend.cpp — WebSocket connections of the WebTorrent front-end (see
// ws_frontend.hpp): accept (with the ws.max_connections cap), TLS (worker/tls_stream.hpp), the
// opening handshake, frames, output cap, timeouts, close handshake, and the stopped announces a
// closing connection owes its swarms. Reading and writing the connections: ws_frontend_io.cpp;
// messages: ws_messages.cpp.
//
// I/O is built for many messages per second on one core: each socket is registered once,
// edge-triggered, for reading and writing (no epoll_ctl after the accept); a read event reads
// until the socket is empty into one buffer of the worker (no FIONREAD), from which libwslay's
// frame layer takes the frames (ws::Session; a message that comes whole is parsed in wslay's
// buffer, without a copy of ours); output of every kind (replies,
// relayed offers and answers, close frames) is appended to the connection's buffer and written
// once per loop pass, by a flush event made active when the first connection has something to
// say (libevent runs it after the I/O events already due in that pass); a write that would
// block waits for the socket's next write event; with ws.io_uring the writes of all connections
// in a pass are one system call (worker/io_batch.hpp). Over TLS the socket I/O stays ours: one
// recv() feeds OpenSSL every record it brought, and the pass's frames are encrypted into the
// connection's ciphertext buffer and leave with one send() (TlsStream).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "worker/worker_common.hpp"
#include "worker/ws_frontend_impl.hpp"
#include "worker/ws_handshake.hpp"

namespace shoal::worker {

namespace {

constexpr timeval kSweepEvery{1, 0};
constexpr uint64_t kReleaseIdleMs = 2000;  // a connection quiet this long gives its buffers back
constexpr rlim_t kReservedFds = 64;

// Raises RLIMIT_NOFILE by ws.max_connections (the HTTP front-end raised it for its own share);
// returns the connection cap that fits.
uint32_t raise_fd_limit(uint32_t want_conns) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return want_conns;
  rlim_t want = rl.rlim_cur + want_conns;
  if (rl.rlim_cur < want) {
    rlimit raised = rl;
    raised.rlim_cur = std::min(want, rl.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  if (rl.rlim_cur < rlim_t(want_conns) + kReservedFds) {
    uint32_t fit = rl.rlim_cur > kReservedFds + 16 ? uint32_t(rl.rlim_cur - kReservedFds) : 16;
    LOG_WARN("ws.max_connections %u exceeds the open-file limit (%llu); serving at most %u WebSocket connections",
             want_conns, (unsigned long long)rl.rlim_cur, fit);
    return fit;
  }
  return want_conns;
}

}  // namespace

WsFrontend::WsFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, shm::CounterBlock* counters,
                       const std::vector<TcpListener>& listeners, WsIdentity self, std::unique_ptr<WsRelay> relay)
    : base_(base), cfg_(cfg), path_(path), counters_(counters), self_(self), relay_(std::move(relay)),
      max_conns_(raise_fd_limit(cfg.ws_max_connections)),
      accept_limiter_(cfg.ws_per_source_accept_rate, cfg.ws_per_source_accept_burst) {
  bool want_tls = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return l.tls; });
  if (want_tls) tls_ = std::make_unique<TlsContext>(cfg.https_certificate, cfg.https_private_key, cfg.https_ciphersuites);
  for (const TcpListener& l : listeners) {
    evconnlistener* ln = evconnlistener_new(base, &on_accept, this, LEV_OPT_CLOSE_ON_EXEC, 0, l.fd);
    if (!ln) throw std::runtime_error("evconnlistener_new failed for a WebSocket listener");
    listeners_.push_back(ln);
    if (l.tls) tls_listeners_.push_back(ln);
  }
  sweep_ = event_new(base, -1, EV_PERSIST, &on_sweep, this);
  event_add(sweep_, &kSweepEvery);
  flush_ev_ = event_new(base, -1, 0, &on_flush, this);
  event_priority_set(flush_ev_, kPriorityLow);  // after every ready socket was read (on_flush)
  flush_deadline_ = evtimer_new(base, &on_flush, this);
  read_ev_ = event_new(base, -1, 0, &on_read, this);
  read_buf_.resize(kReadBuffer);
  if (cfg.ws_io_uring) {
    batch_ = std::make_unique<IoBatch>(kBatchOps);
    if (!batch_->ok()) LOG_WARN("ws: io_uring unavailable, one recv()/send() per connection: %s", batch_->why().c_str()), batch_.reset();
    else read_slots_.resize(size_t(kBatchOps) * kReadSlot);
  }
  if (tls_) plain_buf_.resize(kReadBuffer);
  if (tls_) {
    hup_ = evsignal_new(base, SIGHUP, &on_hup, this);
    event_add(hup_, nullptr);
  }
  conns_.reserve(1024);
  LOG_INFO("websocket front-end: %zu listeners, at most %u connections%s%s", listeners.size(), max_conns_,
           tls_ ? ", TLS certificate sha256 " : "", tls_ ? tls_->fingerprint().c_str() : "");
}

WsFrontend::~WsFrontend() {
  for (evconnlistener* ln : listeners_) evconnlistener_free(ln);  // the fds stay with the supervisor's copies
  for (auto& [token, c] : conns_) {
    event_free(c->ev);
    c->tls_io.reset();
    close(c->fd);
  }
  if (hup_) event_free(hup_);
  event_free(flush_ev_);
  event_free(flush_deadline_);
  event_free(read_ev_);
  event_free(sweep_);
}

uint64_t WsFrontend::now_ms() const { return shm::monotonic_ns() / 1000000ull; }

WsConn* WsFrontend::find(uint64_t token) {
  auto it = conns_.find(uint32_t(token));
  return it == conns_.end() || token > UINT32_MAX ? nullptr : it->second.get();
}

// ---- accept, TLS ----------------------------------------------------------------------------

void WsFrontend::on_accept(evconnlistener* ln, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* self = static_cast<WsFrontend*>(arg);
  bool tls = std::find(self->tls_listeners_.begin(), self->tls_listeners_.end(), ln) != self->tls_listeners_.end();
  self->accept_conn(fd, sa, tls);
}

// Refused at once (before TLS or the opening handshake cost anything): draining, the worker's
// connection cap, the source's share of it, or the source's accept rate (docs/hardening.md A13).
void WsFrontend::accept_conn(evutil_socket_t fd, const sockaddr* sa, bool tls) {
  uint8_t family = 4, addr[16] = {};
  uint16_t port;
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    std::memcpy(addr, &in->sin_addr, 4);
    port = ntohs(in->sin_port);
  } else {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::memcpy(addr, &in6->sin6_addr, 16);
    port = ntohs(in6->sin6_port);
    family = 6;
  }
  uint64_t source = source_key(family, addr);
  auto held = per_source_.find(source);
  bool over_share = cfg_.ws_max_connections_per_source && held != per_source_.end() &&
                    held->second >= cfg_.ws_max_connections_per_source;
  if (draining_ || conns_.size() >= max_conns_ || over_share ||
      (accept_limiter_.enabled() && !accept_limiter_.allow(family, addr, now_ms()))) {
    shm::count(counters_, shm::Counter::ws_connections_refused);
    close(fd);
    return;
  }
  std::unique_ptr<TlsStream> tls_io;
  if (tls && !(tls_io = std::make_unique<TlsStream>(tls_->new_ssl()))->ssl()) {
    close(fd);
    shm::count(counters_, shm::Counter::ws_connections_refused);
    return;
  }
  int one = 1;  // output is already batched per loop pass: send it at once
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto c = std::make_unique<WsConn>();
  while (next_token_ == 0 || conns_.count(next_token_)) next_token_++;
  c->owner = this;
  c->token = next_token_++;
  c->fd = fd;
  c->tls_io = std::move(tls_io);
  c->tls = tls;
  c->family = family;
  std::memcpy(c->addr, addr, 16);
  c->port = port;
  c->source = source;
  c->created_ms = c->last_ms = c->relay_refill_ms = now_ms();
  c->relay_tokens = double(cfg_.ws_relay_bytes_per_second);
  c->session = std::make_unique<ws::Session>(cfg_.ws_max_message_bytes);
  c->ev = event_new(base_, fd, EV_READ | EV_WRITE | EV_ET | EV_PERSIST, &on_io, c.get());
  if (!c->ev || event_add(c->ev, nullptr) != 0) {
    if (c->ev) event_free(c->ev);
    c->tls_io.reset();
    close(fd);
    shm::count(counters_, shm::Counter::ws_connections_refused);
    return;
  }
  per_source_[source]++;
  conns_.emplace(c->token, std::move(c));
  shm::count(counters_, shm::Counter::ws_connections);
}

void WsFrontend::on_hup(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WsFrontend*>(arg);
  std::string why;
  if (self->tls_->reload(&why))
    LOG_INFO("wss: reloaded the TLS certificate, sha256 %s", self->tls_->fingerprint().c_str());
  else
    LOG_ERROR("wss: cannot reload the TLS certificate, keeping the old one: %s", why.c_str());
}

void WsFrontend::start_close(WsConn* c, uint16_t code, std::string_view reason) {
  if (c->state == WsConn::State::closing) return;
  if (c->framed) {
    c->session->close(code, reason);
    mark_dirty(c);
  }
  c->state = WsConn::State::closing;
  c->closing_ms = now_ms();
  if (!c->framed) maybe_finish(c);
}

// A closing connection's output is out: it may be finished now.
void WsFrontend::maybe_finish(WsConn* c) {
  if (c->state != WsConn::State::closing || c->half_closed) return;
  if (has_output(c)) return;
  if (c->framed && !c->session->done()) return;  // waiting for the client's close frame
  c->half_closed = true;
  shutdown(c->fd, SHUT_WR);
}

// ---- closing ------------------------------------------------------------------------------

void WsFrontend::free_conn(WsConn* c) {
  leave_swarms(c);
  event_free(c->ev);
  c->tls_io.reset();
  close(c->fd);
  shm::count(counters_, shm::Counter::ws_connections_closed);
  auto held = per_source_.find(c->source);
  if (held != per_source_.end() && --held->second == 0) per_source_.erase(held);
  conns_.erase(c->token);  // destroys c
  path_->flush();
}

// A closing connection's peers leave their swarms: one stopped announce per (info_hash,
// peer_id) it announced (its announces still in flight are ahead of these in the same rings).
void WsFrontend::leave_swarms(WsConn* c) {
  for (const WsConn::Swarm& s : c->swarms) {
    if (leave_queue_.size() < kMaxLeaveQueue) leave_queue_.push_back({s.info_hash, s.peer_id, c->token});
    else shm::count(counters_, shm::Counter::ring_full_drops);  // lost: the peer stays until peer_ttl
  }
  c->swarms.clear();
  retry_leaves();
}

// A leave the rings have no room for waits here (not counted as a ring_full drop: it is not
// lost; each of 16,000 connections closing at once counted one per retry before).
void WsFrontend::retry_leaves() {
  size_t done = 0;
  for (; done < leave_queue_.size(); done++) {
    const Leave& l = leave_queue_[done];
    if (!path_->has_room(l.info_hash.data())) break;  // the rest waits for the next sweep
    AnnounceIn in;
    in.info_hash = l.info_hash.data();
    in.peer_addr = l.info_hash.data();  // any 4 bytes: a stopped announce creates nothing, so no quota asks
    in.family = shm::kFamilyWebTorrent;
    in.event = shm::Event::stopped;
    in.numwant = 0;
    in.peer_id = l.peer_id.data();
    in.conn_generation = self_.generation;
    shm::ReplyContext ctx{};
    ctx.protocol = uint8_t(shm::Protocol::ws);
    ctx.family = shm::kFamilyWebTorrent;
    ctx.conn = l.token;  // the connection is gone: its reply is ignored
    PathStatus st = path_->announce(in, ctx);
    if (st == PathStatus::ring_full) break;  // the rest waits for the next sweep
  }
  leave_queue_.erase(leave_queue_.begin(), leave_queue_.begin() + done);
}

void WsFrontend::drain() {
  draining_ = true;
  for (evconnlistener* ln : listeners_) evconnlistener_disable(ln);
  std::vector<WsConn*> all;
  for (auto& [token, c] : conns_) all.push_back(c.get());
  for (WsConn* c : all) {
    if (c->state == WsConn::State::open) start_close(c, ws::kCloseGoingAway, "tracker restarting");
    else if (c->state == WsConn::State::handshake) free_conn(c);
  }
  if (relay_) relay_->flush();
  path_->publish();
}

void WsFrontend::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WsFrontend*>(arg);
  uint64_t now = self->now_ms();
  const conf::Config& cfg = self->cfg_;
  std::vector<WsConn*> expired, idle;
  uint32_t released = 0;
  for (auto& [token, cp] : self->conns_) {
    WsConn* c = cp.get();
    auto& d = c->delivered;  // offers whose answer time is over
    d.erase(std::remove_if(d.begin(), d.end(), [now](const WsConn::Delivered& x) { return x.expires_ms <= now; }), d.end());
    if (c->state == WsConn::State::handshake && now - c->created_ms > uint64_t(cfg.ws_handshake_timeout) * 1000)
      expired.push_back(c);
    else if (c->state == WsConn::State::closing && now - c->closing_ms > kCloseGraceMs)
      expired.push_back(c);
    else if (c->state == WsConn::State::open && now - c->last_ms > uint64_t(cfg.ws_idle_timeout) * 1000)
      idle.push_back(c);
    else if (c->state == WsConn::State::open && now - c->last_ms > kReleaseIdleMs && c->session->release_if_idle()) {
      released++;
      if (c->tls_io) c->tls_io->set_busy(false);
      // Its empty tables give their capacity back too (an idle connection holds no buffers).
      if (c->pending.empty()) std::vector<WsConn::Pending>().swap(c->pending);
      if (d.empty()) std::vector<WsConn::Delivered>().swap(d);
    }
  }
  for (WsConn* c : expired) {
    if (c->state == WsConn::State::handshake) shm::count(self->counters_, shm::Counter::ws_handshake_failures);
    self->free_conn(c);
  }
  for (WsConn* c : idle) self->start_close(c, ws::kCloseNormal, "idle");
  if (released >= 64) malloc_trim(0);  // give the freed buffers back to the kernel
  self->retry_leaves();
  self->path_->flush();
}

std::unique_ptr<WsFrontendApi> make_ws_frontend(event_base* base, const conf::Config& cfg, RequestPath* path,
                                                shm::CounterBlock* counters, const std::vector<TcpListener>& listeners,
                                                WsIdentity self, std::unique_ptr<WsRelay> relay) {
  return std::make_unique<WsFrontend>(base, cfg, path, counters, listeners, self, std::move(relay));
}

}  // namespace shoal::worker
