// shm/snapshot_segment.hpp — the snapshot segment (issue 14): one channel per swarm worker
// through which it hands its partition's snapshot chunks (shm/snapshot_codec.hpp) to the
// supervisor, which writes them to a file, and
// through which the supervisor tells it to load a snapshot at start. Created fresh by the
// supervisor at every start (never re-attached), so it carries no state across restarts of
// shoald; it does across restarts of a swarm worker.
//
// Layout:
//   SegmentHeader                          64 B
//   SnapshotChannel channels[swarm_workers]   kSnapshotChannelBytes each, 64-byte aligned:
//     SnapshotControl   128 B
//     SpscRing<SnapshotChunkSlot>   RingHeader 192 B + kSnapshotSlots × 16,392 B
//
// Save: the supervisor (idle channel: response_seq == request_seq, ring empty) writes t0 and
// release-stores request_seq + 1, then wakes the worker. The worker fills ring slots between
// its batches (worker/snapshot_pass.hpp), publishing each sealed chunk, and when its pass is
// done writes status/torrents/peers and release-stores response_seq = request_seq. The
// supervisor consumes chunks as they come. Single producer (the swarm worker), single consumer
// (the supervisor); a worker that starts finds a pending request of a predecessor and answers
// it with status kSnapshotAbandoned (the supervisor has failed that save already).
// On a cluster node there are twice as many channels: channel swarm_workers + w is worker w's
// second channel, the same protocol with the sync worker in the supervisor's place; it answers
// the snapshot requests of joining nodes (worker/cluster_join.hpp).
// Load: the supervisor sets load_pending = 1 before the first fork when it created fresh
// partitions and tracker.snapshot_load names a file; the worker loads before it reports ready
// and stores load_pending = 0 with its counts (a worker killed while loading leaves it 1, and
// its replacement loads again: restoring a peer twice changes nothing).
#pragma once
#include <cstddef>
#include <cstdint>

#include "shm/layout.hpp"
#include "shm/snapshot_codec.hpp"
#include "shm/spsc_ring.hpp"

namespace shoal::shm {

inline constexpr uint32_t kSnapshotSlots = 8;  // chunks in flight per swarm worker (128 KiB)

struct SnapshotChunkSlot {
  uint32_t len;  // bytes of the chunk in `bytes` (header + payload)
  uint32_t reserved;
  uint8_t bytes[kChunkBytes];
};
static_assert(sizeof(SnapshotChunkSlot) == 16392 && kShmSafe<SnapshotChunkSlot>);

inline constexpr uint32_t kSnapshotOk = 0;
inline constexpr uint32_t kSnapshotAbandoned = 1;  // a predecessor's pass, cut short by its death

// Load states (SnapshotControl::load_state), written by the worker.
inline constexpr uint32_t kLoadNone = 0, kLoadRunning = 1, kLoadDone = 2, kLoadFailed = 3;

// request_seq/t0: supervisor; the rest: the swarm worker (load_pending: both, see above).
//   t0             seconds since the clock base at which the pass counts peer ages
//   status         kSnapshotOk / kSnapshotAbandoned of the pass answered by response_seq
//   torrents/peers records the pass wrote
//   loaded_*       what the load at start restored (peers), skipped as older than peer_ttl,
//                  or refused (partition full)
struct alignas(64) SnapshotControl {
  uint32_t request_seq;
  uint32_t response_seq;
  uint32_t t0;
  uint32_t status;
  uint64_t torrents;
  uint64_t peers;
  uint32_t load_pending;
  uint32_t load_state;
  uint64_t loaded_peers;
  uint64_t skipped_expired;
  uint64_t refused_full;
  uint64_t loaded_torrents;
  uint64_t reserved[6];
};
static_assert(sizeof(SnapshotControl) == 128 && kShmSafe<SnapshotControl>);

inline constexpr size_t kSnapshotChannelBytes =
    (sizeof(SnapshotControl) + ring_bytes(kSnapshotSlots, sizeof(SnapshotChunkSlot)) + 63) & ~size_t(63);

// `channels`: swarm workers, twice that for a cluster node (channel swarm_workers + w carries
// worker w's answers to joining nodes, worker/cluster_join.hpp).
inline size_t snapshot_segment_bytes(uint32_t channels) {
  return sizeof(SegmentHeader) + size_t(channels) * kSnapshotChannelBytes;
}
inline SnapshotControl* snapshot_control(void* segment_base, uint32_t worker) {
  return reinterpret_cast<SnapshotControl*>(static_cast<uint8_t*>(segment_base) + sizeof(SegmentHeader) +
                                            size_t(worker) * kSnapshotChannelBytes);
}
inline void* snapshot_ring_at(void* segment_base, uint32_t worker) {
  return reinterpret_cast<uint8_t*>(snapshot_control(segment_base, worker)) + sizeof(SnapshotControl);
}

}  // namespace shoal::shm
