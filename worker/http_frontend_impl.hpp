// worker/http_frontend_impl.hpp — internals of the HTTP/HTTPS front-end shared by its two source
// files: http_frontend.cpp (set-up, requests, replies) and http_conn.cpp (connection adoption,
// limits and deadlines, accept errors, TLS reload). Not for use outside those files. Runs in a
// socket worker; touches shared memory only through the RequestPath and its counters.
#pragma once
#include <event2/event.h>
#include <event2/http.h>
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
inline constexpr const char* kTryAgain = "try again";
inline constexpr const char* kTrackerFull = "tracker is full, try again later";
inline constexpr const char* kNotFound = "not found: this tracker serves /announce and /scrape";

inline uint64_t now_ms() { return shm::monotonic_ns() / 1000000ull; }

struct Conn {
  evhttp_connection* evcon = nullptr;
  bufferevent* bev = nullptr;
  uint32_t inflight = kNone;  // pending slot of the request being served
  bool tls = false;
  bool from_proxy = false;  // source is in http.trusted_proxies and a real_ip_header is set
  PeerAddress addr;         // source address, canonical
  uint64_t source = 0;      // source_key() of addr when counted toward the per-source limit, else 0
  uint32_t src_prev = kNone, src_next = kNone;  // the source's connections, oldest first
  uint64_t accepted_ms = 0;  // when it was adopted (monotonic ms)
  bool requested = false;    // it has sent a request (kept-alive since)
};

// The connections of one source counted toward http.max_connections_per_source: how many, and
// a list through Conn::src_prev/src_next in the order they were accepted.
struct SourceConns {
  uint32_t open = 0;
  uint32_t head = kNone, tail = kNone;
};


struct Pending {
  evhttp_request* req = nullptr;
  uint32_t conn = kNone;  // kNone once the connection is gone
  uint8_t kind = 0;       // shm::RequestKind
  bool compact = true;
};

struct Fresh {  // a connection seen by the bevcb, not yet adopted
  bufferevent* bev;
  bool tls;
  bool refuse;
};

class HttpFrontend;
// The process's front-end, for libevent callbacks whose argument is libevent's own (accept
// errors get the evhttp). A socket worker has at most one.
extern HttpFrontend* g_frontend;

struct ServerArg {
  HttpFrontend* self;
  bool tls;
};

// The connection's source address (evhttp keeps it as numeric text), canonical; false if it is
// not an IPv4/IPv6 address.
bool address_of(evhttp_connection* evcon, PeerAddress* out);

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
  // Rolling restart: stop accepting, close keep-alive connections that are between requests,
  // and answer requests in flight with "Connection: close" (http_conn.cpp).
  void drain() override;
  // No connection left open (and so no request in flight).
  bool idle() const override;
  size_t close_idle_connections();

 private:
  evhttp* make_server(ServerArg* arg);
  void count(Counter c, uint64_t n = 1) {
    if (!closing_) shm::count(counters_, c, n);
  }

  // connections
  bufferevent* new_bufferevent(event_base* base, bool tls);
  void adopt_fresh();
  void adopt(const Fresh& f);
  bool make_room(uint64_t source);
  bool is_idle(uint32_t c) const;
  void close_conn(uint32_t c);
  void drop_conn(uint32_t c);

  // requests
  void on_request(evhttp_request* req);
  bool resolve_peer(evhttp_request* req, uint32_t c, PeerAddress* out, const char** why);  // c valid
  void handle_announce(evhttp_request* req, uint32_t c, const PeerAddress& peer, std::string_view query);
  void handle_scrape(evhttp_request* req, uint32_t c, const PeerAddress& peer, std::string_view query);
  uint32_t start_pending(evhttp_request* req, uint32_t c, shm::RequestKind kind, uint64_t* token);
  void release_pending(uint32_t p);

  // replies
  void reply(evhttp_request* req, uint32_t c, int code, const char* body, size_t n);
  void reply_failure(evhttp_request* req, uint32_t c, const char* reason);
  void finish(uint32_t p, const char* body, size_t n);
  void sweep();
  void reload_tls();

  static bufferevent* on_bev(event_base* base, void* arg);
  static void on_request_cb(evhttp_request* req, void* arg) { static_cast<HttpFrontend*>(arg)->on_request(req); }
  static void on_close_cb(evhttp_connection* evcon, void* arg);
  static void on_fresh_cb(evutil_socket_t, short, void* arg) { static_cast<HttpFrontend*>(arg)->adopt_fresh(); }
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
  ServerArg plain_arg_{this, false}, tls_arg_{this, true};
  evhttp* http_ = nullptr;
  evhttp* https_ = nullptr;
  std::vector<evconnlistener*> listeners_;
  event* fresh_ev_ = nullptr;
  event* sweep_ev_ = nullptr;
  event* resume_ev_ = nullptr;
  event* hup_ev_ = nullptr;
  bool accept_paused_ = false;
  bool closing_ = false;
  bool draining_ = false;
  std::vector<Fresh> fresh_;
  TimedPool<Conn> conns_;
  std::unordered_map<evhttp_connection*, uint32_t> by_evcon_;
  std::unordered_map<uint64_t, SourceConns> per_source_;  // by source_key
  SourceLimiter accept_limiter_;  // http.per_source_accept_rate: new connections per source
  PendingTable<Pending> pending_;
  ScrapeEntry entries_[kMaxScrapeHashes];  // a scrape reply being encoded
  std::string missing_header_, malformed_header_;  // failure reasons naming real_ip_header
  uint8_t hashes_[kMaxScrapeHashes][kInfoHashBytes];
  char body_[kBodyBytes];
};

}  // namespace shoal::worker::http
