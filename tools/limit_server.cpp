// limit_server: the smallest possible tracker responder, used by `make bench` as the
// ceiling that no tracker can beat on this machine with these sockets. It keeps no state
// and answers every request with a valid reply, empty unless --full:
//
//  * UDP (BEP 15), recvmmsg of up to 256 datagrams on each --udp socket, one sendmmsg back:
//      connect  -> 16 bytes: action 0, transaction id, a fixed connection id;
//      announce -> 20 bytes: action 1, transaction id, interval 1800, 0 leechers, 0 seeders;
//                  --full: + numwant synthetic peers, 6 bytes each (18 on an IPv6 socket),
//                  leechers + seeders = that count;
//      scrape   -> 8 + 12 bytes per requested info hash, all counts 0.
//    Anything else (too short, bad protocol id, unknown action) is dropped. Replies of one
//    length to one address share a sendmmsg message as UDP GSO (UDP_SEGMENT), so the kernel's
//    send path runs once per message; the generator still receives one datagram each.
//  * HTTP on each --http socket, epoll over non-blocking keep-alive connections: every
//    complete request (pipelined ones too) gets a bencoded reply:
//      GET /scrape...  -> d5:filesdee
//      anything else   -> d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e
//                         (--full: numwant compact peers in `peers`, or `peers6` on IPv6)
//    The connection stays open unless the request says "Connection: close" or is HTTP/1.0
//    without "Connection: keep-alive"; then it is closed after the reply.
//  * --full's numwant: the request's (UDP: BEP 15 field; HTTP: the numwant= parameter),
//    50 when negative or absent, at most 200 (shoald's default_numwant and max_numwant).
//
//   limit_server --udp 127.0.0.1:27100 --http 127.0.0.1:27101 [--udp [::1]:27100] [--cpu 1] [--spin] [--full]
//
// One thread. By default it sleeps in epoll_wait over every socket like a tracker; --spin
// polls the UDP sockets directly (out of epoll, so an arriving datagram wakes no one) and
// epoll for HTTP without sleeping, so no wake-up latency (an IPI in a VM) slows the
// generator down: `make bench` takes the better of the two as the generator's ceiling.
//
// Binds loopback addresses only (127.0.0.0/8, ::1); runs until SIGTERM or SIGINT.
// Exit 0 after a signal, 2 for bad arguments or a socket that cannot be bound.
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "shm/byte_order.hpp"

namespace {

constexpr int kBatch = 256;              // datagrams per recvmmsg/sendmmsg
constexpr size_t kDgram = 2048;          // larger than any BEP 15 request
constexpr size_t kUdpOut = 4096;         // larger than any reply (IPv6, 200 peers: 3,620 bytes)
constexpr uint32_t kGsoSegments = 64;    // datagrams per UDP GSO message
constexpr uint32_t kMaxPeers = 200, kDefaultNumwant = 50;
constexpr size_t kHttpBuf = 16384;       // per-connection read buffer
constexpr uint64_t kProtocolId = 0x41727101980ull;
constexpr uint64_t kConnId = 0x5348'4f41'4c4c'494dull;  // any fixed value is valid here

const std::string kAnnounceBody = "d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e";
const std::string kScrapeBody = "d5:filesdee";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using shoal::be::get32;
using shoal::be::get64;
using shoal::be::put32;

/// Parses "A.B.C.D:PORT" or "[V6]:PORT" into *ss; loopback addresses only.
bool parse_addr(const std::string& t, sockaddr_storage* ss, socklen_t* len) {
  std::string host, port;
  bool v6 = !t.empty() && t[0] == '[';
  if (v6) {
    size_t e = t.find(']');
    if (e == std::string::npos || e + 2 > t.size() || t[e + 1] != ':') return false;
    host = t.substr(1, e - 1), port = t.substr(e + 2);
  } else {
    size_t c = t.rfind(':');
    if (c == std::string::npos) return false;
    host = t.substr(0, c), port = t.substr(c + 1);
  }
  char* end = nullptr;
  long pn = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end || pn < 1 || pn > 65535) return false;
  *ss = {};
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(ss);
    if (inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1 || !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return false;
    a->sin6_family = AF_INET6, a->sin6_port = htons(uint16_t(pn)), *len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(ss);
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1 || (ntohl(a->sin_addr.s_addr) >> 24) != 127) return false;
    a->sin_family = AF_INET, a->sin_port = htons(uint16_t(pn)), *len = sizeof *a;
  }
  return true;
}

/// Creates a non-blocking socket of `type` bound to addr (listening for TCP); -1 on error.
int open_socket(const std::string& addr, int type) {
  sockaddr_storage ss;
  socklen_t len;
  if (!parse_addr(addr, &ss, &len)) {
    fprintf(stderr, "limit_server: bad or non-loopback address '%s'\n", addr.c_str());
    return -1;
  }
  int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, buf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (type == SOCK_DGRAM) {  // same buffers as shoald's defaults, so the kernel side matches
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0 || (type == SOCK_STREAM && listen(fd, 4096) < 0)) {
    fprintf(stderr, "limit_server: bind %s: %s\n", addr.c_str(), strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/// Synthetic peers for --full replies: kMaxPeers compact IPv4 (6 bytes) and IPv6 (18 bytes)
/// entries, 10.0.x.y and fd00::x, ports 6881 + i (never 0), network byte order (BEP 23/7).
struct SyntheticPeers {
  uint8_t v4[kMaxPeers * 6], v6[kMaxPeers * 18];
  SyntheticPeers() {
    memset(v6, 0, sizeof v6);
    for (uint32_t i = 0; i < kMaxPeers; ++i) {
      uint8_t* p4 = v4 + 6 * i;
      uint8_t* p6 = v6 + 18 * i;
      p4[0] = 10, p4[1] = 0, p4[2] = uint8_t(i >> 8), p4[3] = uint8_t(i);
      p6[0] = 0xfd, p6[14] = uint8_t(i >> 8), p6[15] = uint8_t(i);
      uint16_t port = htons(uint16_t(6881 + i));
      memcpy(p4 + 4, &port, 2), memcpy(p6 + 16, &port, 2);
    }
  }
};
const SyntheticPeers kPeers;

/// Peers a --full reply carries for an announce that asked for `numwant` (BEP 15: -1 means
/// the default; shoald's defaults: default_numwant 50, max_numwant 200).
uint32_t full_count(int64_t numwant) {
  return numwant < 0 ? kDefaultNumwant : uint32_t(std::min<int64_t>(numwant, kMaxPeers));
}

/// Builds the reply to one BEP 15 request into out; returns its length, 0 to drop it.
/// `full`: an announce gets full_count(numwant) synthetic peers of the socket's family
/// (v6: 18-byte entries), and leechers + seeders = that count; otherwise none.
size_t udp_reply(const uint8_t* in, size_t len, uint8_t* out, bool full, bool v6) {
  if (len < 16) return 0;
  uint32_t action = get32(in + 8), tid = get32(in + 12);
  if (action == 0) {
    if (get64(in) != kProtocolId) return 0;
    put32(out, 0), put32(out + 4, tid), put32(out + 8, uint32_t(kConnId >> 32)), put32(out + 12, uint32_t(kConnId));
    return 16;
  }
  if (action == 1) {
    if (len < 98) return 0;
    uint32_t n = full ? full_count(int32_t(get32(in + 92))) : 0;
    put32(out, 1), put32(out + 4, tid), put32(out + 8, 1800), put32(out + 12, n - n / 2), put32(out + 16, n / 2);
    size_t bytes = n * (v6 ? 18 : 6);
    memcpy(out + 20, v6 ? kPeers.v6 : kPeers.v4, bytes);
    return 20 + bytes;
  }
  if (action == 2) {
    size_t n = (len - 16) / 20;
    if (n == 0 || n > 74) return 0;
    put32(out, 2), put32(out + 4, tid);
    memset(out + 8, 0, 12 * n);
    return 8 + 12 * n;
  }
  return 0;
}

/// One recvmmsg/sendmmsg round's buffers (static: no allocation per request).
struct UdpBatch {
  uint8_t in[kBatch][kDgram], out[kBatch][kUdpOut];
  sockaddr_storage from[kBatch];
  iovec riov[kBatch], siov[kBatch];
  mmsghdr rm[kBatch], sm[kBatch];
  size_t len[kBatch];
  uint32_t group[kBatch], gcount[kBatch], gstart[kBatch], gfill[kBatch], grep[kBatch];
  alignas(cmsghdr) uint8_t cmsg[kBatch][CMSG_SPACE(sizeof(uint16_t))];
  UdpBatch() {
    for (int i = 0; i < kBatch; ++i) {
      riov[i] = {in[i], kDgram};
      rm[i] = {};
      rm[i].msg_hdr.msg_name = &from[i];
      rm[i].msg_hdr.msg_iov = &riov[i], rm[i].msg_hdr.msg_iovlen = 1;
    }
  }
};
UdpBatch g_udp;

/// Groups the replies of one batch into sendmmsg messages in g_udp.sm; returns how many.
/// With `gso`, replies of one length to one address share a message (UDP GSO, at most
/// kGsoSegments and 60,000 bytes each): the kernel's send path then runs once per message.
int build_messages(int n, bool gso) {
  UdpBatch& b = g_udp;
  uint32_t ng = 0;
  for (int i = 0; i < n; ++i) {
    if (!b.len[i]) continue;
    uint32_t cap = gso ? std::min<uint32_t>(kGsoSegments, uint32_t(60000 / b.len[i])) : 1, g = ng;
    for (uint32_t k = ng; k-- > 0 && gso;) {  // the newest open group with this address and length
      uint32_t r = b.grep[k];
      if (b.len[r] == b.len[i] && b.rm[r].msg_hdr.msg_namelen == b.rm[i].msg_hdr.msg_namelen &&
          memcmp(&b.from[r], &b.from[i], b.rm[i].msg_hdr.msg_namelen) == 0) {
        if (b.gcount[k] < cap) g = k;
        break;
      }
    }
    if (g == ng) b.grep[ng] = uint32_t(i), b.gcount[ng++] = 0;
    b.group[i] = g, ++b.gcount[g];
  }
  for (uint32_t g = 0, at = 0; g < ng; at += b.gcount[g++]) b.gstart[g] = at, b.gfill[g] = 0;
  for (int i = 0; i < n; ++i)
    if (b.len[i]) b.siov[b.gstart[b.group[i]] + b.gfill[b.group[i]]++] = {b.out[i], b.len[i]};
  for (uint32_t g = 0; g < ng; ++g) {
    uint32_t r = b.grep[g];
    msghdr& h = b.sm[g].msg_hdr;
    h = {};
    h.msg_name = &b.from[r], h.msg_namelen = b.rm[r].msg_hdr.msg_namelen;
    h.msg_iov = &b.siov[b.gstart[g]], h.msg_iovlen = b.gcount[g];
    if (b.gcount[g] > 1) {  // UDP GSO: gcount datagrams of len[r] bytes each
      h.msg_control = b.cmsg[g], h.msg_controllen = sizeof b.cmsg[g];
      cmsghdr* cm = CMSG_FIRSTHDR(&h);
      cm->cmsg_level = SOL_UDP, cm->cmsg_type = UDP_SEGMENT, cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = uint16_t(b.len[r]);
      memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
  }
  return int(ng);
}

/// UDP: drains fd with recvmmsg, answers every valid request with one sendmmsg per batch.
/// `gso` is turned off for good if the kernel refuses UDP GSO.
void serve_udp(int fd, bool v6, bool full, bool& gso) {
  UdpBatch& b = g_udp;
  for (;;) {
    for (int i = 0; i < kBatch; ++i) b.rm[i].msg_hdr.msg_namelen = sizeof b.from[i];
    int n = recvmmsg(fd, b.rm, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i) b.len[i] = udp_reply(b.in[i], b.rm[i].msg_len, b.out[i], full, v6);
    int m = build_messages(n, gso);
    for (int done = 0; done < m;) {  // a full send buffer drops the rest, like a tracker would
      int s = sendmmsg(fd, b.sm + done, unsigned(m - done), 0);
      if (s < 0 && gso && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
        fprintf(stderr, "limit_server: UDP GSO refused (%s); one datagram per message\n", strerror(errno));
        gso = false;  // the rest of this batch is dropped; later ones go without GSO
      }
      if (s <= 0) break;
      done += s;
    }
    if (n < kBatch) return;
  }
}

/// One HTTP connection: bytes read but not yet answered, replies not yet written.
struct Conn {
  int fd = -1;
  bool v6 = false;          // accepted on an IPv6 listener: --full peers go in `peers6`
  std::string in, out;
  bool close_after = false;
  bool want_out = false;  // EPOLLOUT registered (only while a reply is pending)
};

/// Whether `hay` starts with `lower` (lower case), compared case-insensitively.
bool starts_ci(std::string_view hay, std::string_view lower) {
  if (hay.size() < lower.size()) return false;
  for (size_t k = 0; k < lower.size(); ++k)
    if (tolower(static_cast<unsigned char>(hay[k])) != lower[k]) return false;
  return true;
}

/// True if a header line of the request head `req` is `name` (lower case, with its colon)
/// and its value contains `value` (lower case), both compared case-insensitively.
bool has_header(std::string_view req, std::string_view name, std::string_view value) {
  for (size_t nl = req.find('\n'); nl != std::string_view::npos; nl = req.find('\n', nl + 1)) {
    std::string_view line = req.substr(nl + 1, req.find('\r', nl + 1) - nl - 1);
    if (!starts_ci(line, name)) continue;
    for (size_t i = name.size(); i < line.size(); ++i)
      if (starts_ci(line.substr(i), value)) return true;
    return false;
  }
  return false;
}

/// numwant of an HTTP announce's request line (-1 if absent or not a number).
int64_t query_numwant(std::string_view line) {
  size_t at = line.find("numwant=");
  if (at == std::string_view::npos || (line[at - 1] != '?' && line[at - 1] != '&')) return -1;
  int64_t v = 0;
  size_t i = at + 8, start = i;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9' && v < 1000000) v = v * 10 + (line[i++] - '0');
  return i == start ? -1 : v;
}

/// Appends one 200 reply with `body` (and "Connection: close" when `close`) to out.
void append_reply(std::string& out, std::string_view body, bool close) {
  char head[128];
  int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
                   body.size(), close ? "Connection: close\r\n" : "");
  out.append(head, size_t(n)).append(body);
}

/// The --full announce body: full_count(numwant) compact peers (BEP 23) in `peers`, or in
/// `peers6` (BEP 7) for an IPv6 connection, and complete + incomplete = that count.
void full_body(std::string& body, int64_t numwant, bool v6) {
  uint32_t n = full_count(numwant);
  size_t bytes = n * (v6 ? 18 : 6);
  char head[128];
  int len = snprintf(head, sizeof head, "d8:completei%ue10:incompletei%ue8:intervali1800e5:peers%s%zu:", n / 2,
                     n - n / 2, v6 ? "0:6:peers6" : "", bytes);
  body.assign(head, size_t(len)).append(reinterpret_cast<const char*>(v6 ? kPeers.v6 : kPeers.v4), bytes).append("e");
}

/// Appends the reply for every complete request in c.in; false when the connection
/// must be closed (a request too large for the buffer).
bool http_answer(Conn& c, bool full) {
  static std::string body;  // --full announce body, rebuilt per request (capacity kept)
  size_t pos = 0;
  for (;;) {
    size_t end = c.in.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    std::string_view req(c.in.data() + pos, end + 4 - pos);
    std::string_view line = req.substr(0, req.find("\r\n"));
    bool scrape = line.starts_with("GET /scrape?");
    bool http10 = line.ends_with("HTTP/1.0");
    bool close = has_header(req, "connection:", "close") || (http10 && !has_header(req, "connection:", "keep-alive"));
    if (scrape) {
      append_reply(c.out, kScrapeBody, close);
    } else if (full) {
      full_body(body, query_numwant(line), c.v6);
      append_reply(c.out, body, close);
    } else {
      append_reply(c.out, kAnnounceBody, close);
    }
    pos = end + 4;
    if (close) { c.close_after = true; break; }
  }
  c.in.erase(0, pos);
  return c.in.size() < kHttpBuf;
}

/// Writes as much of c.out as the socket takes; false on a write error.
bool http_flush(Conn& c) {
  size_t off = 0;
  while (off < c.out.size()) {
    ssize_t w = send(c.fd, c.out.data() + off, c.out.size() - off, MSG_NOSIGNAL);
    if (w < 0) {
      c.out.erase(0, off);
      return errno == EAGAIN || errno == EINTR;
    }
    off += size_t(w);
  }
  c.out.clear();
  return true;
}

/// The server: options, sockets and the loop.
struct Server {
  bool spin = false, full = false, gso = true;
  int ep = -1;
  struct Udp { int fd; bool v6; };
  std::vector<Udp> udp;
  size_t http_listeners = 0;

  // epoll data: a listening socket's fd tagged kListenTag, a UDP fd tagged kUdpTag (+ kV6Tag),
  // or a Conn*.
  static constexpr uint64_t kUdpTag = 1ull << 62, kListenTag = 1ull << 61, kV6Tag = 1ull << 60;

  bool open(const std::vector<std::string>& udp_addrs, const std::vector<std::string>& http_addrs);
  void run();
  void accept_all(int lfd, bool v6);
  void on_conn(Conn* conn);
};

bool Server::open(const std::vector<std::string>& udp_addrs, const std::vector<std::string>& http_addrs) {
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (const std::string& a : udp_addrs) {
    int fd = open_socket(a, SOCK_DGRAM);
    if (fd < 0) return false;
    bool v6 = a[0] == '[';
    udp.push_back({fd, v6});
    // --spin polls UDP sockets directly: out of epoll, a datagram's arrival wakes no one.
    epoll_event ev{EPOLLIN, {.u64 = kUdpTag | (v6 ? kV6Tag : 0) | uint64_t(fd)}};
    if (!spin) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (const std::string& a : http_addrs) {
    int fd = open_socket(a, SOCK_STREAM);
    if (fd < 0) return false;
    epoll_event ev{EPOLLIN, {.u64 = kListenTag | (a[0] == '[' ? kV6Tag : 0) | uint64_t(fd)}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    ++http_listeners;
  }
  return true;
}

void Server::accept_all(int lfd, bool v6) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* conn = new Conn;
    conn->fd = fd, conn->v6 = v6;
    epoll_event ev{EPOLLIN | EPOLLRDHUP, {.ptr = conn}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
}

/// Reads what conn has (one recv unless the buffer filled: epoll is level-triggered), answers
/// complete requests and writes the replies.
void Server::on_conn(Conn* conn) {
  static char buf[kHttpBuf];
  ssize_t r;
  bool alive = true, eof = false;
  while ((r = recv(conn->fd, buf, sizeof buf, 0)) > 0) {
    conn->in.append(buf, size_t(r));
    if (size_t(r) < sizeof buf) break;
  }
  if (r == 0) eof = true;
  else if (r < 0 && errno != EAGAIN && errno != EINTR) alive = false;
  if (alive) alive = http_answer(*conn, full) && http_flush(*conn);
  if (!alive || eof || (conn->close_after && conn->out.empty())) {
    close(conn->fd);  // also removes it from the epoll set
    delete conn;
  } else if (conn->want_out != !conn->out.empty()) {  // EPOLLOUT only while a reply waits
    conn->want_out = !conn->out.empty();
    epoll_event ev{EPOLLIN | EPOLLRDHUP | (conn->want_out ? uint32_t(EPOLLOUT) : 0u), {.ptr = conn}};
    epoll_ctl(ep, EPOLL_CTL_MOD, conn->fd, &ev);
  }
}

/// One thread: --spin polls the UDP sockets and epoll (timeout 0) in turn; otherwise it
/// sleeps in epoll_wait over every socket.
void Server::run() {
  epoll_event evs[256];
  while (!g_stop) {
    if (spin)
      for (const Udp& u : udp) serve_udp(u.fd, u.v6, full, gso);
    int n = spin && !http_listeners ? 0 : epoll_wait(ep, evs, 256, spin ? 0 : 200);
    for (int i = 0; i < n; ++i) {
      uint64_t d = evs[i].data.u64;
      if (d & kUdpTag) serve_udp(int(d & 0xffffffff), d & kV6Tag, full, gso);
      else if (d & kListenTag) accept_all(int(d & 0xffffffff), d & kV6Tag);
      else on_conn(static_cast<Conn*>(evs[i].data.ptr));
    }
  }
}

const char kUsage[] =
    "usage: limit_server [--udp ADDR]... [--http ADDR]... [--cpu N] [--spin] [--full] [--no-gso]\n"
    "  --udp ADDR    answer BEP 15 on ADDR (127.x.x.x:PORT or [::1]:PORT), repeatable\n"
    "  --http ADDR   answer HTTP announce/scrape on ADDR, repeatable\n"
    "  --cpu N       pin to CPU N\n"
    "  --spin        poll without sleeping (no wake-up latency; burns its CPU)\n"
    "  --full        answer each announce with numwant synthetic peers (default 50 when\n"
    "                absent or negative, at most 200), IPv6 peers on IPv6 sockets\n"
    "  --no-gso      one datagram per sendmmsg message (default: UDP GSO per address)\n"
    "Valid replies (empty unless --full); no state. Runs until SIGTERM/SIGINT.\n";

}  // namespace

int main(int argc, char** argv) {
  static const option kLong[] = {{"udp", 1, nullptr, 'u'},  {"http", 1, nullptr, 'H'},   {"cpu", 1, nullptr, 'c'},
                                 {"spin", 0, nullptr, 's'}, {"full", 0, nullptr, 'f'},   {"no-gso", 0, nullptr, 'g'},
                                 {"help", 0, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
  std::vector<std::string> udp_addrs, http_addrs;
  Server srv;
  int c, cpu = -1;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    if (c == 'u') udp_addrs.push_back(optarg);
    else if (c == 'H') http_addrs.push_back(optarg);
    else if (c == 'c') cpu = atoi(optarg);
    else if (c == 's') srv.spin = true;
    else if (c == 'f') srv.full = true;
    else if (c == 'g') srv.gso = false;
    else if (c == 'h') { fputs(kUsage, stdout); return 0; }
    else { fputs(kUsage, stderr); return 2; }
  }
  if (optind < argc || (udp_addrs.empty() && http_addrs.empty())) { fputs(kUsage, stderr); return 2; }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) { perror("limit_server: sched_setaffinity"); return 2; }
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (!srv.open(udp_addrs, http_addrs)) return 2;
  fprintf(stderr, "limit_server: ready (%zu udp, %zu http%s)\n", udp_addrs.size(), http_addrs.size(),
          srv.full ? ", full replies" : "");
  srv.run();
  return 0;
}
