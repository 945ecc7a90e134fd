// shm/control_segment.hpp — the control segment: what every process reads.
// The supervisor creates and fills it before forking; after that it writes only the slot
// `pid`/`generation` words when it (re)starts a worker. Workers write their own slot's
// heartbeat words and counter block. Nothing here is locked; every shared word is accessed
// through std::atomic_ref.
//
// Layout:
//   SegmentHeader                      64 B
//   ControlHeader                      64 B   (connection-id key, worker counts)
//   WorkerSlot slots[kMaxWorkerSlots]  64 B each; socket workers first, then swarm workers
//   CounterBlock counters[kMaxWorkerSlots]  256 B each, same order as slots
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shm/counters.hpp"
#include "shm/layout.hpp"

namespace shoal::shm {

inline constexpr uint32_t kMaxSocketWorkers = 64;
inline constexpr uint32_t kMaxSwarmWorkers = 64;
inline constexpr uint32_t kMaxWorkerSlots = kMaxSocketWorkers + kMaxSwarmWorkers;

enum class WorkerRole : uint32_t { socket = 1, swarm = 2 };

// conn_id_key   16-byte AES-128 key for BEP 15 connection ids (random, set at creation)
struct ControlHeader {
  uint8_t conn_id_key[16];
  uint32_t socket_workers;
  uint32_t swarm_workers;
  uint64_t created_unix;  // wall-clock seconds when created (for "show info")
  uint8_t reserved[32];
};
static_assert(sizeof(ControlHeader) == 64);
static_assert(kShmSafe<ControlHeader>);

// One worker slot. pid/generation: supervisor writes at spawn. ready/last_tick: the worker
// writes (ready = generation it runs once it serves; last_tick = seconds since clock base).
struct alignas(64) WorkerSlot {
  uint32_t role;  // WorkerRole
  uint32_t index;
  uint32_t pid;
  uint32_t generation;
  uint32_t ready;
  uint32_t last_tick;
  uint32_t restarts;
  uint32_t reserved[9];
};
static_assert(sizeof(WorkerSlot) == 64);
static_assert(kShmSafe<WorkerSlot>);

struct ControlSegment {
  SegmentHeader header;
  ControlHeader control;
  WorkerSlot slots[kMaxWorkerSlots];
  CounterBlock counters[kMaxWorkerSlots];
};
static_assert(offsetof(ControlSegment, control) == 64);
static_assert(offsetof(ControlSegment, slots) == 128);
static_assert(offsetof(ControlSegment, counters) == 128 + 64 * kMaxWorkerSlots);
static_assert(kShmSafe<ControlSegment>);

// Slot number of a worker: socket workers 0..S-1, swarm workers kMaxSocketWorkers + i.
inline constexpr uint32_t socket_slot(uint32_t i) { return i; }
inline constexpr uint32_t swarm_slot(uint32_t i) { return kMaxSocketWorkers + i; }

inline uint32_t load_u32(const uint32_t& v) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(v)).load(std::memory_order_acquire);
}
inline void store_u32(uint32_t& v, uint32_t x) { std::atomic_ref<uint32_t>(v).store(x, std::memory_order_release); }

}  // namespace shoal::shm
