// supervisor/listeners.hpp — the listening sockets, created by the supervisor before it forks:
// for each socket-worker slot, one SO_REUSEPORT UDP socket per configured address. A restarted
// worker inherits its slot's sockets, so the kernel never drops the slot's share of traffic.
#pragma once
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {

// Opens sockets[slot][address] for all slots. Port 0 in an address is resolved by the first
// bind and reused for every other slot. Throws std::runtime_error naming the address and errno.
std::vector<std::vector<worker::UdpSocket>> open_udp_listeners(const conf::Config& cfg);

// "127.0.0.1:6969" / "[::1]:6969" of a bound socket.
std::string bound_address(int fd);

}  // namespace shoal::supervisor
