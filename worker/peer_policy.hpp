// worker/peer_policy.hpp — peer-selection policies for announce replies, called by the swarm
// worker through Partition::announce (the storage code builds a shm::PeerView of the torrent's
// candidates and calls the policy). Today: `random`. Location-aware policies (`nearest`,
// `tiered`) implement the same interface.
#pragma once
#include "shm/peer_view.hpp"

namespace shoal::worker {

// `random`: every candidate equally likely to be in a reply. When there are no more candidates
// than numwant, all of them (but the asker); otherwise numwant consecutive candidates (skipping
// the asker) from a random start, wrapping from the last candidate to the first: each candidate is in a reply with probability numwant / candidates, and the records
// are read in address order (one cache miss per 64 bytes of records, and the hardware
// prefetcher streams them, instead of one miss per chosen peer with random picks). Peers next
// to each other in the lists arrive together, from a new random start in every reply (opentracker
// also walks its peer list forward: one random peer per stripe of candidates / numwant).
class RandomPolicy final : public shm::PeerPolicy {
 public:
  const char* name() const override { return "random"; }
  uint16_t select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                  uint8_t* out) const override;
};

// The process-wide `random` policy (stateless).
const shm::PeerPolicy& random_policy();

}  // namespace shoal::worker
