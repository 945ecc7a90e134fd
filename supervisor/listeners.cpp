// supervisor/listeners.cpp — see listeners.hpp. Runs in the supervisor at start only.
#include "supervisor/listeners.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "supervisor/log.hpp"

namespace shoal::supervisor {
namespace {

constexpr int kTcpBacklog = 1024;  // per slot socket; the kernel caps it at net.core.somaxconn

int open_one(const conf::ListenAddress& la, const sockaddr_storage& addr, socklen_t len, const conf::Config& cfg) {
  int fd = socket(la.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("udp " + la.text + ": socket: " + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (la.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  int rcv = int(cfg.udp_recv_buffer), snd = int(cfg.udp_send_buffer);
  // SO_RCVBUFFORCE works as root and ignores net.core.rmem_max; fall back to the capped one.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    int e = errno;
    close(fd);
    throw std::runtime_error("udp " + la.text + ": bind: " + strerror(e));
  }
  return fd;
}

// A TCP listener for `la` (HTTP or HTTPS): SO_REUSEADDR so a restart binds despite TIME_WAIT,
// SO_REUSEPORT so every socket-worker slot has its own accept queue on the same address.
int open_tcp(const conf::ListenAddress& la, const sockaddr_storage& addr, const char* what) {
  int fd = socket(la.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string(what) + " " + la.text + ": socket: " + strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (la.family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  const char* step = "bind";
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), la.addr_len) == 0) {
    step = "listen";
    if (listen(fd, kTcpBacklog) == 0) return fd;
  }
  int e = errno;
  close(fd);
  throw std::runtime_error(std::string(what) + " " + la.text + ": " + step + ": " + strerror(e));
}

// Without CAP_NET_ADMIN, SO_RCVBUFFORCE/SO_SNDBUFFORCE fail and SO_RCVBUF/SO_SNDBUF are
// capped at net.core.rmem_max/wmem_max (socket(7)); say what was obtained. getsockopt reports
// twice the usable size (the kernel doubles the request for its bookkeeping, socket(7)).
void warn_small_buffers(int fd, const conf::ListenAddress& la, const conf::Config& cfg) {
  struct Buf {
    int opt;
    uint32_t want;
    const char* setting;
    const char* sysctl;
  };
  for (const Buf& b : {Buf{SO_RCVBUF, cfg.udp_recv_buffer, "udp.recv_buffer", "net.core.rmem_max"},
                       Buf{SO_SNDBUF, cfg.udp_send_buffer, "udp.send_buffer", "net.core.wmem_max"}}) {
    int got = 0;
    socklen_t len = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, b.opt, &got, &len) != 0 || uint64_t(got) / 2 >= b.want) continue;
    LOG_WARN("udp %s: %s is %u bytes but the kernel gave %d (capped by %s without CAP_NET_ADMIN); "
             "raise %s or run shoald as root", la.text.c_str(), b.setting, b.want, got / 2, b.sysctl, b.sysctl);
  }
}

uint16_t port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                 : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

void set_port(sockaddr_storage* ss, uint16_t port) {
  if (ss->ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(ss)->sin_port = htons(port);
  else
    reinterpret_cast<sockaddr_in6*>(ss)->sin6_port = htons(port);
}

}  // namespace

std::vector<std::vector<worker::UdpSocket>> open_udp_listeners(const conf::Config& cfg) {
  std::vector<std::vector<worker::UdpSocket>> slots(cfg.socket_workers);
  if (!cfg.udp_enabled) return slots;
  for (const conf::ListenAddress& la : cfg.udp_listen) {
    sockaddr_storage addr = la.addr;
    for (uint32_t s = 0; s < cfg.socket_workers; s++) {
      int fd = open_one(la, addr, la.addr_len, cfg);
      if (s == 0 && la.port == 0) set_port(&addr, port_of(fd));
      if (s == 0) warn_small_buffers(fd, la, cfg);
      slots[s].push_back({fd, la.family});
    }
  }
  return slots;
}

std::vector<std::vector<worker::TcpListener>> open_tcp_listeners(const conf::Config& cfg) {
  std::vector<std::vector<worker::TcpListener>> slots(cfg.socket_workers);
  struct Kind {
    bool enabled;
    const std::vector<conf::ListenAddress>* addresses;
    bool tls;
    bool websocket;
    const char* what;
  };
  const Kind kinds[] = {{cfg.http_enabled, &cfg.http_listen, false, false, "http"},
                        {cfg.https_enabled, &cfg.https_listen, true, false, "https"},
                        {cfg.ws_enabled, &cfg.ws_listen, false, true, "ws"},
                        {cfg.wss_enabled, &cfg.wss_listen, true, true, "wss"}};
  try {
    for (const Kind& k : kinds) {
      if (!k.enabled) continue;
      for (const conf::ListenAddress& la : *k.addresses) {
        sockaddr_storage addr = la.addr;
        for (uint32_t s = 0; s < cfg.socket_workers; s++) {
          int fd = open_tcp(la, addr, k.what);
          if (s == 0 && la.port == 0) set_port(&addr, port_of(fd));
          slots[s].push_back({fd, la.family, k.tls, k.websocket});
        }
      }
    }
  } catch (...) {
    for (auto& slot : slots)
      for (const worker::TcpListener& l : slot) close(l.fd);
    throw;
  }
  return slots;
}

std::string bound_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(port_of(fd));
  }
  inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(port_of(fd));
}

}  // namespace shoal::supervisor
