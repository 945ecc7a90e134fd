// shm/rings_layout.hpp — where the rings live in the rings segment.
//
// Layout: SegmentHeader (64 B, count = socket workers, index = swarm workers), padded to 4 KiB,
// then for each socket worker s, for each ring set k (0, 1), for each swarm worker w:
//   request ring  (s,k → w): RingHeader + slots × Request   (128 B each)
//   response ring (w → s,k): RingHeader + slots × Response  (3,696 B each)
// Each socket-worker slot has two ring sets; a process of generation g uses set g % 2. During a
// rolling restart the old and the new process of a slot overlap, each on its own set, so every
// ring keeps exactly one producer and one consumer (see shm/control_segment.hpp SocketSets).
// Every ring starts 4 KiB aligned. All offsets are computed from the three counts, so every
// process derives the same addresses without storing pointers.
#pragma once
#include <cstddef>
#include <cstdint>

#include "shm/messages.hpp"
#include "shm/spsc_ring.hpp"

namespace shoal::shm {

struct RingsGeometry {
  uint32_t socket_workers;
  uint32_t swarm_workers;
  uint32_t slots;  // per ring, power of two

  static constexpr size_t kAlign = 4096;
  static constexpr size_t align(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }
  size_t request_bytes() const { return align(ring_bytes(slots, sizeof(Request))); }
  size_t response_bytes() const { return align(ring_bytes(slots, sizeof(Response))); }
  size_t pair_bytes() const { return request_bytes() + response_bytes(); }
  static constexpr uint32_t kSets = 2;
  // Byte offset of the request ring from socket worker s (ring set k) to swarm worker w.
  size_t request_offset(uint32_t s, uint32_t w, uint32_t k) const {
    return kAlign + ((size_t(s) * kSets + k) * swarm_workers + w) * pair_bytes();
  }
  // Byte offset of the response ring from swarm worker w back to socket worker s (ring set k).
  size_t response_offset(uint32_t s, uint32_t w, uint32_t k) const { return request_offset(s, w, k) + request_bytes(); }
  // Total segment size.
  size_t segment_bytes() const { return kAlign + size_t(socket_workers) * kSets * swarm_workers * pair_bytes(); }
};

inline SpscRing<Request> request_ring(void* base, const RingsGeometry& g, uint32_t s, uint32_t w, uint32_t k) {
  return SpscRing<Request>(static_cast<char*>(base) + g.request_offset(s, w, k));
}
inline SpscRing<Response> response_ring(void* base, const RingsGeometry& g, uint32_t s, uint32_t w, uint32_t k) {
  return SpscRing<Response>(static_cast<char*>(base) + g.response_offset(s, w, k));
}

}  // namespace shoal::shm
