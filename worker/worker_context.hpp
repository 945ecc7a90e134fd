// worker/worker_context.hpp — what a worker process receives from the supervisor at fork:
// its role and slot, the configuration, and the file descriptors the supervisor created before
// forking (eventfds of every worker, and this socket slot's UDP and TCP listening sockets).
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"

namespace shoal::worker {

// One listening UDP socket of a socket-worker slot.
struct UdpSocket {
  int fd = -1;
  int family = 0;  // AF_INET or AF_INET6
};

// One listening TCP socket of a socket-worker slot: HTTP, HTTPS (tls), WebSocket (websocket) or
// WebSocket over TLS (both); already bound, SO_REUSEPORT, listen()ing, non-blocking.
struct TcpListener {
  int fd = -1;
  int family = 0;  // AF_INET or AF_INET6
  bool tls = false;
  bool websocket = false;
  // "http", "https", "ws" or "wss"
  const char* scheme() const { return websocket ? (tls ? "wss" : "ws") : (tls ? "https" : "http"); }
};

struct WorkerContext {
  const conf::Config* config = nullptr;
  shm::WorkerRole role = shm::WorkerRole::socket;
  uint32_t index = 0;       // slot index within the role
  uint32_t generation = 0;  // bumped on every (re)start of the slot
  uint32_t ring_set = 0;    // socket workers: the ring set (0 or 1) assigned by the supervisor
  pid_t supervisor_pid = 0;
  std::vector<int> socket_eventfds;  // [i * 2 + k] wakes the process of socket slot i on ring set k
  std::vector<int> swarm_eventfds;   // [swarm worker j] wakes swarm worker j
  std::vector<UdpSocket> udp_sockets;  // this socket slot's sockets (socket workers only)
  std::vector<TcpListener> tcp_listeners;  // this socket slot's HTTP/HTTPS listeners (same)
};

// Worker entry points; return the process exit code (0 asked to stop, 1 fatal setup error).
int run_socket_worker(const WorkerContext& ctx);
int run_swarm_worker(const WorkerContext& ctx);
int run_sync_worker(const WorkerContext& ctx);  // worker/sync_worker.cpp (issue 14: NATS)

// Owner of an info_hash (20 bytes) among `swarm_workers` partitions: its first eight bytes mixed
// with the daemon's secret `key` (ControlHeader::partition_key). info_hashes are SHA-1 output,
// but a client chooses them: without the key, anyone could aim a flood of made-up info_hashes
// at one partition and fill it (issue 12); with it, the flood spreads over all of them.
inline uint32_t partition_of(const uint8_t* info_hash, uint32_t swarm_workers, uint64_t key) {
  uint64_t x;
  std::memcpy(&x, info_hash, 8);
  x ^= key;
  x ^= x >> 30;  // splitmix64 finaliser
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return uint32_t((uint64_t(uint32_t(x)) * swarm_workers) >> 32);
}

}  // namespace shoal::worker
