// worker/snapshot_pass.hpp — a swarm worker's side of snapshots (issue 14).
// SnapshotPass answers a save request of the supervisor (shm/snapshot_segment.hpp): it writes
// its partition as snapshot chunks (Partition::snapshot_step) into its channel's ring, in slices
// run from the worker's event loop at the lowest priority (after the ready requests), each at
// most ~0.3 ms of work, one every 1 ms while a pass runs; a full ring pauses the pass until the
// supervisor has taken chunks. load_snapshot() restores a snapshot file into the partition before
// the worker reports ready.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <string>

#include "shm/partition.hpp"
#include "shm/snapshot_codec.hpp"
#include "shm/snapshot_segment.hpp"

namespace shoal::worker {

class SnapshotPass {
 public:
  // Channel `index` of the mapped snapshot segment at `segment_base`. An unanswered request
  // left by a predecessor is answered kSnapshotAbandoned at once. Throws std::runtime_error if
  // libevent fails. `purpose` names the pass in the log ("snapshot", "cluster answer");
  // `partition` is the partition's number for the log (default: `index`).
  SnapshotPass(event_base* base, shm::Partition* part, void* segment_base, uint32_t index, const char* purpose = "snapshot",
               uint32_t partition = ~0u);
  ~SnapshotPass();
  SnapshotPass(const SnapshotPass&) = delete;
  SnapshotPass& operator=(const SnapshotPass&) = delete;

  // A cluster join answer (issue 14): the passes write WebTorrent swarms too (shm::SnapshotWs:
  // live peers, this node's own connections as node `node`). `live` outlives the pass.
  void include_webtorrent(const shm::WsLiveness* live, uint16_t node) {
    ws_ = shm::SnapshotWs{live, node};
    with_ws_ = true;
  }

  // Starts a pass if the supervisor asked for one (call after each batch; cheap otherwise).
  void poll();
  bool running() const { return running_; }

 private:
  static void on_slice(evutil_socket_t, short, void* arg);
  void slice();
  bool take_slot();    // a free ring slot to write into; false when the ring is full
  void publish_slot();  // seals the chunk; publishes it if it holds records
  shm::Partition* part_;
  shm::SnapshotControl* ctl_;
  shm::SpscRing<shm::SnapshotChunkSlot> ring_;
  uint32_t index_;
  const char* purpose_;
  uint32_t partition_;
  event* ev_ = nullptr;
  bool running_ = false;
  bool holding_ = false;  // the writer has begun a chunk in the next ring slot
  uint32_t seq_ = 0;      // request being answered
  shm::SnapshotCursor cursor_;
  shm::DataChunkWriter writer_;
  uint64_t started_ns_ = 0;
  uint32_t slices_ = 0;
  shm::SnapshotWs ws_{};
  bool with_ws_ = false;
};

// What load_snapshot did.
struct LoadReport {
  bool ok = false;
  std::string error;         // "PATH: offset N: reason" when !ok
  uint64_t torrents = 0;     // torrents of this partition in the file
  uint64_t peers = 0;        // peers restored
  uint64_t expired = 0;      // peers skipped: last seen longer than peer_ttl ago
  uint64_t full = 0;         // peers refused: the partition is full
  double seconds = 0;
};

// Restores the peers of partition `index` (of `swarm_workers`, info_hash → partition by
// partition_of with `partition_key`) from the snapshot file `path` into `part`, skipping peers
// older than `peer_ttl` seconds at `now_unix`; `now` is seconds since the partition's clock base.
// `tick` is called every 65,536 records (the worker writes its heartbeat there).
LoadReport load_snapshot(const std::string& path, shm::Partition* part, uint32_t index, uint32_t swarm_workers,
                         uint64_t partition_key, uint32_t peer_ttl, uint64_t now_unix, uint32_t now,
                         void (*tick)(void*) = nullptr, void* tick_arg = nullptr);

}  // namespace shoal::worker
