// worker/ws_frontend.cpp — WebSocket connections of the WebTorrent front-end (see
// ws_frontend.hpp): accept (with the ws.max_connections cap), TLS through bufferevent_openssl,
// the opening handshake, frames, output cap, timeouts, close handshake, and the stopped
// announces a closing connection owes its swarms. Messages: ws_messages.cpp.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
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
#include "worker/ws_frontend_impl.hpp"
#include "worker/ws_handshake.hpp"

namespace shoal::worker {

namespace {

constexpr timeval kSweepEvery{1, 0};
constexpr uint64_t kReleaseIdleMs = 2000;  // a connection quiet this long gives its wslay context back
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
  if (want_tls) tls_ = std::make_unique<TlsContext>(cfg.https_certificate, cfg.https_private_key);
  for (const TcpListener& l : listeners) {
    evconnlistener* ln = evconnlistener_new(base, &on_accept, this, LEV_OPT_CLOSE_ON_EXEC, 0, l.fd);
    if (!ln) throw std::runtime_error("evconnlistener_new failed for a WebSocket listener");
    listeners_.push_back(ln);
    if (l.tls) tls_listeners_.push_back(ln);
  }
  sweep_ = event_new(base, -1, EV_PERSIST, &on_sweep, this);
  event_add(sweep_, &kSweepEvery);
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
  for (auto& [token, c] : conns_) bufferevent_free(c->bev);
  if (hup_) event_free(hup_);
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
  bufferevent* bev = nullptr;
  if (tls) {
    SSL* ssl = tls_->new_ssl();
    if (ssl) bev = bufferevent_openssl_socket_new(base_, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev) bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    else if (ssl) SSL_free(ssl);
  } else {
    bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!bev) {
    close(fd);
    shm::count(counters_, shm::Counter::ws_connections_refused);
    return;
  }
  auto c = std::make_unique<WsConn>();
  while (next_token_ == 0 || conns_.count(next_token_)) next_token_++;
  c->owner = this;
  c->token = next_token_++;
  c->bev = bev;
  c->tls = tls;
  c->family = family;
  std::memcpy(c->addr, addr, 16);
  c->port = port;
  c->source = source;
  c->created_ms = c->last_ms = c->relay_refill_ms = now_ms();
  c->relay_tokens = double(cfg_.ws_relay_bytes_per_second);
  WsConn* raw = c.get();
  per_source_[source]++;
  conns_.emplace(c->token, std::move(c));
  shm::count(counters_, shm::Counter::ws_connections);
  bufferevent_setcb(bev, &on_read, nullptr, &on_event, raw);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void WsFrontend::on_hup(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WsFrontend*>(arg);
  std::string why;
  if (self->tls_->reload(&why))
    LOG_INFO("wss: reloaded the TLS certificate, sha256 %s", self->tls_->fingerprint().c_str());
  else
    LOG_ERROR("wss: cannot reload the TLS certificate, keeping the old one: %s", why.c_str());
}

// ---- reading ------------------------------------------------------------------------------

void WsFrontend::on_read(bufferevent* bev, void* arg) {
  auto* c = static_cast<WsConn*>(arg);
  WsFrontend* self = c->owner;
  evbuffer* in = bufferevent_get_input(bev);
  size_t n = evbuffer_get_length(in);
  if (n == 0) return;
  std::string bytes(n, '\0');
  evbuffer_remove(in, bytes.data(), n);
  shm::count(self->counters_, shm::Counter::ws_bytes_in, n);
  c->last_ms = self->now_ms();
  if (c->state == WsConn::State::handshake) self->read_handshake(c, bytes);
  else if (c->state == WsConn::State::open) self->read_frames(c, bytes);
  else if (c->session && !c->half_closed) c->session->feed(bytes);  // closing: only the peer's close frame matters
  if (c->state == WsConn::State::closing) {
    self->write_output(c);
    self->maybe_finish(c);
  }
  if (self->relay_) self->relay_->flush();
  self->path_->flush();
}

void WsFrontend::read_handshake(WsConn* c, std::string_view bytes) {
  c->handshake.append(bytes);
  ws::HandshakeResult h = ws::parse_handshake(c->handshake);
  if (h.status == ws::HandshakeStatus::incomplete) return;
  bufferevent_write(c->bev, h.response.data(), h.response.size());
  if (h.status == ws::HandshakeStatus::rejected) {
    shm::count(counters_, shm::Counter::ws_handshake_failures);
    c->state = WsConn::State::closing;
    c->closing_ms = now_ms();
    bufferevent_setcb(c->bev, &on_read, &on_write, &on_event, c);  // finished once the reply is out
    return;
  }
  std::string rest = c->handshake.substr(h.consumed);
  std::string().swap(c->handshake);
  c->session = std::make_unique<ws::Session>(cfg_.ws_max_message_bytes);
  if (!c->session->ok()) return start_close(c, ws::kCloseGoingAway, "out of memory");
  c->state = WsConn::State::open;
  if (!rest.empty()) read_frames(c, rest);
}

void WsFrontend::read_frames(WsConn* c, std::string_view bytes) {
  c->session->feed(bytes);
  for (const std::string& m : c->session->take_messages()) {
    if (c->state != WsConn::State::open) break;
    shm::count(counters_, shm::Counter::ws_messages_in);
    handle_message(c, m);
  }
  write_output(c);
  if (c->state == WsConn::State::open && c->session->done()) {  // the peer closed, or broke the protocol
    c->state = WsConn::State::closing;
    c->closing_ms = now_ms();
    bufferevent_setcb(c->bev, &on_read, &on_write, &on_event, c);
  }
}

// ---- writing ------------------------------------------------------------------------------

bool WsFrontend::send_text(WsConn* c, std::string_view text) {
  if (c->state != WsConn::State::open || !c->session->send_text(text)) return false;
  shm::count(counters_, shm::Counter::ws_messages_out);
  write_output(c);
  // A client that does not read its messages is closed rather than buffered without bound.
  if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 4 * size_t(cfg_.ws_max_message_bytes)) {
    start_close(c, ws::kClosePolicy, "not reading");
    return false;
  }
  return true;
}

void WsFrontend::write_output(WsConn* c) {
  if (!c->session) return;
  std::string out = c->session->take_output();
  if (out.empty()) return;
  shm::count(counters_, shm::Counter::ws_bytes_out, out.size());
  bufferevent_write(c->bev, out.data(), out.size());
}

void WsFrontend::start_close(WsConn* c, uint16_t code, std::string_view reason) {
  if (c->state == WsConn::State::closing) return;
  if (c->session) {
    c->session->close(code, reason);
    write_output(c);
  }
  c->state = WsConn::State::closing;
  c->closing_ms = now_ms();
  bufferevent_setcb(c->bev, &on_read, &on_write, &on_event, c);
}

// Output written: a closing connection may be finished now.
void WsFrontend::on_write(bufferevent*, void* arg) {
  auto* c = static_cast<WsConn*>(arg);
  c->owner->maybe_finish(c);
}

void WsFrontend::maybe_finish(WsConn* c) {
  if (c->state != WsConn::State::closing || c->half_closed) return;
  if (evbuffer_get_length(bufferevent_get_output(c->bev)) != 0) return;
  if (c->session && !c->session->done()) return;  // waiting for the client's close frame
  c->half_closed = true;
  shutdown(bufferevent_getfd(c->bev), SHUT_WR);
}

void WsFrontend::on_event(bufferevent*, short what, void* arg) {
  auto* c = static_cast<WsConn*>(arg);
  WsFrontend* self = c->owner;
  if (what & BEV_EVENT_CONNECTED) return;  // TLS handshake done; the opening handshake follows
  // The client's FIN, a reset or a TLS error: the connection is over.
  if ((what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) && c->state == WsConn::State::handshake)
    shm::count(self->counters_, shm::Counter::ws_handshake_failures);
  self->free_conn(c);
}

// ---- closing ------------------------------------------------------------------------------

void WsFrontend::free_conn(WsConn* c) {
  leave_swarms(c);
  bufferevent_free(c->bev);
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
  }
  c->swarms.clear();
  retry_leaves();
}

void WsFrontend::retry_leaves() {
  size_t done = 0;
  for (; done < leave_queue_.size(); done++) {
    const Leave& l = leave_queue_[done];
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
  if (released >= 64) malloc_trim(0);  // give the freed wslay buffers back to the kernel
  self->retry_leaves();
  self->path_->flush();
}

std::unique_ptr<WsFrontendApi> make_ws_frontend(event_base* base, const conf::Config& cfg, RequestPath* path,
                                                shm::CounterBlock* counters, const std::vector<TcpListener>& listeners,
                                                WsIdentity self, std::unique_ptr<WsRelay> relay) {
  return std::make_unique<WsFrontend>(base, cfg, path, counters, listeners, self, std::move(relay));
}

}  // namespace shoal::worker
