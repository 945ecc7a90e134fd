// worker/http_conn.cpp — connection lifecycle of the HTTP/HTTPS front-end (see
// http_frontend_impl.hpp): accept on the slot's inherited listeners with max_connections,
// max_connections_per_source (closing the source's oldest idle connection) and
// per_source_accept_rate (token buckets, worker/source_limiter.hpp); one bufferevent per
// connection (plain, or bufferevent_openssl for HTTPS) whose reads feed serve_input(); the
// total request deadline (a complete request within http.idle_timeout of connecting or of the
// previous reply, so trickled bytes buy nothing; http.first_request_timeout for the first); the
// reply deadline sweep; accept-error back-off; the rolling-restart drain; and the SIGHUP
// certificate reload. Runs in a socket worker.
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "supervisor/log.hpp"
#include "worker/connection_id.hpp"
#include "worker/http_frontend_impl.hpp"

namespace shoal::worker::http {

HttpFrontend* g_frontend = nullptr;

namespace {

// The accepted socket's source address, canonical (IPv4-mapped IPv6 as IPv4).
bool address_of(const sockaddr* sa, PeerAddress* out) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  *out = PeerAddress{};
  if (sa->sa_family == AF_INET) {
    out->family = AF_INET;
    std::memcpy(out->addr, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return true;
  }
  if (sa->sa_family != AF_INET6) return false;
  const uint8_t* a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr;
  if (std::memcmp(a, kMapped, 12) == 0) {
    out->family = AF_INET;
    std::memcpy(out->addr, a + 12, 4);
  } else {
    out->family = AF_INET6;
    std::memcpy(out->addr, a, 16);
  }
  return true;
}

}  // namespace

// Raises RLIMIT_NOFILE toward max_connections + reserve; returns the connection limit that fits.
uint32_t connection_limit(const conf::Config& cfg) {
  uint32_t limit = cfg.http_max_connections;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return limit;
  rlim_t want = rlim_t(limit) + kReservedFds;
  if (rl.rlim_cur < want) {
    rlimit raised = rl;
    raised.rlim_cur = std::min(want, rl.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  if (rl.rlim_cur < want) {
    limit = rl.rlim_cur > kReservedFds + 16 ? uint32_t(rl.rlim_cur - kReservedFds) : 16;
    LOG_WARN("http.max_connections %u exceeds the open-file limit (%llu); serving at most %u connections",
             cfg.http_max_connections, (unsigned long long)rl.rlim_cur, limit);
  }
  return limit;
}

// ---- connections ---------------------------------------------------------------------------

void HttpFrontend::on_accept_cb(evconnlistener* ln, evutil_socket_t fd, sockaddr* sa, int, void* arg) {
  auto* self = static_cast<HttpFrontend*>(arg);
  bool tls = std::find(self->tls_listeners_.begin(), self->tls_listeners_.end(), ln) != self->tls_listeners_.end();
  self->accept_conn(fd, sa, tls);
}

void HttpFrontend::accept_conn(evutil_socket_t fd, const sockaddr* sa, bool tls) {
  count(Counter::http_connections);
  PeerAddress addr;
  bool have_addr = address_of(sa, &addr);
  bool from_proxy = have_addr && !cfg_.http_real_ip_header.empty() && is_trusted(cfg_.http_trusted_proxies, addr);
  // A source opening connections faster than http.per_source_accept_rate loses the new ones
  // here, before a TLS handshake or a connection slot costs anything (issue 12, floods;
  // docs/hardening.md A7, A16). Trusted proxies carry many clients.
  if (have_addr && !from_proxy && accept_limiter_.enabled() &&
      !accept_limiter_.allow(addr.family == AF_INET ? 4 : 6, addr.addr, now_ms())) {
    count(Counter::http_accept_rate_limited);
    close(fd);
    return;
  }
  if (draining_ || conns_.used() >= max_conns_ || !have_addr) {
    count(Counter::http_connections_refused);
    close(fd);
    return;
  }
  // One source must not hold every connection (idle sockets locked all other clients out;
  // issue 12): a source at its limit loses its oldest idle connection to the new one, or the
  // new one when all of them are busy. Trusted proxies carry many clients.
  uint64_t source = 0;
  if (cfg_.http_max_connections_per_source != 0 && !from_proxy) {
    source = source_key(addr.family == AF_INET ? 4 : 6, addr.addr);
    if (!make_room(source)) {
      count(Counter::http_connections_refused);
      close(fd);
      return;
    }
  }
  bufferevent* bev = nullptr;
  if (tls) {  // never let a TLS port fall back to plain text
    if (SSL* ssl = tls_->new_ssl()) {
      bev = bufferevent_openssl_socket_new(base_, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
      if (!bev) SSL_free(ssl);
    }
  } else {
    int one = 1;  // replies are already batched per loop pass: send them at once
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bev = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (!bev) {
    count(Counter::http_connections_refused);
    close(fd);
    return;
  }
  // A new connection has http.first_request_timeout for its first request (a connection that
  // never sends one is the cheapest way to hold a slot); later ones get http.idle_timeout.
  uint32_t c = conns_.acquire(now_ms() + first_request_ms_);
  Conn& k = conns_[c];
  k.owner = this;
  k.index = c;
  k.bev = bev;
  k.tls = tls;
  k.addr = addr;
  k.from_proxy = from_proxy;
  k.source = source;
  k.accepted_ms = now_ms();
  if (source != 0) {
    SourceConns& sc = per_source_[source];
    k.src_prev = sc.tail;
    if (sc.tail != kNone) conns_[sc.tail].src_next = c;
    else sc.head = c;
    sc.tail = c;
    sc.open++;
  }
  bufferevent_setcb(bev, &on_read_cb, &on_write_cb, &on_event_cb, &k);
  // Reading pauses while this much input waits (a pipeline at kMaxPipeline, a client that
  // does not read its replies); it resumes as serve_input() drains it.
  bufferevent_setwatermark(bev, EV_READ, 0, std::max<size_t>(kReadHighWater, 2 * cfg_.http_max_header_bytes));
  // Plain text: the front-end writes the output itself once per pass (flush_output), and asks
  // libevent to wait for writability only when the socket took less than all of it; TLS output
  // is bufferevent_openssl's.
  bufferevent_enable(bev, tls ? EV_READ | EV_WRITE : EV_READ);
}

// True when `source` may open one more connection: it is under the limit, or its oldest idle
// connection was closed (counted in http_connections_refused, like a refused one).
bool HttpFrontend::make_room(uint64_t source) {
  auto it = per_source_.find(source);
  if (it == per_source_.end() || it->second.open < cfg_.http_max_connections_per_source) return true;
  for (uint32_t c = it->second.head; c != kNone; c = conns_[c].src_next) {
    if (!is_idle(c)) continue;
    count(Counter::http_connections_refused);
    close_conn(c);
    return true;
  }
  return false;
}

// No request in flight, nothing received of a next one and the last reply fully written: a
// keep-alive connection between requests, or one that has sent nothing yet.
bool HttpFrontend::is_idle(uint32_t c) const {
  const Conn& k = conns_[c];
  if (k.head != kNone) return false;
  if (evbuffer_get_length(bufferevent_get_output(k.bev)) != 0 || evbuffer_get_length(bufferevent_get_input(k.bev)) != 0)
    return false;
  int pending = 0;  // bytes the kernel holds that libevent has not read yet: a request on its way
  return ioctl(bufferevent_getfd(k.bev), FIONREAD, &pending) != 0 || pending == 0;
}

void HttpFrontend::on_read(uint32_t c) {
  serve_input(c);
  flush_output();
}

// The output is written out: a connection that was to close after its replies closes now.
// Plain text goes back to writing from flush_output().
void HttpFrontend::on_written(uint32_t c) {
  Conn& k = conns_[c];
  if (k.closing && k.head == kNone) return close_conn(c);
  if (!k.tls) bufferevent_disable(k.bev, EV_WRITE);
}

// Writes the plain-text output appended this pass, one writev per connection. What the socket
// does not take is left to libevent (EV_WRITE until it is written, then on_written).
void HttpFrontend::flush_output() {
  for (size_t i = 0; i < dirty_.size(); i++) {
    uint32_t c = dirty_[i];
    if (!conns_.busy(c) || !conns_[c].dirty) continue;
    Conn& k = conns_[c];
    k.dirty = false;
    evbuffer* out = bufferevent_get_output(k.bev);
    if (bufferevent_get_enabled(k.bev) & EV_WRITE) continue;  // libevent is writing it already
    // A bufferevent keeps its output's start frozen except while it writes itself
    // (bufferevent_sock.c does the same around its own evbuffer_write).
    evbuffer_unfreeze(out, 1);
    errno = 0;
    int n = evbuffer_write(out, bufferevent_getfd(k.bev));
    evbuffer_freeze(out, 1);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      close_conn(c);
      continue;
    }
    if (evbuffer_get_length(out) != 0) bufferevent_enable(k.bev, EV_WRITE);
    else if (k.closing && k.head == kNone) close_conn(c);
  }
  dirty_.clear();
}

// End of input or an error. On a clean end of input the requests already received are still
// answered (a client may half-close after its last request); then the connection closes.
void HttpFrontend::on_event(uint32_t c, short what) {
  Conn& k = conns_[c];
  if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
    serve_input(c);
    k.closing = true;
    flush_output();
    if (conns_.busy(c) && k.head == kNone && evbuffer_get_length(bufferevent_get_output(k.bev)) == 0) close_conn(c);
    return;
  }
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) close_conn(c);
}

// Closes connection c now; its requests in flight are forgotten (late replies match nothing).
void HttpFrontend::close_conn(uint32_t c) {
  if (!conns_.busy(c)) return;
  Conn& k = conns_[c];
  for (uint32_t p = k.head; p != kNone;) {
    uint32_t next = pending_[p].next;
    pending_.release(p);
    p = next;
  }
  k.head = k.tail = kNone;
  k.queued = 0;
  if (k.tls) {
    SSL* ssl = bufferevent_openssl_get_ssl(k.bev);
    if (ssl && !SSL_is_init_finished(ssl)) count(Counter::tls_handshake_failures);
  }
  if (k.source != 0) {
    auto it = per_source_.find(k.source);
    if (it != per_source_.end()) {
      SourceConns& sc = it->second;
      if (k.src_prev != kNone) conns_[k.src_prev].src_next = k.src_next;
      else sc.head = k.src_next;
      if (k.src_next != kNone) conns_[k.src_next].src_prev = k.src_prev;
      else sc.tail = k.src_prev;
      if (--sc.open == 0) per_source_.erase(it);
    }
  }
  bufferevent_free(k.bev);  // closes the socket (and frees the SSL)
  conns_.release(c);
  conns_[c] = Conn{};
  conns_[c].owner = this;
  conns_[c].index = c;
}

// Connections whose input waited for room in their pipeline read on.
void HttpFrontend::resume_input() {
  if (resume_.empty()) return;
  std::vector<uint32_t> now;
  now.swap(resume_);
  for (uint32_t c : now)
    if (conns_.busy(c)) serve_input(c);
  if (resume_.empty()) {  // keep the capacity
    now.clear();
    resume_.swap(now);
  }
}

void HttpFrontend::on_accept_error(evconnlistener*, void*) {
  HttpFrontend* self = g_frontend;
  int err = EVUTIL_SOCKET_ERROR();
  if (!self || self->accept_paused_) return;
  LOG_WARN("http accept failed: %s; pausing accepts for 100 ms", strerror(err));
  self->accept_paused_ = true;
  for (evconnlistener* l : self->listeners_) evconnlistener_disable(l);
  evtimer_add(self->resume_ev_, &kAcceptPause);
}

void HttpFrontend::on_resume_cb(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<HttpFrontend*>(arg);
  self->accept_paused_ = false;
  if (!self->draining_)
    for (evconnlistener* l : self->listeners_) evconnlistener_enable(l);
}

// Requests without a swarm reply in time get "try again"; connections past their deadline close.
void HttpFrontend::sweep() {
  uint64_t now = now_ms();
  for (uint32_t p; (p = pending_.expired(now)) != kNone;) {
    count(Counter::http_timeouts);
    fail(p, kTryAgain);
  }
  for (uint32_t c; (c = conns_.expired(now)) != kNone;) close_conn(c);
  resume_input();
  flush_output();
  if (draining_) close_idle_connections();
}

void HttpFrontend::drain() {
  draining_ = true;
  for (evconnlistener* l : listeners_) evconnlistener_disable(l);
  size_t closed = close_idle_connections();
  LOG_INFO("http: stopped accepting; closed %zu idle keep-alive connections, finishing the others", closed);
}

// Closes the idle connections (is_idle; draining only; the sweep calls it again every 100 ms).
// Returns how many.
size_t HttpFrontend::close_idle_connections() {
  size_t closed = 0;
  uint64_t now = now_ms();
  for (uint32_t c = 0; c < conns_.capacity(); c++) {
    if (!conns_.busy(c) || !is_idle(c)) continue;
    // Accepted just before the drain began: its client is sending its first request now, and
    // closing would fail that request. It gets kDrainFreshMs, then is closed if still silent.
    if (!conns_[c].requested && now - conns_[c].accepted_ms < kDrainFreshMs) continue;
    close_conn(c);
    closed++;
  }
  return closed;
}

bool HttpFrontend::idle() const { return conns_.used() == 0; }

void HttpFrontend::reload_tls() {
  std::string why;
  if (tls_->reload(&why))
    LOG_INFO("TLS certificate reloaded for new connections: sha256 %s", tls_->fingerprint().c_str());
  else
    LOG_ERROR("TLS certificate reload failed: %s; keeping the current one (sha256 %s)", why.c_str(),
              tls_->fingerprint().c_str());
}
}  // namespace shoal::worker::http
