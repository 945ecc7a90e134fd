// worker/http_frontend.cpp — see http_frontend.hpp. Set-up (listeners for plain HTTP and HTTPS
// sharing one connection table, one table of requests in flight and one counter block), request
// handling and replies; connections and their I/O live in http_conn.cpp. Runs in a socket
// worker. Framing is the http_parser library's (worker/http_request.hpp) on each connection's
// bufferevent (plain, or bufferevent_openssl for HTTPS): every complete request in the input is
// parsed in one pass, up to kMaxPipeline in flight per connection, and their replies go out in
// request order, each appended to the output as soon as every earlier one is there, so the
// replies of a pipelined batch leave with one write. Every request in flight is answered within
// kReplyTimeoutMs ("try again").
#include "worker/http_frontend.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

#include "shm/control_segment.hpp"
#include "supervisor/log.hpp"
#include "worker/http_frontend_impl.hpp"

namespace shoal::worker {
namespace http {
namespace {

void fill_ctx(shm::ReplyContext* x, const PeerAddress& peer, uint64_t token) {
  std::memcpy(x->addr, peer.addr, peer.family == AF_INET ? 4 : 16);
  x->family = peer.family == AF_INET ? 4 : 6;
  x->protocol = uint8_t(shm::Protocol::http);
  x->conn = token;
}

const char* status_text(uint16_t status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    case 501: return "Not Implemented";
    default: return "Error";
  }
}

}  // namespace

HttpFrontend::HttpFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, shm::CounterBlock* counters,
                           const std::vector<TcpListener>& listeners, uint32_t generation)
    : base_(base), cfg_(cfg), path_(path), counters_(counters), idle_ms_(uint64_t(cfg.http_idle_timeout) * 1000),
      first_request_ms_(uint64_t(std::min(cfg.http_first_request_timeout, cfg.http_idle_timeout)) * 1000),
      max_conns_(connection_limit(cfg)), conns_(max_conns_),
      accept_limiter_(cfg.http_per_source_accept_rate, cfg.http_per_source_accept_burst),
      pending_(2 * max_conns_ + 4 * kMaxPipeline, generation << 20) {
  for (uint32_t c = 0; c < conns_.capacity(); c++) {
    conns_[c].owner = this;
    conns_[c].index = c;
  }
  resume_.reserve(64);
  dirty_.reserve(256);
  bool want_tls = std::any_of(listeners.begin(), listeners.end(), [](const TcpListener& l) { return l.tls; });
  if (want_tls) tls_ = std::make_unique<TlsContext>(cfg.https_certificate, cfg.https_private_key, cfg.https_ciphersuites);
  sweep_ev_ = event_new(base, -1, EV_PERSIST, &on_sweep_cb, this);
  resume_ev_ = evtimer_new(base, &on_resume_cb, this);
  event_add(sweep_ev_, &kSweepEvery);
  g_frontend = this;
  for (const TcpListener& l : listeners) {
    // backlog 0: the supervisor's socket already listens; the fd stays with its copy at free.
    evconnlistener* ln = evconnlistener_new(base, &on_accept_cb, this, LEV_OPT_CLOSE_ON_EXEC, 0, l.fd);
    if (!ln) throw std::runtime_error("evconnlistener_new failed for an HTTP listener");
    evconnlistener_set_error_cb(ln, &HttpFrontend::on_accept_error);
    listeners_.push_back(ln);
    if (l.tls) tls_listeners_.push_back(ln);
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
  for (evconnlistener* ln : listeners_) evconnlistener_free(ln);
  for (uint32_t c = 0; c < conns_.capacity(); c++)
    if (conns_.busy(c)) close_conn(c);
}

// ---- requests ------------------------------------------------------------------------------

// Serves every complete request in c's input (up to kMaxPipeline in flight), then drops their
// bytes. An incomplete request stays for the next read; it is parsed again from its start.
void HttpFrontend::serve_input(uint32_t c) {
  Conn& k = conns_[c];
  if (k.scanning || k.closing || !k.bev) return;
  evbuffer* in = bufferevent_get_input(k.bev);
  size_t len = evbuffer_get_length(in);
  if (len == 0) return;
  k.scanning = true;
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  std::string_view header = k.from_proxy ? std::string_view(cfg_.http_real_ip_header) : std::string_view();
  size_t off = 0;
  while (off < len && !k.closing) {
    if (k.queued >= kMaxPipeline) {  // the rest waits for replies (resume_input)
      k.resume = true;
      break;
    }
    HttpRequest r;
    size_t used = 0;
    Scan s = scan_request(data + off, len - off, cfg_.http_max_header_bytes, header, &r, &used);
    if (s == Scan::incomplete) break;
    if (s != Scan::complete) {  // malformed: answered after the requests before it, then closed
      refuse_request(c, s, r.minor);
      off = len;
      break;
    }
    if (!serve(c, r)) {  // no room in the table of requests in flight: later
      k.resume = true;
      break;
    }
    off += used;
  }
  evbuffer_drain(in, off);
  k.scanning = false;
  path_->flush();
}

// Starts request r of connection c; false when it has to wait (no free slot for it while
// earlier requests of c are in flight: its reply could not be kept in order).
bool HttpFrontend::serve(uint32_t c, const HttpRequest& r) {
  uint32_t p = enqueue(c, r);
  if (p == kNone) {
    if (conns_[c].queued != 0) return false;
    count(Counter::http_failure);  // nothing before it: answered at once
    write_reply(c, 200, body_, encode_failure(body_, sizeof body_, kTryAgain), r.keep_alive && !draining_, r.minor);
    return true;
  }
  std::string_view path, query;
  split_target(r.target, &path, &query);
  Route route = route_of(path);
  if (route == Route::unknown) {
    count(Counter::http_not_found);
    complete(p, 404, body_, encode_failure(body_, sizeof body_, kNotFound));
    return true;
  }
  PeerAddress peer;
  const char* why = nullptr;
  if (!resolve_peer(c, r, &peer, &why)) {
    fail(p, why);
    return true;
  }
  if (route == Route::announce)
    handle_announce(p, peer, query);
  else
    handle_scrape(p, peer, query);
  return true;
}

// The peer is the connection's address, or for a trusted proxy the address in its header.
bool HttpFrontend::resolve_peer(uint32_t c, const HttpRequest& r, PeerAddress* out, const char** why) {
  *out = conns_[c].addr;
  if (!conns_[c].from_proxy) return true;
  ForwardedResult f = r.has_header ? peer_from_forwarded(r.header, cfg_.http_trusted_proxies, out)
                                   : ForwardedResult::missing;
  if (f == ForwardedResult::ok) return true;
  *why = f == ForwardedResult::missing ? missing_header_.c_str() : malformed_header_.c_str();
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

void HttpFrontend::handle_announce(uint32_t p, const PeerAddress& peer, std::string_view query) {
  AnnounceParams a;
  ParseError e = parse_announce(query, &a);
  if (e != ParseError::none) return fail(p, error_message(e));
  Pending& q = pending_[p];
  q.kind = uint8_t(shm::RequestKind::announce);
  q.compact = a.compact;
  shm::ReplyContext x{};
  fill_ctx(&x, peer, pending_.token(p));
  AnnounceIn in;
  in.info_hash = a.info_hash;
  in.peer_addr = peer.addr;
  in.family = x.family;
  in.peer_port = a.port;
  in.event = a.event;
  in.seeder = a.has_left && a.left == 0;
  in.left = a.has_left ? a.left : UINT64_MAX;
  in.numwant = a.numwant;  // -1 when absent = default; 0 = no peers
  if (const char* why = refusal(path_->announce(in, x))) return fail(p, why);
  count(Counter::http_announce);
}

void HttpFrontend::handle_scrape(uint32_t p, const PeerAddress& peer, std::string_view query) {
  size_t n = 0;
  ParseError e = parse_scrape(query, hashes_, cfg_.http_max_scrape_hashes, &n);
  if (e != ParseError::none) return fail(p, error_message(e));
  pending_[p].kind = uint8_t(shm::RequestKind::scrape);
  shm::ReplyContext x{};
  fill_ctx(&x, peer, pending_.token(p));
  // The reply may come before this returns (every hash refused by the access list); then p is
  // already answered and the status is ok.
  if (const char* why = refusal(path_->scrape({hashes_[0], uint32_t(n)}, x))) return fail(p, why);
  count(Counter::http_scrape);
}

// Appends a slot for request r to c's requests in flight; kNone when the table is full.
uint32_t HttpFrontend::enqueue(uint32_t c, const HttpRequest& r) {
  uint32_t p = kNone;
  pending_.acquire(now_ms() + kReplyTimeoutMs, &p);
  if (p == kNone) return kNone;
  Pending& q = pending_[p];
  q.conn = c;
  q.keep_alive = r.keep_alive;
  q.minor = r.minor;
  Conn& k = conns_[c];
  if (k.tail != kNone) pending_[k.tail].next = p;
  else k.head = p;
  k.tail = p;
  k.queued++;
  k.requested = true;
  conns_.untime(c);  // its deadline restarts when its last reply goes out
  if (!r.keep_alive) k.closing = true;  // nothing after this request is read
  return p;
}

// ---- replies -------------------------------------------------------------------------------

// Answers request p. Its reply goes out now when every earlier request of its connection has
// been answered (and then the later ones that were ready), else it waits in p.
void HttpFrontend::complete(uint32_t p, uint16_t status, const char* body, size_t n) {
  Pending& q = pending_[p];
  if (q.done) return;
  uint32_t c = q.conn;
  if (conns_[c].head != p) {
    q.done = true;
    q.status = status;
    q.body.assign(body, n);
    pending_.untime(p);
    return;
  }
  Conn& k = conns_[c];
  for (;;) {
    Pending& h = pending_[p];
    uint32_t next = h.next;
    bool last = next == kNone;
    bool keep = h.keep_alive && !(draining_ && last);
    k.head = next;
    if (last) k.tail = kNone;
    k.queued--;
    if (h.done) write_reply(c, h.status, h.body.data(), h.body.size(), keep, h.minor);
    else write_reply(c, status, body, n, keep, h.minor);
    pending_.release(p);
    if (!keep) {  // the rest of the pipeline (none, unless draining) is never answered
      while (k.head != kNone) {
        uint32_t drop = k.head;
        k.head = pending_[drop].next;
        pending_.release(drop);
      }
      k.tail = kNone;
      k.queued = 0;
      k.closing = true;
      break;
    }
    if (last || !pending_[next].done) break;
    p = next;
  }
  if (k.head == kNone && !k.closing) conns_.retime(c, now_ms() + idle_ms_);
  if (k.resume && !k.scanning && !k.closing) {
    k.resume = false;
    resume_.push_back(c);
  }
}

// BEP 3 failures go out as 200 with a bencoded "failure reason", as clients expect.
void HttpFrontend::fail(uint32_t p, const char* reason) {
  count(Counter::http_failure);
  complete(p, 200, body_, encode_failure(body_, sizeof body_, reason));
}

// Appends one response to c's output. Plain text goes out with everything else of this pass in
// one write by flush_output(); TLS output is written by bufferevent_openssl.
void HttpFrontend::write_reply(uint32_t c, uint16_t status, const char* body, size_t n, bool keep_alive,
                               uint8_t minor) {
  char head[192];
  char* w = head;
  auto put = [&w](std::string_view s) {
    std::memcpy(w, s.data(), s.size());
    w += s.size();
  };
  put(minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  w = std::to_chars(w, head + sizeof head, status).ptr;
  put(" ");
  put(status_text(status));
  put("\r\nContent-Type: text/plain\r\nContent-Length: ");
  w = std::to_chars(w, head + sizeof head, n).ptr;
  if (!keep_alive) put("\r\nConnection: close");
  else if (minor == 0) put("\r\nConnection: keep-alive");
  put("\r\n\r\n");
  Conn& k = conns_[c];
  evbuffer* out = bufferevent_get_output(k.bev);
  evbuffer_expand(out, size_t(w - head) + n);
  evbuffer_add(out, head, size_t(w - head));
  evbuffer_add(out, body, n);
  if (!keep_alive) k.closing = true;
  if (!k.tls && !k.dirty) {  // written by flush_output() at the end of this pass
    k.dirty = true;
    dirty_.push_back(c);
  }
}

// A request the parser refused: 400, 413 or 501, after the replies to the requests before it;
// the connection closes after it (its framing can no longer be trusted).
void HttpFrontend::refuse_request(uint32_t c, Scan s, uint8_t minor) {
  uint16_t status = s == Scan::body_too_large ? 413 : s == Scan::not_implemented ? 501 : 400;
  const char* reason = status == 413 ? "request body not accepted" : status == 501 ? "only GET is served" : "bad request";
  HttpRequest r;
  r.keep_alive = false;
  r.minor = minor;
  uint32_t p = enqueue(c, r);
  size_t n = encode_failure(body_, sizeof body_, reason);
  if (p == kNone) {
    if (conns_[c].queued == 0) write_reply(c, status, body_, n, false, minor);
    else conns_[c].closing = true;  // no slot to keep the reply in order: close after the others
    return;
  }
  complete(p, status, body_, n);
}

void HttpFrontend::on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) {
  uint32_t p = pending_.lookup(ctx.conn);
  if (p == kNone || pending_[p].kind != uint8_t(shm::RequestKind::announce)) return;  // answered, timed out or gone
  if (r.status != PathStatus::ok) {
    count(Counter::http_failure);
    return complete(p, 200, body_, encode_failure(body_, sizeof body_, refusal_text(r.status)));
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
  complete(p, 200, body_, len);
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
  complete(p, 200, body_, encode_scrape(body_, sizeof body_, entries_, r.count));
}
}  // namespace http

std::unique_ptr<ProtocolFrontend> make_http_frontend(event_base* base, const conf::Config& cfg,
                                                     RequestPath* path, shm::CounterBlock* counters,
                                                     const std::vector<TcpListener>& listeners,
                                                     uint32_t generation) {
  return std::make_unique<http::HttpFrontend>(base, cfg, path, counters, listeners, generation);
}

}  // namespace shoal::worker
