// worker/http_conn.cpp — connection lifecycle of the HTTP/HTTPS front-end (see
// http_frontend_impl.hpp): the bufferevent (plain or bufferevent_openssl) of each accepted
// socket; adoption of the evhttp_connection libevent builds around it (evhttp announces new
// connections to nobody, so the bevcb queues the bufferevent and an event activated in the same
// loop iteration, before any of the connection's I/O is polled, finds its connection through
// bufferevent_getcb and registers the close callback); max_connections and
// max_connections_per_source (closing the source's oldest idle connection) and
// per_source_accept_rate (token buckets, worker/source_limiter.hpp); the total request
// deadline (a complete request within http.idle_timeout of connecting or of the previous reply,
// so trickled bytes buy nothing); the reply deadline sweep; accept-error back-off; and the SIGHUP
// certificate reload. Runs in a socket worker.
#include <sys/ioctl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "supervisor/log.hpp"
#include "worker/http_frontend_impl.hpp"

namespace shoal::worker::http {

HttpFrontend* g_frontend = nullptr;

// The connection's source address (evhttp keeps it as numeric text), canonical.
bool address_of(evhttp_connection* evcon, PeerAddress* out) {
  char* host = nullptr;
  ev_uint16_t port = 0;
  evhttp_connection_get_peer(evcon, &host, &port);
  if (!host) return false;
  std::string_view text(host);
  return parse_address_text(text.substr(0, text.find('%')), out);  // drop a zone id
}

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

bufferevent* HttpFrontend::new_bufferevent(event_base* base, bool tls) {
  if (tls) {
    if (SSL* ssl = tls_->new_ssl()) {
      bufferevent* bev =
          bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
      if (bev) return bev;
      SSL_free(ssl);
    }
    return nullptr;
  }
  return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

bufferevent* HttpFrontend::on_bev(event_base* base, void* arg) {
  auto* a = static_cast<ServerArg*>(arg);
  HttpFrontend* self = a->self;
  bufferevent* bev = self->new_bufferevent(base, a->tls);
  bool refuse = false;
  if (!bev) {  // never let a TLS port fall back to plain text: take it and close it at adoption
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    refuse = true;
  }
  if (bev) {
    self->fresh_.push_back({bev, a->tls, refuse});
    event_active(self->fresh_ev_, EV_TIMEOUT, 0);
  }
  return bev;
}

void HttpFrontend::adopt_fresh() {
  for (const Fresh& f : fresh_) adopt(f);
  fresh_.clear();
}

// Runs in the loop iteration that accepted the connection, before any of its I/O is polled, so
// the connection is alive. evhttp set the bufferevent's callback argument to its connection.
void HttpFrontend::adopt(const Fresh& f) {
  void* arg = nullptr;
  bufferevent_getcb(f.bev, nullptr, nullptr, nullptr, &arg);
  auto* evcon = static_cast<evhttp_connection*>(arg);
  if (!evcon || evhttp_connection_get_bufferevent(evcon) != f.bev) return;  // libevent failed it
  count(Counter::http_connections);
  PeerAddress addr;
  bool have_addr = address_of(evcon, &addr);
  bool from_proxy = have_addr && !cfg_.http_real_ip_header.empty() && is_trusted(cfg_.http_trusted_proxies, addr);
  // A source opening connections faster than http.per_source_accept_rate loses the new ones
  // here, before a TLS handshake or a connection slot costs anything (issue 12, floods;
  // docs/hardening.md A7, A16). Trusted proxies carry many clients.
  if (have_addr && !f.refuse && !from_proxy && accept_limiter_.enabled() &&
      !accept_limiter_.allow(addr.family == AF_INET ? 4 : 6, addr.addr, now_ms())) {
    count(Counter::http_accept_rate_limited);
    evhttp_connection_free(evcon);
    return;
  }
  if (f.refuse || conns_.used() >= max_conns_ || !have_addr) {
    count(Counter::http_connections_refused);
    evhttp_connection_free(evcon);
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
      evhttp_connection_free(evcon);
      return;
    }
  }
  // A new connection has http.first_request_timeout for its first request (a connection that
  // never sends one is the cheapest way to hold a slot); later ones get http.idle_timeout.
  uint32_t c = conns_.acquire(now_ms() + first_request_ms_);
  Conn& k = conns_[c];
  k.evcon = evcon;
  k.bev = f.bev;
  k.tls = f.tls;
  k.addr = addr;
  k.from_proxy = from_proxy;
  k.source = source;
  k.accepted_ms = now_ms();
  k.requested = false;
  if (source != 0) {
    SourceConns& sc = per_source_[source];
    k.src_prev = sc.tail;
    if (sc.tail != kNone) conns_[sc.tail].src_next = c;
    else sc.head = c;
    sc.tail = c;
    sc.open++;
  }
  by_evcon_[evcon] = c;
  evhttp_connection_set_closecb(evcon, &on_close_cb, this);
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
  if (k.inflight != kNone) return false;
  if (!k.bev) return true;
  if (evbuffer_get_length(bufferevent_get_output(k.bev)) != 0 || evbuffer_get_length(bufferevent_get_input(k.bev)) != 0)
    return false;
  int pending = 0;  // bytes the kernel holds that libevent has not read yet: a request on its way
  return ioctl(bufferevent_getfd(k.bev), FIONREAD, &pending) != 0 || pending == 0;
}

// Closes connection c now (forgotten first, so the close callback finds nothing left to do).
void HttpFrontend::close_conn(uint32_t c) {
  evhttp_connection* evcon = conns_[c].evcon;
  drop_conn(c);
  evhttp_connection_free(evcon);
}

void HttpFrontend::on_close_cb(evhttp_connection* evcon, void* arg) {
  auto* self = static_cast<HttpFrontend*>(arg);
  auto it = self->by_evcon_.find(evcon);
  if (it != self->by_evcon_.end()) self->drop_conn(it->second);
}

// Forgets connection c. A request of it still in flight is dropped from the table when libevent
// is about to free it with the connection, or kept (to be answered and so freed) if libevent
// already detached it.
void HttpFrontend::drop_conn(uint32_t c) {
  Conn& k = conns_[c];
  if (k.inflight != kNone && pending_.busy(k.inflight)) {
    Pending& q = pending_[k.inflight];
    if (evhttp_request_get_connection(q.req) == k.evcon)
      release_pending(k.inflight);
    else
      q.conn = kNone;
  }
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
    k.source = 0;
    k.src_prev = k.src_next = kNone;
  }
  by_evcon_.erase(k.evcon);
  conns_.release(c);
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
  for (evconnlistener* l : self->listeners_) evconnlistener_enable(l);
}

// Requests without a swarm reply in time get "try again"; connections past their deadline close.
void HttpFrontend::sweep() {
  uint64_t now = now_ms();
  for (uint32_t p; (p = pending_.expired(now)) != kNone;) {
    count(Counter::http_timeouts);
    count(Counter::http_failure);
    finish(p, body_, encode_failure(body_, sizeof body_, kTryAgain));
  }
  for (uint32_t c; (c = conns_.expired(now)) != kNone;) close_conn(c);
  if (draining_) close_idle_connections();
}

void HttpFrontend::drain() {
  draining_ = true;
  for (evconnlistener* l : listeners_) evconnlistener_disable(l);
  adopt_fresh();  // accepted in this loop pass: they are ours to serve, not to lose at exit
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

bool HttpFrontend::idle() const {
  if (!fresh_.empty()) return false;  // accepted, not adopted yet
  for (uint32_t c = 0; c < conns_.capacity(); c++)
    if (conns_.busy(c)) return false;
  return true;
}

void HttpFrontend::reload_tls() {
  std::string why;
  if (tls_->reload(&why))
    LOG_INFO("TLS certificate reloaded for new connections: sha256 %s", tls_->fingerprint().c_str());
  else
    LOG_ERROR("TLS certificate reload failed: %s; keeping the current one (sha256 %s)", why.c_str(),
              tls_->fingerprint().c_str());
}
}  // namespace shoal::worker::http
