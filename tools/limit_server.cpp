// limit_server: the smallest possible tracker responder, used by `make bench` as the
// ceiling that no tracker can beat on this machine with these sockets. It keeps no state
// and answers every request with a valid but empty reply:
//
//  * UDP (BEP 15), recvmmsg/sendmmsg in batches of 64 on each --udp socket:
//      connect  -> 16 bytes: action 0, transaction id, a fixed connection id;
//      announce -> 20 bytes: action 1, transaction id, interval 1800, 0 leechers, 0 seeders;
//      scrape   -> 8 + 12 bytes per requested info hash, all counts 0.
//    Anything else (too short, bad protocol id, unknown action) is dropped.
//  * HTTP on each --http socket, epoll over non-blocking keep-alive connections: every
//    complete request (pipelined ones too) gets a fixed bencoded reply:
//      GET /scrape...  -> d5:filesdee
//      anything else   -> d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e
//    The connection stays open unless the request says "Connection: close" or is HTTP/1.0
//    without "Connection: keep-alive"; then it is closed after the reply.
//
//   limit_server --udp 127.0.0.1:27100 --http 127.0.0.1:27101 [--udp [::1]:27100] [--cpu 1] [--spin]
//
// One thread, one epoll loop over every socket. By default it sleeps in epoll_wait like a
// tracker; --spin polls without sleeping, so no wake-up latency (an IPI in a VM) slows the
// generator down: `make bench` takes the better of the two as the generator's ceiling.
//
// Binds loopback addresses only (127.0.0.0/8, ::1); runs until SIGTERM or SIGINT.
// Exit 0 after a signal, 2 for bad arguments or a socket that cannot be bound.
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kBatch = 64;               // datagrams per recvmmsg/sendmmsg
constexpr size_t kDgram = 2048;          // larger than any BEP 15 request
constexpr size_t kHttpBuf = 16384;       // per-connection read buffer
constexpr uint64_t kProtocolId = 0x41727101980ull;
constexpr uint64_t kConnId = 0x5348'4f41'4c4c'494dull;  // any fixed value is valid here

const std::string kAnnounceBody = "d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e";
const std::string kScrapeBody = "d5:filesdee";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

void put32(uint8_t* p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
uint32_t get32(const uint8_t* p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }
uint64_t get64(const uint8_t* p) { return uint64_t(get32(p)) << 32 | get32(p + 4); }

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

/// Builds the reply to one BEP 15 request into out; returns its length, 0 to drop it.
size_t udp_reply(const uint8_t* in, size_t len, uint8_t* out) {
  if (len < 16) return 0;
  uint32_t action = get32(in + 8), tid = get32(in + 12);
  if (action == 0) {
    if (get64(in) != kProtocolId) return 0;
    put32(out, 0), put32(out + 4, tid), put32(out + 8, uint32_t(kConnId >> 32)), put32(out + 12, uint32_t(kConnId));
    return 16;
  }
  if (action == 1) {
    if (len < 98) return 0;
    put32(out, 1), put32(out + 4, tid), put32(out + 8, 1800), put32(out + 12, 0), put32(out + 16, 0);
    return 20;
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

/// UDP: drains fd with recvmmsg, answers every valid request with one sendmmsg per batch.
void serve_udp(int fd) {
  static uint8_t in[kBatch][kDgram], out[kBatch][kDgram];
  static sockaddr_storage from[kBatch];
  for (;;) {
    mmsghdr rm[kBatch], sm[kBatch];
    iovec riov[kBatch], siov[kBatch];
    for (int i = 0; i < kBatch; ++i) {
      riov[i] = {in[i], kDgram};
      rm[i] = {};
      rm[i].msg_hdr.msg_name = &from[i], rm[i].msg_hdr.msg_namelen = sizeof from[i];
      rm[i].msg_hdr.msg_iov = &riov[i], rm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, rm, kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    int m = 0;
    for (int i = 0; i < n; ++i) {
      size_t len = udp_reply(in[i], rm[i].msg_len, out[m]);
      if (!len) continue;
      siov[m] = {out[m], len};
      sm[m] = {};
      sm[m].msg_hdr.msg_name = &from[i], sm[m].msg_hdr.msg_namelen = rm[i].msg_hdr.msg_namelen;
      sm[m].msg_hdr.msg_iov = &siov[m], sm[m].msg_hdr.msg_iovlen = 1;
      ++m;
    }
    for (int done = 0; done < m;) {  // a full send buffer drops the rest, like a tracker would
      int s = sendmmsg(fd, sm + done, unsigned(m - done), 0);
      if (s <= 0) break;
      done += s;
    }
    if (n < kBatch) return;
  }
}

/// One HTTP connection: bytes read but not yet answered, replies not yet written.
struct Conn {
  int fd = -1;
  std::string in, out;
  bool close_after = false;
  bool want_out = false;  // EPOLLOUT registered (only while a reply is pending)
};

/// Case-insensitive search for needle in hay.
bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && tolower(static_cast<unsigned char>(hay[i + k])) == needle[k]) ++k;
    if (k == needle.size()) return true;
  }
  return false;
}

/// Appends the reply for every complete request in c.in; false when the connection
/// must be closed (a request too large for the buffer).
bool http_answer(Conn& c) {
  size_t pos = 0;
  for (;;) {
    size_t end = c.in.find("\r\n\r\n", pos);
    if (end == std::string::npos) break;
    std::string_view req(c.in.data() + pos, end + 4 - pos);
    const std::string& body = req.substr(0, 12) == "GET /scrape?" ? kScrapeBody : kAnnounceBody;
    bool http10 = req.substr(0, req.find("\r\n")).ends_with("HTTP/1.0");
    bool close = contains_ci(req, "\nconnection: close") || (http10 && !contains_ci(req, "\nconnection: keep-alive"));
    c.out += "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ";
    c.out += std::to_string(body.size());
    c.out += close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n";
    c.out += body;
    pos = end + 4;
    if (close) { c.close_after = true; break; }
  }
  c.in.erase(0, pos);
  return c.in.size() < kHttpBuf;
}

/// Writes as much of c.out as the socket takes; false on a write error.
bool http_flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t w = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN || errno == EINTR;
    c.out.erase(0, size_t(w));
  }
  return true;
}

const char kUsage[] =
    "usage: limit_server [--udp ADDR]... [--http ADDR]... [--cpu N]\n"
    "  --udp ADDR    answer BEP 15 on ADDR (127.x.x.x:PORT or [::1]:PORT), repeatable\n"
    "  --http ADDR   answer HTTP announce/scrape on ADDR, repeatable\n"
    "  --cpu N       pin to CPU N\n"
    "  --spin        poll without sleeping (no wake-up latency; burns its CPU)\n"
    "Valid but empty replies; no state. Runs until SIGTERM/SIGINT.\n";

}  // namespace

int main(int argc, char** argv) {
  static const option kLong[] = {{"udp", 1, nullptr, 'u'}, {"http", 1, nullptr, 'H'}, {"cpu", 1, nullptr, 'c'},
                                 {"spin", 0, nullptr, 's'}, {"help", 0, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
  std::vector<std::string> udp_addrs, http_addrs;
  int c, cpu = -1;
  bool spin = false;
  while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
    if (c == 'u') udp_addrs.push_back(optarg);
    else if (c == 'H') http_addrs.push_back(optarg);
    else if (c == 'c') cpu = atoi(optarg);
    else if (c == 's') spin = true;
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

  // epoll data: fd of a UDP or listening socket tagged by kind, or a Conn*.
  enum : uint64_t { kUdpTag = 1ull << 62, kListenTag = 1ull << 61 };
  int ep = epoll_create1(EPOLL_CLOEXEC);
  for (const std::string& a : udp_addrs) {
    int fd = open_socket(a, SOCK_DGRAM);
    if (fd < 0) return 2;
    epoll_event ev{EPOLLIN, {.u64 = kUdpTag | uint64_t(fd)}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  for (const std::string& a : http_addrs) {
    int fd = open_socket(a, SOCK_STREAM);
    if (fd < 0) return 2;
    epoll_event ev{EPOLLIN, {.u64 = kListenTag | uint64_t(fd)}};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  fprintf(stderr, "limit_server: ready (%zu udp, %zu http)\n", udp_addrs.size(), http_addrs.size());

  auto drop = [&](Conn* conn) {
    close(conn->fd);  // also removes it from the epoll set
    delete conn;
  };
  epoll_event evs[256];
  while (!g_stop) {
    int n = epoll_wait(ep, evs, 256, spin ? 0 : 200);
    for (int i = 0; i < n; ++i) {
      uint64_t d = evs[i].data.u64;
      if (d & kUdpTag) {
        serve_udp(int(d & 0xffffffff));
      } else if (d & kListenTag) {
        for (;;) {
          int fd = accept4(int(d & 0xffffffff), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* conn = new Conn;
          conn->fd = fd;
          epoll_event ev{EPOLLIN | EPOLLRDHUP, {.ptr = conn}};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
      } else {
        auto* conn = static_cast<Conn*>(evs[i].data.ptr);
        char buf[kHttpBuf];
        ssize_t r;
        bool alive = true, eof = false;
        while ((r = recv(conn->fd, buf, sizeof buf, 0)) > 0) conn->in.append(buf, size_t(r));
        if (r == 0) eof = true;
        else if (errno != EAGAIN && errno != EINTR) alive = false;
        if (alive) alive = http_answer(*conn) && http_flush(*conn);
        if (!alive || eof || (conn->close_after && conn->out.empty())) {
          drop(conn);
        } else if (conn->want_out != !conn->out.empty()) {  // EPOLLOUT only while a reply waits
          conn->want_out = !conn->out.empty();
          epoll_event ev{EPOLLIN | EPOLLRDHUP | (conn->want_out ? uint32_t(EPOLLOUT) : 0u), {.ptr = conn}};
          epoll_ctl(ep, EPOLL_CTL_MOD, conn->fd, &ev);
        }
      }
    }
  }
  return 0;
}
