// shm/clock.hpp — time in shared memory: u32 seconds since the segment set's clock base.
// The base is CLOCK_MONOTONIC (system-wide, so every process agrees) taken when the supervisor
// created the segments; a restarted worker reads the same base and agrees with the data it inherits.
#pragma once
#include <cstdint>
#include <ctime>

namespace shoal::shm {

// CLOCK_MONOTONIC now, in nanoseconds.
inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// CLOCK_REALTIME now, in milliseconds since the Unix epoch: for times compared between nodes
// (cluster heartbeats, deltas' send times) and shown to operators, never for shm timestamps.
inline uint64_t wall_ms() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Seconds since `base_ns` (a SegmentHeader::clock_base_ns); 0 if the clock is before the base.
inline uint32_t seconds_since(uint64_t base_ns) {
  uint64_t now = monotonic_ns();
  return now <= base_ns ? 0 : uint32_t((now - base_ns) / 1000000000ull);
}

}  // namespace shoal::shm
