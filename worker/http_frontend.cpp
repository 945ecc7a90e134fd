// worker/http_frontend.cpp — see http_frontend.hpp. Set-up (one evhttp server for plain HTTP and
// one for HTTPS, sharing one connection table, one table of requests in flight and one counter
// block), request handling and replies; connections live in http_conn.cpp. Runs in a socket
// worker. Lifetimes (libevent 2.1): an evhttp_request handed to on_request stays valid until we
// reply (evhttp stops reading the connection meanwhile; a client that closes is noticed when the
// reply is written, and libevent then frees both). The only other path that frees it is the
// connection's close callback, which drops our slot first; so a request is only ever held for a
// connection whose close callback is registered. Every request in flight is answered within
// kReplyTimeoutMs ("try again"), so nothing is held forever.
#include "worker/http_frontend.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "shm/control_segment.hpp"
#include "supervisor/log.hpp"
#include "worker/http_frontend_impl.hpp"

namespace shoal::worker {
namespace http {
namespace {

// The value of the last `name` header (case-insensitive), or nullptr.
const char* last_header(evhttp_request* req, const std::string& name) {
  const char* found = nullptr;
  evkeyvalq* headers = evhttp_request_get_input_headers(req);
  for (evkeyval* kv = headers->tqh_first; kv; kv = kv->next.tqe_next)
    if (strcasecmp(kv->key, name.c_str()) == 0) found = kv->value;
  return found;
}

void fill_ctx(shm::ReplyContext* x, const PeerAddress& peer, uint64_t token) {
  std::memcpy(x->addr, peer.addr, peer.family == AF_INET ? 4 : 16);
  x->family = peer.family == AF_INET ? 4 : 6;
  x->protocol = uint8_t(shm::Protocol::http);
  x->conn = token;
}

}  // namespace

HttpFrontend::HttpFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, shm::CounterBlock* counters,
                           const std::vector<TcpListener>& listeners, uint32_t generation)
    : base_(base), cfg_(cfg), path_(path), counters_(counters), idle_ms_(uint64_t(cfg.http_idle_timeout) * 1000),
      first_request_ms_(uint64_t(std::min(cfg.http_first_request_timeout, cfg.http_idle_timeout)) * 1000),
      max_conns_(connection_limit(cfg)), conns_(max_conns_),
      accept_limiter_(cfg.http_per_source_accept_rate, cfg.http_per_source_accept_burst), pending_(2 * max_conns_, generation << 20) {
  by_evcon_.reserve(max_conns_);
  bool want_tls = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return l.tls; });
  bool want_plain = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return !l.tls; });
  if (want_tls) tls_ = std::make_unique<TlsContext>(cfg.https_certificate, cfg.https_private_key, cfg.https_ciphersuites);
  if (want_plain) http_ = make_server(&plain_arg_);
  if (want_tls) https_ = make_server(&tls_arg_);
  fresh_ev_ = event_new(base, -1, 0, &on_fresh_cb, this);
  sweep_ev_ = event_new(base, -1, EV_PERSIST, &on_sweep_cb, this);
  resume_ev_ = evtimer_new(base, &on_resume_cb, this);
  event_add(sweep_ev_, &kSweepEvery);
  g_frontend = this;
  for (const TcpListener& l : listeners) {
    evhttp_bound_socket* bound = evhttp_accept_socket_with_handle(l.tls ? https_ : http_, l.fd);
    if (!bound) throw std::runtime_error("evhttp_accept_socket failed");
    evconnlistener* ln = evhttp_bound_socket_get_listener(bound);
    evconnlistener_set_error_cb(ln, &HttpFrontend::on_accept_error);
    listeners_.push_back(ln);
  }
  if (tls_) {
    hup_ev_ = evsignal_new(base, SIGHUP, &on_hup_cb, this);
    event_add(hup_ev_, nullptr);
  }
  missing_header_ = "missing " + cfg.http_real_ip_header + " header from a trusted proxy";
  malformed_header_ = "malformed " + cfg.http_real_ip_header + " header from a trusted proxy";
  LOG_INFO("http front-end: %zu listeners, at most %u connections%s%s", listeners.size(), max_conns_,
           tls_ ? ", TLS certificate sha256 " : "", tls_ ? tls_->fingerprint().c_str() : "");
}

HttpFrontend::~HttpFrontend() {
  g_frontend = nullptr;
  closing_ = true;
  if (hup_ev_) event_free(hup_ev_);
  event_free(sweep_ev_);
  event_free(resume_ev_);
  event_free(fresh_ev_);
  // Requests libevent orphaned (their connection is gone) are ours to free; the rest go with
  // their connections in evhttp_free, whose close callbacks still find this object intact.
  for (uint32_t p = 0; p < pending_.capacity(); p++) {
    if (!pending_.busy(p) || evhttp_request_get_connection(pending_[p].req)) continue;
    evhttp_request_free(pending_[p].req);
    pending_.release(p);
  }
  if (https_) evhttp_free(https_);
  if (http_) evhttp_free(http_);
}

evhttp* HttpFrontend::make_server(ServerArg* arg) {
  evhttp* h = evhttp_new(base_);
  if (!h) throw std::runtime_error("evhttp_new failed");
  evhttp_set_max_headers_size(h, ev_ssize_t(cfg_.http_max_header_bytes));
  evhttp_set_max_body_size(h, 0);
  evhttp_set_timeout(h, int(cfg_.http_idle_timeout));  // per-read/write stall backstop
  evhttp_set_allowed_methods(h, EVHTTP_REQ_GET);
  evhttp_set_default_content_type(h, "text/plain");
  evhttp_set_gencb(h, &on_request_cb, this);
  evhttp_set_bevcb(h, &on_bev, arg);
  return h;
}
// ---- requests ------------------------------------------------------------------------------

void HttpFrontend::on_request(evhttp_request* req) {
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  auto it = by_evcon_.find(evcon);
  if (it == by_evcon_.end()) {  // not adopted yet (not expected): adopt now, or refuse to hold it
    adopt_fresh();
    it = by_evcon_.find(evcon);
    if (it == by_evcon_.end()) return reply_failure(req, kNone, kTryAgain);
  }
  uint32_t c = it->second;
  const char* uri = evhttp_request_get_uri(req);
  std::string_view path, query;
  split_target(uri ? uri : "", &path, &query);
  Route route = route_of(path);
  if (route == Route::unknown) {
    count(Counter::http_not_found);
    reply(req, c, HTTP_NOTFOUND, body_, encode_failure(body_, sizeof body_, kNotFound));
    return;
  }
  PeerAddress peer;
  const char* why = nullptr;
  if (!resolve_peer(req, c, &peer, &why)) {
    reply_failure(req, c, why);
    return;
  }
  if (route == Route::announce)
    handle_announce(req, c, peer, query);
  else
    handle_scrape(req, c, peer, query);
  path_->flush();
}

// The peer is the connection's address, or for a trusted proxy the address in its header.
bool HttpFrontend::resolve_peer(evhttp_request* req, uint32_t c, PeerAddress* out, const char** why) {
  *out = conns_[c].addr;
  if (!conns_[c].from_proxy) return true;
  const char* value = last_header(req, cfg_.http_real_ip_header);
  ForwardedResult r = value ? peer_from_forwarded(value, cfg_.http_trusted_proxies, out)
                                  : ForwardedResult::missing;
  if (r == ForwardedResult::ok) return true;
  *why = r == ForwardedResult::missing ? missing_header_.c_str() : malformed_header_.c_str();
  return false;
}

// The reason a request the path did not take gets (ok: none).
static const char* refusal(PathStatus st) {
  switch (st) {
    case PathStatus::ok: return nullptr;
    case PathStatus::access_denied: return "info_hash not allowed";
    case PathStatus::tracker_full: return kTrackerFull;
    default: return kTryAgain;  // ring full, too many scrapes in flight
  }
}

void HttpFrontend::handle_announce(evhttp_request* req, uint32_t c, const PeerAddress& peer,
                                   std::string_view query) {
  AnnounceParams a;
  ParseError e = parse_announce(query, &a);
  if (e != ParseError::none) return reply_failure(req, c, error_message(e));
  uint64_t token = 0;
  uint32_t p = start_pending(req, c, shm::RequestKind::announce, &token);
  if (p == kNone) return reply_failure(req, c, kTryAgain);
  pending_[p].compact = a.compact;
  shm::ReplyContext x{};
  fill_ctx(&x, peer, token);
  AnnounceIn in;
  in.info_hash = a.info_hash;
  in.peer_addr = peer.addr;
  in.family = x.family;
  in.peer_port = a.port;
  in.event = a.event;
  in.seeder = a.has_left && a.left == 0;
  in.left = a.has_left ? a.left : UINT64_MAX;
  in.numwant = a.numwant;  // -1 when absent = default; 0 = no peers
  if (const char* why = refusal(path_->announce(in, x))) {
    release_pending(p);
    return reply_failure(req, c, why);
  }
  count(Counter::http_announce);
}

void HttpFrontend::handle_scrape(evhttp_request* req, uint32_t c, const PeerAddress& peer,
                                 std::string_view query) {
  size_t n = 0;
  ParseError e = parse_scrape(query, hashes_, cfg_.http_max_scrape_hashes, &n);
  if (e != ParseError::none) return reply_failure(req, c, error_message(e));
  uint64_t token = 0;
  uint32_t p = start_pending(req, c, shm::RequestKind::scrape, &token);
  if (p == kNone) return reply_failure(req, c, kTryAgain);
  shm::ReplyContext x{};
  fill_ctx(&x, peer, token);
  // The reply may come before this returns (every hash refused by the access list).
  if (const char* why = refusal(path_->scrape({hashes_[0], uint32_t(n)}, x))) {
    release_pending(p);
    return reply_failure(req, c, why);
  }
  count(Counter::http_scrape);
}

uint32_t HttpFrontend::start_pending(evhttp_request* req, uint32_t c, shm::RequestKind kind, uint64_t* token) {
  uint32_t p = kNone;
  *token = pending_.acquire(now_ms() + kReplyTimeoutMs, &p);
  if (p == kNone) return kNone;
  Pending& q = pending_[p];
  q.req = req;
  q.conn = c;
  q.kind = uint8_t(kind);
  if (c != kNone) {
    conns_[c].inflight = p;
    conns_[c].requested = true;
    conns_.untime(c);  // its deadline restarts when the reply goes out
  }
  return p;
}

void HttpFrontend::release_pending(uint32_t p) {
  Pending& q = pending_[p];
  if (q.conn != kNone && conns_[q.conn].inflight == p) conns_[q.conn].inflight = kNone;
  pending_.release(p);
}

// ---- replies -------------------------------------------------------------------------------

// Sends `body` (a bencoded dictionary) with `code`. The connection's bookkeeping is settled
// before libevent sees the reply, as sending may close the connection on the spot.
void HttpFrontend::reply(evhttp_request* req, uint32_t c, int code, const char* body, size_t n) {
  if (c != kNone && conns_.busy(c)) {
    conns_[c].inflight = kNone;
    conns_.retime(c, now_ms() + idle_ms_);
  }
  evbuffer_add(evhttp_request_get_output_buffer(req), body, n);
  if (draining_) evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
  evhttp_send_reply(req, code, nullptr, nullptr);
}

// BEP 3 failures go out as 200 with a bencoded "failure reason", as clients expect.
void HttpFrontend::reply_failure(evhttp_request* req, uint32_t c, const char* reason) {
  count(Counter::http_failure);
  reply(req, c, HTTP_OK, body_, encode_failure(body_, sizeof body_, reason));
}

// Answers pending request p with `body` and frees its slot.
void HttpFrontend::finish(uint32_t p, const char* body, size_t n) {
  evhttp_request* req = pending_[p].req;
  uint32_t c = pending_[p].conn;
  release_pending(p);
  reply(req, c, HTTP_OK, body, n);
}

void HttpFrontend::on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) {
  uint32_t p = pending_.lookup(ctx.conn);
  if (p == kNone || pending_[p].kind != uint8_t(shm::RequestKind::announce)) return;  // answered, timed out or gone
  if (r.status != PathStatus::ok) {
    count(Counter::http_failure);
    return finish(p, body_, encode_failure(body_, sizeof body_, refusal_text(r.status)));
  }
  AnnounceReply a{};
  a.complete = r.seeders;
  a.incomplete = r.leechers;
  a.downloaded = r.completed;
  a.interval = r.interval;
  a.min_interval = r.interval / 2;
  a.warning = r.warning;
  if (r.family == 6) {  // BEP 7: IPv6 askers get IPv6 peers in peers6
    a.peers6 = r.peers;
    a.n6 = r.peer_count;
  } else {  // BEP 23
    a.peers4 = r.peers;
    a.n4 = r.peer_count;
  }
  a.compact = pending_[p].compact;
  size_t len = encode_announce(body_, sizeof body_, a);
  if (len == 0) len = encode_failure(body_, sizeof body_, "internal error: reply too large");
  finish(p, body_, len);
}

void HttpFrontend::on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) {
  uint32_t p = pending_.lookup(ctx.conn);
  if (p == kNone || pending_[p].kind != uint8_t(shm::RequestKind::scrape)) return;
  for (uint32_t h = 0; h < r.count; h++) {
    ScrapeEntry& e = entries_[h];
    std::memcpy(e.info_hash, r.info_hashes[h], sizeof e.info_hash);
    e.complete = r.counts[h].seeders;
    e.downloaded = r.counts[h].completed;
    e.incomplete = r.counts[h].leechers;
  }
  finish(p, body_, encode_scrape(body_, sizeof body_, entries_, r.count));
}
}  // namespace http

std::unique_ptr<ProtocolFrontend> make_http_frontend(event_base* base, const conf::Config& cfg,
                                                     RequestPath* path, shm::CounterBlock* counters,
                                                     const std::vector<TcpListener>& listeners,
                                                     uint32_t generation) {
  return std::make_unique<http::HttpFrontend>(base, cfg, path, counters, listeners, generation);
}

}  // namespace shoal::worker
