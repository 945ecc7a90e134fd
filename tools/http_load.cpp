// http_load: HTTP tracker (BEP 3/23/48) load generator for shoal, the HTTP sibling of
// udp_load. It drives a tracker on the LOOPBACK interface only (any target outside
// 127.0.0.0/8 or ::1 is refused) with announces and scrapes over many TCP connections,
// validates every response and reports throughput and latency.
//
//   http_load --target 127.0.0.1:6969 --duration 10 --connections 64
//   http_load --target 127.0.0.1:6969 --no-keep-alive --json
//   http_load --target 127.0.0.1:6969 --pipeline 16 --numwant 30-200
//
// Workload: the same population as udp_load with the same flags and defaults (100k
// torrents, 200k peers, rank-size Pareto popularity of shape 1.16, numwant 30, events
// started/none/completed/stopped, announce:scrape 50:1, 10 hashes per scrape), and the same
// info hashes for the same --seed/--torrents, so `udp_load --dump-hashes` (or
// `http_load --dump-hashes`) is a whitelist for both. Peer p belongs to connection
// p % connections; connection k binds source 127.0.(k/254).(1+k%254), so the tracker sees
// distinct peer addresses. Every connection keeps --pipeline requests in flight (default 1:
// HTTP/1.1 without pipelining) over one epoll loop (edge-triggered, non-blocking sockets).
// A connection writes all its new requests with one send and handles every complete
// response a read brings (pipelined responses arrive in request order, RFC 9112 9.3.2);
// buffers keep their capacity, so a request costs no allocation.
//
// Keep-alive (default): a connection is reused until the server closes it (Debian's
// opentracker closes after every response: that is counted as `server_closes` and the
// connection is reopened, not an error). --no-keep-alive sends "Connection: close", waits
// for the server to close (so TIME_WAIT stays on the server, not on the generator's ports)
// and opens a new connection per request; latency then includes the TCP handshake.
//
// Validation: status 200; Content-Length, chunked or until-EOF bodies; the body must be
// well-formed bencode (nesting <= 8). Announce: a dict with integer `interval` > 0,
// `complete` and `incomplete` >= 0, a `peers` string whose length is a multiple of 6 (and
// `peers6`, if present, of 18), at most the request's numwant peers and at most swarm + 1,
// non-zero ports.
// Scrape: a dict whose `files` dict has at most the requested number of 20-byte keys, each a
// dict with `complete`/`incomplete` >= 0. A `failure reason` counts as an error (the first 5
// distinct ones are printed); anything else that fails counts as invalid. No response
// within 1 s counts as a timeout and the connection is reopened.
//
// A server close with pipelined requests unanswered sends them again on a new connection.
//
// Output: the udp_load line (or --json), after --warmup for --duration s (+ <= 1 s drain),
// with the generator's own CPU per response. Framing and bencode: tools/http_wire.hpp.
// Exit 0 ran, 2 bad arguments/refused target, 3 no response at all.
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/http_wire.hpp"
#include "tools/load_common.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace shoal_load;

constexpr uint64_t kTimeout = kSec;          // unanswered after this: timeout
constexpr uint64_t kRetryDelay = kSec / 100; // after a failed connect
constexpr int kMaxErrorMessages = 5;
enum Kind : uint8_t { kAnnounce = 0, kScrape = 1 };

struct Options : CommonOptions {
  bool keep_alive = true;
  uint64_t connections = 64, pipeline = 1;
  unsigned w_announce = 50, w_scrape = 1;
};

// ------------------------------------------------------------------------- load generator

/// A request sent and not yet answered.
struct Pending {
  uint64_t issued_ns = 0;
  uint8_t kind = kAnnounce, numwant = 0;  // numwant: what this announce asked for (the reply's cap)
};

/// One TCP connection with up to --pipeline requests in flight (a ring, oldest first).
struct Conn {
  int fd = -1;
  bool connecting = false;
  bool draining = false;  // --no-keep-alive: answered, waiting for the server's FIN
  uint64_t opened_ns = 0, drain_ns = 0, retry_at = 0, next_peer = 0;
  uint64_t served = 0;  // responses on the current TCP connection
  std::string out, in;  // capacity kept across requests and reconnects
  size_t out_off = 0;
  std::vector<Pending> q;
  uint32_t q_head = 0, q_len = 0;
  const Pending& oldest() const { return q[q_head]; }
};

struct Stats {
  uint64_t responses[2] = {}, errors = 0, invalid = 0, timeouts = 0, sent = 0, received = 0;
  uint64_t peers_returned = 0, last_counted_ns = 0, tcp_connects = 0, connect_errors = 0;
  uint64_t server_closes = 0;
  uint64_t cpu_start_ns = 0, cpu_end_ns = 0;  // this process's CPU time at warm-up end and at stop
  Histogram latency;
  std::vector<std::string> error_messages;
};

/// The generator: one epoll loop (edge-triggered) over --connections sockets. A connection
/// that has room writes all its new requests with one send; each readable event reads what
/// is there and handles every complete response in it.
class LoadGen {
 public:
  LoadGen(const Options& o, Workload w) : o_(o), wl_(std::move(w)) { rng_.s = o.seed ^ 0x5a5a5a5aull; }
  void run();
  int report() const;

 private:
  void open(size_t k, uint64_t now);
  void drop(Conn& c);
  // n requests in flight were not answered and will be sent again (as a client does when a
  // server closes a keep-alive connection): they do not count as sent.
  void resend_later(uint32_t n) { st_.sent -= n; }
  void issue(size_t k, uint64_t now, uint64_t issued_ns);
  Pending build_request(size_t k, Conn& c, uint64_t issued_ns);
  void on_event(size_t k, uint32_t events, uint64_t now);
  void on_closed(size_t k, uint64_t now);
  bool flush(Conn& c);
  void complete(const Pending& p, std::string_view body, uint64_t now);
  bool valid_announce(std::string_view b, uint64_t cap, uint64_t* npeers, std::string* failure) const;
  bool valid_scrape(std::string_view b, std::string* failure) const;
  void note_error(std::string msg);
  void sweep(uint64_t now);

  const Options& o_;
  Workload wl_;
  Rng rng_{};
  std::vector<Conn> conns_;
  Stats st_;
  int ep_ = -1;
  uint64_t warm_end_ = 0, stop_ns_ = 0, busy_ = 0;
  bool stopping_ = false;
  std::string chunked_;  // a chunked body, decoded
  std::string failure_;  // a `failure reason`
};

/// Starts a non-blocking connect for connection k from its own loopback source address.
void LoadGen::open(size_t k, uint64_t now) {
  Conn& c = conns_[k];
  c.fd = socket(o_.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!o_.v6) {  // the port is chosen at connect() from the 4-tuple, so ports last longer
    setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000000u | uint32_t(k / 254) << 8 | uint32_t(1 + k % 254));
    bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  }
  c.connecting = true, c.served = 0, c.in.clear(), c.out.clear(), c.out_off = 0;
  c.opened_ns = now;
  int r = connect(c.fd, reinterpret_cast<const sockaddr*>(&o_.target), o_.target_len);
  if (r < 0 && errno != EINPROGRESS) {
    ++st_.connect_errors;
    close(c.fd), c.fd = -1, c.retry_at = now + kRetryDelay;
    return;
  }
  epoll_event ev{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.u64 = k}};
  epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
}

/// Closes c; its requests still in flight are abandoned (the caller counts them).
void LoadGen::drop(Conn& c) {
  if (c.fd >= 0) close(c.fd);
  c.fd = -1, c.connecting = false, c.draining = false;
  busy_ -= c.q_len;
  c.q_head = c.q_len = 0;
}

/// Percent-encodes the 20 bytes at h onto s.
void put_hash(std::string& s, const uint8_t* h) {
  static const char kHex[] = "0123456789ABCDEF";
  char buf[60];
  for (int i = 0; i < 20; ++i) buf[3 * i] = '%', buf[3 * i + 1] = kHex[h[i] >> 4], buf[3 * i + 2] = kHex[h[i] & 15];
  s.append(buf, sizeof buf);
}

/// Appends the next request of connection k to c.out (announce state machine as udp_load).
Pending LoadGen::build_request(size_t k, Conn& c, uint64_t issued_ns) {
  uint8_t h[20];
  std::string& s = c.out;
  Pending p;
  p.issued_ns = issued_ns;
  p.kind = rng_.below(o_.w_announce + o_.w_scrape) < o_.w_announce ? kAnnounce : kScrape;
  if (p.kind == kScrape) {
    s += "GET /scrape?";
    for (uint64_t i = 0; i < o_.scrape_hashes; ++i) {
      wl_.info_hash(wl_.peers[rng_.below(o_.peers)].torrent, h);
      s += i ? "&info_hash=" : "info_hash=";
      put_hash(s, h);
    }
  } else {
    uint64_t slice = (o_.peers - k + o_.connections - 1) / o_.connections;
    uint64_t j = c.next_peer++ % slice, pi = k + j * o_.connections;
    Peer& pe = wl_.peers[pi];
    const char* event = "";
    bool left = !pe.seeder;
    double u = rng_.unit();
    if (!pe.started) {
      event = "&event=started", pe.started = true;
    } else if (u < 0.005) {
      event = "&event=stopped", pe.started = false, pe.seeder = rng_.unit() < o_.seeder_ratio;
    } else if (u < 0.015 && !pe.seeder) {
      event = "&event=completed", pe.seeder = true, left = false;
    }
    p.numwant = uint8_t(o_.draw_numwant(rng_));
    wl_.info_hash(pe.torrent, h);
    char tail[160];
    int n = snprintf(tail, sizeof tail,
                     "&peer_id=-SL0100-%012" PRIx64 "&port=%u&uploaded=0&downloaded=0&left=%s%s&numwant=%u&compact=1",
                     uint64_t(pi & 0xffffffffffffull), unsigned(1025 + (o_.v6 ? pi : j) % 64511),
                     left ? "1048576" : "0", event, unsigned(p.numwant));
    s += "GET /announce?info_hash=";
    put_hash(s, h);
    s.append(tail, size_t(n));
  }
  s += " HTTP/1.1\r\nHost: ";
  s += o_.target_text;
  s += o_.keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  return p;
}

/// Writes the rest of c.out; false on a socket error.
bool LoadGen::flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t w = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN || errno == EINTR;
    c.out_off += size_t(w);
  }
  c.out.clear(), c.out_off = 0;
  return true;
}

/// Fills connection k up to --pipeline requests in flight and writes them with one send
/// (opening a connection first if needed: the requests go out once it is connected).
void LoadGen::issue(size_t k, uint64_t now, uint64_t issued_ns) {
  Conn& c = conns_[k];
  if (stopping_) return;
  if (c.fd < 0) { open(k, now); return; }
  if (c.connecting || c.draining) return;
  uint32_t cap = uint32_t(c.q.size());
  while (c.q_len < cap && !(o_.max_requests && st_.sent >= o_.max_requests)) {
    c.q[(c.q_head + c.q_len++) % cap] = build_request(k, c, issued_ns);
    ++busy_, ++st_.sent;
  }
  if (!flush(c)) { ++st_.connect_errors; drop(c); c.retry_at = now + kRetryDelay; }
}

/// Records a tracker's failure text (printable; the first kMaxErrorMessages distinct ones).
void LoadGen::note_error(std::string msg) {
  for (char& ch : msg)
    if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') ch = '?';
  auto& seen = st_.error_messages;
  if (seen.size() < kMaxErrorMessages && std::find(seen.begin(), seen.end(), msg) == seen.end())
    seen.push_back(std::move(msg));
}

/// Validates and counts one complete response body to request p.
void LoadGen::complete(const Pending& p, std::string_view body, uint64_t now) {
  ++st_.received;
  if (now < warm_end_) return;
  st_.last_counted_ns = now;
  failure_.clear();
  uint64_t npeers = 0;
  bool ok = p.kind == kAnnounce ? valid_announce(body, p.numwant ? p.numwant : 200, &npeers, &failure_)
                                : valid_scrape(body, &failure_);
  if (!failure_.empty()) {
    ++st_.errors;
    note_error(failure_);
    return;
  }
  if (!ok) { ++st_.invalid; return; }
  ++st_.responses[p.kind];
  st_.peers_returned += npeers;
  st_.latency.add(now - p.issued_ns);
}

/// Announce body: see the file comment; cap is the request's numwant (200 for 0).
bool LoadGen::valid_announce(std::string_view b, uint64_t cap, uint64_t* npeers, std::string* failure) const {
  const char *p = b.data(), *e = p + b.size();
  if (b.empty() || *p != 'd' || !http::bskip(p, e, 8) || p != e) return false;
  int64_t interval = -1, complete = -1, incomplete = -1;
  std::string_view peers, peers6;
  bool have_peers = false, ok = true;
  http::bdict_each(b.data(), e, [&](std::string_view k, const char* v, const char*) {
    if (k == "failure reason") *failure = *v >= '0' && *v <= '9' ? std::string(http::bstring(v)) : "?";
    else if (k == "interval") interval = http::bint(v);
    else if (k == "complete") complete = http::bint(v);
    else if (k == "incomplete") incomplete = http::bint(v);
    else if (k == "peers") {
      have_peers = true;
      if (*v >= '0' && *v <= '9') peers = http::bstring(v);
      else ok = false;  // a non-compact list although compact=1 was asked
    }
    else if (k == "peers6" && *v >= '0' && *v <= '9') peers6 = http::bstring(v);
  });
  if (!failure->empty()) return false;
  if (!ok || !have_peers || interval <= 0 || complete < 0 || incomplete < 0) return false;
  if (peers.size() % 6 || peers6.size() % 18) return false;
  uint64_t n = peers.size() / 6 + peers6.size() / 18;
  if (n > cap || n > uint64_t(complete + incomplete) + 1) return false;
  for (size_t i = 0; i < peers.size(); i += 6)
    if (peers[i + 4] == 0 && peers[i + 5] == 0) return false;
  for (size_t i = 0; i < peers6.size(); i += 18)
    if (peers6[i + 16] == 0 && peers6[i + 17] == 0) return false;
  *npeers = n;
  return true;
}

/// Scrape body: see the file comment.
bool LoadGen::valid_scrape(std::string_view b, std::string* failure) const {
  const char *p = b.data(), *e = p + b.size();
  if (b.empty() || *p != 'd' || !http::bskip(p, e, 8) || p != e) return false;
  bool ok = true, have_files = false;
  http::bdict_each(b.data(), e, [&](std::string_view k, const char* v, const char* ve) {
    if (k == "failure reason") *failure = *v >= '0' && *v <= '9' ? std::string(http::bstring(v)) : "?";
    if (k != "files") return;
    have_files = true;
    if (*v != 'd') { ok = false; return; }
    uint64_t entries = 0;
    http::bdict_each(v, ve, [&](std::string_view hash, const char* fv, const char* fve) {
      ++entries;
      if (hash.size() != 20 || *fv != 'd') { ok = false; return; }
      int64_t complete = -1, incomplete = -1;
      http::bdict_each(fv, fve, [&](std::string_view fk, const char* x, const char*) {
        if (fk == "complete") complete = http::bint(x);
        else if (fk == "incomplete") incomplete = http::bint(x);
      });
      ok &= complete >= 0 && incomplete >= 0;
    });
    ok &= entries <= o_.scrape_hashes;
  });
  return failure->empty() && ok && have_files;
}

/// The server closed connection k (EOF) with requests unanswered. If it had answered on this
/// connection and no byte of the next response came, it closes after each response (as Debian's
/// opentracker does): a server close, and the requests are sent again on a new connection, as
/// clients do. Otherwise the close cost the oldest request: an error (the rest are sent again).
void LoadGen::on_closed(size_t k, uint64_t now) {
  Conn& c = conns_[k];
  uint32_t lost = 0;
  if (c.q_len && (c.served == 0 || !c.in.empty())) {
    lost = 1, ++st_.received;
    if (c.oldest().issued_ns >= warm_end_) ++st_.errors, note_error("(connection closed)");
  } else {
    st_.server_closes += now >= warm_end_;
  }
  resend_later(c.q_len - lost);
  drop(c), issue(k, now, now);
}

/// Handles epoll events of connection k: connect completion, writes, reads, responses.
void LoadGen::on_event(size_t k, uint32_t events, uint64_t now) {
  Conn& c = conns_[k];
  if (c.fd < 0) return;
  if (c.connecting) {
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err || (events & (EPOLLERR | EPOLLHUP))) {
      st_.connect_errors += now >= warm_end_;
      drop(c), c.retry_at = now + kRetryDelay;
      return;
    }
    if (!(events & EPOLLOUT)) return;
    c.connecting = false;
    st_.tcp_connects += now >= warm_end_;
    issue(k, now, c.opened_ns);  // a fresh connection's requests count from connect()
    return;
  }
  if ((events & EPOLLOUT) && !flush(c)) { drop(c); issue(k, now, now); return; }
  static char buf[65536];
  bool eof = false;
  for (;;) {  // a short read emptied the queue; later data or a FIN raises a new edge
    ssize_t r = recv(c.fd, buf, sizeof buf, 0);
    if (r > 0) {
      c.in.append(buf, size_t(r));
      if (size_t(r) < sizeof buf) break;
      continue;
    }
    if (r == 0 || (errno != EAGAIN && errno != EINTR)) eof = true;
    break;
  }
  size_t off = 0;
  bool server_close = false;
  while (c.q_len && off < c.in.size() && !server_close) {
    http::Frame f;
    int pr = http::parse_response(c.in, off, eof, &chunked_, &f);
    if (pr < 0) {
      st_.invalid += now >= warm_end_;
      drop(c), issue(k, now, now);
      return;
    }
    if (pr == 0) break;
    complete(c.oldest(), f.body, now);
    c.q_head = (c.q_head + 1) % uint32_t(c.q.size()), --c.q_len, --busy_;
    off = f.next, server_close = f.server_close, ++c.served;
  }
  c.in.erase(0, off);
  if (off && !o_.keep_alive && !eof) {  // let the server close first, as "Connection: close" asks:
    c.draining = true, c.drain_ns = now;  // the TIME_WAIT state then stays on the server's side
    if (recv(c.fd, buf, sizeof buf, 0) == 0) drop(c), issue(k, now, now);  // FIN already queued
    return;
  }
  if (c.draining) {
    if (eof) drop(c), issue(k, now, now);
    return;
  }
  if (off && (server_close || eof || !o_.keep_alive)) {
    if (o_.keep_alive) st_.server_closes += now >= warm_end_;
    resend_later(c.q_len);
    drop(c), issue(k, now, now);
  } else if (eof) {
    on_closed(k, now);
  } else if (off) {
    issue(k, now, now);
  }
}

/// Timeouts (the oldest request or a connect older than kTimeout: every request of the
/// connection sent after warm-up counts) and delayed reconnects.
void LoadGen::sweep(uint64_t now) {
  for (size_t k = 0; k < conns_.size(); ++k) {
    Conn& c = conns_[k];
    if (c.fd >= 0 && c.draining && now - c.drain_ns >= kTimeout) {
      drop(c), issue(k, now, now);  // the server kept the connection open: close it ourselves
    } else if (c.fd >= 0 && c.connecting && now - c.opened_ns >= kTimeout) {
      st_.timeouts += c.opened_ns >= warm_end_;
      drop(c), issue(k, now, now);
    } else if (c.fd >= 0 && c.q_len && now - c.oldest().issued_ns >= kTimeout) {
      for (uint32_t i = 0; i < c.q_len; ++i) st_.timeouts += c.q[(c.q_head + i) % c.q.size()].issued_ns >= warm_end_;
      drop(c), issue(k, now, now);
    } else if (c.fd < 0 && now >= c.retry_at) {
      issue(k, now, now);
    }
  }
}

/// Main loop: every connection keeps --pipeline requests in flight until the end of the run.
void LoadGen::run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  const uint64_t start = now_ns();
  warm_end_ = start + uint64_t(o_.warmup * 1e9);
  const uint64_t stop_at = warm_end_ + uint64_t(o_.duration * 1e9);
  conns_.resize(o_.connections);
  for (Conn& c : conns_) c.q.resize(o_.pipeline);
  for (size_t k = 0; k < conns_.size(); ++k) issue(k, start, start);
  uint64_t last_sweep = start;
  bool measuring = false;
  epoll_event evs[512];
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= warm_end_) measuring = true, st_.cpu_start_ns = cpu_ns();
    if (!stopping_ && (now >= stop_at || (o_.max_requests && st_.sent >= o_.max_requests)))
      stopping_ = true, stop_ns_ = now, st_.cpu_end_ns = cpu_ns();
    if (stopping_ && (busy_ == 0 || now >= stop_ns_ + kSec)) break;
    int n = epoll_wait(ep_, evs, 512, 1);
    now = now_ns();
    for (int i = 0; i < n; ++i) on_event(size_t(evs[i].data.u64), evs[i].events, now);
    if (now - last_sweep >= kSec / 100) last_sweep = now, sweep(now);
  }
  for (Conn& c : conns_) drop(c);
  close(ep_);
}

int LoadGen::report() const {
  uint64_t end = std::max(stop_ns_, st_.last_counted_ns);
  double secs = end > warm_end_ ? double(end - warm_end_) / 1e9 : 0;
  auto rate = [&](uint64_t n) { return secs > 0 ? double(n) / secs : 0.0; };
  const uint64_t* r = st_.responses;
  double total = rate(r[0] + r[1]), ppa = r[kAnnounce] ? double(st_.peers_returned) / double(r[kAnnounce]) : 0;
  double p50 = st_.latency.quantile_us(0.5), p99 = st_.latency.quantile_us(0.99), p999 = st_.latency.quantile_us(0.999);
  // The generator's own CPU over warm-up end .. stop: share of one CPU, and per response.
  double cpu_window = stop_ns_ > warm_end_ ? double(stop_ns_ - warm_end_) : 0;
  double cpu_share = cpu_window > 0 ? double(st_.cpu_end_ns - st_.cpu_start_ns) / cpu_window : 0;
  double us_per_resp = total > 0 ? cpu_share * 1e6 / total : 0;
  if (o_.json) {
    printf("{\"responses_per_s\":%.1f,\"announce_per_s\":%.1f,\"scrape_per_s\":%.1f,\"tcp_connects_per_s\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"errors\":%" PRIu64 ",\"invalid\":%" PRIu64
           ",\"timeouts\":%" PRIu64 ",\"late\":0,\"peers_per_announce\":%.2f,\"requests_sent\":%" PRIu64
           ",\"responses\":{\"announce\":%" PRIu64 ",\"scrape\":%" PRIu64 "},\"tcp_connects\":%" PRIu64
           ",\"connect_errors\":%" PRIu64 ",\"server_closes\":%" PRIu64 ",\"keep_alive\":%s,\"pipeline\":%" PRIu64
           ",\"measured_s\":%.3f,\"gen_cpu_share\":%.3f,\"gen_cpu_us_per_response\":%.3f,\"error_messages\":[",
           total, rate(r[kAnnounce]), rate(r[kScrape]), rate(st_.tcp_connects), p50, p99, p999, st_.errors, st_.invalid,
           st_.timeouts, ppa, st_.sent, r[kAnnounce], r[kScrape], st_.tcp_connects, st_.connect_errors,
           st_.server_closes, o_.keep_alive ? "true" : "false", o_.pipeline, secs, cpu_share, us_per_resp);
    for (size_t i = 0; i < st_.error_messages.size(); ++i)
      printf("%s\"%s\"", i ? "," : "", st_.error_messages[i].c_str());
    printf("]}\n");
  } else {
    for (const std::string& m : st_.error_messages) fprintf(stderr, "http_load: tracker failure: %s\n", m.c_str());
    printf("http_load: %.0f responses/s (announce %.0f/s, scrape %.0f/s) p50 %.1f p99 %.1f p999 %.1f errors %" PRIu64
           " invalid %" PRIu64 " timeouts %" PRIu64 " peers/announce %.2f tcp connects/s %.0f server closes %" PRIu64
           " connect errors %" PRIu64 " generator CPU %.0f%% (%.2f us/response)\n",
           total, rate(r[kAnnounce]), rate(r[kScrape]), p50, p99, p999, st_.errors, st_.invalid, st_.timeouts, ppa,
           rate(st_.tcp_connects), st_.server_closes, st_.connect_errors, cpu_share * 100, us_per_resp);
  }
  fflush(stdout);
  if (st_.received == 0) {
    fprintf(stderr, "http_load: no response at all (is the tracker running?)\n");
    return 3;
  }
  return 0;
}

const char kUsage[] =
    "usage: http_load --target HOST:PORT [options]   (loopback targets only)\n"
    "  --target A:P         127.x.x.x:PORT or [::1]:PORT (anything else is refused)\n"
    "  --duration S         measured seconds (default 10)\n"
    "  --warmup S           seconds excluded from stats (default 2)\n"
    "  --connections N      TCP connections (default 64)\n"
    "  --pipeline N         requests in flight per connection, written together (HTTP/1.1\n"
    "                       pipelining; default 1, max 256; needs keep-alive)\n"
    "  --no-keep-alive      a new connection per request (\"Connection: close\")\n"
    "  --torrents N         torrents (default 100000)\n"
    "  --peers N            simulated peers (default 200000)\n"
    "  --pareto-shape X     popularity: P(torrent i) ~ (i+1)^(-1/X) (default 1.16)\n"
    "  --numwant N|LO-HI    peers wanted per announce, 0..200 (default 30); a range\n"
    "                       draws each announce's numwant uniformly from LO..HI\n"
    "  --mix A:S            announce:scrape weights (default 50:1)\n"
    "  --scrape-hashes N    info hashes per scrape, 1..74 (default 10)\n"
    "  --seeder-ratio X     initial share of seeders (default 0.25)\n"
    "  --seed N             RNG seed (default 1; same hashes as udp_load)\n"
    "  --cpu N              pin to CPU N\n"
    "  --max-requests N     stop sending after N requests in total\n"
    "  --json               print a JSON object instead of the text line\n"
    "  --dump-hashes        print the torrents' info hashes (hex, one a line) and exit\n"
    "  --help               this text\n";

/// Parses the command line into o. Returns -1 to run, otherwise an exit code.
int parse_args(int argc, char** argv, Options* o) {
  int rc = shoal_load::parse_args(
      argc, argv, o, "http_load", kUsage,
      {{"connections", 1, nullptr, 'C'}, {"no-keep-alive", 0, nullptr, 'K'}, {"mix", 1, nullptr, 'm'},
       {"pipeline", 1, nullptr, 'L'}},
      [o](int c, const char* arg) {
        switch (c) {
          case 'L': return parse_u64(arg, 1, 256, &o->pipeline) ? 1 : 0;
          case 'C': return parse_u64(arg, 1, 60000, &o->connections) ? 1 : 0;
          case 'K': o->keep_alive = false; return 1;
          case 'm': {
            int used = -1;
            return sscanf(arg, "%u:%u%n", &o->w_announce, &o->w_scrape, &used) == 2 && used == int(strlen(arg)) &&
                           o->w_announce + o->w_scrape > 0 && o->w_announce <= 1000000 && o->w_scrape <= 1000000
                       ? 1
                       : 0;
          }
          default: return -1;
        }
      });
  if (rc >= 0) return rc;
  if (o->peers < o->connections) { fprintf(stderr, "http_load: --peers must be >= --connections\n"); return 2; }
  if (o->pipeline > 1 && !o->keep_alive) { fprintf(stderr, "http_load: --pipeline needs keep-alive\n"); return 2; }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = parse_args(argc, argv, &o); rc >= 0) return rc;
  signal(SIGPIPE, SIG_IGN);
  Rng rng{o.seed};
  if (int rc = shoal_load::start_common(o, rng, "http_load"); rc >= 0) return rc;
  LoadGen gen(o, build_workload(o, rng));
  gen.run();
  return gen.report();
}
