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

HttpFrontend::HttpFrontend(event_base* base, const conf::Config& cfg, RequestSubmitter* submitter,
                           const std::vector<TcpListener>& listeners, uint32_t generation)
    : base_(base), cfg_(cfg), submitter_(submitter), idle_ms_(uint64_t(cfg.http_idle_timeout) * 1000),
      max_conns_(connection_limit(cfg)), conns_(max_conns_), pending_(2 * max_conns_, generation << 20),
      scrape_bufs_(kScrapeBuffers) {
  for (uint32_t i = 0; i < kScrapeBuffers; i++) free_scrape_.push_back(kScrapeBuffers - 1 - i);
  by_evcon_.reserve(max_conns_);
  bool want_tls = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return l.tls; });
  bool want_plain = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return !l.tls; });
  if (want_tls) tls_ = std::make_unique<TlsContext>(cfg.https_certificate, cfg.https_private_key);
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
  submitter_->flush();
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

void HttpFrontend::handle_announce(evhttp_request* req, uint32_t c, const PeerAddress& peer,
                                   std::string_view query) {
  AnnounceParams a;
  ParseError e = parse_announce(query, &a);
  if (e != ParseError::none) return reply_failure(req, c, error_message(e));
  if (!submitter_->info_hash_allowed(a.info_hash)) return reply_failure(req, c, "info_hash not allowed");
  uint64_t token = 0;
  uint32_t p = start_pending(req, c, shm::RequestKind::announce, &token);
  if (p == kNone) return reply_failure(req, c, kTryAgain);
  pending_[p].compact = a.compact;
  shm::Request r;
  std::memset(&r, 0, sizeof r);
  fill_ctx(&r.ctx, peer, token);
  std::memcpy(r.info_hash, a.info_hash, sizeof r.info_hash);
  std::memcpy(r.peer_addr, peer.addr, peer.family == AF_INET ? 4 : 16);
  r.peer_port = htons(a.port);
  r.family = r.ctx.family;
  r.kind = uint8_t(shm::RequestKind::announce);
  r.event = uint8_t(a.event);
  r.seeder = a.has_left && a.left == 0;
  // numwant absent (-1) or negative = the default; 0 = no peers, only the counts.
  uint32_t want = a.numwant < 0 ? cfg_.default_numwant : uint32_t(a.numwant);
  r.numwant = a.event == shm::Event::stopped ? 0 : uint16_t(std::min(want, cfg_.max_numwant));
  if (!submitter_->submit(r)) {  // ring full (counted by the submitter)
    release_pending(p);
    return reply_failure(req, c, kTryAgain);
  }
  count(Counter::http_announce);
}

void HttpFrontend::handle_scrape(evhttp_request* req, uint32_t c, const PeerAddress& peer,
                                 std::string_view query) {
  size_t n = 0;
  ParseError e = parse_scrape(query, hashes_, cfg_.http_max_scrape_hashes, &n);
  if (e != ParseError::none) return reply_failure(req, c, error_message(e));
  uint32_t partitions = submitter_->partitions();
  uint32_t parts[shm::kMaxSwarmWorkers] = {};
  bool refused[kMaxScrapeHashes] = {};  // access list: answered as unknown torrents (zeros)
  for (size_t h = 0; h < n; h++)
    if (!(refused[h] = !submitter_->info_hash_allowed(hashes_[h]))) parts[partition_of(hashes_[h], partitions)]++;
  for (uint32_t w = 0; w < partitions; w++)  // all parts or none
    if (parts[w] && submitter_->room(w) < parts[w]) return reply_failure(req, c, kTryAgain);
  if (free_scrape_.empty()) return reply_failure(req, c, kTryAgain);
  uint64_t token = 0;
  uint32_t p = start_pending(req, c, shm::RequestKind::scrape, &token);
  if (p == kNone) return reply_failure(req, c, kTryAgain);
  Pending& q = pending_[p];
  q.scrape = free_scrape_.back();
  free_scrape_.pop_back();
  std::memset(scrape_bufs_[q.scrape].seen, 0, sizeof scrape_bufs_[q.scrape].seen);
  q.total = uint16_t(n);
  for (size_t h = 0; h < n; h++) {
    if (refused[h]) {
      ScrapeEntry& z = scrape_bufs_[q.scrape].entries[h];
      std::memcpy(z.info_hash, hashes_[h], sizeof z.info_hash);
      z.complete = z.downloaded = z.incomplete = 0;
      scrape_bufs_[q.scrape].seen[h / 64] |= 1ull << (h % 64);
      q.received++;
      continue;
    }
    shm::Request r;
    std::memset(&r, 0, sizeof r);
    fill_ctx(&r.ctx, peer, token);
    r.ctx.scrape_index = uint16_t(h);
    r.ctx.scrape_total = uint16_t(n);
    std::memcpy(r.info_hash, hashes_[h], sizeof r.info_hash);
    r.family = r.ctx.family;
    r.kind = uint8_t(shm::RequestKind::scrape);
    if (!submitter_->submit(r)) {  // cannot happen after room(); parts sent are ignored later
      release_pending(p);
      return reply_failure(req, c, kTryAgain);
    }
  }
  count(Counter::http_scrape);
  if (q.received == q.total) finish(p, body_, encode_scrape(body_, sizeof body_, scrape_bufs_[q.scrape].entries, q.total));
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
    conns_.untime(c);  // its deadline restarts when the reply goes out
  }
  return p;
}

void HttpFrontend::release_pending(uint32_t p) {
  Pending& q = pending_[p];
  if (q.scrape != kNone) free_scrape_.push_back(q.scrape);
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

void HttpFrontend::on_response(const shm::Response& r) {
  uint32_t p = pending_.lookup(r.ctx.conn);
  if (p == kNone || pending_[p].kind != r.kind) return;  // answered, timed out or gone
  if (r.kind == uint8_t(shm::RequestKind::scrape))
    answer_scrape_part(p, r);
  else
    answer_announce(p, r);
}

void HttpFrontend::answer_announce(uint32_t p, const shm::Response& r) {
  if (r.status != uint8_t(shm::ResponseStatus::ok)) {
    count(Counter::http_failure);
    return finish(p, body_, encode_failure(body_, sizeof body_, kTrackerFull));
  }
  AnnounceReply a{};
  a.complete = r.seeders;
  a.incomplete = r.leechers;
  a.downloaded = r.completed;
  a.interval = cfg_.announce_interval;
  a.min_interval = cfg_.announce_interval / 2;
  size_t entry = r.family == 6 ? kPeerBytesV6 : kPeerBytesV4;
  size_t n = std::min<size_t>(r.peer_count, shm::kMaxResponsePeerBytes / entry);
  if (r.family == 6) {  // BEP 7: IPv6 askers get IPv6 peers in peers6
    a.peers6 = r.peers;
    a.n6 = n;
  } else {  // BEP 23
    a.peers4 = r.peers;
    a.n4 = n;
  }
  a.compact = pending_[p].compact;
  size_t len = encode_announce(body_, sizeof body_, a);
  if (len == 0) len = encode_failure(body_, sizeof body_, "internal error: reply too large");
  finish(p, body_, len);
}

void HttpFrontend::answer_scrape_part(uint32_t p, const shm::Response& r) {
  Pending& q = pending_[p];
  uint16_t i = r.ctx.scrape_index;
  if (q.scrape == kNone || i >= q.total) return;
  ScrapeBuffer& b = scrape_bufs_[q.scrape];
  uint64_t bit = 1ull << (i % 64);
  if (b.seen[i / 64] & bit) return;  // a duplicate after a swarm-worker restart
  b.seen[i / 64] |= bit;
  ScrapeEntry& e = b.entries[i];
  std::memcpy(e.info_hash, r.info_hash, sizeof e.info_hash);
  e.complete = r.seeders;
  e.downloaded = r.completed;
  e.incomplete = r.leechers;
  if (++q.received < q.total) return;
  finish(p, body_, encode_scrape(body_, sizeof body_, b.entries, q.total));
}
}  // namespace http

std::unique_ptr<ProtocolFrontend> make_http_frontend(event_base* base, const conf::Config& cfg,
                                                     RequestSubmitter* submitter,
                                                     const std::vector<TcpListener>& listeners,
                                                     uint32_t generation) {
  return std::make_unique<http::HttpFrontend>(base, cfg, submitter, listeners, generation);
}

}  // namespace shoal::worker
