// supervisor/listeners.hpp — the listening sockets, created by the supervisor before it forks:
// for each socket-worker slot, one SO_REUSEPORT UDP socket per configured address and one
// SO_REUSEPORT listening TCP socket per HTTP/HTTPS address. A restarted worker inherits its
// slot's sockets, so the kernel never drops the slot's share of traffic (TCP connections wait in
// the slot's accept queue while its worker restarts).
#pragma once
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {

// Opens sockets[slot][address] for all slots. Port 0 in an address is resolved by the first
// bind and reused for every other slot. Throws std::runtime_error naming the address and errno.
std::vector<std::vector<worker::UdpSocket>> open_udp_listeners(const conf::Config& cfg);

// Opens the HTTP (tls = false) and HTTPS (tls = true) listeners: listeners[slot][i], listen()
// backlog 1024, for the enabled protocols only (empty slots when both are off). Port 0 is
// resolved by the first slot's bind. Throws std::runtime_error naming the protocol, address,
// step and errno, after closing what it opened.
std::vector<std::vector<worker::TcpListener>> open_tcp_listeners(const conf::Config& cfg);

// "127.0.0.1:6969" / "[::1]:6969" of a bound socket.
std::string bound_address(int fd);

}  // namespace shoal::supervisor
