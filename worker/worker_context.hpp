// worker/worker_context.hpp — what a worker process receives from the supervisor at fork:
// its role and slot, the configuration, and the file descriptors the supervisor created before
// forking (eventfds of every worker, and this socket slot's UDP and TCP listening sockets).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"

namespace shoal::worker {

// One listening UDP socket of a socket-worker slot.
struct UdpSocket {
  int fd = -1;
  int family = 0;  // AF_INET or AF_INET6
};

// One listening TCP socket of a socket-worker slot (HTTP, or HTTPS when tls is set); already
// bound, SO_REUSEPORT, listen()ing, non-blocking.
struct TcpListener {
  int fd = -1;
  int family = 0;  // AF_INET or AF_INET6
  bool tls = false;
};

struct WorkerContext {
  const conf::Config* config = nullptr;
  shm::WorkerRole role = shm::WorkerRole::socket;
  uint32_t index = 0;       // slot index within the role
  uint32_t generation = 0;  // bumped on every (re)start of the slot
  uint32_t ring_set = 0;    // socket workers: the ring set (0 or 1) assigned by the supervisor
  pid_t supervisor_pid = 0;
  std::vector<int> socket_eventfds;  // [socket worker i] wakes socket worker i
  std::vector<int> swarm_eventfds;   // [swarm worker j] wakes swarm worker j
  std::vector<UdpSocket> udp_sockets;  // this socket slot's sockets (socket workers only)
  std::vector<TcpListener> tcp_listeners;  // this socket slot's HTTP/HTTPS listeners (same)
};

// Worker entry points; return the process exit code (0 asked to stop, 1 fatal setup error).
int run_socket_worker(const WorkerContext& ctx);
int run_swarm_worker(const WorkerContext& ctx);

// Owner of an info_hash (20 bytes): its first four bytes (big-endian) modulo the number of swarm
// workers. info_hashes are SHA-1/SHA-256 output, so the prefix is uniform.
inline uint32_t partition_of(const uint8_t* info_hash, uint32_t swarm_workers) {
  uint32_t v = (uint32_t(info_hash[0]) << 24) | (uint32_t(info_hash[1]) << 16) |
               (uint32_t(info_hash[2]) << 8) | uint32_t(info_hash[3]);
  return v % swarm_workers;
}

}  // namespace shoal::worker
