// udp_load: standalone BEP 15 (UDP tracker) load generator for shoal. It drives
// a tracker on the LOOPBACK interface only (any target outside 127.0.0.0/8 or
// ::1 is refused) with a connect/announce/scrape mix, validates every response
// and reports throughput and latency.
//
//   udp_load --target 127.0.0.1:6969 --duration 10 --warmup 2 --sockets 16
//   udp_load --target [::1]:6969 --json --warmup 0 --max-requests 20000
//
// Workload (shaped like aquatic's load tester, aquatic_udp_load_test):
//  * P peers, each bound for life to one torrent, one socket (p % sockets) and
//    one announce port; each socket walks its peers round-robin. IPv4 sockets
//    bind distinct sources 127.0.0.1 ... 127.0.0.254, 127.0.1.1 ... so the
//    tracker sees distinct peer IPs; IPv6 sockets all use ::1.
//  * Popularity: if P >= T, peer p < T takes torrent p (one peer per torrent);
//    every other peer picks torrent i (0-based rank) with probability
//    proportional to (i+1)^(-1/shape), the rank-size (Zipf) form of a Pareto
//    law of tail index `shape` (1.16 = "80/20"). Defaults: hottest torrent
//    ~3,500 peers, top 1% of torrents ~22% of peers, ~88% have 1 or 2 peers.
//  * Events: first announce `started`, then `none`; 1% `completed` (a leecher
//    becomes a seeder); 0.5% `stopped`, the next one `started` again with
//    seeder/leecher re-rolled by --seeder-ratio. Scrapes ask for
//    --scrape-hashes torrents drawn with the same popularity.
//  * The connection id is cached per socket and refreshed by a connect after
//    60 s or when an error mentions the connection; --mix adds extra connects.
//
// Measures, after --warmup for --duration s (+ <= 1 s drain): responses/s by
// type, send->receive latency (log histogram), tracker errors (action 3),
// invalid responses (action, length, transaction id, counts), timeouts (1 s),
// peers per announce (at most the announce's numwant), and the generator's own CPU
// (share of one CPU, µs per response: what bounds it against a fast tracker).
// Exit 0 ran, 2 bad arguments/refused target, 3 no response.
//
// Cost per request: no allocation and no syscall of its own. Each pass reads every
// socket with recvmmsg and refills all its free slots with one sendmmsg (buffers built
// once). Requests of one kind have one size, so they share a sendmmsg message as UDP GSO
// (UDP_SEGMENT, Linux >= 4.18): over loopback the kernel's send path then runs once per
// message instead of once per datagram, and the tracker's socket still receives one
// datagram per request (it does not enable UDP_GRO). --spin never sleeps and keeps the
// sockets out of epoll, so the tracker's replies wake no one.
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/load_common.hpp"

#include "shm/byte_order.hpp"

namespace {

using shoal_load::build_workload;
using shoal_load::cpu_ns;
using shoal_load::Histogram;
using shoal_load::kSec;
using shoal_load::mix64;
using shoal_load::now_ns;
using shoal_load::parse_double;
using shoal_load::parse_u64;
using shoal_load::Peer;
using shoal_load::Rng;
using shoal_load::Workload;

constexpr uint32_t kGsoSegments = 64;      // datagrams per UDP GSO message (the kernel allows 64+)
constexpr uint32_t kGsoBytes = 60000;       // and bytes (a GSO message is one <= 64 KiB UDP send)
constexpr size_t kMaxRecvBatch = 256;       // datagrams per recvmmsg (at least 16, else --inflight)
constexpr size_t kSendBuf = 1536;           // largest request: scrape of 74 hashes
constexpr size_t kRecvBuf = 4096;           // larger than any valid response (IPv6, 200 peers: 3,620)
constexpr uint64_t kTimeout = kSec;         // unanswered after this: timeout
constexpr uint64_t kConnTtl = 60 * kSec;    // BEP 15: reuse a conn id for 1 min
constexpr uint64_t kProtocolId = 0x41727101980ull;
constexpr int kMaxErrorMessages = 5;
enum Action : uint32_t { kConnect = 0, kAnnounce = 1, kScrape = 2, kError = 3 };
const char* const kKindName[] = {"connect", "announce", "scrape"};

// Population (torrents, peers, pareto, seeder_ratio) is shared with http_load.
struct Options : shoal_load::CommonOptions {
  uint64_t sockets = 16, inflight = 16;
  bool spin = false, gso = true;
  unsigned w_connect = 1, w_announce = 50, w_scrape = 1;
};

using shoal::be::get32;
using shoal::be::get64;
using shoal::be::put16;
using shoal::be::put32;
using shoal::be::put64;

/// One request in flight (or a free slot). The slot index is the low bits of
/// the transaction id, so a response finds its request in O(1).
struct Slot {
  uint64_t sent_ns = 0, conn_used = 0;
  uint32_t tid = 0, late_tid = 0;
  uint8_t kind = 0, numwant = 0;  // numwant: what this announce asked for (the reply's cap)
  bool busy = false, has_late = false;
};

/// One UDP socket with its connection id, request slots and peer slice.
/// `free` is reserved to --inflight entries up front and never grows.
struct Sock {
  int fd = -1;
  uint64_t conn_id = 0, conn_ns = 0;
  bool have_conn = false;
  uint32_t connects_inflight = 0, seq = 0;
  uint64_t next_peer = 0;  // index into this socket's slice of peers
  std::vector<Slot> slots;
  std::vector<uint32_t> free;
};

/// Counters; everything except `received` only counts after warmup.
struct Stats {
  uint64_t responses[3] = {}, errors = 0, invalid = 0, timeouts = 0, late = 0;
  uint64_t sent = 0, received = 0, peers_returned = 0, last_counted_ns = 0;
  uint64_t cpu_start_ns = 0, cpu_end_ns = 0;  // this process's CPU time at warm-up end and at stop
  Histogram latency;
  std::vector<std::string> error_messages;
};

/// The generator. Hot path (run → receive/fill): every socket is read with recvmmsg and
/// refilled with one sendmmsg of all its free slots; the message headers and buffers are built
/// once in the constructor, so a request costs no allocation and no syscall of its own.
/// --spin polls the sockets without epoll (nothing in their wait queues, so the tracker's
/// sends wake no one); otherwise epoll_wait sleeps when a pass found nothing to read.
class LoadGen {
 public:
  LoadGen(const Options& o, Workload w);
  bool open_sockets();
  void run();
  int report() const;

 private:
  int pick_kind(Sock& s, uint64_t now);
  size_t encode(Sock& s, size_t si, int kind, uint8_t* b);
  void fill(Sock& s, uint64_t now);
  int receive(Sock& s);
  void handle(Sock& s, const uint8_t* b, size_t len, bool trunc, uint64_t now);
  bool valid_announce(const uint8_t* b, size_t len, uint64_t cap, uint64_t* npeers) const;
  bool valid_scrape(const uint8_t* b, size_t len) const;
  void on_error(Sock& s, const Slot& sl, const uint8_t* b, size_t len);
  void release(Sock& s, uint32_t idx);
  void expire(uint64_t now, bool all);

  const Options& o_;
  Workload wl_;
  Rng rng_{};
  std::vector<Sock> socks_;
  Stats st_;
  int epfd_ = -1, slot_bits_ = 0;
  uint64_t wtotal_ = 0, busy_ = 0, warm_end_ = 0, stop_ns_ = 0;
  bool stopping_ = false, gso_ = true;
  // sendmmsg: the requests of one fill, grouped by kind (all requests of a kind have the same
  // size: 16, 98, 16 + 20 x --scrape-hashes bytes), kind k's i-th at sbuf_[k][i * kReqSize[k]];
  // sent_slot_[k][i] is its slot. A message carries one request, or with UDP GSO up to
  // kGsoSegments (and kGsoBytes) of one kind (UDP_SEGMENT: the kernel splits it into datagrams of that size).
  size_t req_size_[3] = {};
  std::vector<uint8_t> sbuf_[3];
  std::vector<uint32_t> sent_slot_[3];
  struct MsgSpan { uint8_t kind; uint32_t first, count; };
  std::vector<iovec> siov_;
  std::vector<mmsghdr> smsg_;
  std::vector<MsgSpan> sspan_;
  std::vector<uint8_t> scmsg_;  // one CMSG_SPACE(uint16_t) per message
  // recvmmsg: rbatch_ datagrams per call.
  size_t rbatch_ = 0;
  std::vector<uint8_t> rbuf_;
  std::vector<iovec> riov_;
  std::vector<mmsghdr> rmsg_;
};

LoadGen::LoadGen(const Options& o, Workload w) : o_(o), wl_(std::move(w)) {
  rng_.s = o.seed ^ 0xa5a5a5a5ull;
  gso_ = o.gso;
  while ((1ull << slot_bits_) < o.inflight) ++slot_bits_;
  wtotal_ = o.w_connect + o.w_announce + o.w_scrape;
  size_t n = o.inflight;
  req_size_[kConnect] = 16, req_size_[kAnnounce] = 98, req_size_[kScrape] = 16 + 20 * o.scrape_hashes;
  for (int k = 0; k < 3; ++k) sbuf_[k].resize(n * req_size_[k]), sent_slot_[k].resize(n);
  siov_.resize(n), smsg_.resize(n), sspan_.resize(n), scmsg_.resize(n * CMSG_SPACE(sizeof(uint16_t)));
  rbatch_ = std::clamp<size_t>(n, 16, kMaxRecvBatch);
  rbuf_.resize(rbatch_ * kRecvBuf), riov_.resize(rbatch_), rmsg_.resize(rbatch_);
  for (size_t i = 0; i < rbatch_; ++i) {
    riov_[i] = {&rbuf_[i * kRecvBuf], kRecvBuf};
    rmsg_[i] = {};
    rmsg_[i].msg_hdr.msg_iov = &riov_[i], rmsg_[i].msg_hdr.msg_iovlen = 1;
  }
}

/// Creates, binds (distinct loopback source per IPv4 socket) and connects all
/// sockets, and registers them with epoll (unless --spin). Prints the reason on failure.
bool LoadGen::open_sockets() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  socks_.resize(o_.sockets);
  for (size_t k = 0; k < socks_.size(); ++k) {
    Sock& s = socks_[k];
    s.fd = socket(o_.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) { perror("udp_load: socket"); return false; }
    int rcv = 4 << 20;
    setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    sockaddr_in src4{};  // 127.0.(k / 254).(1 + k % 254): distinct per socket
    src4.sin_family = AF_INET;
    src4.sin_addr.s_addr = htonl(0x7f000000u | uint32_t(k / 254) << 8 | uint32_t(1 + k % 254));
    sockaddr_in6 src6{};
    src6.sin6_family = AF_INET6, src6.sin6_addr = in6addr_loopback;
    bool bound = o_.v6 ? bind(s.fd, reinterpret_cast<sockaddr*>(&src6), sizeof src6) == 0
                       : bind(s.fd, reinterpret_cast<sockaddr*>(&src4), sizeof src4) == 0;
    if (!bound || connect(s.fd, reinterpret_cast<const sockaddr*>(&o_.target), o_.target_len) < 0) {
      perror("udp_load: bind/connect");
      return false;
    }
    epoll_event ev{EPOLLIN, {.u64 = k}};
    if (!o_.spin && epoll_ctl(epfd_, EPOLL_CTL_ADD, s.fd, &ev) < 0) { perror("udp_load: epoll_ctl"); return false; }
    s.slots.resize(o_.inflight);
    s.free.reserve(o_.inflight);
    for (uint32_t i = uint32_t(o_.inflight); i-- > 0;) s.free.push_back(i);
  }
  return true;
}

/// Chooses the next request kind for s, or -1 while it must wait for a
/// connection id. A missing or 60 s old id forces a connect first.
int LoadGen::pick_kind(Sock& s, uint64_t now) {
  if (!s.have_conn || now - s.conn_ns > kConnTtl) {
    if (s.connects_inflight == 0) return kConnect;
    if (!s.have_conn) return -1;
  }
  uint64_t r = rng_.below(wtotal_);
  if (r < o_.w_connect) return kConnect;
  return r < o_.w_connect + o_.w_announce ? kAnnounce : kScrape;
}

/// Encodes a request of `kind` for slot si of s into b; returns its length.
/// Announces advance the socket's next peer and its event state machine.
size_t LoadGen::encode(Sock& s, size_t si, int kind, uint8_t* b) {
  Slot& sl = s.slots[si];
  if (kind == kConnect) {
    put64(b, kProtocolId); put32(b + 8, kConnect); put32(b + 12, sl.tid);
    return 16;
  }
  put64(b, s.conn_id); put32(b + 8, uint32_t(kind)); put32(b + 12, sl.tid);
  if (kind == kScrape) {
    for (uint64_t i = 0; i < o_.scrape_hashes; ++i)
      wl_.info_hash(wl_.peers[rng_.below(o_.peers)].torrent, b + 16 + 20 * i);
    return 16 + 20 * o_.scrape_hashes;
  }
  size_t k = size_t(&s - socks_.data());
  uint64_t slice = (o_.peers - k + o_.sockets - 1) / o_.sockets;
  uint64_t j = s.next_peer++ % slice, p = k + j * o_.sockets;
  Peer& pe = wl_.peers[p];
  uint32_t event = 0;  // none
  uint64_t left = pe.seeder ? 0 : 1 << 20;
  double u = rng_.unit();
  if (!pe.started) {
    event = 2, pe.started = true;
  } else if (u < 0.005) {  // stopped; the next life re-rolls seeder/leecher
    event = 3, pe.started = false, pe.seeder = rng_.unit() < o_.seeder_ratio;
  } else if (u < 0.015 && !pe.seeder) {
    event = 1, pe.seeder = true, left = 0;
  }
  sl.numwant = uint8_t(o_.draw_numwant(rng_));
  wl_.info_hash(pe.torrent, b + 16);
  memcpy(b + 36, "-SL0100-", 8);
  for (int i = 0; i < 12; ++i) b[44 + i] = uint8_t("0123456789abcdef"[(p >> (44 - 4 * i)) & 15]);
  put64(b + 56, 0), put64(b + 64, left), put64(b + 72, 0);  // downloaded, left, uploaded
  put32(b + 80, event), put32(b + 84, 0), put32(b + 88, uint32_t(p));  // event, IP (0), key
  put32(b + 92, sl.numwant);
  put16(b + 96, uint16_t(1025 + (o_.v6 ? p : j) % 64511));
  return 98;
}

/// Fills every free slot of s with a new request and sends them all with one
/// sendmmsg (more only if the kernel takes part); with GSO, same-kind requests share
/// a message. Unsent requests give their slot back.
void LoadGen::fill(Sock& s, uint64_t now) {
  if (stopping_ || s.free.empty()) return;
  uint32_t count[3] = {};
  uint64_t taken = 0;
  while (!s.free.empty()) {
    if (o_.max_requests && st_.sent + taken >= o_.max_requests) break;
    int kind = pick_kind(s, now);
    if (kind < 0) break;
    uint32_t idx = s.free.back();
    s.free.pop_back();
    Slot& sl = s.slots[idx];
    sl.tid = (++s.seq << slot_bits_) | idx;
    sl.kind = uint8_t(kind), sl.busy = true, sl.sent_ns = now, sl.conn_used = s.conn_id;
    if (kind == kConnect) ++s.connects_inflight;
    uint32_t i = count[kind]++;
    encode(s, idx, kind, &sbuf_[kind][i * req_size_[kind]]);
    sent_slot_[kind][i] = idx, ++taken;
  }
  size_t m = 0;  // messages
  for (uint8_t k = 0; k < 3; ++k) {
    const uint32_t per_msg = gso_ ? std::min<uint32_t>(kGsoSegments, uint32_t(kGsoBytes / req_size_[k])) : 1;
    for (uint32_t first = 0; first < count[k]; first += per_msg) {
      uint32_t c = std::min(per_msg, count[k] - first);
      sspan_[m] = {k, first, c};
      siov_[m] = {&sbuf_[k][first * req_size_[k]], c * req_size_[k]};
      msghdr& h = smsg_[m].msg_hdr;
      h = {};
      h.msg_iov = &siov_[m], h.msg_iovlen = 1;
      if (c > 1) {  // UDP GSO: c datagrams of req_size_[k] bytes each
        h.msg_control = &scmsg_[m * CMSG_SPACE(sizeof(uint16_t))];
        h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        cmsghdr* cm = CMSG_FIRSTHDR(&h);
        cm->cmsg_level = SOL_UDP, cm->cmsg_type = UDP_SEGMENT, cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = uint16_t(req_size_[k]);
        memcpy(CMSG_DATA(cm), &seg, sizeof seg);
      }
      ++m;
    }
  }
  size_t done = 0;
  while (done < m) {
    int r = sendmmsg(s.fd, &smsg_[done], unsigned(m - done), 0);
    if (r < 0 && gso_ && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
      fprintf(stderr, "udp_load: UDP GSO refused (%s); sending one datagram per message\n", strerror(errno));
      gso_ = false;  // the unsent requests give their slots back and go out next pass
    }
    if (r <= 0) break;  // a full socket buffer (EAGAIN) or an ICMP error: try again next pass
    done += size_t(r);
  }
  uint64_t sent = taken;
  for (size_t j = done; j < m; ++j)
    for (uint32_t i = 0; i < sspan_[j].count; ++i) release(s, sent_slot_[sspan_[j].kind][sspan_[j].first + i]), --sent;
  st_.sent += sent, busy_ += sent;
  if (o_.max_requests && st_.sent >= o_.max_requests && !stopping_) stopping_ = true, stop_ns_ = now;
}

/// Frees slot idx of s (answered, timed out or never sent).
void LoadGen::release(Sock& s, uint32_t idx) {
  Slot& sl = s.slots[idx];
  if (sl.kind == kConnect && s.connects_inflight) --s.connects_inflight;
  sl.busy = false;
  s.free.push_back(idx);
}

/// Reads every pending datagram of s with recvmmsg and handles each; returns how many.
int LoadGen::receive(Sock& s) {
  int total = 0;
  for (;;) {
    int n = recvmmsg(s.fd, rmsg_.data(), unsigned(rbatch_), MSG_DONTWAIT, nullptr);
    if (n <= 0) return total;  // EAGAIN, or ECONNREFUSED from an ICMP error
    uint64_t now = now_ns();
    for (int i = 0; i < n; ++i)
      handle(s, static_cast<const uint8_t*>(riov_[size_t(i)].iov_base), rmsg_[size_t(i)].msg_len,
             rmsg_[size_t(i)].msg_hdr.msg_flags & MSG_TRUNC, now);
    total += n;
    if (size_t(n) < rbatch_) return total;
  }
}

/// Matches one datagram to its request, validates it and updates counters
/// and the socket's connection id.
void LoadGen::handle(Sock& s, const uint8_t* b, size_t len, bool trunc, uint64_t now) {
  ++st_.received;
  const bool count = now >= warm_end_;
  if (len < 8 || trunc) { st_.invalid += count; return; }
  uint32_t action = get32(b), tid = get32(b + 4), idx = tid & ((1u << slot_bits_) - 1);
  if (idx >= s.slots.size()) { st_.invalid += count; return; }
  Slot& sl = s.slots[idx];
  if (!sl.busy || sl.tid != tid) {
    if (sl.has_late && sl.late_tid == tid) sl.has_late = false, st_.late += count;
    else st_.invalid += count;
    return;
  }
  release(s, idx);
  --busy_;
  uint64_t npeers = 0;
  bool ok = action == sl.kind;
  if (action == kError) {
    if (count) ++st_.errors, st_.last_counted_ns = now;
    on_error(s, sl, b, len);
    return;
  } else if (ok && action == kConnect) {
    ok = len == 16;
    if (ok) s.conn_id = get64(b + 8), s.conn_ns = now, s.have_conn = true;
  } else if (ok && action == kAnnounce) {
    ok = valid_announce(b, len, sl.numwant ? sl.numwant : 200, &npeers);
  } else if (ok) {
    ok = valid_scrape(b, len);
  }
  if (!count) return;
  st_.last_counted_ns = now;
  if (!ok) { ++st_.invalid; return; }
  ++st_.responses[action];
  st_.peers_returned += npeers;
  st_.latency.add(now - sl.sent_ns);
}

/// Announce response: 20-byte header + n peers of 6 (IPv4) or 18 (IPv6)
/// bytes, n <= cap (the request's numwant; 200 for 0), n <= swarm + 1, sane
/// counts and non-zero peer ports.
bool LoadGen::valid_announce(const uint8_t* b, size_t len, uint64_t cap, uint64_t* npeers) const {
  const size_t stride = o_.v6 ? 18 : 6;
  if (len < 20 || (len - 20) % stride) return false;
  uint64_t n = (len - 20) / stride;
  int32_t interval = int32_t(get32(b + 8)), leechers = int32_t(get32(b + 12)), seeders = int32_t(get32(b + 16));
  if (n > cap || interval <= 0 || leechers < 0 || seeders < 0) return false;
  uint64_t swarm = uint64_t(leechers) + uint64_t(seeders);
  if (swarm > 100000000ull || n > swarm + 1) return false;
  for (const uint8_t* port = b + 20 + stride - 2; port < b + len; port += stride)
    if (port[0] == 0 && port[1] == 0) return false;
  *npeers = n;
  return true;
}

/// Scrape response: 8 + 12 bytes per requested hash, non-negative counts.
bool LoadGen::valid_scrape(const uint8_t* b, size_t len) const {
  if (len != 8 + 12 * o_.scrape_hashes) return false;
  for (size_t off = 8; off < len; off += 4)
    if (int32_t(get32(b + off)) < 0) return false;
  return true;
}

/// Records the first few distinct error messages (no allocation once full)
/// and drops the connection id when the message mentions the connection and
/// the request used the current id.
void LoadGen::on_error(Sock& s, const Slot& sl, const uint8_t* b, size_t len) {
  std::string_view msg(reinterpret_cast<const char*>(b + 8), len - 8);
  auto& seen = st_.error_messages;
  if (seen.size() < kMaxErrorMessages && std::find(seen.begin(), seen.end(), msg) == seen.end())
    seen.emplace_back(msg);
  static constexpr std::string_view kWord = "connection";
  auto it = std::search(msg.begin(), msg.end(), kWord.begin(), kWord.end(),
                        [](char c, char w) { return std::tolower(static_cast<unsigned char>(c)) == w; });
  if (it != msg.end() && sl.conn_used == s.conn_id) s.have_conn = false;
}

/// Frees requests older than kTimeout (or all when `all`), counting those
/// sent after warmup as timeouts and remembering the id to spot late replies.
void LoadGen::expire(uint64_t now, bool all) {
  for (Sock& s : socks_)
    for (uint32_t i = 0; i < s.slots.size(); ++i) {
      Slot& sl = s.slots[i];
      if (!sl.busy || (!all && now - sl.sent_ns < kTimeout)) continue;
      st_.timeouts += sl.sent_ns >= warm_end_;
      sl.late_tid = sl.tid, sl.has_late = true;
      release(s, i);
      --busy_;
    }
}

/// Main loop: each pass reads every socket and refills it; a pass that read nothing
/// sleeps in epoll_wait (<= 1 ms) unless --spin. Expires old requests every 10 ms.
/// Stops after warmup + duration (or --max-requests), then drains <= 1 s.
void LoadGen::run() {
  const uint64_t start = now_ns();
  warm_end_ = start + uint64_t(o_.warmup * 1e9);
  const uint64_t stop_at = warm_end_ + uint64_t(o_.duration * 1e9);
  uint64_t last_sweep = start;
  bool measuring = false;
  epoll_event evs[64];
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= warm_end_) measuring = true, st_.cpu_start_ns = cpu_ns();
    if (!stopping_ && now >= stop_at) stopping_ = true, stop_ns_ = now;
    if (stopping_ && !st_.cpu_end_ns) st_.cpu_end_ns = cpu_ns();
    if (stopping_ && (busy_ == 0 || now >= stop_ns_ + kSec)) break;
    int got = 0;
    for (Sock& s : socks_) got += receive(s), fill(s, now);
    if (!got && !o_.spin) epoll_wait(epfd_, evs, 64, 1);  // only to sleep: the next pass reads
    if (now - last_sweep >= kSec / 100) expire(now, false), last_sweep = now;
  }
  if (!st_.cpu_end_ns) st_.cpu_end_ns = cpu_ns();
  expire(now_ns(), true);
  for (Sock& s : socks_) close(s.fd);
  close(epfd_);
}
/// Tracker text made safe for a terminal and a JSON string: non-printable
/// bytes, quotes and backslashes become '?'.
std::string printable(std::string s) {
  for (char& c : s)
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') c = '?';
  return s;
}

/// Prints the summary (text line or JSON); returns the process exit code.
int LoadGen::report() const {
  uint64_t end = std::max(stop_ns_, st_.last_counted_ns);
  double secs = end > warm_end_ ? double(end - warm_end_) / 1e9 : 0;
  auto rate = [&](uint64_t n) { return secs > 0 ? double(n) / secs : 0.0; };
  const uint64_t* r = st_.responses;
  double total = rate(r[0] + r[1] + r[2]);
  double ppa = r[kAnnounce] ? double(st_.peers_returned) / double(r[kAnnounce]) : 0;
  double p50 = st_.latency.quantile_us(0.5), p99 = st_.latency.quantile_us(0.99),
         p999 = st_.latency.quantile_us(0.999);
  // The generator's own CPU over warm-up end .. stop: share of one CPU, and per response.
  double cpu_window = stop_ns_ > warm_end_ ? double(stop_ns_ - warm_end_) : 0;
  double cpu_share = cpu_window > 0 ? double(st_.cpu_end_ns - st_.cpu_start_ns) / cpu_window : 0;
  double us_per_resp = total > 0 ? cpu_share * 1e6 / total : 0;
  if (o_.json) {
    printf("{\"responses_per_s\":%.1f,\"announce_per_s\":%.1f,\"connect_per_s\":%.1f,"
           "\"scrape_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"errors\":%" PRIu64
           ",\"invalid\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64
           ",\"peers_per_announce\":%.2f,\"requests_sent\":%" PRIu64 ",\"responses\":{",
           total, rate(r[kAnnounce]), rate(r[kConnect]), rate(r[kScrape]), p50, p99, p999, st_.errors,
           st_.invalid, st_.timeouts, st_.late, ppa, st_.sent);
    for (int k = 0; k < 3; ++k) printf("%s\"%s\":%" PRIu64, k ? "," : "", kKindName[k], r[k]);
    printf("},\"measured_s\":%.3f,\"gen_cpu_share\":%.3f,\"gen_cpu_us_per_response\":%.3f,\"error_messages\":[",
           secs, cpu_share, us_per_resp);
    for (size_t i = 0; i < st_.error_messages.size(); ++i)
      printf("%s\"%s\"", i ? "," : "", printable(st_.error_messages[i]).c_str());
    printf("]}\n");
  } else {
    for (const std::string& m : st_.error_messages)
      fprintf(stderr, "udp_load: tracker error: %s\n", printable(m).c_str());
    printf("udp_load: %.0f responses/s (announce %.0f/s, connect %.0f/s, scrape %.0f/s) p50 %.1f p99 %.1f "
           "p999 %.1f errors %" PRIu64 " invalid %" PRIu64 " timeouts %" PRIu64 " peers/announce %.2f "
           "generator CPU %.0f%% (%.2f us/response)\n",
           total, rate(r[kAnnounce]), rate(r[kConnect]), rate(r[kScrape]), p50, p99, p999, st_.errors,
           st_.invalid, st_.timeouts, ppa, cpu_share * 100, us_per_resp);
  }
  fflush(stdout);
  if (st_.received == 0) {
    fprintf(stderr, "udp_load: no response at all (is the tracker running?)\n");
    return 3;
  }
  return 0;
}

const char kUsage[] =
    "usage: udp_load --target HOST:PORT [options]   (loopback targets only)\n"
    "  --target A:P         127.x.x.x:PORT or [::1]:PORT (anything else is refused)\n"
    "  --duration S         measured seconds (default 10)\n"
    "  --warmup S           seconds excluded from stats (default 2)\n"
    "  --sockets N          sockets, each with its own 127.0.x.y source (default 16)\n"
    "  --inflight N         requests in flight per socket (default 16, max 1024)\n"
    "  --no-gso             one datagram per sendmmsg message (default: requests of\n"
    "                       one kind share a message, UDP GSO; the tracker still\n"
    "                       receives one datagram per request)\n"
    "  --spin               poll the sockets without ever sleeping (for a generator\n"
    "                       with a CPU of its own; default: epoll_wait when idle)\n"
    "  --torrents N         torrents (default 100000)\n"
    "  --peers N            simulated peers (default 200000)\n"
    "  --pareto-shape X     popularity: P(torrent i) ~ (i+1)^(-1/X) (default 1.16)\n"
    "  --numwant N|LO-HI    peers wanted per announce, 0..200 (default 30); a range\n"
    "                       draws each announce's numwant uniformly from LO..HI\n"
    "  --mix C:A:S          connect:announce:scrape weights (default 1:50:1)\n"
    "  --scrape-hashes N    info hashes per scrape, 1..74 (default 10)\n"
    "  --seeder-ratio X     initial share of seeders (default 0.25)\n"
    "  --seed N             RNG seed (default 1)\n"
    "  --cpu N              pin to CPU N\n"
    "  --max-requests N     stop sending after N requests in total\n"
    "  --json               print a JSON object instead of the text line\n"
    "  --dump-hashes        print the torrents' info hashes (hex, one a line; for a\n"
    "                       tracker whitelist, same --seed/--torrents) and exit\n"
    "  --help               this text\n";

/// Parses the command line into o. Returns -1 to run, otherwise an exit code.
int parse_args(int argc, char** argv, Options* o) {
  int rc = shoal_load::parse_args(
      argc, argv, o, "udp_load", kUsage,
      {{"sockets", 1, nullptr, 's'}, {"inflight", 1, nullptr, 'i'}, {"mix", 1, nullptr, 'm'}, {"spin", 0, nullptr, 'p'},
       {"no-gso", 0, nullptr, 'g'}},
      [o](int c, const char* arg) {
        switch (c) {
          case 's': return parse_u64(arg, 1, 4096, &o->sockets) ? 1 : 0;
          case 'i': return parse_u64(arg, 1, 1024, &o->inflight) ? 1 : 0;
          case 'p': o->spin = true; return 1;
          case 'g': o->gso = false; return 1;
          case 'm': {
            int used = -1;
            return sscanf(arg, "%u:%u:%u%n", &o->w_connect, &o->w_announce, &o->w_scrape, &used) == 3 &&
                           used == int(strlen(arg)) && o->w_connect + o->w_announce + o->w_scrape > 0 &&
                           o->w_connect <= 1000000 && o->w_announce <= 1000000 && o->w_scrape <= 1000000
                       ? 1
                       : 0;
          }
          default: return -1;
        }
      });
  if (rc >= 0) return rc;
  if (o->peers < o->sockets) { fprintf(stderr, "udp_load: --peers must be >= --sockets\n"); return 2; }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (int rc = parse_args(argc, argv, &o); rc >= 0) return rc;
  Rng rng{o.seed};
  if (int rc = shoal_load::start_common(o, rng, "udp_load"); rc >= 0) return rc;
  auto gen = std::make_unique<LoadGen>(o, build_workload(o, rng));
  if (!gen->open_sockets()) return 2;
  gen->run();
  return gen->report();
}
