// worker/swarm_startup.hpp — what a swarm worker does once, before it serves:
// attach and recover its partition, decide whether a poison request calls for a full check,
// open the configured peer-selection policy, and load a snapshot the supervisor asked for.
// All run in the swarm worker process, before its event loop.
#pragma once
#include <cstdint>
#include <memory>

#include "conf/config.hpp"
#include "shm/partition.hpp"
#include "shm/segment.hpp"
#include "worker/peer_policy.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {

// Attaches and recovers the partition in `seg` (partition `index`); logs what recovery did and
// counts a repair in `counters`. `fast`: roll back and check the header only (the full
// validation follows on a snapshot: BackgroundCheck). Throws what shm::Partition throws for a
// segment that is not a partition.
shm::Partition recover_partition(const shm::Segment& seg, uint32_t index, shm::CounterBlock* counters, bool fast);

// Whether the previous process of this slot died applying the same request as the one before
// it: then a bug may have damaged the partition, so it is checked in full before serving.
bool poison_suspected(const shm::WorkerSlot* ws);

// The configured peer-selection policy (peer_selection.policy), reading locations from the
// topology segment. Throws std::runtime_error naming an unknown policy.
std::unique_ptr<shm::PeerPolicy> open_policy(const conf::Config& cfg, const shm::Segment& topology);

// Loads tracker.snapshot_load into a new partition when the supervisor asked for it (issue 14),
// before this worker reports ready; writes the heartbeat while it loads. False (logged) when the
// file cannot be loaded: the supervisor checked it at start, so it changed or went away since.
bool load_snapshot_if_pending(const WorkerContext& ctx, SharedState& shared, shm::Partition* part, const shm::Segment& seg);

}  // namespace shoal::worker
