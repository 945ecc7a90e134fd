// tests/unit/relay_ring_test.cpp — the socket-to-socket relay of WebTorrent offers and answers
// (shm/relay_ring.hpp, worker/ws_relay.hpp): variable-length records in order across the wrap
// of the data area, a full ring refuses (never overwrites), records for another generation of
// the target slot are dropped, and the target worker is woken once per flush.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "shm/relay_ring.hpp"
#include "worker/worker_common.hpp"
#include "worker/ws_relay.hpp"

namespace shoal {
namespace {

struct Mem {
  size_t n;
  char* p;
  explicit Mem(size_t bytes) : n(bytes), p(static_cast<char*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096))) {
    std::memset(p, 0, n);
  }
  ~Mem() { std::free(p); }
};

TEST(RelayRing, RecordsComeOutInOrderAcrossTheWrap) {
  Mem m(sizeof(shm::RingHeader) + 65536);
  shm::RelayRing prod = shm::RelayRing::init(m.p, 65536), cons(m.p);
  uint32_t written = 0, read = 0;
  for (int round = 0; round < 200; round++) {  // ~10 laps of the data area, odd sizes
    for (int k = 0; k < 5; k++) {
      uint32_t len = 100 + uint32_t((written * 37) % 3000);
      uint8_t* at = prod.reserve(len);
      if (!at) break;
      shm::RelayRecord rec{len, shm::kRelayOffer, 0, written, 0};
      std::memcpy(at, &rec, sizeof rec);
      std::memset(at + sizeof rec, uint8_t(written), len);
      prod.commit();
      written++;
    }
    prod.publish();
    while (const shm::RelayRecord* r = cons.next()) {
      ASSERT_EQ(r->target_generation, read) << "in order";
      ASSERT_EQ(r->length, 100 + (read * 37) % 3000);
      const uint8_t* p = reinterpret_cast<const uint8_t*>(r + 1);
      ASSERT_EQ(p[0], uint8_t(read));
      ASSERT_EQ(p[r->length - 1], uint8_t(read));
      cons.consume(r);
      read++;
    }
    cons.release();
  }
  EXPECT_EQ(read, written);
  EXPECT_GT(written, 900u);
}

TEST(RelayRing, FullRingRefusesAndNothingIsOverwritten) {
  Mem m(sizeof(shm::RingHeader) + 65536);
  shm::RelayRing prod = shm::RelayRing::init(m.p, 65536), cons(m.p);
  uint32_t n = 0;
  while (uint8_t* at = prod.reserve(1000)) {
    shm::RelayRecord rec{1000, shm::kRelayAnswer, 0, n++, 0};
    std::memcpy(at, &rec, sizeof rec);
    prod.commit();
  }
  prod.publish();
  EXPECT_GE(n, 60u);
  EXPECT_EQ(prod.reserve(40000), nullptr) << "larger than half the ring: never fits";
  uint32_t seen = 0;
  while (const shm::RelayRecord* r = cons.next()) {
    EXPECT_EQ(r->target_generation, seen++);
    cons.consume(r);
  }
  cons.release();
  EXPECT_EQ(seen, n);
  EXPECT_NE(prod.reserve(1000), nullptr) << "room again once consumed";
}

TEST(WsRelay, DeliversToTheTargetProcessOnlyAndWakesItOnce) {
  shm::RelayGeometry g{2, 65536};
  Mem m(g.segment_bytes());
  for (uint32_t s = 0; s < 2; s++)
    for (uint32_t ks = 0; ks < 2; ks++)
      for (uint32_t d = 0; d < 2; d++)
        for (uint32_t kd = 0; kd < 2; kd++) shm::RelayRing::init(m.p + g.ring_offset(s, ks, d, kd), g.bytes);
  std::vector<int> fds;  // [slot * 2 + ring set]
  for (int i = 0; i < 4; i++) fds.push_back(eventfd(0, EFD_NONBLOCK));
  shm::CounterBlock counters{};
  worker::WsRelay a(m.p, g, {0, 0, 5}, fds, &counters);  // slot 0, set 0, generation 5
  worker::WsRelay b(m.p, g, {1, 1, 9}, fds, &counters);  // slot 1, set 1, generation 9
  worker::RelayHead head{};
  std::memset(head.peer_id, 'a', 20);
  head.from_slot = 0;
  head.from_generation = 5;
  head.from_token = 77;
  EXPECT_TRUE(a.send({1, 1, 9, 123}, shm::kRelayOffer, head, "{\"type\":\"offer\",\"sdp\":\"x\"}"));
  EXPECT_TRUE(a.send({1, 1, 8, 124}, shm::kRelayOffer, head, "{}"));  // for an older process of slot 1
  EXPECT_TRUE(a.send({1, 1, 9, 125}, shm::kRelayAnswer, head, "{\"type\":\"answer\"}"));
  EXPECT_EQ(worker::drain_eventfd(fds[3]), 0u) << "nothing visible before flush";
  a.flush();
  EXPECT_EQ(worker::drain_eventfd(fds[3]), 1u) << "one wake-up per flush, of slot 1's set 1 only";
  EXPECT_EQ(worker::drain_eventfd(fds[2]), 0u) << "not its twin on the other ring set";
  std::vector<std::string> got;
  uint64_t n = b.poll([&](uint16_t kind, uint32_t token, const worker::RelayHead& h, std::string_view sdp) {
    got.push_back(std::to_string(kind) + ":" + std::to_string(token) + ":" + std::to_string(h.from_token) + ":" + std::string(sdp));
  });
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "1:123:77:{\"type\":\"offer\",\"sdp\":\"x\"}");
  EXPECT_EQ(got[1], "2:125:77:{\"type\":\"answer\"}");
  EXPECT_EQ(shm::read_counter(&counters, shm::Counter::ws_relay_dropped), 1u) << "the stale record is counted";
  EXPECT_FALSE(a.send({0, 0, 5, 1}, shm::kRelayOffer, head, "{}")) << "never to itself";
  for (int fd : fds) close(fd);
}

// A cluster node (issue 14): the sync worker is endpoint number `workers` (ring set 0); a
// record for a connection on another node goes there, naming the node and the target's slot.
TEST(WsRelay, ATargetOnAnotherNodeGoesToTheSyncWorkerEndpoint) {
  shm::RelayGeometry g{2, 65536, 1};
  EXPECT_EQ(g.endpoints(), 3u);
  Mem m(g.segment_bytes());
  for (uint32_t s = 0; s < 3; s++)
    for (uint32_t ks = 0; ks < 2; ks++)
      for (uint32_t d = 0; d < 3; d++)
        for (uint32_t kd = 0; kd < 2; kd++) shm::RelayRing::init(m.p + g.ring_offset(s, ks, d, kd), g.bytes);
  std::vector<int> fds;
  for (int i = 0; i < 4; i++) fds.push_back(eventfd(0, EFD_NONBLOCK));
  shm::CounterBlock counters{};
  worker::WsRelay a(m.p, g, {1, 0, 5}, fds, &counters);
  worker::RelayHead head{};
  head.from_token = 77;
  worker::RelayTarget remote{3, shm::kWsRemoteSet, 0xbeef, 123, 7};  // node 7, its slot 3
  EXPECT_TRUE(a.send(remote, shm::kRelayOffer, head, "{}"));
  a.flush();  // no eventfd for the sync worker (it polls): nothing out of range is written
  for (int fd : fds) EXPECT_EQ(worker::drain_eventfd(fd), 0u);
  shm::RelayRing sync_in = shm::relay_ring(m.p, g, 1, 0, 2, 0);
  const shm::RelayRecord* r = sync_in.next();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->kind, shm::kRelayOffer);
  EXPECT_EQ(r->target_slot, 3);
  EXPECT_EQ(r->target_generation, 0xbeefu);
  EXPECT_EQ(r->target_token, 123u);
  worker::RelayHead h;
  std::memcpy(&h, r + 1, sizeof h);
  EXPECT_EQ(h.node, 7);
  EXPECT_EQ(h.from_token, 77u);
  // A node without the endpoint (cluster off) drops such a record and counts it.
  shm::RelayGeometry solo{2, 65536};
  Mem m2(solo.segment_bytes());
  for (uint32_t s = 0; s < 2; s++)
    for (uint32_t ks = 0; ks < 2; ks++)
      for (uint32_t d = 0; d < 2; d++)
        for (uint32_t kd = 0; kd < 2; kd++) shm::RelayRing::init(m2.p + solo.ring_offset(s, ks, d, kd), solo.bytes);
  worker::WsRelay b(m2.p, solo, {1, 0, 5}, fds, &counters);
  EXPECT_FALSE(b.send(remote, shm::kRelayOffer, head, "{}"));
  EXPECT_EQ(shm::read_counter(&counters, shm::Counter::ws_relay_dropped), 1u);
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace shoal
