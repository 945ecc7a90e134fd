// worker/peer_policy.hpp — peer-selection policies for announce replies, called by the swarm
// worker through Partition::announce (the storage code builds a shm::PeerView of the torrent's
// candidates and calls the policy). Today: `random`. Location-aware policies (`nearest`,
// `tiered`) implement the same interface.
#pragma once
#include "shm/peer_view.hpp"

namespace shoal::worker {

// `random`: every candidate equally likely. When there are no more candidates than numwant,
// all of them (but the asker); otherwise a random start and a random stride coprime with n visit
// n distinct entries in a pseudo-random order, in chunks whose records are prefetched before
// they are copied (a large swarm's records are scattered; their cache misses then overlap).
class RandomPolicy final : public shm::PeerPolicy {
 public:
  const char* name() const override { return "random"; }
  uint16_t select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                  uint8_t* out) const override;
};

// The process-wide `random` policy (stateless).
const shm::PeerPolicy& random_policy();

}  // namespace shoal::worker
