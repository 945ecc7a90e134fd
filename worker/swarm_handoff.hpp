// worker/swarm_handoff.hpp — how a swarm worker's partition passes from one process of the
// slot to the next during a rolling restart without waiting for the old process's exit (issue
// 12, recovery time: the kernel's teardown of a ~60 MB mapping is ~6 ms of CPU that the
// partition used to spend without service).
//
// The one-writer rule holds by construction: the successor, started while the old process
// still serves, attaches its segments, maps the partition's pages ahead (prefault) and then
// waits, writing nothing to shared memory but its WorkerSlot::standby word, until the slot's
// WorkerSlot::released word reaches the generation it waits for (WorkerContext::handoff_from).
// `released` is raised only by the old process itself, as its last write to shared memory after
// its last batch (release_partition), or by the supervisor after it has reaped an old process
// that died without releasing. Either then wakes the successor through the slot's handoff
// eventfd (the successor also looks every 10 ms). The successor then recovers the partition
// (recover_fast rolls back whatever a dead predecessor left half done) and serves.
// Runs in swarm worker processes only.
#pragma once
#include "shm/segment.hpp"
#include "worker/worker_common.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

// In a successor started with ctx.handoff_from != 0: prefaults the resident pages of
// `partition` (in slices from `loop`, so the old process keeps the CPU it needs), stores
// standby = ctx.generation, then runs `loop` until generation ctx.handoff_from has released the
// partition. Returns true when the partition is this process's to write, false when SIGTERM or
// SIGINT came first (the process must then exit without writing anything). Throws
// std::runtime_error if libevent fails.
bool await_partition(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop, const shm::Segment& partition);

// The last write to shared memory of a swarm worker that served its partition and stops:
// released = ctx.generation (release order, after every write of its last batch), then a
// wake-up of a successor that may wait for it. When one waits, the process then runs at idle
// priority (SCHED_IDLE) for what remains of its exit.
void release_partition(const WorkerContext& ctx, SharedState* shared);

// Maps the pages of [base, base + bytes) that are already in memory into this process's page
// tables (mincore, then MADV_POPULATE_READ; a read of each page where the kernel has no
// MADV_POPULATE_READ), without allocating the ones that are not. Returns the pages mapped.
size_t prefault_resident(void* base, size_t bytes);

}  // namespace shoal::worker
