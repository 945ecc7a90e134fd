// worker/udp_frontend.cpp — see udp_frontend.hpp. Runs in a socket worker.
#include "worker/udp_frontend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "worker/connection_id.hpp"
#include "worker/source_limiter.hpp"
#include "worker/udp_codec.hpp"
#include "worker/udp_io.hpp"

namespace shoal::worker {
namespace {

constexpr int kMaxRecvRounds = 8;  // recvmmsg batches per readable event (fairness)
// Peer lists of at least this many bytes (43 IPv4 peers) are sent from the response ring slot;
// shorter ones are copied after the header (A/B, tools/bench/README.md: the default load's
// mostly short replies were slower with two iovecs each).
constexpr size_t kPeersSentInPlace = 256;

using shm::Counter;

// The keys in force at start. The supervisor writes them only at start and on SIGHUP, for a
// moment; a reader that keeps finding the block busy (a supervisor stopped mid-write) gives up
// after about a second and the worker exits as failed to start.
// skew_s: udp.connection_id_skew, used only with a key file (wall-clock buckets shared by nodes).
std::unique_ptr<ConnectionIds> initial_conn_ids(const shm::ConnIdKeys* k, uint64_t* seq, uint32_t skew_s) {
  shm::ConnIdKeySet set;
  for (int round = 0; round < 1000; round++) {
    if (shm::read_conn_id_keys(k, &set, seq)) return std::make_unique<ConnectionIds>(set.keys, set.count, skew_s);
    struct timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  throw std::runtime_error("cannot read the connection-id keys from the control segment");
}

// Source address of a datagram in the forms the rest of the front-end needs.
struct Source {
  int family;        // AF_INET / AF_INET6 after canonicalisation
  uint8_t addr[16];  // 4 or 16 bytes used, network order
  uint16_t port_be;
};

class UdpFrontend final : public ProtocolFrontend {
 public:
  UdpFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, AccessCheck* access,
              shm::CounterBlock* counters, const std::vector<UdpSocket>& sockets, const shm::ConnIdKeys* conn_id_keys,
              uint64_t clock_base_ns)
      : cfg_(cfg), path_(path), access_(access), counters_(counters), sockets_(sockets), clock_base_ns_(clock_base_ns),
        keys_(conn_id_keys), wall_clock_(!cfg.udp_connection_id_key_file.empty()),
        conn_ids_(initial_conn_ids(conn_id_keys, &keys_seq_, wall_clock_ ? cfg.udp_connection_id_skew : 0)), recv_(std::make_unique<RecvBatch>()),
        limiter_(cfg.udp_per_source_rate, cfg.udp_per_source_burst) {
    for (const UdpSocket& s : sockets_) {
      sends_.push_back(std::make_unique<SendQueue>(s.fd));
      events_.push_back(event_new(base, s.fd, EV_READ | EV_PERSIST, &on_readable, this));
      event_add(events_.back(), nullptr);
    }
  }
  ~UdpFrontend() override {
    for (event* e : events_) event_free(e);
  }

  shm::Protocol protocol() const override { return shm::Protocol::udp; }
  PeerLimits peer_limits() const override {
    return {uint16_t(udp::max_udp_peers(AF_INET)), uint16_t(udp::max_udp_peers(AF_INET6))};
  }
  // Rolling restart: stop reading; nothing is held per request, so it is idle at once.
  void drain() override {
    for (event* e : events_) event_del(e);
  }

  // ResponseSink (UDP): encode into the send queue of the socket the request came in on. Long
  // peer lists are sent from the response ring slot, not copied: RequestPath::drain_responses()
  // releases the slots only after after_responses(), which sends everything queued.
  void on_announce(const shm::ReplyContext& c, const AnnounceResult& r) override {
    if (c.socket_index >= sends_.size()) return;
    uint8_t* out = sends_[c.socket_index]->next();
    if (r.status != PathStatus::ok) {
      size_t n = udp::encode_error(out, kUdpSendBytes, c.transaction, refusal_text(r.status));
      shm::count(counters_, Counter::udp_error_sent);
      return push_to(c, n);
    }
    size_t n = udp::encode_announce_header(out, c.transaction, r.interval, r.leechers, r.seeders);
    size_t peer_bytes = std::min(size_t(r.peer_count) * (r.family == 6 ? 18 : 6), kUdpSendBytes - n);
    if (peer_bytes >= kPeersSentInPlace) return push_to(c, n, r.peers, peer_bytes);
    std::memcpy(out + n, r.peers, peer_bytes);  // a short copy costs less than a second iovec
    push_to(c, n + peer_bytes);
  }
  void on_scrape(const shm::ReplyContext& c, const ScrapeResult& r) override {
    if (c.socket_index >= sends_.size()) return;
    uint8_t* out = sends_[c.socket_index]->next();
    size_t n = udp::encode_scrape_header(out, c.transaction);
    for (uint32_t h = 0; h < r.count; h++)
      n += udp::encode_scrape_entry(out + n, r.counts[h].seeders, r.counts[h].completed, r.counts[h].leechers);
    push_to(c, n);
  }
  // One sendmmsg per socket for the batch.
  void after_responses() override { flush_all(); }

 private:
  // ---- incoming datagrams ----
  void on_socket(size_t sock) {
    for (int round = 0; round < kMaxRecvRounds; round++) {
      size_t n = recv_->receive(sockets_[sock].fd);
      if (n == 0) break;
      // Connection ids: wall-clock seconds when nodes share a key file (their buckets must
      // agree), else seconds since the segment clock base (monotonic, survives clock steps).
      now_s_ = wall_clock_ ? uint32_t(time(nullptr)) : shm::seconds_since(clock_base_ns_);
      if (shm::conn_id_keys_seq(keys_) != keys_seq_) refresh_keys();
      if (limiter_.enabled()) now_ms_ = shm::monotonic_ns() / 1000000ull;
      access_->begin_batch();  // one access list for the whole batch, and the ack
      shm::count(counters_, Counter::udp_received, n);
      for (size_t i = 0; i < n; i++) handle_datagram(sock, i);
      if (n < kUdpBatch) break;
    }
    // One publish (one eventfd write) for everything read here, not one per recvmmsg: on a CPU
    // shared with the swarm worker each wake-up is a context switch, and the swarm worker would
    // run as soon as the first part was published. Replies this worker wrote itself (connect,
    // errors) wait for the swarm workers' answers to these requests when there are any:
    // drain_responses() sends them all together.
    if (!path_->publish()) flush_all();
  }

  void handle_datagram(size_t sock, size_t i) {
    Source src;
    if (!source_of(recv_->source(i), &src)) return;
    if (src.port_be == 0) {
      shm::count(counters_, Counter::udp_source_port_zero);
      return;
    }
    if (limiter_.enabled() && !limiter_.allow(src.family == AF_INET ? 4 : 6, src.addr, now_ms_)) {
      shm::count(counters_, Counter::udp_rate_limited);  // dropped unanswered: no reply to amplify
      return;
    }
    size_t len = recv_->truncated(i) ? 0 : recv_->length(i);
    udp::ParsedRequest rq = udp::parse_request(recv_->data(i), len, std::min<uint32_t>(cfg_.max_scrape_hashes, kMaxScrapeHashes));
    if (!rq.has_transaction) {
      shm::count(counters_, Counter::udp_malformed);
      return;
    }
    if (rq.action == udp::Action::connect) {
      if (rq.error != udp::ParseError::none) {
        shm::count(counters_, Counter::udp_malformed);
        return;
      }
      reply_connect(sock, src, i, rq.transaction);
      return;
    }
    // Everything else must carry a connection id we issued to this address: no reply at all
    // otherwise, so the tracker cannot be used to reflect traffic at a spoofed source.
    if (!conn_ids_->valid(rq.connection_id, src.family, src.addr, now_s_)) {
      shm::count(counters_, Counter::udp_bad_connection_id);
      return;
    }
    if (rq.error != udp::ParseError::none) {
      reply_error(sock, i, rq.transaction, error_text(rq.error));
      shm::count(counters_, Counter::udp_bad_request);
      return;
    }
    if (rq.action == udp::Action::announce)
      route_announce(sock, src, i, rq.announce);
    else if (rq.action == udp::Action::scrape)
      route_scrape(sock, src, i, rq.scrape);
  }

  // The supervisor published new keys (SIGHUP: key file re-read). Takes them when the seqlock
  // gives a consistent copy; otherwise keeps the keys it has and tries again next batch.
  void refresh_keys() {
    shm::ConnIdKeySet set;
    uint64_t seq = 0;
    if (!shm::read_conn_id_keys(keys_, &set, &seq)) return;
    keys_seq_ = seq;
    if (conn_ids_->set_keys(set.keys, set.count))
      LOG_INFO("connection-id keys updated: %u key%s in force", set.count, set.count == 1 ? "" : "s");
    else
      LOG_ERROR("cannot set up the new connection-id keys (OpenSSL); keeping the previous ones");
  }

  static const char* error_text(udp::ParseError e) {
    switch (e) {
      case udp::ParseError::too_short: return "malformed request: too short";
      case udp::ParseError::unknown_action: return "unknown action";
      case udp::ParseError::no_info_hashes: return "scrape without info_hash";
      case udp::ParseError::bad_event: return "invalid event";
      case udp::ParseError::bad_port: return "invalid port";
      default: return "malformed request";
    }
  }

  void reply_connect(size_t sock, const Source& src, size_t i, uint32_t transaction) {
    uint8_t* out = sends_[sock]->next();
    size_t n = udp::encode_connect(out, transaction, conn_ids_->make(src.family, src.addr, now_s_));
    push_reply(sock, n, recv_->source(i));
    shm::count(counters_, Counter::udp_connect);
  }

  void reply_error(size_t sock, size_t i, uint32_t transaction, const char* msg) {
    uint8_t* out = sends_[sock]->next();
    size_t n = udp::encode_error(out, kUdpSendBytes, transaction, msg);
    push_reply(sock, n, recv_->source(i));
    shm::count(counters_, Counter::udp_error_sent);
  }

  void push_reply(size_t sock, size_t n, const sockaddr_storage& to) {
    socklen_t len = to.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    sends_[sock]->push(n, reinterpret_cast<const sockaddr*>(&to), len);
  }

  // Fills the reply context every ring request carries back.
  void fill_ctx(shm::ReplyContext* c, size_t sock, size_t i, uint32_t transaction) {
    const sockaddr_storage& ss = recv_->source(i);
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      std::memcpy(c->addr, &a->sin_addr, 4);
      c->port = a->sin_port;
      c->family = 4;
    } else {
      auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      std::memcpy(c->addr, &a->sin6_addr, 16);
      c->port = a->sin6_port;
      c->family = 6;
    }
    c->protocol = uint8_t(shm::Protocol::udp);
    c->socket_index = uint8_t(sock);
    c->transaction = transaction;
  }

  void route_announce(size_t sock, const Source& src, size_t i, const udp::AnnounceRequest& a) {
    shm::ReplyContext c{};
    fill_ctx(&c, sock, i, a.transaction);
    AnnounceIn in;
    in.info_hash = a.info_hash;
    in.peer_addr = src.addr;  // the packet source; the announced port
    in.family = src.family == AF_INET ? 4 : 6;
    in.peer_port = a.port;
    in.event = shm::Event(a.event);
    in.seeder = a.left == 0;
    in.left = a.left < 0 ? UINT64_MAX : uint64_t(a.left);
    in.numwant = a.numwant;  // BEP 15: -1 (any negative) = default
    PathStatus st = path_->announce(in, c);
    if (st == PathStatus::access_denied) return reply_error(sock, i, a.transaction, "info_hash not allowed");
    if (st != PathStatus::ok) return;  // ring full: no reply, the client retries (counted)
    shm::count(counters_, Counter::udp_announce);
  }

  void route_scrape(size_t sock, const Source&, size_t i, const udp::ScrapeRequest& s) {
    shm::ReplyContext c{};
    fill_ctx(&c, sock, i, s.transaction);
    // Ring full or too many scrapes in flight: no reply, the client retries (counted).
    if (path_->scrape({s.info_hashes, s.count}, c) == PathStatus::ok) shm::count(counters_, Counter::udp_scrape);
  }

  // Queues `n` bytes written at next() of the context's socket, then `tail_len` bytes at `tail`
  // (sent from there; SendQueue::push), addressed to the client.
  void push_to(const shm::ReplyContext& c, size_t n, const uint8_t* tail = nullptr, size_t tail_len = 0) {
    sockaddr_storage ss{};
    socklen_t len;
    if (c.family == 4) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      std::memcpy(&a->sin_addr, c.addr, 4);
      a->sin_port = c.port;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      std::memcpy(&a->sin6_addr, c.addr, 16);
      a->sin6_port = c.port;
      len = sizeof *a;
    }
    sends_[c.socket_index]->push(n, reinterpret_cast<const sockaddr*>(&ss), len, tail, tail_len);
  }

  void flush_all() {
    for (auto& q : sends_) {
      if (!q->pending()) continue;
      size_t sent = 0;
      size_t failed = q->flush(&sent);
      if (sent) shm::count(counters_, Counter::udp_sent, sent);
      if (failed) shm::count(counters_, Counter::udp_send_errors, failed);
    }
  }

  // ---- helpers ----
  static bool source_of(const sockaddr_storage& ss, Source* out) {
    uint8_t raw[16];
    int fam;
    if (ss.ss_family == AF_INET) {
      auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      std::memcpy(raw, &a->sin_addr, 4);
      out->port_be = a->sin_port;
      fam = AF_INET;
    } else if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      std::memcpy(raw, &a->sin6_addr, 16);
      out->port_be = a->sin6_port;
      fam = AF_INET6;
    } else {
      return false;
    }
    out->family = canonical_address(fam, raw, out->addr);
    return true;
  }

  static void on_readable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<UdpFrontend*>(arg);
    for (size_t s = 0; s < self->sockets_.size(); s++)
      if (self->sockets_[s].fd == fd) self->on_socket(s);
  }

  const conf::Config& cfg_;
  RequestPath* path_;
  AccessCheck* access_;  // the access list snapshot of the current batch
  shm::CounterBlock* counters_;
  std::vector<UdpSocket> sockets_;
  uint64_t clock_base_ns_;
  const shm::ConnIdKeys* keys_;  // control segment: the keys in force (seqlock)
  bool wall_clock_;              // udp.connection_id_key_file set: buckets of wall-clock time
  uint64_t keys_seq_ = 0;        // seqlock sequence of the keys conn_ids_ holds
  std::unique_ptr<ConnectionIds> conn_ids_;
  std::unique_ptr<RecvBatch> recv_;
  std::vector<std::unique_ptr<SendQueue>> sends_;
  std::vector<event*> events_;
  SourceLimiter limiter_;  // udp.per_source_rate
  uint32_t now_s_ = 0;     // connection-id time of the batch (see on_socket)
  uint64_t now_ms_ = 0;    // monotonic, for the limiter (read once per batch)
};

}  // namespace

std::unique_ptr<ProtocolFrontend> make_udp_frontend(event_base* base, const conf::Config& cfg, RequestPath* path,
                                                    AccessCheck* access, shm::CounterBlock* counters,
                                                    const std::vector<UdpSocket>& sockets,
                                                    const shm::ConnIdKeys* conn_id_keys, uint64_t clock_base_ns) {
  return std::make_unique<UdpFrontend>(base, cfg, path, access, counters, sockets, conn_id_keys, clock_base_ns);
}

}  // namespace shoal::worker
