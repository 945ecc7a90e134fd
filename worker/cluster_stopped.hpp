// worker/cluster_stopped.hpp — the sync worker's memory of recent `stopped` deltas (issue 14), so
// a stopped that an outage swallowed still reaches the other nodes. Core NATS stores nothing:
// messages handed to the client while it still believed the connection alive (it notices a
// dead server only after its pings go unanswered, about 2-3 s) are lost with the connection.
// The hello after a reconnection makes every node resend its own peers (a new or renewed peer
// lost that way comes back), but a removed peer is in nobody's partition to resend: without
// this memory it stayed on the other nodes until it expired (peer_ttl).
//
// Rule: every stopped delta published is kept for kStoppedKeepMs of connected time: entries
// older than that are forgotten only while the bus is connected, so everything published during
// an outage and in the kStoppedKeepMs before it was noticed is kept. After a reconnection the
// sync worker publishes them again, before its hello (so the resyncs the hello triggers, which
// send peers that announced again since, come after them), and again whenever another node's
// hello arrives (a node that reconnected after us missed the first resend: core NATS stores
// nothing for it). At most kStoppedKeepMax entries (the
// oldest go first, counted as dropped). Applying a stopped twice changes nothing; a peer that
// announced again on another node within the window is removed there until its next renewal
// is sent (cluster.renewal_suppression).
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "shm/cluster_segment.hpp"

namespace shoal::worker {

inline constexpr uint64_t kStoppedKeepMs = 10000;
inline constexpr size_t kStoppedKeepMax = 100000;

class StoppedMemory {
 public:
  // Keeps the deltas among d[0..n) published at wall clock `now_ms` that carry a flag of `mask`
  // (kDeltaStopped; for WebTorrent deltas also kDeltaWsGone). Returns how many older entries
  // were pushed out by kStoppedKeepMax.
  size_t note(const shm::Delta* d, size_t n, uint64_t now_ms, uint8_t mask = shm::kDeltaStopped);
  // Forgets entries older than kStoppedKeepMs; call only while the bus is connected.
  void prune(uint64_t now_ms);
  // The kept deltas, oldest first (to publish again after a reconnection).
  std::vector<shm::Delta> all() const;
  size_t size() const { return kept_.size(); }

 private:
  struct Entry {
    uint64_t ms;
    shm::Delta d;
  };
  std::deque<Entry> kept_;
};

}  // namespace shoal::worker
