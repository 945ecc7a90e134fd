// The location-aware policies (worker/peer_policy_location, issue 11). `nearest` on constructed
// views (nearest-first order, random within a tier, unknown askers); `tiered` through a real
// partition (shm/partition), since its representatives live there: the cap per rack,
// replacement on stop, expiry and completion, survival across a new Partition object on the
// same memory (a swarm worker's kill -9), who gets which peers, and that nobody is starved.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <map>
#include <set>
#include <vector>

#include "conf/topology_table.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"
#include "worker/peer_policy_location.hpp"

namespace shoal::worker {
namespace {

// Racks of a 3-level map: eu/az1/r1, eu/az1/r2 (same zone), eu/az2/r3 (same region), us/az9/r4.
struct Map {
  conf::LocationRegistry reg{16};
  uint32_t count = 0;
  uint16_t r1, r2, r3, r4;
  Map() {
    r1 = reg.intern("eu/az1/r1");
    r2 = reg.intern("eu/az1/r2");
    r3 = reg.intern("eu/az2/r3");
    r4 = reg.intern("us/az9/r4");
    count = uint32_t(reg.entries().size());
  }
  Locations locations() const { return {reg.entries().data(), &count}; }
};

// A constructed IPv4 swarm (leechers only): peer i has port 10000 + i and group groups[i].
struct Swarm {
  std::vector<uint8_t> recs;
  explicit Swarm(const std::vector<uint16_t>& groups) : recs(groups.size() * sizeof(shm::PeerV4)) {
    for (size_t i = 0; i < groups.size(); i++) {
      shm::PeerV4 rec{{10, 0, 0, uint8_t(i)}, {htons(uint16_t(10000 + i)), groups[i], 0}};
      memcpy(&recs[i * sizeof rec], &rec, sizeof rec);  // as the partition stores it
    }
  }
  shm::PeerView view(uint32_t self) const {
    shm::PeerView v;
    v.list_a = recs.data();
    v.list_b = recs.data();
    v.na = v.n = uint32_t(recs.size() / sizeof(shm::PeerV4));
    v.self = self;
    return v;
  }
};

std::vector<uint32_t> peers_of(const std::vector<uint8_t>& out, uint16_t n, uint32_t entry = 6) {
  std::vector<uint32_t> r;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t port;
    memcpy(&port, &out[size_t(i) * entry + entry - 2], 2);
    r.push_back(ntohs(port) - 10000u);
  }
  return r;
}

TEST(NearestPolicy, RackThenZoneThenRegionThenAnywhere) {
  Map m;
  // 0..2 in r1 (0 asks), 3..5 in r2, 6..8 in r3, 9..11 in r4.
  Swarm s({m.r1, m.r1, m.r1, m.r2, m.r2, m.r2, m.r3, m.r3, m.r3, m.r4, m.r4, m.r4});
  NearestPolicy p(m.locations());
  std::vector<uint8_t> out(200 * 6);
  uint64_t rng = 3;
  auto rank = [](uint32_t peer) { return peer < 3 ? 0 : peer < 6 ? 1 : peer < 9 ? 2 : 3; };
  for (uint16_t numwant = 1; numwant <= 12; numwant++) {
    uint16_t n = p.select(s.view(0), {4, false, m.r1, false}, numwant, &rng, out.data());
    ASSERT_EQ(n, std::min<uint16_t>(numwant, 11));
    std::vector<uint32_t> got = peers_of(out, n);
    EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()).size(), n);
    EXPECT_EQ(std::count(got.begin(), got.end(), 0u), 0);  // never the asker
    // Every peer left out is no nearer than every peer chosen.
    int worst_in = 0;
    for (uint32_t g : got) worst_in = std::max(worst_in, rank(g));
    for (uint32_t peer = 1; peer < 12; peer++) {
      if (std::count(got.begin(), got.end(), peer) == 0) {
        EXPECT_GE(rank(peer), worst_in) << "numwant " << numwant;
      }
    }
  }
}

TEST(NearestPolicy, RandomWithinATierAndUnknownAskersGetRandom) {
  Map m;
  std::vector<uint16_t> groups(40, m.r4);
  groups[0] = m.r1;
  Swarm s(groups);
  NearestPolicy p(m.locations());
  std::vector<uint8_t> out(200 * 6);
  uint64_t rng = 11;
  std::map<uint32_t, int> seen;
  for (int round = 0; round < 200; round++) {
    uint16_t n = p.select(s.view(0), {4, false, m.r1, false}, 5, &rng, out.data());
    for (uint32_t peer : peers_of(out, n)) seen[peer]++;
  }
  EXPECT_EQ(seen.size(), 39u);  // every far peer gets its turn
  uint16_t n = p.select(s.view(0), {4, false, 0, false}, 50, &rng, out.data());
  EXPECT_EQ(n, 39);
}

TEST(NearestPolicy, PrefixModeGroupsShareOnlyTheirRack) {
  Locations none;  // no table: mode prefix
  EXPECT_EQ(none.closeness(7, 7), 4);
  EXPECT_EQ(none.closeness(7, 8), 0);
  EXPECT_EQ(none.closeness(0, 0), 0);
  Map m;
  Locations l = m.locations();
  EXPECT_EQ(l.closeness(m.r1, m.r2), 2);  // same zone
  EXPECT_EQ(l.closeness(m.r1, m.r3), 1);  // same region
  EXPECT_EQ(l.closeness(m.r1, m.r4), 0);
  EXPECT_EQ(l.closeness(m.r1, 999), 0);   // not (yet) in the table
}

// ---- tiered, through a partition --------------------------------------------------------

using Hash = std::array<uint8_t, 20>;

struct Deploy {
  shm::test_support::Seg seg{shm::PartitionCapacity{64, 1024}};
  shm::Partition part{seg.base, seg.size};
  Map m;
  TieredPolicy policy{m.locations(), 2};
  Hash ih{};
  uint32_t now = 100;
  uint8_t family = 4;  // of every host (6: fd00::rack:id)
  Deploy() { ih[0] = 0xab; }

  // Host `id` (10.0.rack.id, port 10000 + id) of rack group `g` announces; returns the peers it got.
  std::vector<uint32_t> announce(uint32_t id, uint16_t g, bool seeder = false, shm::Event ev = shm::Event::none,
                                 uint16_t numwant = 50) {
    shm::AnnounceInput in{};
    in.info_hash = ih.data();
    in.family = family;
    if (family == 4) in.addr[0] = 10, in.addr[2] = uint8_t(g), in.addr[3] = uint8_t(id);
    else in.addr[0] = 0xfd, in.addr[13] = uint8_t(g), in.addr[15] = uint8_t(id);
    in.port = htons(uint16_t(10000 + id));
    in.event = uint8_t(ev);
    in.seeder = seeder;
    in.numwant = numwant;
    in.topology_group = g;
    in.now = now;
    std::vector<uint8_t> out(200 * 18);
    shm::AnnounceResult r = part.announce(in, out.data(), policy);
    EXPECT_EQ(r.status, 0);
    return peers_of(out, r.peer_count, family == 4 ? 6 : 18);
  }
  // The representatives stored in the partition, as host ids.
  std::set<uint32_t> representatives() {
    std::set<uint32_t> reps;
    // Read back through the seam: a probe seeder joins (its view holds every leecher) and leaves.
    struct Probe : shm::PeerPolicy {
      std::set<uint32_t>* reps;
      const char* name() const override { return "probe"; }
      uint16_t select(const shm::PeerView& v, const shm::Asker&, uint16_t, uint64_t*, uint8_t*) const override {
        for (uint32_t i = 0; i < v.na; i++) {
          if (!v.is_representative(i)) continue;
          uint16_t port;
          memcpy(&port, v.record(i) + v.addr_bytes(), 2);
          reps->insert(ntohs(port) - 10000u);
        }
        return 0;
      }
    } probe;
    probe.reps = &reps;
    shm::AnnounceInput in{};
    in.info_hash = ih.data();
    in.family = family;
    in.addr[0] = 127, in.addr[3] = 1;  // a seeder probe: sees every leecher, joins as a seeder
    in.port = htons(1);
    in.seeder = true;
    in.numwant = 1;
    in.now = now;
    uint8_t out[18];
    part.announce(in, out, probe);
    in.event = uint8_t(shm::Event::stopped);
    part.announce(in, out, probe);
    return reps;
  }
};

TEST(TieredPolicy, AtMostMaxRepresentativesPerRackAndTheyGetOtherRacks) {
  Deploy d;
  d.announce(99, d.m.r4, true);  // the seeder, in r4
  for (uint32_t id = 1; id <= 5; id++) d.announce(id, d.m.r1);
  for (uint32_t id = 11; id <= 15; id++) d.announce(id, d.m.r2);
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{1, 2, 11, 12}));  // the first two of each rack
  // A representative: the global tier (other racks' representatives and the seeder) first, then its rack.
  std::vector<uint32_t> rep = d.announce(1, d.m.r1, false, shm::Event::none, 3);
  EXPECT_EQ(std::set<uint32_t>(rep.begin(), rep.end()), (std::set<uint32_t>{99, 11, 12}));
  // An ordinary host: only its own rack, representatives first; never another rack.
  std::vector<uint32_t> host = d.announce(4, d.m.r1, false, shm::Event::none, 2);
  EXPECT_EQ(std::set<uint32_t>(host.begin(), host.end()), (std::set<uint32_t>{1, 2}));
  host = d.announce(4, d.m.r1);
  EXPECT_EQ(std::set<uint32_t>(host.begin(), host.end()), (std::set<uint32_t>{1, 2, 3, 5}));
  // The seeder: representatives of every rack, never an ordinary host of another rack.
  std::vector<uint32_t> seeder = d.announce(99, d.m.r4, true);
  EXPECT_EQ(std::set<uint32_t>(seeder.begin(), seeder.end()), (std::set<uint32_t>{1, 2, 11, 12}));
}

TEST(TieredPolicy, AStoppedExpiredOrCompletedRepresentativeIsReplaced) {
  Deploy d;
  for (uint32_t id = 1; id <= 5; id++) d.announce(id, d.m.r1);
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{1, 2}));
  d.announce(1, d.m.r1, false, shm::Event::stopped);
  d.announce(4, d.m.r1);  // the next host to announce takes the free place
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{2, 4}));
  d.announce(2, d.m.r1, true, shm::Event::completed);  // completion ends it: the rack has a copy now
  d.announce(3, d.m.r1);                               // so nobody is elected
  d.announce(4, d.m.r1);                               // and 4 steps down
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{}));
  d.announce(2, d.m.r1, true, shm::Event::stopped);  // the copy leaves: the next host to ask is elected
  d.announce(3, d.m.r1);
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{3}));
  d.now = 200;  // only host 5 renews; 3 and 4 expire
  d.announce(5, d.m.r1);
  while (!d.part.expire_step(200 + 50, 60, 64).wrapped) {
  }
  d.announce(5, d.m.r1);
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{5}));
}

TEST(TieredPolicy, RepresentativesSurviveANewOwnerOfThePartition) {
  Deploy d;
  for (uint32_t id = 1; id <= 4; id++) d.announce(id, d.m.r1);
  shm::Partition again(d.seg.base, d.seg.size);  // what a respawned swarm worker attaches
  shm::RecoverReport rep = again.recover();
  EXPECT_FALSE(rep.rebuilt) << rep.problem;
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{1, 2}));
  // Host 3 stays an ordinary host: the places are still taken.
  std::vector<uint32_t> got = d.announce(3, d.m.r1, false, shm::Event::none, 2);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{1, 2}));
}

TEST(TieredPolicy, ARackWithASeederKeepsToItselfAndNobodyStarves) {
  Deploy d;
  d.announce(99, d.m.r4, true);  // the original seeder, far away
  d.announce(1, d.m.r1);         // alone in its rack: a representative, gets the seeder
  EXPECT_EQ(d.announce(1, d.m.r1), (std::vector<uint32_t>{99}));
  d.announce(2, d.m.r1);
  d.announce(3, d.m.r1);  // an ordinary host: its representatives only
  std::vector<uint32_t> got = d.announce(3, d.m.r1);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{1, 2}));
  d.announce(2, d.m.r1, true, shm::Event::completed);  // r1 now has a copy
  got = d.announce(1, d.m.r1);  // even a representative stays in the rack
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{2, 3}));
  // Max one representative: a lone rack's second host still gets someone.
  d.policy = TieredPolicy(d.m.locations(), 1);
  d.announce(21, d.m.r3);
  got = d.announce(22, d.m.r3);
  EXPECT_EQ(got, (std::vector<uint32_t>{21}));
}

TEST(TieredPolicy, IPv6SwarmsAlike) {
  Deploy d;
  d.family = 6;
  d.announce(99, d.m.r4, true);
  for (uint32_t id = 1; id <= 3; id++) d.announce(id, d.m.r1);
  for (uint32_t id = 11; id <= 13; id++) d.announce(id, d.m.r2);
  EXPECT_EQ(d.representatives(), (std::set<uint32_t>{1, 2, 11, 12}));
  std::vector<uint32_t> got = d.announce(3, d.m.r1);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{1, 2}));
  got = d.announce(1, d.m.r1, false, shm::Event::none, 3);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{99, 11, 12}));
}

}  // namespace
}  // namespace shoal::worker
