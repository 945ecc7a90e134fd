// worker/http_frontend_impl.hpp — internals of the HTTP/HTTPS front-end shared by its two source
// files: http_frontend.cpp (set-up, requests, replies) and http_conn.cpp (accept, limits and
// deadlines, connection I/O, TLS reload). Not for use outside those files. Runs in a socket
// worker; touches shared memory only through the RequestPath and its counters.
#pragma once
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.hpp"
#include "shm/clock.hpp"
#include "worker/http_codec.hpp"
#include "worker/http_peer.hpp"
#include "worker/http_pending.hpp"
#include "worker/http_request.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/source_limiter.hpp"
#include "worker/tls.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker::http {

using shm::Counter;

inline constexpr uint64_t kReplyTimeoutMs = 2000;  // no swarm reply by then → "try again"
inline constexpr timeval kSweepEvery{0, 100000};   // deadline checks
inline constexpr uint64_t kDrainFreshMs = 300;     // a drain leaves new connections without a request this long
inline constexpr timeval kAcceptPause{0, 100000};  // after accept() failed (EMFILE, ENOBUFS...)
inline constexpr uint32_t kReservedFds = 128;      // fds besides connections: rings, listeners, logs
inline constexpr size_t kBodyBytes = 16384;        // largest body: 200 dict-form IPv6 peers, ~12.5 KiB
inline constexpr uint32_t kMaxPipeline = 32;       // requests of one connection in flight at once
inline constexpr size_t kReadHighWater = 65536;    // input bytes buffered per connection before reading pauses
inline constexpr const char* kTryAgain = "try again";
inline constexpr const char* kTrackerFull = "tracker is full, try again later";
inline constexpr const char* kNotFound = "not found: this tracker serves /announce and /scrape";

inline uint64_t now_ms() { return shm::monotonic_ns() / 1000000ull; }

class HttpFrontend;

// One accepted connection. Its requests in flight form a FIFO through Pending::next (head =
// the oldest, whose reply goes out first: HTTP/1.1 pipelining answers in request order).
struct Conn {
  HttpFrontend* owner = nullptr;  // the callbacks' way back (bufferevent argument is the Conn)
  uint32_t index = kNone;         // this entry's index in the connection pool
  bufferevent* bev = nullptr;
  uint32_t head = kNone, tail = kNone;  // requests in flight, oldest first
  uint32_t queued = 0;                  // how many
  bool tls = false;
  bool from_proxy = false;  // source is in http.trusted_proxies and a real_ip_header is set
  bool closing = false;     // no more requests are read; close once every reply is written
  bool scanning = false;    // serve_input() is running for it
  bool resume = false;      // on resume_: input waits for room in the pipeline
  bool dirty = false;       // on dirty_: plain-text output appended this pass, not yet written
  bool requested = false;   // it has sent a request (kept-alive since)
  PeerAddress addr;         // source address, canonical
  uint64_t source = 0;      // source_key() of addr when counted toward the per-source limit, else 0
  uint32_t src_prev = kNone, src_next = kNone;  // the source's connections, oldest first
  uint64_t accepted_ms = 0;  // when it was accepted (monotonic ms)
};

// The connections of one source counted toward http.max_connections_per_source: how many, and
// a list through Conn::src_prev/src_next in the order they were accepted.
struct SourceConns {
  uint32_t open = 0;
  uint32_t head = kNone, tail = kNone;
};

// A request of a connection, from its parse until its reply is written.
struct Pending {
  uint32_t conn = kNone;  // the connection (a connection's requests go when it closes)
  uint32_t next = kNone;  // the connection's next request in flight
  uint8_t kind = 0;       // shm::RequestKind, or 0 for a reply made without the swarm
  bool compact = true;
  bool keep_alive = true;  // the request allows another one on the connection after it
  uint8_t minor = 1;       // HTTP/1.<minor> of the request, and so of the reply
  bool done = false;       // the reply is in `body`, waiting for an earlier request's reply
  uint16_t status = 200;
  std::string body;        // only for a reply that is ready before an earlier one
};

// The process's front-end, for libevent callbacks whose argument is libevent's own (accept
// errors get the listener). A socket worker has at most one.
extern HttpFrontend* g_frontend;

// Raises RLIMIT_NOFILE toward http.max_connections + kReservedFds; returns the number of
// connections that fits (logs when that is fewer than configured).
uint32_t connection_limit(const conf::Config& cfg);

class HttpFrontend final : public ProtocolFrontend {
 public:
  HttpFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, shm::CounterBlock* counters,
               const std::vector<TcpListener>& listeners, uint32_t generation);
  ~HttpFrontend() override;
  shm::Protocol protocol() const override { return shm::Protocol::http; }
  // As many peers as a swarm worker's Response holds (tracker.max_numwant caps them first).
  PeerLimits peer_limits() const override {
    return {uint16_t(shm::kMaxResponsePeerBytes / kPeerBytesV4), uint16_t(shm::kMaxResponsePeerBytes / kPeerBytesV6)};
  }
  // ResponseSink: answers the pending request ctx.conn names, if it is still waiting.
  void on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) override;
  void on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) override;
  // After a batch of responses: connections whose pipeline had no room read on.
  void after_responses() override {
    resume_input();
    flush_output();
  }
  // Rolling restart: stop accepting, close keep-alive connections that are between requests,
  // and answer requests in flight with "Connection: close" (http_conn.cpp).
  void drain() override;
  // No connection left open (and so no request in flight).
  bool idle() const override;
  size_t close_idle_connections();

 private:
  void count(Counter c, uint64_t n = 1) {
    if (!closing_) shm::count(counters_, c, n);
  }

  // connections (http_conn.cpp)
  void accept_conn(evutil_socket_t fd, const sockaddr* sa, bool tls);
  bool make_room(uint64_t source);
  bool is_idle(uint32_t c) const;
  void close_conn(uint32_t c);
  void on_read(uint32_t c);
  void on_event(uint32_t c, short what);
  void on_written(uint32_t c);
  void resume_input();
  void flush_output();

  // requests (http_frontend.cpp)
  void serve_input(uint32_t c);
  bool serve(uint32_t c, const HttpRequest& r);
  bool resolve_peer(uint32_t c, const HttpRequest& r, PeerAddress* out, const char** why);
  void handle_announce(uint32_t p, const PeerAddress& peer, std::string_view query);
  void handle_scrape(uint32_t p, const PeerAddress& peer, std::string_view query);
  uint32_t enqueue(uint32_t c, const HttpRequest& r);

  // replies (http_frontend.cpp)
  void complete(uint32_t p, uint16_t status, const char* body, size_t n);
  void fail(uint32_t p, const char* reason);
  void write_reply(uint32_t c, uint16_t status, const char* body, size_t n, bool keep_alive, uint8_t minor);
  void refuse_request(uint32_t c, Scan s, uint8_t minor);
  void sweep();
  void reload_tls();

  static void on_accept_cb(evconnlistener* ln, evutil_socket_t fd, sockaddr* sa, int, void* arg);
  static void on_read_cb(bufferevent*, void* arg) {
    auto* k = static_cast<Conn*>(arg);
    k->owner->on_read(k->index);
  }
  static void on_write_cb(bufferevent*, void* arg) {
    auto* k = static_cast<Conn*>(arg);
    k->owner->on_written(k->index);
  }
  static void on_event_cb(bufferevent*, short what, void* arg) {
    auto* k = static_cast<Conn*>(arg);
    k->owner->on_event(k->index, what);
  }
  static void on_sweep_cb(evutil_socket_t, short, void* arg) { static_cast<HttpFrontend*>(arg)->sweep(); }
  static void on_hup_cb(evutil_socket_t, short, void* arg) { static_cast<HttpFrontend*>(arg)->reload_tls(); }
  static void on_accept_error(evconnlistener*, void* arg);
  static void on_resume_cb(evutil_socket_t, short, void* arg);

  event_base* base_;
  const conf::Config& cfg_;
  RequestPath* path_;
  shm::CounterBlock* counters_;
  const uint64_t idle_ms_;
  const uint64_t first_request_ms_;
  const uint32_t max_conns_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<evconnlistener*> listeners_;
  std::vector<evconnlistener*> tls_listeners_;
  event* sweep_ev_ = nullptr;
  event* resume_ev_ = nullptr;
  event* hup_ev_ = nullptr;
  bool accept_paused_ = false;
  bool closing_ = false;
  bool draining_ = false;
  TimedPool<Conn> conns_;
  std::vector<uint32_t> resume_;  // connections with Conn::resume set
  std::vector<uint32_t> dirty_;   // connections with Conn::dirty set
  std::unordered_map<uint64_t, SourceConns> per_source_;  // by source_key
  SourceLimiter accept_limiter_;  // http.per_source_accept_rate: new connections per source
  PendingTable<Pending> pending_;
  ScrapeEntry entries_[kMaxScrapeHashes];  // a scrape reply being encoded
  std::string missing_header_, malformed_header_;  // failure reasons naming real_ip_header
  uint8_t hashes_[kMaxScrapeHashes][kInfoHashBytes];
  char body_[kBodyBytes];
};

}  // namespace shoal::worker::http
