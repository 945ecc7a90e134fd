// worker/cluster_answer.hpp — a live node's answers to joining nodes (issue 14; protocol and
// frames: worker/cluster_join.hpp). Runs in the sync worker, on its event loop; never waits.
// Listens on <subject>.snapshot in one queue group (so one node answers a request), asks every
// swarm worker for a sliced snapshot pass on its second snapshot channel (channel
// swarm_workers + w of the snapshot segment, shm/snapshot_segment.hpp) and publishes each chunk
// to the requester's inbox as a frame as it comes, the end chunk (totals) last. One answer at a
// time: a request during an answer gets a busy frame. A swarm worker restarted during the pass
// ends the answer with a failed frame.
#pragma once
#include <nats/nats.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/snapshot_codec.hpp"
#include "shm/snapshot_segment.hpp"
#include "worker/worker_common.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

class JoinAnswerer {
 public:
  // `snapshot_base`: the mapped snapshot segment (2 × swarm_workers channels). `node_id`, `name`:
  // this node's, put in every frame.
  JoinAnswerer(const WorkerContext& ctx, SharedState* shared, void* snapshot_base, uint16_t node_id, std::string name);
  ~JoinAnswerer();
  JoinAnswerer(const JoinAnswerer&) = delete;
  JoinAnswerer& operator=(const JoinAnswerer&) = delete;

  // Subscribes to <subject>.snapshot on `nc` (from now on this node answers). False, logged, on error.
  bool listen(natsConnection* nc);
  bool listening() const { return sub_ != nullptr; }
  // True while an answer runs (call step() often: the sync worker's 2 ms timer).
  bool answering() const { return answering_; }
  // Takes waiting requests (starting an answer, or answering busy). Call each tick when not answering.
  void poll_requests();
  // Publishes the chunks written so far; ends the answer when every worker is done.
  void step();

 private:
  shm::SnapshotControl* ctl(uint32_t w) const;
  void drop_stale_chunks();
  void send_frame(const std::string& to, uint8_t kind, const uint8_t* p, size_t n);
  void start(const std::string& to, uint16_t who);

  const conf::Config& cfg_;
  const WorkerContext& ctx_;
  SharedState* shared_;
  void* snap_base_;
  uint16_t node_id_;
  std::string name_, subject_;
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  bool answering_ = false;
  std::string reply_;
  uint32_t frames_ = 0, chunks_ = 0;
  uint64_t started_ns_ = 0;
  std::vector<uint32_t> seq_;
  std::vector<bool> done_;
  shm::SnapshotTotals totals_;
  std::vector<uint8_t> frame_;
};

}  // namespace shoal::worker
