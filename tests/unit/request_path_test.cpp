// tests/unit/request_path_test.cpp — the request path every front-end shares
// (worker/request_path.hpp): numwant (BEP 15: -1 = default, 0 = none), scrape split over
// partitions and merged back in request order with all-or-nothing room, the access list, full
// rings, one publication and one wake-up per swarm worker per batch, responses routed to the
// front-end (protocol) and context that asked, and stale or duplicate responses ignored.
// In-process: rings in heap memory, eventfds as the swarm workers' wake-ups, the test playing
// the swarm workers; no event loop.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "worker/request_path.hpp"
#include "worker/worker_common.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {
namespace {

using shm::Counter;
using shm::Protocol;

constexpr uint32_t kRingSlots = 16;

// One recorded callback of a front-end.
struct Call {
  bool scrape;
  shm::ReplyContext ctx;
  AnnounceResult announce;
  std::vector<ScrapeCounts> counts;
  std::vector<std::vector<uint8_t>> hashes;
};

struct Sink : ResponseSink {
  std::vector<Call> calls;
  int batches = 0;
  void on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) override {
    calls.push_back({false, ctx, r, {}, {}});
  }
  void on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) override {
    Call c{true, ctx, {}, {}, {}};
    for (uint32_t i = 0; i < r.count; i++) {
      c.counts.push_back(r.counts[i]);
      c.hashes.emplace_back(r.info_hashes[i], r.info_hashes[i] + 20);
    }
    calls.push_back(c);
  }
  void after_responses() override { batches++; }
};

constexpr uint64_t kPartitionKey = 0x5eedf00dcafe1234ull;  // the tests' partition secret

// An info_hash owned by partition `w` under kPartitionKey whether the test built 2 or 3
// partitions (with 1, everything is partition 0): the first with bytes 0..3 = 0, 1, 2, ... that
// maps to w of 3, and to w of 2 when w < 2.
std::vector<uint8_t> hash_in(uint32_t w, uint8_t tag) {
  std::vector<uint8_t> h(20, tag);
  for (uint32_t i = 0;; i++) {
    std::memcpy(h.data(), &i, 4);
    if (partition_of(h.data(), 3, kPartitionKey) == w && (w >= 2 || partition_of(h.data(), 2, kPartitionKey) == w))
      return h;
  }
}

class RequestPathTest : public ::testing::Test {
 protected:
  void build(uint32_t partitions, const AccessCheck* access = nullptr) {
    n_ = partitions;
    size_t req = shm::ring_bytes(kRingSlots, sizeof(shm::Request));
    size_t resp = shm::ring_bytes(kRingSlots, sizeof(shm::Response));
    std::vector<shm::SpscRing<shm::Request>> requests;
    std::vector<shm::SpscRing<shm::Response>> responses;
    std::vector<int> fds;
    for (uint32_t w = 0; w < n_; w++) {
      mem_.emplace_back(static_cast<char*>(std::aligned_alloc(64, req)), &std::free);
      std::memset(mem_.back().get(), 0, req);
      requests.push_back(shm::SpscRing<shm::Request>::init(mem_.back().get(), kRingSlots));
      mem_.emplace_back(static_cast<char*>(std::aligned_alloc(64, (resp + 63) / 64 * 64)), &std::free);
      std::memset(mem_.back().get(), 0, resp);
      responses.push_back(shm::SpscRing<shm::Response>::init(mem_.back().get(), kRingSlots));
      fds.push_back(eventfd(0, EFD_NONBLOCK));
    }
    req_ = requests;
    resp_ = responses;
    fds_ = fds;
    cfg_.default_numwant = 50;
    cfg_.max_numwant = 200;
    path_ = std::make_unique<RequestPath>(cfg_, requests, responses, fds, access, &counters_, nullptr, 7u << 16,
                                          kPartitionKey);
    path_->attach(Protocol::udp, &udp_, {200, 67});
    path_->attach(Protocol::http, &http_, {600, 200});
  }
  void TearDown() override {
    for (int fd : fds_) close(fd);
  }

  static shm::ReplyContext ctx(Protocol p, uint32_t transaction, uint64_t conn = 0) {
    shm::ReplyContext c{};
    c.protocol = uint8_t(p);
    c.family = 4;
    c.transaction = transaction;
    c.conn = conn;
    return c;
  }
  AnnounceIn announce_of(const std::vector<uint8_t>& hash, int64_t numwant, uint8_t family = 4) {
    AnnounceIn a;
    a.info_hash = hash.data();
    a.peer_addr = addr_;
    a.family = family;
    a.peer_port = 6881;
    a.numwant = numwant;
    return a;
  }
  // The swarm worker side: requests published to partition w.
  std::vector<shm::Request> take(uint32_t w) {
    std::vector<shm::Request> out;
    uint64_t n = req_[w].available();
    for (uint64_t k = 0; k < n; k++) out.push_back(*req_[w].peek(k));
    req_[w].retire(n);
    return out;
  }
  // Answers a request on partition w's response ring (scrape counts from `seeders`).
  void answer(uint32_t w, const shm::Request& r, uint32_t seeders, uint16_t peers = 0) {
    shm::Response* out = resp_[w].slot_for_write(0);
    std::memset(out, 0, offsetof(shm::Response, peers));
    out->ctx = r.ctx;
    std::memcpy(out->info_hash, r.info_hash, 20);
    out->kind = r.kind;
    out->family = r.family;
    out->seeders = seeders;
    out->leechers = seeders + 1;
    out->completed = seeders + 2;
    out->peer_count = peers;
    std::memset(out->peers, 0xab, size_t(peers) * 6);
    resp_[w].publish(1);
  }
  uint64_t wakes(uint32_t w) { return drain_eventfd(fds_[w]); }
  uint64_t counter(Counter c) { return shm::read_counter(&counters_, c); }

  conf::Config cfg_;
  uint32_t n_ = 0;
  std::vector<std::unique_ptr<char, decltype(&std::free)>> mem_;
  std::vector<shm::SpscRing<shm::Request>> req_;
  std::vector<shm::SpscRing<shm::Response>> resp_;
  std::vector<int> fds_;
  shm::CounterBlock counters_{};
  Sink udp_, http_;
  std::unique_ptr<RequestPath> path_;
  uint8_t addr_[16] = {127, 0, 0, 1};
};

// The partition map is keyed (issue 12): spread evenly, and another key gives another map, so
// info_hashes made up to land on one partition land everywhere.
TEST(PartitionOf, KeyedAndEven) {
  uint32_t count[4] = {}, moved = 0;
  for (uint32_t i = 0; i < 40000; i++) {
    uint8_t h[20] = {};
    std::memcpy(h, &i, 4);  // "one partition's" hashes under an unkeyed prefix map: all ≡ 0 mod 4
    h[3] = 0;
    uint32_t p = partition_of(h, 4, kPartitionKey);
    count[p]++;
    moved += p != partition_of(h, 4, kPartitionKey + 1);
    EXPECT_EQ(p, partition_of(h, 4, kPartitionKey));  // stable
  }
  for (uint32_t c : count) EXPECT_NEAR(c, 10000, 600);
  EXPECT_GT(moved, 25000u);  // about 3/4 move under another key
}

TEST(EffectiveNumwant, ZeroMeansNoneNegativeMeansDefault) {
  conf::Config cfg;
  cfg.default_numwant = 50;
  cfg.max_numwant = 200;
  EXPECT_EQ(effective_numwant(0, shm::Event::none, cfg, 200), 0);  // counts only (BEP 15)
  EXPECT_EQ(effective_numwant(-1, shm::Event::none, cfg, 200), 50);
  EXPECT_EQ(effective_numwant(-1000, shm::Event::started, cfg, 200), 50);
  EXPECT_EQ(effective_numwant(10, shm::Event::none, cfg, 200), 10);
  EXPECT_EQ(effective_numwant(100000, shm::Event::none, cfg, 600), 200);  // max_numwant
  EXPECT_EQ(effective_numwant(100000, shm::Event::none, cfg, 67), 67);    // the front-end's reply
  EXPECT_EQ(effective_numwant(-1, shm::Event::none, cfg, 30), 30);        // default above the limit
  EXPECT_EQ(effective_numwant(20, shm::Event::stopped, cfg, 200), 0);     // a leaving peer
}

TEST_F(RequestPathTest, AnnounceNumwantIsCappedPerFrontendAndFamily) {
  build(1);
  auto h = hash_in(0, 1);
  struct Case {
    Protocol p;
    uint8_t family;
    int64_t numwant;
    uint16_t want;
  };
  for (Case c : {Case{Protocol::udp, 4, 0, 0}, Case{Protocol::udp, 4, -1, 50}, Case{Protocol::udp, 4, 5000, 200},
                 Case{Protocol::udp, 6, 5000, 67}, Case{Protocol::udp, 6, 0, 0}, Case{Protocol::http, 6, 5000, 200},
                 Case{Protocol::http, 4, 0, 0}, Case{Protocol::http, 4, -1, 50}}) {
    ASSERT_EQ(path_->announce(announce_of(h, c.numwant, c.family), ctx(c.p, 1)), PathStatus::ok);
    ASSERT_TRUE(path_->publish());
    std::vector<shm::Request> got = take(0);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].numwant, c.want) << "protocol " << int(c.p) << " family " << int(c.family) << " numwant " << c.numwant;
    EXPECT_EQ(got[0].family, c.family);
    EXPECT_EQ(got[0].kind, uint8_t(shm::RequestKind::announce));
    EXPECT_EQ(got[0].peer_port, htons(6881));
  }
}

TEST_F(RequestPathTest, OnePublicationAndOneWakePerPartitionPerBatch) {
  build(3);
  for (uint8_t i = 0; i < 5; i++) path_->announce(announce_of(hash_in(i % 2, i), -1), ctx(Protocol::udp, i));
  EXPECT_EQ(path_->queued(), 5u);
  EXPECT_EQ(req_[0].available(), 0u) << "visible before publication";
  ASSERT_TRUE(path_->publish());
  EXPECT_EQ(req_[0].available(), 3u);
  EXPECT_EQ(req_[1].available(), 2u);
  EXPECT_EQ(wakes(0), 1u);
  EXPECT_EQ(wakes(1), 1u);
  EXPECT_EQ(wakes(2), 0u) << "a swarm worker with nothing to do was woken";
  EXPECT_FALSE(path_->publish());
  EXPECT_EQ(counter(Counter::ring_wakeups), 2u);
}

TEST_F(RequestPathTest, AccessDeniedAnnounceNeverReachesARing) {
  auto listed = hash_in(0, 9);
  AccessCheck deny(conf::AccessMode::deny, listed.data(), 1);
  build(1, &deny);
  EXPECT_EQ(path_->announce(announce_of(listed, -1), ctx(Protocol::udp, 1)), PathStatus::access_denied);
  EXPECT_EQ(path_->queued(), 0u);
  EXPECT_EQ(counter(Counter::access_denied), 1u);
  EXPECT_EQ(path_->announce(announce_of(hash_in(0, 8), -1), ctx(Protocol::udp, 1)), PathStatus::ok);
}

TEST_F(RequestPathTest, FullRingRefusesAnnounce) {
  build(1);
  auto h = hash_in(0, 1);
  for (uint32_t i = 0; i < kRingSlots; i++) ASSERT_EQ(path_->announce(announce_of(h, -1), ctx(Protocol::udp, i)), PathStatus::ok);
  EXPECT_EQ(path_->announce(announce_of(h, -1), ctx(Protocol::udp, 99)), PathStatus::ring_full);
  EXPECT_EQ(counter(Counter::ring_full_drops), 1u);
  path_->publish();
  take(0);  // the swarm worker catches up
  EXPECT_EQ(path_->announce(announce_of(h, -1), ctx(Protocol::udp, 100)), PathStatus::ok);
}

TEST_F(RequestPathTest, ScrapeSplitsOverPartitionsAndMergesInRequestOrder) {
  build(3);
  std::vector<uint8_t> hashes;
  uint32_t owner[] = {2, 0, 1, 0};
  for (uint32_t i = 0; i < 4; i++) {
    auto h = hash_in(owner[i], uint8_t(10 + i));
    hashes.insert(hashes.end(), h.begin(), h.end());
  }
  ASSERT_EQ(path_->scrape({hashes.data(), 4}, ctx(Protocol::http, 0, 42)), PathStatus::ok);
  path_->publish();
  std::vector<shm::Request> parts[3] = {take(0), take(1), take(2)};
  EXPECT_EQ(parts[0].size(), 2u);
  EXPECT_EQ(parts[1].size(), 1u);
  EXPECT_EQ(parts[2].size(), 1u);
  // Answers arrive partition by partition, in reverse; seeders = the hash's position * 10.
  for (int w = 2; w >= 0; w--) {
    for (const shm::Request& r : parts[w]) {
      EXPECT_EQ(r.ctx.scrape_total, 4);
      EXPECT_EQ(r.kind, uint8_t(shm::RequestKind::scrape));
      answer(uint32_t(w), r, r.ctx.scrape_index * 10u);
    }
    if (w > 0) {
      path_->drain_responses();
      EXPECT_TRUE(http_.calls.empty()) << "answered before every partition replied";
    }
  }
  EXPECT_EQ(path_->drain_responses(), 2u);
  ASSERT_EQ(http_.calls.size(), 1u);
  const Call& c = http_.calls[0];
  EXPECT_TRUE(c.scrape);
  EXPECT_EQ(c.ctx.conn, 42u);
  ASSERT_EQ(c.counts.size(), 4u);
  for (uint32_t i = 0; i < 4; i++) {
    EXPECT_EQ(c.counts[i].seeders, i * 10);
    EXPECT_EQ(c.counts[i].completed, i * 10 + 2);
    EXPECT_EQ(c.counts[i].leechers, i * 10 + 1);
    EXPECT_EQ(c.hashes[i], std::vector<uint8_t>(hashes.begin() + 20 * i, hashes.begin() + 20 * i + 20));
  }
  EXPECT_TRUE(udp_.calls.empty());
}

TEST_F(RequestPathTest, ScrapeIsAllOrNothingWhenOnePartitionIsFull) {
  build(2);
  auto a = hash_in(0, 1), b = hash_in(1, 2);
  for (uint32_t i = 0; i < kRingSlots - 1; i++) ASSERT_EQ(path_->announce(announce_of(b, -1), ctx(Protocol::udp, i)), PathStatus::ok);
  std::vector<uint8_t> hashes(a);
  hashes.insert(hashes.end(), b.begin(), b.end());
  hashes.insert(hashes.end(), b.begin(), b.end());  // partition 1 needs 2 slots, has 1
  EXPECT_EQ(path_->scrape({hashes.data(), 3}, ctx(Protocol::udp, 5)), PathStatus::ring_full);
  EXPECT_EQ(path_->queued(), kRingSlots - 1) << "a part went to partition 0 anyway";
  EXPECT_EQ(counter(Counter::ring_full_drops), 1u);
  EXPECT_EQ(path_->scrape({hashes.data(), 2}, ctx(Protocol::udp, 6)), PathStatus::ok);  // 1 + 1 fits
  EXPECT_EQ(path_->queued(), kRingSlots + 1);
}

TEST_F(RequestPathTest, ScrapeAnswersRefusedHashesAsUnknownTorrents) {
  auto listed = hash_in(1, 5);
  AccessCheck allow(conf::AccessMode::allow, listed.data(), 1);
  build(2, &allow);
  auto other = hash_in(0, 6);
  std::vector<uint8_t> hashes(other);
  hashes.insert(hashes.end(), listed.begin(), listed.end());
  ASSERT_EQ(path_->scrape({hashes.data(), 2}, ctx(Protocol::udp, 3)), PathStatus::ok);
  path_->publish();
  EXPECT_EQ(take(0).size(), 0u) << "a refused hash went to its swarm worker";
  std::vector<shm::Request> parts = take(1);
  ASSERT_EQ(parts.size(), 1u);
  answer(1, parts[0], 4);
  path_->drain_responses();
  ASSERT_EQ(udp_.calls.size(), 1u);
  EXPECT_EQ(udp_.calls[0].counts[0].seeders + udp_.calls[0].counts[0].leechers + udp_.calls[0].counts[0].completed, 0u);
  EXPECT_EQ(udp_.calls[0].counts[1].seeders, 4u);
  EXPECT_EQ(counter(Counter::access_denied), 1u);
  // Every hash refused: answered at once, nothing queued.
  ASSERT_EQ(path_->scrape({other.data(), 1}, ctx(Protocol::udp, 4)), PathStatus::ok);
  EXPECT_EQ(path_->queued(), 0u);
  ASSERT_EQ(udp_.calls.size(), 2u);
  EXPECT_EQ(udp_.calls[1].ctx.transaction, 4u);
  EXPECT_EQ(udp_.calls[1].counts.size(), 1u);
}

TEST_F(RequestPathTest, ResponsesGoToTheFrontendAndContextThatAsked) {
  build(2);
  auto a = hash_in(0, 1), b = hash_in(1, 2);
  path_->announce(announce_of(a, 3), ctx(Protocol::udp, 111));
  path_->announce(announce_of(b, 3), ctx(Protocol::http, 0, 222));
  path_->announce(announce_of(a, 3), ctx(Protocol::http, 0, 333));
  path_->publish();
  for (uint32_t w = 0; w < 2; w++)
    for (const shm::Request& r : take(w)) answer(w, r, 1, 3);
  EXPECT_EQ(path_->drain_responses(), 3u);
  ASSERT_EQ(udp_.calls.size(), 1u);
  EXPECT_EQ(udp_.calls[0].ctx.transaction, 111u);
  EXPECT_EQ(udp_.calls[0].announce.peer_count, 3);
  EXPECT_EQ(udp_.calls[0].announce.status, PathStatus::ok);
  ASSERT_EQ(http_.calls.size(), 2u);
  EXPECT_EQ(http_.calls[0].ctx.conn + http_.calls[1].ctx.conn, 222u + 333u);
  EXPECT_EQ(udp_.batches, 1);
  EXPECT_EQ(http_.batches, 1);
}

TEST_F(RequestPathTest, TrackerFullIsATypedStatus) {
  build(1);
  path_->announce(announce_of(hash_in(0, 1), -1), ctx(Protocol::udp, 1));
  path_->publish();
  shm::Request r = take(0)[0];
  answer(0, r, 0);
  const_cast<shm::Response*>(resp_[0].peek(0))->status = uint8_t(shm::ResponseStatus::tracker_full);
  path_->drain_responses();
  ASSERT_EQ(udp_.calls.size(), 1u);
  EXPECT_EQ(udp_.calls[0].announce.status, PathStatus::tracker_full);
}

TEST_F(RequestPathTest, StaleAndDuplicateResponsesAreIgnored) {
  build(2);
  auto a = hash_in(0, 1), b = hash_in(1, 2);
  std::vector<uint8_t> hashes(a);
  hashes.insert(hashes.end(), b.begin(), b.end());
  ASSERT_EQ(path_->scrape({hashes.data(), 2}, ctx(Protocol::udp, 9)), PathStatus::ok);
  path_->publish();
  shm::Request p0 = take(0)[0], p1 = take(1)[0];
  answer(0, p0, 1);
  answer(0, p0, 1);  // a swarm worker redoing its ring after a restart
  path_->drain_responses();
  EXPECT_TRUE(udp_.calls.empty()) << "a duplicate part completed the scrape";
  answer(1, p1, 2);
  path_->drain_responses();
  ASSERT_EQ(udp_.calls.size(), 1u);
  answer(1, p1, 2);  // once more after completion: nothing
  shm::Request old = p1;
  old.ctx.scrape_id = 12345;  // a scrape of a previous process of this slot
  answer(1, old, 3);
  shm::Request ws = p0;  // a protocol without a front-end in this worker
  ws.kind = uint8_t(shm::RequestKind::announce);
  ws.ctx.protocol = uint8_t(Protocol::ws);
  answer(0, ws, 3);
  EXPECT_EQ(path_->drain_responses(), 3u);
  EXPECT_EQ(udp_.calls.size(), 1u);
  EXPECT_TRUE(http_.calls.empty());
  // Responses left from a process two generations back are dropped at start.
  answer(0, p0, 1);
  path_->discard_stale_responses();
  EXPECT_EQ(path_->drain_responses(), 0u);
  EXPECT_TRUE(path_->rings_empty());
}

}  // namespace
}  // namespace shoal::worker

// Deploy transfers (issue 11): two intervals, deploy mode, the peer's progress in the request.
namespace shoal::worker {
namespace {

class RequestPathDeployTest : public RequestPathTest {
 protected:
  // Answers the one request of partition 0 with these counts; returns the front-end's result.
  AnnounceResult round_trip(const AnnounceIn& a, uint32_t leechers, uint32_t completed, shm::Request* sent = nullptr) {
    EXPECT_EQ(path_->announce(a, ctx(Protocol::http, 0, 9)), PathStatus::ok);
    path_->publish();
    shm::Request r = take(0).at(0);
    if (sent) *sent = r;
    answer(0, r, 1, 1);
    auto* resp = const_cast<shm::Response*>(resp_[0].peek(0));
    resp->leechers = leechers;
    resp->completed = completed;
    path_->drain_responses();
    return http_.calls.back().announce;
  }
};

TEST_F(RequestPathDeployTest, RegisteredTransfersInProgressGetTheActiveInterval) {
  auto reg = hash_in(0, 1), other = hash_in(0, 2);
  shm::TransferEntry t{};
  std::memcpy(t.info_hash, reg.data(), 20);
  t.length = 1000;
  AccessCheck access(conf::AccessMode::off, nullptr, 0, &t, 1, false);
  cfg_.announce_interval = 1800;
  cfg_.transfers_active_interval = 30;
  build(1, &access);
  AnnounceIn a = announce_of(reg, 10);
  a.left = 250;
  shm::Request sent{};
  EXPECT_EQ(round_trip(a, 3, 0, &sent).interval, 30u);  // leechers left: in progress
  EXPECT_EQ(sent.progress, 750);                         // (1000 - 250) permille of 1000
  EXPECT_EQ(sent.numwant, 10);
  EXPECT_EQ(round_trip(a, 0, 0).interval, 30u);     // nobody completed yet: still in progress
  EXPECT_EQ(round_trip(a, 0, 2).interval, 1800u);   // all seed and one completed: passive
  AnnounceIn b = announce_of(other, 10);
  EXPECT_EQ(round_trip(b, 3, 0, &sent).interval, 1800u);  // not registered: passive
  EXPECT_EQ(sent.progress, shm::kProgressUnknown);
  EXPECT_EQ(http_.calls.back().announce.warning, nullptr);  // open mode serves everything
  EXPECT_EQ(sent.numwant, 10);
}

TEST_F(RequestPathDeployTest, DeployModeServesNoPeersForUnregisteredTorrents) {
  auto reg = hash_in(0, 1), other = hash_in(0, 2);
  shm::TransferEntry t{};
  std::memcpy(t.info_hash, reg.data(), 20);
  t.length = 1000;
  AccessCheck access(conf::AccessMode::off, nullptr, 0, &t, 1, true);
  build(1, &access);
  shm::Request sent{};
  AnnounceResult r = round_trip(announce_of(other, 10), 3, 0, &sent);
  EXPECT_EQ(sent.numwant, 0);  // stored and counted, but no peers
  ASSERT_NE(r.warning, nullptr);
  EXPECT_NE(std::string(r.warning).find("not a registered transfer"), std::string::npos);
  r = round_trip(announce_of(reg, 10), 3, 0, &sent);
  EXPECT_EQ(sent.numwant, 10);
  EXPECT_EQ(r.warning, nullptr);
}

TEST(ProgressPermille, FromLeftAndLength) {
  EXPECT_EQ(progress_permille(0, 1000), 1000);
  EXPECT_EQ(progress_permille(1000, 1000), 0);
  EXPECT_EQ(progress_permille(UINT64_MAX, 1000), 0);  // left not sent
  EXPECT_EQ(progress_permille(1, 3), 666);
  EXPECT_EQ(progress_permille(5, 0), shm::kProgressUnknown);
  EXPECT_EQ(progress_permille(1ull << 50, 1ull << 51), 500);  // no overflow on large transfers
}


// WebTorrent (issue 10): the same path carries the peer_id, the process generation and the
// offers wanted (capped at the ws front-end's limit, none for stopped), and brings the offer
// targets and the "peer_id taken" refusal back to the ws front-end.
TEST_F(RequestPathTest, WebTorrentAnnounceCarriesPeerIdAndTargets) {
  build(1);
  Sink ws;
  path_->attach(Protocol::ws, &ws, {10, 10});
  auto h = hash_in(0, 3);
  uint8_t peer_id[20];
  std::memset(peer_id, 'p', 20);
  AnnounceIn a = announce_of(h, 25, shm::kFamilyWebTorrent);
  a.peer_id = peer_id;
  a.conn_generation = 42;
  ASSERT_EQ(path_->announce(a, ctx(Protocol::ws, 9, 1234)), PathStatus::ok);
  a.event = shm::Event::stopped;
  ASSERT_EQ(path_->announce(a, ctx(Protocol::ws, 10, 1234)), PathStatus::ok);
  ASSERT_TRUE(path_->publish());
  std::vector<shm::Request> rq = take(0);
  ASSERT_EQ(rq.size(), 2u);
  EXPECT_EQ(rq[0].family, shm::kFamilyWebTorrent);
  EXPECT_EQ(std::memcmp(rq[0].peer_id, peer_id, 20), 0);
  EXPECT_EQ(rq[0].conn_generation, 42u);
  EXPECT_EQ(rq[0].numwant, 10) << "offers capped at ws.max_offers";
  EXPECT_EQ(rq[0].ctx.conn, 1234u);
  EXPECT_EQ(rq[0].progress, shm::kProgressUnknown);
  EXPECT_EQ(rq[1].numwant, 0) << "a leaving peer places no offers";

  // The swarm worker's answer: two targets, then a refusal.
  shm::Response* out = resp_[0].slot_for_write(0);
  std::memset(out, 0, offsetof(shm::Response, peers));
  out->ctx = rq[0].ctx;
  out->kind = rq[0].kind;
  out->family = shm::kFamilyWebTorrent;
  out->leechers = 3;
  out->peer_count = 2;
  shm::WsTarget t[2] = {{7, 100, 1, 0, {}}, {8, 200, 0, 1, {}}};
  std::memcpy(out->peers, t, sizeof t);
  shm::Response* out2 = resp_[0].slot_for_write(1);
  std::memcpy(out2, out, offsetof(shm::Response, peers));
  out2->ctx.transaction = 10;
  out2->status = uint8_t(shm::ResponseStatus::peer_id_taken);
  out2->peer_count = 0;
  resp_[0].publish(2);
  path_->drain_responses();
  ASSERT_EQ(ws.calls.size(), 2u);
  EXPECT_TRUE(udp_.calls.empty() && http_.calls.empty()) << "routed to the ws front-end only";
  const AnnounceResult& r = ws.calls[0].announce;
  EXPECT_EQ(r.status, PathStatus::ok);
  EXPECT_EQ(r.leechers, 3u);
  EXPECT_EQ(r.interval, cfg_.ws_announce_interval);
  ASSERT_EQ(r.peer_count, 2);
  EXPECT_EQ(ws.calls[1].announce.status, PathStatus::peer_id_taken);
}

}  // namespace
}  // namespace shoal::worker
