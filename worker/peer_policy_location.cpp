// worker/peer_policy_location.cpp — see peer_policy_location.hpp. Runs in the swarm worker, once
// per announce. Candidates are sorted into tiers (indices into the view, in scratch vectors
// kept between calls: the swarm worker is single-threaded), then each tier is drawn from at
// random (a partial Fisher-Yates shuffle) until numwant peers are written.
#include "worker/peer_policy_location.hpp"

#include <atomic>
#include <utility>
#include <vector>

#include "worker/peer_policy.hpp"

namespace shoal::worker {
namespace {

using Tier = std::vector<uint32_t>;

// Writes up to numwant - *got random members of `tier` as compact entries after the *got
// already written. Reorders `tier`.
void draw(Tier& tier, const shm::PeerView& view, uint16_t numwant, uint64_t* rng, uint8_t* out, uint16_t* got) {
  uint32_t entry = view.entry_bytes();
  for (size_t i = 0; i < tier.size() && *got < numwant; i++) {
    size_t j = i + shm::xorshift_next(rng) % (tier.size() - i);
    std::swap(tier[i], tier[j]);
    view.emit(tier[i], out + size_t((*got)++) * entry);
  }
}

// Scratch tiers, cleared for each call.
std::vector<Tier>& scratch(size_t n) {
  static std::vector<Tier> tiers;
  if (tiers.size() < n) tiers.resize(n);
  for (size_t i = 0; i < n; i++) tiers[i].clear();
  return tiers;
}

}  // namespace

uint8_t Locations::closeness(uint16_t a, uint16_t b) const {
  if (a == 0 || b == 0) return 0;
  if (a == b) return 4;
  if (!entries || !count) return 0;
  uint32_t n = std::atomic_ref<const uint32_t>(*count).load(std::memory_order_acquire);
  if (a > n || b > n) return 0;
  const shm::LocationEntry& x = entries[a - 1];
  const shm::LocationEntry& y = entries[b - 1];
  uint8_t depth = std::min<uint8_t>(std::min(x.depth, y.depth), 4), shared = 0;
  while (shared < depth && x.level[shared] != 0 && x.level[shared] == y.level[shared]) ++shared;
  return std::min<uint8_t>(shared, 3);
}

uint16_t NearestPolicy::select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                               uint8_t* out) const {
  if (asker.topology_group == 0) return random_policy().select(view, asker, numwant, rng, out);
  if (numwant == 0 || out == nullptr || view.n == 0) return 0;
  std::vector<Tier>& tiers = scratch(5);
  uint16_t last = 0;
  uint8_t cache = 0;  // closeness of group `last` (0 for group 0); neighbours often share a group
  for (uint32_t v = 0; v < view.n; v++) {
    if (v == view.self) continue;
    uint16_t g = view.topology_group(v);
    if (g != last) {
      last = g;
      cache = loc_.closeness(asker.topology_group, g);
    }
    tiers[cache].push_back(v);
  }
  uint16_t got = 0;
  for (int t = 4; t >= 0 && got < numwant; t--) draw(tiers[t], view, numwant, rng, out, &got);
  return got;
}

bool TieredPolicy::elect(const shm::PeerView& view, const shm::Asker& asker) const {
  if (asker.seeder || asker.topology_group == 0) return false;
  // A rack that has a seeder needs no representative (its hosts never leave the rack): none is
  // elected there, and one that has become unnecessary steps down at its next announce, so other
  // racks are not sent to it either.
  for (uint32_t v = view.na; v < view.n; v++)
    if (view.topology_group(v) == asker.topology_group) return false;
  if (asker.representative) return true;
  uint32_t reps = 0;
  for (uint32_t v = 0; v < view.na; v++) {  // representatives are leechers (list a)
    if (v != view.self && view.topology_group(v) == asker.topology_group && view.is_representative(v) &&
        ++reps >= max_reps_)
      return false;
  }
  return true;
}

uint16_t TieredPolicy::select(const shm::PeerView& view, const shm::Asker& asker, uint16_t numwant, uint64_t* rng,
                              uint8_t* out) const {
  if (asker.topology_group == 0) return random_policy().select(view, asker, numwant, rng, out);
  if (numwant == 0 || out == nullptr || view.n == 0) return 0;
  // The candidates by where they sit and what they are.
  enum { kLocalSeeders, kLocalReps, kLocalOthers, kRemoteSources, kRemoteOthers, kTiers };
  std::vector<Tier>& t = scratch(kTiers);
  for (uint32_t v = 0; v < view.n; v++) {
    if (v == view.self) continue;
    bool local = view.topology_group(v) == asker.topology_group;
    bool seeder = view.is_seeder(v), rep = !seeder && view.is_representative(v);
    if (local) t[seeder ? kLocalSeeders : rep ? kLocalReps : kLocalOthers].push_back(v);
    else t[seeder || rep ? kRemoteSources : kRemoteOthers].push_back(v);
  }
  uint16_t got = 0;
  auto take = [&](int tier) { draw(t[tier], view, numwant, rng, out, &got); };
  if (asker.seeder) {  // the view holds leechers only
    take(kLocalReps);
    take(kLocalOthers);
    take(kRemoteSources);
    return got;
  }
  if (!t[kLocalSeeders].empty()) {  // the rack has the file: the uplink is not needed
    take(kLocalSeeders);
    take(kLocalReps);
    take(kLocalOthers);
    return got;
  }
  if (asker.representative) {
    take(kRemoteSources);
    take(kLocalReps);
    take(kLocalOthers);
  } else {
    take(kLocalReps);
    take(kLocalOthers);
  }
  if (got == 0) {  // never starved: nothing in reach yet, so global peers
    take(kRemoteSources);
    take(kRemoteOthers);
  }
  return got;
}

std::unique_ptr<shm::PeerPolicy> make_peer_policy(const std::string& name, Locations locations,
                                                  uint32_t max_representatives) {
  if (name == "random") return std::make_unique<RandomPolicy>();
  if (name == "nearest") return std::make_unique<NearestPolicy>(locations);
  if (name == "tiered") return std::make_unique<TieredPolicy>(locations, max_representatives);
  return nullptr;
}

}  // namespace shoal::worker
