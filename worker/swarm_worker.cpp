// worker/swarm_worker.cpp — the swarm worker process: owns partition `index` of the info_hash
// space. It attaches its partition segment, recovers it (rolls back an update a killed
// predecessor left half done), then loops: on an eventfd wake-up it drains the request ring of
// every socket worker, applies each announce/scrape to the partition, writes the responses to
// the matching response ring, publishes them once per batch and wakes each socket worker once.
// Requests are retired only after their responses are published, so a request in flight when
// this process dies is redone by the replacement (partition operations are idempotent).
// It is the only writer of its partition; it writes its slot's heartbeat and counters. Started
// by a rolling restart while its predecessor still serves, it first waits for the partition
// (worker/swarm_handoff.hpp); when it stops, releasing the partition is its last write.
#include <event2/event.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

#include "shm/clock.hpp"
#include "shm/partition.hpp"
#include "supervisor/log.hpp"
#include "shm/topology_segment.hpp"
#include "worker/background_check.hpp"
#include "worker/cluster_link.hpp"
#include "worker/snapshot_pass.hpp"
#include "worker/peer_policy.hpp"
#include "worker/source_limiter.hpp"
#include "worker/swarm_handoff.hpp"
#include "worker/swarm_startup.hpp"
#include "worker/peer_policy_location.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {
namespace {

constexpr uint32_t kMaxBatch = 256;  // requests taken from one ring per pass
// How many requests ahead of the one being applied the partition prefetches: the torrent index
// slot first, then (reading that slot) the torrent record and peer index slot.
constexpr uint64_t kPrefetchTorrent = 8;
constexpr uint64_t kPrefetchPeer = 4;
// A request that killed this many swarm workers in a row (each replacement redoes it: requests
// are retired only after their responses are published) is skipped by the next one: a poison
// request (a broken invariant, a journal overflow) must not crash the partition's owner forever.
constexpr uint32_t kPoisonStrikes = 2;

uint64_t request_mark(size_t ring, uint64_t position) { return 1 + (uint64_t(ring) << 48 | (position & ((1ull << 48) - 1))); }

class SwarmWorker final : public DeltaGuard {
 public:
  // cluster_base: the cluster segment (issue 14), nullptr when cluster.enabled is false.
  SwarmWorker(const WorkerContext& ctx, SharedState* shared, shm::Partition* part, WorkerLoop* loop,
              const shm::PeerPolicy* policy, void* cluster_base)
      : ctx_(ctx), shared_(shared), part_(part), woken_(ctx.socket_eventfds.size(), false), policy_(policy),
        cluster_(cluster_base, *ctx.config, ctx.index, part, shared->counters, loop->base()),
        gate_(ctx.config->new_torrents_per_source_rate, ctx.config->new_torrents_per_source_burst) {
    // Ring r = s * kSets + k: socket worker s, ring set k.
    for (uint32_t s = 0; s < shared_->geometry.socket_workers; s++) {
      for (uint32_t k = 0; k < shm::RingsGeometry::kSets; k++) {
        requests_.push_back(shm::request_ring(shared_->rings_seg.base(), shared_->geometry, s, ctx.index, k));
        responses_.push_back(shm::response_ring(shared_->rings_seg.base(), shared_->geometry, s, ctx.index, k));
      }
    }
    wakeup_ = new_wakeup_event(loop->base(), ctx.swarm_eventfds[ctx.index], &on_wakeup, this);
    event_add(wakeup_, nullptr);
    retry_ = evtimer_new(loop->base(), &on_retry, this);
    expire_ = event_new(loop->base(), -1, EV_PERSIST, &on_expire, this);
    purge_ = evtimer_new(loop->base(), &on_purge, this);
    live_.control = shared_->control;
    live_.socket_workers = shared_->geometry.socket_workers;
    cluster_.set_liveness(&live_, [this](uint16_t node, uint8_t slot, uint16_t gen) { remote_process_gone(node, slot, gen); });
    seen_generation_.assign(live_.socket_workers, 0);
    timeval every{long(ctx.config->cleanup_interval), 0};
    event_add(expire_, &every);
    if (const char* hex = getenv("SHOAL_TEST_ABORT_INFO_HASH")) {
      fault_hash_set_ = strlen(hex) == 40;
      for (int i = 0; fault_hash_set_ && i < 20; i++) fault_hash_set_ = sscanf(hex + 2 * i, "%2hhx", &fault_hash_[i]) == 1;
      if (fault_hash_set_) LOG_WARN("SHOAL_TEST_ABORT_INFO_HASH is set: this worker aborts on requests for %.40s (a test)", hex);
    }
  }
  ~SwarmWorker() {
    event_free(wakeup_);
    event_free(retry_);
    event_free(expire_);
    event_free(purge_);
  }

  // Drains every request ring as far as the response rings allow.
  void drain() {
    check_socket_generations();  // before the requests: a scrape must not count dead peers
    bool backlog = false;
    uint32_t now = shm::seconds_since(shared_->clock_base_ns);
    for (size_t r = 0; r < requests_.size(); r++) {
      uint32_t s = uint32_t(r / shm::RingsGeometry::kSets), k = uint32_t(r % shm::RingsGeometry::kSets);
      uint64_t done = set_in_use(s, k) ? drain_ring(r, now, &backlog) : drain_orphaned(r, now);
      if (done) woken_[r] = true;
    }
    // Other nodes' changes (issue 14), after this node's own requests; then this batch's changes go out.
    if (cluster_.apply_incoming(now, kMaxBatch * 4, *this)) backlog = true;
    cluster_.flush();
    cluster_.check_resync();
    for (size_t r = 0; r < woken_.size(); r++) {  // the process on that ring set, not its twin
      if (!woken_[r]) continue;
      wake(ctx_.socket_eventfds[r]);
      shm::count(shared_->counters, shm::Counter::ring_wakeups);
      woken_[r] = false;
    }
    if (backlog && !evtimer_pending(retry_, nullptr)) {
      timeval ms{0, 1000};
      evtimer_add(retry_, &ms);
    }
    answer_query();
    if (snapshot_) snapshot_->poll();
    if (join_answer_) join_answer_->poll();
    publish_gauges();
  }

  // Answers the supervisor's snapshot requests from now on (issue 14).
  void set_snapshot_pass(SnapshotPass* pass) { snapshot_ = pass; }
  // And the sync worker's, for joining nodes (cluster only; worker/cluster_join.hpp).
  void set_join_answer_pass(SnapshotPass* pass) {
    join_answer_ = pass;
    pass->include_webtorrent(&live_, uint16_t(ctx_.config->cluster_node_id));
  }

  // Copies the partition's totals to this worker's gauges in the control segment.
  void publish_gauges() {
    shm::PartitionTotals t = part_->totals();
    shm::PartitionGauges& g = shared_->control->gauges[ctx_.index];
    shm::store_u32(g.torrents, t.torrents);
    shm::store_u32(g.seeders, t.seeders);
    shm::store_u32(g.leechers, t.leechers);
    shm::store_u32(g.peers_v4, t.peers_v4);
    shm::store_u32(g.peers_v6, t.peers_v6);
    shm::store_u32(g.seeders_v6, t.seeders_v6);
    shm::store_u32(g.peers_ws, t.peers_ws);
    shm::store_u32(g.seeders_ws, t.seeders_ws);
    std::atomic_ref<uint64_t>(g.completed).store(t.completed, std::memory_order_release);
  }

  // Answers the supervisor's query in the mailbox (show torrent, deploy progress per location,
  // drop a transfer's swarm), if one is pending.
  void answer_query() {
    shm::TorrentQuery& q = shared_->control->queries[ctx_.index];
    uint32_t want = shm::load_u32(q.request_seq);
    if (want == shm::load_u32(q.response_seq)) return;
    shm::ScrapeResult r = part_->scrape(q.info_hash);
    q.seeders = r.seeders;
    q.leechers = r.leechers;
    q.completed = r.completed;
    shm::ScrapeResult w = part_->scrape_webtorrent(q.info_hash);
    q.ws_seeders = w.seeders;
    q.ws_leechers = w.leechers;
    q.ws_completed = w.completed;
    uint32_t total = 0, rows = 0;
    auto op = shm::QueryOp(q.op);
    part_->for_each_peer(q.info_hash, [&](const shm::PeerInfo& peer) {
      if (op == shm::QueryOp::locations) {
        uint32_t i = 0;
        while (i < rows && q.locations[i].topology_group != peer.topology_group) i++;
        if (i == rows && rows < shm::kQueryMaxLocations) q.locations[rows++] = shm::QueryLocation{peer.topology_group, 0, 0, 0, 0, 0, 0};
        if (i < rows) {
          shm::QueryLocation& l = q.locations[i];
          l.hosts++;
          l.seeders += peer.seeder;
          l.representatives += peer.representative;
          if (peer.progress <= 1000) {
            l.known++;
            l.progress_sum += peer.progress;
          }
        }
      } else if (total < shm::kQueryMaxPeers) {
        shm::QueryPeer& p = q.peers[total];
        p.family = peer.family;
        p.seeder = peer.seeder;
        p.port_be = peer.port_be;
        std::memset(p.addr, 0, sizeof p.addr);
        std::memcpy(p.addr, peer.addr16, peer.family == 4 ? 4 : 16);
      }
      total++;
    });
    q.found = (r.seeders + r.leechers + r.completed) > 0 || total > 0 || (w.seeders + w.leechers + w.completed) > 0;
    q.peer_total = total;
    q.location_total = uint16_t(rows);
    if (op == shm::QueryOp::drop && q.found) {
      uint32_t n = part_->drop_torrent(q.info_hash);
      LOG_INFO("dropped the swarm of a removed transfer: %u peers", n);
    }
    shm::store_u32(q.response_seq, want);
  }

 private:
  // Whether ring set k of socket-worker slot s has a live process consuming its responses.
  bool set_in_use(uint32_t s, uint32_t k) const {
    const shm::SocketSets& ss = shared_->control->socket_sets[s];
    uint32_t active = shm::load_u32(ss.active_generation), draining = shm::load_u32(ss.draining_generation);
    return (active != 0 && shm::load_u32(ss.active_set) == k) || (draining != 0 && shm::load_u32(ss.draining_set) == k);
  }

  // A set whose socket worker died: its queued announces still count, but nobody would read
  // responses, so none are written.
  uint64_t drain_orphaned(size_t r, uint32_t now) {
    auto& req = requests_[r];
    uint64_t n = req.available(), base = req.read_position();
    for (uint64_t k = 0; k < n; k++) {
      if (skip_poison(r, base + k)) continue;
      mark_applying(request_mark(r, base + k));
      // A WebTorrent announce of a dead socket worker would store a peer whose connection is
      // gone: skip it (its stopped announces do not matter either: the purge removes its peers).
      if (req.peek(k)->family != shm::kFamilyWebTorrent) apply(*req.peek(k), &scratch_, now, uint32_t(r / shm::RingsGeometry::kSets));
    }
    mark_applying(0);
    req.retire(n);
    return 0;
  }

  // Processes up to the available requests of ring r; returns how many.
  uint64_t drain_ring(size_t r, uint32_t now, bool* backlog) {
    auto& req = requests_[r];
    auto& resp = responses_[r];
    uint64_t total = 0;
    for (;;) {
      uint64_t avail = req.available();
      if (avail == 0) break;
      uint64_t room = resp.free_slots();
      uint64_t n = std::min<uint64_t>({avail, room, kMaxBatch});
      if (n == 0) {
        *backlog = true;  // the socket worker has not taken its responses yet
        break;
      }
      uint64_t base = req.read_position(), out = 0;
      for (uint64_t k = 0; k < n; k++) {
        if (k + kPrefetchTorrent < n) part_->prefetch_torrent(req.peek(k + kPrefetchTorrent)->info_hash);
        if (k + kPrefetchPeer < n) prefetch_peer(*req.peek(k + kPrefetchPeer));
        if (skip_poison(r, base + k)) continue;  // no response: the client's retry is a new request
        mark_applying(request_mark(r, base + k));
        apply(*req.peek(k), resp.slot_for_write(out++), now, uint32_t(r / shm::RingsGeometry::kSets));
      }
      mark_applying(0);
      resp.publish(out);
      req.retire(n);
      total += n;
      shm::count(shared_->counters, shm::Counter::ring_batches);
      shm::count(shared_->counters, shm::Counter::ring_messages, n);
    }
    return total;
  }

  // Records which request is being applied (a relaxed store to this worker's own slot).
  void mark_applying(uint64_t mark) {
    std::atomic_ref<uint64_t>(shared_->slot->applying).store(mark, std::memory_order_relaxed);
  }

 public:
  // At start: the request a predecessor died applying (if any) becomes a suspect; one that
  // killed kPoisonStrikes workers in a row is skipped when this worker reaches it.
  void judge_predecessor() {
    shm::WorkerSlot* ws = shared_->slot;
    uint64_t died_on = std::atomic_ref<uint64_t>(ws->applying).load(std::memory_order_relaxed);
    ws->applying = 0;
    if (died_on == 0) return;
    if (died_on == ws->poison_suspect) ws->poison_strikes++;
    else ws->poison_suspect = died_on, ws->poison_strikes = 1;
    uint64_t v = died_on - 1;
    if (ws->poison_strikes >= kPoisonStrikes) {
      poison_ = died_on;
      LOG_ERROR("the last %u swarm workers of partition %u died applying the request at position %llu of ring %llu: "
                "skipping it (a poison request; its client gets no reply)",
                ws->poison_strikes, ctx_.index, (unsigned long long)(v & ((1ull << 48) - 1)), (unsigned long long)(v >> 48));
    } else {
      LOG_WARN("the previous swarm worker of partition %u died applying the request at position %llu of ring %llu; "
               "redoing it (it is skipped if it kills %u workers in a row)",
               ctx_.index, (unsigned long long)(v & ((1ull << 48) - 1)), (unsigned long long)(v >> 48), kPoisonStrikes);
    }
  }

 private:
  // DeltaGuard: the in ring of the cluster counts as ring requests_.size() for poison marks.
  bool skip(uint64_t position) override { return skip_poison(requests_.size(), position); }
  void mark(uint64_t position) override { mark_applying(request_mark(requests_.size(), position)); }
  void done() override { mark_applying(0); }

  bool skip_poison(size_t r, uint64_t position) {
    if (poison_ == 0 || request_mark(r, position) != poison_) return false;
    poison_ = 0;
    shared_->slot->poison_strikes = 0;
    shm::count(shared_->counters, shm::Counter::poison_requests_skipped);
    return true;
  }

  void prefetch_peer(const shm::Request& rq) {
    bool announce = rq.kind == uint8_t(shm::RequestKind::announce);
    part_->prefetch_peer(rq.info_hash, announce ? rq.family : 0, rq.peer_addr, rq.peer_port);
  }

  // Applies one request from socket slot `slot`'s ring to the partition and writes its response
  // (header + used peer bytes).
  void apply(const shm::Request& rq, shm::Response* out, uint32_t now, uint32_t slot) {
    if (fault_hash_set_ && std::memcmp(rq.info_hash, fault_hash_, 20) == 0) abort();  // tests only
    std::memcpy(&out->ctx, &rq.ctx, sizeof rq.ctx);
    std::memcpy(out->info_hash, rq.info_hash, sizeof rq.info_hash);
    out->kind = rq.kind;
    out->family = rq.family;
    out->peer_count = 0;
    if (rq.kind == uint8_t(shm::RequestKind::scrape)) {
      shm::ScrapeResult r = rq.family == shm::kFamilyWebTorrent ? part_->scrape_webtorrent(rq.info_hash) : part_->scrape(rq.info_hash);
      out->status = uint8_t(shm::ResponseStatus::ok);
      out->seeders = r.seeders;
      out->leechers = r.leechers;
      out->completed = r.completed;
      shm::count(shared_->counters, shm::Counter::scrapes_applied);
      return;
    }
    if (rq.family == shm::kFamilyWebTorrent) return apply_webtorrent(rq, out, now, slot);
    shm::AnnounceInput in{};
    in.info_hash = rq.info_hash;
    in.family = rq.family;
    std::memcpy(in.addr, rq.peer_addr, sizeof in.addr);
    in.port = rq.peer_port;
    in.event = rq.event;
    in.seeder = rq.seeder != 0;
    uint32_t cap = uint32_t(shm::kMaxResponsePeerBytes / (rq.family == 6 ? 18 : 6));
    in.numwant = uint16_t(std::min<uint32_t>(rq.numwant, cap));
    in.topology_group = rq.topology_group;
    in.progress = rq.progress;
    in.now = now;
    in.gate = gate_.enabled() ? &gate_ : nullptr;
    shm::AnnounceResult r = part_->announce(in, out->peers, *policy_);
    cluster_.on_announce(in, r);
    out->status = r.status;
    out->seeders = r.seeders;
    out->leechers = r.leechers;
    out->completed = r.completed;
    out->peer_count = r.peer_count;
    count_announce(r.status);
  }

  // Counts an applied announce by its ResponseStatus.
  void count_announce(uint8_t status) {
    shm::Counter c = status == uint8_t(shm::ResponseStatus::tracker_full)   ? shm::Counter::announce_tracker_full
                     : status == uint8_t(shm::ResponseStatus::source_quota) ? shm::Counter::new_torrents_refused
                                                                            : shm::Counter::announces_applied;
    shm::count(shared_->counters, c);
  }

  // Counts what an expiry (or purge) step removed.
  void count_expired(const shm::ExpireResult& r) {
    if (r.peers_removed) shm::count(shared_->counters, shm::Counter::peers_expired, r.peers_removed);
    if (r.torrents_removed) shm::count(shared_->counters, shm::Counter::torrents_removed, r.torrents_removed);
  }

  // A WebTorrent announce (issue 10): the peer is the connection (slot, conn_generation,
  // ctx.conn) of the asking socket worker; the response carries offer targets (WsTarget).
  void apply_webtorrent(const shm::Request& rq, shm::Response* out, uint32_t now, uint32_t slot) {
    shm::WsAnnounceInput in{};
    in.info_hash = rq.info_hash;
    in.peer_id = rq.peer_id;
    in.slot = uint8_t(slot);
    in.generation = rq.conn_generation;
    in.token = uint32_t(rq.ctx.conn);
    in.event = rq.event;
    in.seeder = rq.seeder != 0;
    in.offers = uint16_t(std::min<size_t>(rq.numwant, shm::kMaxResponsePeerBytes / sizeof(shm::WsTarget)));
    in.now = now;
    in.family = rq.conn_family == 6 ? 6 : 4;
    in.addr = rq.peer_addr;  // the connection's address
    in.gate = gate_.enabled() ? &gate_ : nullptr;
    shm::WsAnnounceResult r = part_->announce_webtorrent(in, reinterpret_cast<shm::WsTarget*>(out->peers), live_);
    cluster_.on_ws_announce(in, r);
    out->status = r.status;
    out->seeders = r.seeders;
    out->leechers = r.leechers;
    out->completed = r.completed;
    out->peer_count = r.target_count;
    count_announce(r.status);
  }

  // WebTorrent liveness from the control segment: a peer's connection lives while its socket
  // slot's active process is the generation that stored it.
  struct ControlLiveness final : shm::WsLiveness {
    const shm::ControlSegment* control = nullptr;
    uint32_t socket_workers = 0;
    // Socket processes of other nodes said gone (kDeltaWsGone), kept until `until` (seconds of
    // the segment clock: peer_ttl after, when their peers would have expired anyway); at most 64.
    struct Gone {
      uint16_t node;
      uint8_t slot;
      uint16_t generation;
      uint32_t until;
    };
    std::vector<Gone> gone;
    bool remote_gone(uint16_t node, uint8_t slot, uint16_t generation) const override {
      for (const Gone& g : gone)
        if (g.node == node && g.slot == slot && g.generation == generation) return true;
      return false;
    }
    int ring_set(uint8_t slot, uint32_t generation) const override {
      if (slot >= socket_workers || generation == 0) return -1;
      const shm::SocketSets& ss = control->socket_sets[slot];
      if (shm::load_u32(ss.active_generation) != generation) return -1;
      return int(shm::load_u32(ss.active_set) & 1);
    }
  };

 public:
  // Notices a socket slot whose process changed (died, restarted, rolled): its WebTorrent
  // connections are gone, so a purge pass removes their peers from every WebTorrent swarm.
  void check_socket_generations() {
    bool changed = false;
    for (uint32_t s = 0; s < live_.socket_workers; s++) {
      uint32_t g = shm::load_u32(shared_->control->socket_sets[s].active_generation);
      if (g == seen_generation_[s]) continue;
      changed |= seen_generation_[s] != 0;  // 0: not seen yet (this worker's first look)
      seen_generation_[s] = g;
    }
    if (changed && purge_wraps_ == 0 && (ctx_.config->ws_enabled || ctx_.config->wss_enabled)) {
      purge_wraps_ = 2;  // two wraps of the sweep cursor: one full pass from wherever it was
      on_purge(-1, 0, this);  // the first steps now, the rest from a timer
    }
  }

 private:
  // Another node's socket process is gone (cluster): its WebTorrent peers here are dead; a purge
  // pass removes them, and until then they are never offer targets.
  void remote_process_gone(uint16_t node, uint8_t slot, uint16_t gen) {
    uint32_t now = shm::seconds_since(shared_->clock_base_ns);
    auto& g = live_.gone;
    g.erase(std::remove_if(g.begin(), g.end(), [&](const ControlLiveness::Gone& x) { return x.until < now; }), g.end());
    if (g.size() >= 64) g.erase(g.begin());
    g.push_back({node, slot, gen, now + ctx_.config->peer_ttl});
    if (purge_wraps_ == 0) {
      purge_wraps_ = 2;
      on_purge(-1, 0, this);
    }
  }

  static void on_purge(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SwarmWorker*>(arg);
    const conf::Config& c = *self->ctx_.config;
    for (int step = 0; step < 4; step++) {  // ≤ 4 × 4096 peers per turn of the event loop
      shm::ExpireResult r = self->part_->expire_step(shm::seconds_since(self->shared_->clock_base_ns), c.peer_ttl, 4096, &self->live_, true);
      self->count_expired(r);
      if (r.wrapped && --self->purge_wraps_ == 0) return;
    }
    timeval soon{0, 1000};
    evtimer_add(self->purge_, &soon);
  }

  static void on_wakeup(evutil_socket_t, short, void* arg) {  // edge-triggered: no read
    static_cast<SwarmWorker*>(arg)->drain();
  }
  static void on_retry(evutil_socket_t, short, void* arg) { static_cast<SwarmWorker*>(arg)->drain(); }
  static void on_expire(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<SwarmWorker*>(arg);
    const conf::Config& c = *self->ctx_.config;
    shm::ExpireResult r = self->part_->expire_step(shm::seconds_since(self->shared_->clock_base_ns), c.peer_ttl, c.cleanup_budget, &self->live_);
    self->count_expired(r);
    self->drain();  // a safety net against a lost wake-up; it also notices a socket slot whose process changed
  }

  const WorkerContext& ctx_;
  SharedState* shared_;
  shm::Partition* part_;
  std::vector<shm::SpscRing<shm::Request>> requests_;
  std::vector<shm::SpscRing<shm::Response>> responses_;
  std::vector<bool> woken_;
  const shm::PeerPolicy* policy_;  // chooses the peers of each reply (peer_selection.policy)
  ClusterLink cluster_;            // rings to the sync worker (cluster.enabled)
  uint64_t poison_ = 0;            // request_mark() of a request to skip, 0 = none
  // Fault injection for the test suite (shoald(8), ENVIRONMENT): SHOAL_TEST_ABORT_INFO_HASH, 40
  // hex digits, makes this worker abort when it applies a request for that info_hash.
  bool fault_hash_set_ = false;
  uint8_t fault_hash_[20] = {};
  shm::Response scratch_;  // response of an orphaned set's request (never sent)
  event* wakeup_ = nullptr;
  event* retry_ = nullptr;
  event* expire_ = nullptr;
  event* purge_ = nullptr;
  ControlLiveness live_;
  // tracker.new_torrents_per_source_rate: token buckets of torrent creations per source.
  struct SourceGate final : shm::TorrentGate {
    SourceLimiter limiter;
    SourceGate(uint32_t rate, uint32_t burst) : limiter(rate, burst) {}
    bool enabled() const { return limiter.enabled(); }
    bool allow_new_torrent(uint8_t family, const uint8_t* addr) override {
      return limiter.allow(family, addr, shm::monotonic_ns() / 1000000);
    }
  } gate_;
  SnapshotPass* snapshot_ = nullptr;       // writes the partition for "snapshot save"
  SnapshotPass* join_answer_ = nullptr;    // writes it for a joining node (cluster)
  std::vector<uint32_t> seen_generation_;  // per socket slot: the active generation last seen
  uint32_t purge_wraps_ = 0;               // sweep wraps left in a running purge (0 = none)
};

}  // namespace

int run_swarm_worker(const WorkerContext& ctx) {
  uint64_t started_ns = shm::monotonic_ns();
  SharedState shared;
  shm::Segment part_seg, topology_seg, snapshot_seg, cluster_seg;
  try {
    snapshot_seg = shm::Segment::attach(shm::snapshot_segment_name(ctx.config->shm_name), shm::SegmentKind::snapshot);
    if (snapshot_seg.size() < shm::snapshot_segment_bytes(ctx.index + 1 + (ctx.config->cluster_enabled ? ctx.config->swarm_workers : 0))) throw std::runtime_error("snapshot segment too small");
    topology_seg = shm::Segment::attach(shm::topology_segment_name(ctx.config->shm_name), shm::SegmentKind::topology, true);
    shared = attach_shared(ctx);
    part_seg = shm::Segment::attach(shm::partition_segment_name(ctx.config->shm_name, ctx.index), shm::SegmentKind::partition);
    if (ctx.config->cluster_enabled) cluster_seg = attach_cluster_segment(*ctx.config);
  } catch (const std::exception& e) {
    LOG_ERROR("cannot attach shared memory: %s", e.what());
    return 1;
  }
  // Setup errors are fatal (exit 1: the supervisor does not respawn a worker that can never
  // start, and says why); an exception escaping here used to abort, and the worker was
  // respawned forever.
  std::optional<shm::Partition> part;
  std::optional<WorkerLoop> loop;
  std::unique_ptr<shm::PeerPolicy> policy;  // before the worker, which points to it
  std::optional<SwarmWorker> worker;
  std::unique_ptr<SnapshotPass> pass, join_pass;  // after the worker: destroyed before it
  bool fast = true;
  try {
    loop.emplace(&shared);
    policy = open_policy(*ctx.config, topology_seg);
    // A rolling restart's successor: everything above is ready; nothing is written until the
    // previous process of the slot has released the partition (worker/swarm_handoff.hpp).
    if (ctx.handoff_from != 0) {
      if (!await_partition(ctx, &shared, &*loop, part_seg)) return 0;
      started_ns = shm::monotonic_ns();
    }
    fast = !poison_suspected(shared.slot);
    part.emplace(recover_partition(part_seg, ctx.index, shared.counters, fast));
    const conf::Config& c = *ctx.config;
    part->set_new_torrent_peer_limit(uint32_t(uint64_t(c.peers_per_partition) * (100 - c.headroom_percent) / 100));
    if (c.cluster_enabled) part->set_ws_key_seed(cluster_ws_key_seed(c.cluster_subject));  // one key of a peer_id on every node
    if (!load_snapshot_if_pending(ctx, shared, &*part, snapshot_seg)) return 1;
    worker.emplace(ctx, &shared, &*part, &*loop, policy.get(), ctx.config->cluster_enabled ? cluster_seg.base() : nullptr);
    pass = std::make_unique<SnapshotPass>(loop->base(), &*part, snapshot_seg.base(), ctx.index);
    worker->set_snapshot_pass(pass.get());
    if (ctx.config->cluster_enabled) {
      join_pass = std::make_unique<SnapshotPass>(loop->base(), &*part, snapshot_seg.base(), ctx.config->swarm_workers + ctx.index,
                                                 "cluster answer", ctx.index);
      worker->set_join_answer_pass(join_pass.get());
    }
  } catch (const std::exception& e) {
    LOG_ERROR("fatal: swarm worker %u cannot start: %s", ctx.index, e.what());
    return 1;
  }
  worker->judge_predecessor();
  loop->set_ready(ctx.generation);
  worker->drain();  // requests queued while no owner was running
  LOG_INFO("partition %u serving %.1f ms after this worker %s", ctx.index, double(shm::monotonic_ns() - started_ns) / 1e6,
           ctx.handoff_from ? "took it" : "started");
  // The full check of a fast start, in slices while serving.
  std::unique_ptr<BackgroundCheck> check;
  if (fast) {
    try {
      check = std::make_unique<BackgroundCheck>(loop->base(), &*part, ctx.index, shared.counters);
    } catch (const std::exception& e) {
      LOG_WARN("partition %u: no check in the background (%s); checking it now", ctx.index, e.what());
      part->recover();
    }
  }
  int rc = loop->run();
  // Stopped (rolling restart, shoald's stop): the last batch is done; hand the partition over.
  check.reset();
  worker.reset();
  release_partition(ctx, &shared);
  return rc;
}

}  // namespace shoal::worker
