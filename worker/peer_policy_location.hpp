// worker/peer_policy_location.hpp — the location-aware peer-selection policies (issue 11):
// `nearest` and `tiered`, on the seam of shm/peer_view.hpp. They read each candidate's topology
// group (resolved by the socket worker from the topology map when the peer announced) and the
// topology segment's location table (which rack, zone and region a group is).
//
// Both examine every candidate of the swarm once per announce (O(swarm size), not O(numwant)
// like `random`): meant for datacenter swarms of up to some thousands of hosts.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "shm/peer_view.hpp"
#include "shm/topology_segment.hpp"

namespace shoal::worker {

// The location table as a policy reads it: group g (1-based) is entries[g - 1] while
// g <= *count. Without a table (topology.mode "prefix", or in tests), every group is its own
// rack and shares nothing with another.
struct Locations {
  const shm::LocationEntry* entries = nullptr;
  const uint32_t* count = nullptr;  // published entries; read with acquire (append-only table)

  // How close two groups are: 4 = the same group (rack); otherwise the number of leading levels
  // their paths share (3 = same zone under a 4-level map, 1 = same region, 0 = nothing or an
  // unknown group).
  uint8_t closeness(uint16_t a, uint16_t b) const;
};

// `nearest`: fills the reply from the asker's rack first, then the locations sharing the most
// levels with it (zone, then region), then anywhere; random within each tier. An asker of unknown
// location (group 0) gets `random`.
class NearestPolicy final : public shm::PeerPolicy {
 public:
  explicit NearestPolicy(Locations locations) : loc_(locations) {}
  const char* name() const override { return "nearest"; }
  uint16_t select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                  uint8_t* out) const override;

 private:
  Locations loc_;
};

// `tiered`: the two-tier swarm of p2ptracker, generalised. Per torrent and rack (group), at most
// `max_representatives` leechers are representatives (kPeerRepresentative, kept in the
// partition). A leecher becomes one at its announce when its rack has fewer (so one that stops,
// expires or completes is replaced by the next host of the rack to announce; a rack that has a
// seeder has none, and its representatives step down at their next announce). Replies:
//   - a rack that has a seeder needs no other rack: its hosts get that rack's seeders, then its
//     leechers;
//   - a representative gets other racks' representatives and seeders (the global tier), then
//     its own rack;
//   - any other leecher gets its rack's representatives, then its rack's other leechers;
//   - a seeder gets its rack's leechers, then other racks' representatives (never another
//     rack's ordinary host, which would pull the file over that rack's uplink);
//   - nobody is starved: a leecher whose tiers are all empty gets global peers.
// An asker of unknown location (group 0) gets `random`.
class TieredPolicy final : public shm::PeerPolicy {
 public:
  TieredPolicy(Locations locations, uint32_t max_representatives)
      : loc_(locations), max_reps_(max_representatives) {}
  const char* name() const override { return "tiered"; }
  uint16_t select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                  uint8_t* out) const override;
  bool elect(const shm::PeerView& view, const shm::Asker& asker) const override;
  bool elects() const override { return true; }

 private:
  Locations loc_;
  uint32_t max_reps_;
};

// The policy named `name` ("random", "nearest", "tiered"); nullptr for another name.
std::unique_ptr<shm::PeerPolicy> make_peer_policy(const std::string& name, Locations locations,
                                                  uint32_t max_representatives);

}  // namespace shoal::worker
