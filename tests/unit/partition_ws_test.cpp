// tests/unit/partition_ws_test.cpp — WebTorrent peers in a partition (issue 10): kept apart from
// the UDP/HTTP peers of the same info_hash, peer_id bound to its first live connection, offer
// targets distinct/live/never the asker, dead connections' peers dropped, stopped only from the
// owning connection, completed once, validate() and recover() agree with the new records.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <set>
#include <tuple>

#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"

namespace shoal::shm {
namespace {

using test_support::Seg;
using Id = std::array<uint8_t, 20>;

Id id_of(uint32_t n, uint8_t salt = 0) {
  Id h{};
  for (int i = 0; i < 20; ++i) h[i] = uint8_t(n * 13 + i * 3 + salt);
  std::memcpy(h.data() + 8, &n, 4);
  return h;
}

// Socket slots 0..3, generation 7 live (ring set 1) unless marked dead.
struct FakeLive final : WsLiveness {
  uint32_t live_gen[4] = {7, 7, 7, 7};
  int ring_set(uint8_t slot, uint32_t generation) const override {
    return slot < 4 && live_gen[slot] == generation ? 1 : -1;
  }
};

struct WsFixture : ::testing::Test {
  Seg seg{PartitionCapacity{64, 256}};
  Partition part{seg.base, seg.size};
  FakeLive live;
  Id hash = id_of(1, 99);
  WsTarget targets[64];

  WsAnnounceResult ann(uint32_t peer, uint8_t slot, uint32_t token, bool seeder = false, Event ev = Event::none,
                       uint16_t offers = 10, uint32_t generation = 7, uint32_t now = 100) {
    Id pid = id_of(peer);
    WsAnnounceInput in{};
    in.info_hash = hash.data();
    in.peer_id = pid.data();
    in.slot = slot;
    in.generation = generation;
    in.token = token;
    in.event = uint8_t(ev);
    in.seeder = seeder;
    in.offers = offers;
    in.now = now;
    return part.announce_webtorrent(in, targets, live);
  }
};

TEST_F(WsFixture, KeptApartFromUdpHttpPeersOfTheSameInfoHash) {
  AnnounceInput in{};
  in.info_hash = hash.data();
  in.family = 4;
  uint32_t a = htonl(0x0a000001);
  std::memcpy(in.addr, &a, 4);
  in.port = htons(6881);
  in.seeder = true;
  in.now = 100;
  uint8_t peers[600];
  ASSERT_EQ(part.announce(in, peers).status, 0);
  WsAnnounceResult r = ann(1, 0, 11);
  EXPECT_EQ(r.status, uint8_t(ResponseStatus::ok));
  EXPECT_EQ(r.leechers, 1u);
  EXPECT_EQ(r.seeders, 0u) << "the UDP seeder is not a WebTorrent peer";
  EXPECT_EQ(r.target_count, 0) << "the UDP seeder cannot take an offer";
  ScrapeResult bt = part.scrape(hash.data()), wt = part.scrape_webtorrent(hash.data());
  EXPECT_EQ(bt.seeders, 1u);
  EXPECT_EQ(bt.leechers, 0u);
  EXPECT_EQ(wt.leechers, 1u);
  EXPECT_EQ(wt.seeders, 0u);
  PartitionTotals t = part.totals();
  EXPECT_EQ(t.torrents, 2u) << "one record per kind";
  EXPECT_EQ(t.peers_v4, 1u);
  EXPECT_EQ(t.peers_v6, 0u);
  EXPECT_EQ(t.peers_ws, 1u);
  EXPECT_EQ(t.seeders, 1u);
  EXPECT_EQ(t.leechers, 1u);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(WsFixture, OfferTargetsAreDistinctLivePeersNeverTheAsker) {
  for (uint32_t p = 1; p <= 6; ++p) ASSERT_EQ(ann(p, uint8_t(p % 4), 100 + p, false, Event::started, 0).status, 0);
  WsAnnounceResult r = ann(1, 1, 101, false, Event::none, 10);
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.leechers, 6u);
  EXPECT_EQ(r.target_count, 5) << "every other peer, once";
  std::set<uint32_t> tokens;
  for (int i = 0; i < r.target_count; ++i) {
    EXPECT_NE(targets[i].token, 101u) << "never the asker";
    EXPECT_EQ(targets[i].generation, 7u);
    EXPECT_EQ(targets[i].ring_set, 1);
    EXPECT_EQ(targets[i].slot, (targets[i].token - 100) % 4) << "the slot the target announced from";
    tokens.insert(targets[i].token);
  }
  EXPECT_EQ(tokens.size(), 5u);
  EXPECT_LE(ann(2, 2, 102, false, Event::none, 3).target_count, 3) << "at most the offers asked for";
}

TEST_F(WsFixture, SeederGetsOnlyLeechersAsTargets) {
  ASSERT_EQ(ann(1, 0, 1, true).status, 0);
  ASSERT_EQ(ann(2, 0, 2, true).status, 0);
  ASSERT_EQ(ann(3, 0, 3, false).status, 0);
  WsAnnounceResult r = ann(1, 0, 1, true, Event::none, 10);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].token, 3u);
  EXPECT_EQ(r.seeders, 2u);
  EXPECT_EQ(r.leechers, 1u);
}

TEST_F(WsFixture, PeerIdBoundToItsLiveConnection) {
  ASSERT_EQ(ann(1, 0, 11).status, 0);
  EXPECT_EQ(ann(1, 1, 55).status, uint8_t(ResponseStatus::peer_id_taken)) << "another live connection";
  EXPECT_EQ(ann(1, 0, 12).status, uint8_t(ResponseStatus::peer_id_taken)) << "same worker, other connection";
  // The forger's stopped must not remove the owner's peer either.
  EXPECT_EQ(ann(1, 1, 55, false, Event::stopped).status, uint8_t(ResponseStatus::peer_id_taken));
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 1u);
  ASSERT_EQ(ann(2, 1, 21).status, 0);
  WsAnnounceResult r = ann(2, 1, 21, false, Event::none, 5);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].token, 11u) << "offers still go to the owner's connection";
  EXPECT_EQ(targets[0].slot, 0);
}

TEST_F(WsFixture, DeadConnectionsPeersAreNeverTargetsAndAreTakenOver) {
  ASSERT_EQ(ann(1, 0, 11).status, 0);
  ASSERT_EQ(ann(2, 2, 22).status, 0);
  live.live_gen[0] = 8;  // socket slot 0 restarted: its connections are gone
  WsAnnounceResult r = ann(2, 2, 22, false, Event::none, 5);
  EXPECT_EQ(r.target_count, 0) << "the dead peer is not handed out";
  EXPECT_EQ(r.leechers, 1u) << "and it was removed on the way";
  // Peer 1 reconnects on the restarted worker with the same peer_id: allowed (its old record
  // belonged to a dead process). Meanwhile it is a live target again.
  EXPECT_EQ(ann(1, 0, 5, false, Event::none, 0, 8).status, 0);
  r = ann(2, 2, 22, false, Event::none, 5);
  ASSERT_EQ(r.target_count, 1);
  EXPECT_EQ(targets[0].generation, 8u);
  EXPECT_EQ(targets[0].token, 5u);
  EXPECT_EQ(part.validate(), "");
}

TEST_F(WsFixture, ExpireStepWithLivenessPurgesDeadPeers) {
  for (uint32_t p = 1; p <= 5; ++p) ASSERT_EQ(ann(p, uint8_t(p % 2), p).status, 0);
  live.live_gen[1] = 0;  // slot 1 died: peers 1, 3, 5
  // The purge after a socket worker died touches WebTorrent swarms only: an empty UDP/HTTP
  // torrent (kept until the regular sweep, with its completed count) stays.
  AnnounceInput bt{};
  bt.info_hash = hash.data();
  bt.family = 4;
  bt.port = htons(1);
  bt.seeder = true;
  bt.event = uint8_t(Event::completed);
  bt.now = 1;
  ASSERT_EQ(part.announce(bt, nullptr).status, 0);
  bt.event = uint8_t(Event::stopped);
  ASSERT_EQ(part.announce(bt, nullptr).status, 0);
  ExpireResult e = part.expire_step(101, 3600, 1000, &live, true);
  EXPECT_EQ(part.scrape(hash.data()).completed, 1u) << "the empty UDP/HTTP torrent is still there";
  EXPECT_EQ(e.peers_removed, 3u);
  EXPECT_EQ(part.scrape_webtorrent(hash.data()).leechers, 2u);
  live.live_gen[0] = 0;
  part.expire_step(101, 3600, 1000, &live, true);
  part.expire_step(101, 3600, 1000, &live, true);
  EXPECT_EQ(part.totals().peers_ws, 0u);
  EXPECT_EQ(part.totals().torrents, 1u) << "the empty WebTorrent swarm is removed, the UDP one is not";
  EXPECT_EQ(part.validate(), "");
}

TEST_F(WsFixture, StoppedRemovesOnlyTheOwnPeerAndCompletedCountsOnce) {
  ASSERT_EQ(ann(1, 0, 11, false, Event::started).status, 0);
  WsAnnounceResult r = ann(1, 0, 11, true, Event::completed);
  EXPECT_EQ(r.completed, 1u);
  EXPECT_EQ(r.seeders, 1u);
  EXPECT_EQ(r.leechers, 0u);
  r = ann(1, 0, 11, true, Event::completed);
  EXPECT_EQ(r.completed, 1u) << "once per peer";
  EXPECT_EQ(ann(2, 0, 12, false, Event::completed).completed, 1u) << "completed with left > 0 counts nothing";
  r = ann(1, 0, 11, true, Event::stopped);
  EXPECT_EQ(r.seeders, 0u);
  EXPECT_EQ(r.target_count, 0);
  EXPECT_EQ(part.scrape(hash.data()).leechers, 0u) << "nothing leaked into the UDP/HTTP swarm";
  EXPECT_EQ(part.validate(), "");
}

TEST_F(WsFixture, TrackerFullChangesNothing) {
  Seg small{PartitionCapacity{4, 8}};
  Partition p(small.base, small.size);
  Id pid;
  uint32_t stored = 0;
  WsAnnounceResult r{};
  for (uint32_t n = 1; n <= 9 && r.status == 0; ++n) {
    pid = id_of(n);
    WsAnnounceInput in{};
    in.info_hash = hash.data();
    in.peer_id = pid.data();
    in.slot = 0;
    in.generation = 7;
    in.token = n;
    in.now = 1;
    r = p.announce_webtorrent(in, targets, live);
    if (r.status == 0) ++stored;
  }
  ASSERT_EQ(r.status, uint8_t(ResponseStatus::tracker_full)) << "a partition for 8 peers took 9";
  EXPECT_GE(stored, 4u);
  EXPECT_EQ(r.leechers, stored) << "the refused announce reports the swarm as it is";
  EXPECT_EQ(p.totals().peers_ws, stored);
  EXPECT_EQ(p.validate(), "");
}

TEST_F(WsFixture, RecoverRebuildKeepsWebTorrentPeersApart) {
  for (uint32_t p = 1; p <= 4; ++p) ASSERT_EQ(ann(p, 0, p, p == 4).status, 0);
  // Corrupt a derived table: the peer index. Recovery must rebuild it from the records, keeping
  // each peer in its own kind of torrent.
  PartitionRegions r = partition_regions(seg.layout());
  std::memset(r.pindex, 0, sizeof(PeerSlot) * r.pslots);
  RecoverReport rep = part.recover();
  EXPECT_TRUE(rep.rebuilt);
  EXPECT_EQ(part.validate(), "");
  EXPECT_EQ(part.totals().peers_ws, 4u);
  EXPECT_EQ(part.totals().seeders_ws, 1u);
  EXPECT_EQ(part.totals().peers_v6, 0u);
  EXPECT_EQ(ann(1, 1, 99).status, uint8_t(ResponseStatus::peer_id_taken)) << "binding survives the rebuild";
}

}  // namespace
}  // namespace shoal::shm
