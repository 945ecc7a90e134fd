// Peer-selection policies (worker/peer_policy) on constructed swarms, without a partition: the
// seam of shm/peer_view.hpp. `random`: never the asker, no more than numwant, distinct entries,
// everything when there are fewer candidates, every candidate reachable and about equally often,
// IPv4 and IPv6 entries.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <set>
#include <vector>

#include "shm/partition_layout.hpp"
#include "worker/peer_policy.hpp"

namespace shoal::worker {
namespace {

// A constructed swarm of one family: `leechers` then `seeders` records laid out as the partition
// does (address, then shm::PeerTail: port, topology group, state). Peer i has port 10000 + i.
struct Swarm {
  uint8_t family;
  uint32_t stride;
  std::vector<uint8_t> a, b;
  uint32_t na, nb;
  Swarm(uint8_t fam, uint32_t leechers, uint32_t seeders)
      : family(fam), stride(shm::peer_stride(fam)), a(size_t(leechers) * stride), b(size_t(seeders) * stride),
        na(leechers), nb(seeders) {
    for (uint32_t i = 0; i < leechers + seeders; i++) {
      uint8_t* rec = i < na ? &a[size_t(i) * stride] : &b[size_t(i - na) * stride];
      uint32_t al = fam == 6 ? 16 : 4;
      for (uint32_t k = 0; k < al; k++) rec[k] = uint8_t(i * 7 + k);
      shm::PeerTail tail{htons(uint16_t(10000 + i)), uint16_t(i % 3 + 1), 0};
      memcpy(rec + al, &tail, sizeof tail);
    }
  }
  shm::PeerView view(bool seeder_asker, uint32_t self) const {
    shm::PeerView v;
    v.family = family;
    v.stride = stride;
    v.list_a = a.data();
    v.list_b = b.data();
    v.na = na;
    v.n = na + (seeder_asker ? 0 : nb);
    v.self = self;
    return v;
  }
};

// The peer numbers (port - 10000) of a reply.
std::vector<uint32_t> ports(const shm::PeerView& v, const std::vector<uint8_t>& out, uint16_t n) {
  std::vector<uint32_t> r;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t port;
    memcpy(&port, &out[size_t(i) * v.entry_bytes() + v.addr_bytes()], 2);
    r.push_back(ntohs(port) - 10000u);
  }
  return r;
}

TEST(RandomPolicy, FewCandidatesAllButTheAsker) {
  Swarm s(4, 5, 3);
  shm::PeerView v = s.view(false, 2);  // a leecher asker at index 2
  std::vector<uint8_t> out(200 * 18);
  uint64_t rng = 1;
  uint16_t n = random_policy().select(v, {4, false, 0}, 50, &rng, out.data());
  EXPECT_EQ(n, 7);
  std::vector<uint32_t> got = ports(v, out, n);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{0, 1, 3, 4, 5, 6, 7}));
  // The entry is the compact form: address then port.
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[6], uint8_t(1 * 7));
}

TEST(RandomPolicy, ASeederGetsNoSeeders) {
  Swarm s(4, 4, 6);
  shm::PeerView v = s.view(true, shm::PeerView::kNoSelf);  // the view excludes list B
  std::vector<uint8_t> out(200 * 6);
  uint64_t rng = 7;
  uint16_t n = random_policy().select(v, {4, true, 0}, 50, &rng, out.data());
  std::vector<uint32_t> got = ports(v, out, n);
  EXPECT_EQ(std::set<uint32_t>(got.begin(), got.end()), (std::set<uint32_t>{0, 1, 2, 3}));
}

TEST(RandomPolicy, LargeSwarmDistinctNumwantNeverSelfAndEveryoneReachable) {
  for (uint8_t fam : {4, 6}) {
    Swarm s(fam, 700, 300);
    shm::PeerView v = s.view(false, 123);
    std::vector<uint8_t> out(200 * 18);
    std::set<uint32_t> seen;
    uint64_t rng = 42;
    for (int round = 0; round < 200; round++) {
      uint16_t n = random_policy().select(v, {fam, false, 0}, 50, &rng, out.data());
      ASSERT_EQ(n, 50);
      std::vector<uint32_t> got = ports(v, out, n);
      std::set<uint32_t> distinct(got.begin(), got.end());
      ASSERT_EQ(distinct.size(), 50u) << "a peer twice in one reply";
      ASSERT_EQ(distinct.count(123), 0u) << "the asker got itself";
      seen.insert(got.begin(), got.end());
    }
    EXPECT_EQ(seen.size(), 999u) << "every candidate but the asker appears in some reply";
  }
}

// The contiguous run wraps from the last candidate to the first and steps over the asker; over
// many replies every candidate is returned about equally often (numwant / candidates of them),
// the neighbours of the asker and of the list ends included: nobody is always left out.
TEST(RandomPolicy, EveryCandidateAboutEquallyOftenAcrossTheWrapAndTheAsker) {
  for (bool seeder : {false, true}) {
    Swarm s(4, 60, 40);
    uint32_t self = seeder ? 59 : 60;  // the last leecher, or the first seeder
    shm::PeerView v = s.view(seeder, seeder ? shm::PeerView::kNoSelf : self);
    uint32_t candidates = seeder ? 60 : 99;
    std::vector<uint8_t> out(200 * 6);
    std::vector<uint32_t> times(100, 0);
    uint64_t rng = 99;
    constexpr int kReplies = 20000;
    constexpr uint16_t kNumwant = 10;
    for (int round = 0; round < kReplies; round++) {
      uint16_t n = random_policy().select(v, {4, seeder, 0}, kNumwant, &rng, out.data());
      ASSERT_EQ(n, kNumwant);
      std::vector<uint32_t> got = ports(v, out, n);
      ASSERT_EQ(std::set<uint32_t>(got.begin(), got.end()).size(), size_t(kNumwant)) << "a peer twice in one reply";
      for (uint32_t p : got) {
        ASSERT_TRUE(seeder ? p < 60 : p != self) << "peer " << p;
        times[p]++;
      }
    }
    double expected = double(kReplies) * kNumwant / candidates;  // 2,020 (leecher) or 3,333 (seeder)
    for (uint32_t p = 0; p < 100; p++) {
      if (seeder ? p >= 60 : p == self) continue;
      EXPECT_GT(times[p], expected * 0.8) << "peer " << p << " returned too rarely";
      EXPECT_LT(times[p], expected * 1.2) << "peer " << p << " returned too often";
    }
  }
}

TEST(RandomPolicy, ZeroNumwantOrEmptySwarm) {
  Swarm s(4, 3, 0);
  std::vector<uint8_t> out(64);
  uint64_t rng = 3;
  EXPECT_EQ(random_policy().select(s.view(false, 0), {4, false, 0}, 0, &rng, out.data()), 0);
  Swarm empty(6, 0, 0);
  EXPECT_EQ(random_policy().select(empty.view(false, shm::PeerView::kNoSelf), {6, false, 0}, 10, &rng, out.data()), 0);
  Swarm alone(4, 1, 0);  // only the asker
  EXPECT_EQ(random_policy().select(alone.view(false, 0), {4, false, 0}, 10, &rng, out.data()), 0);
}

TEST(PeerView, TopologyGroupAndSeederOfACandidate) {
  Swarm s(6, 2, 2);
  shm::PeerView v = s.view(false, shm::PeerView::kNoSelf);
  EXPECT_FALSE(v.is_seeder(1));
  EXPECT_TRUE(v.is_seeder(2));
  EXPECT_EQ(v.topology_group(0), 1);
  EXPECT_EQ(v.topology_group(3), 1);  // peer 3: 3 % 3 + 1
  EXPECT_EQ(v.topology_group(2), 3);
  EXPECT_EQ(&shm::default_peer_policy(), &random_policy());
  EXPECT_STREQ(random_policy().name(), "random");
}

}  // namespace
}  // namespace shoal::worker
