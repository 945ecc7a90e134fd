// worker/request_path.cpp — see request_path.hpp. Runs in a socket worker; writes only its
// request rings' producer words, its response rings' consumer words and its counters.
#include "worker/request_path.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "shm/clock.hpp"
#include "worker/udp_io.hpp"
#include "worker/worker_common.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

using shm::Counter;

namespace {
constexpr uint32_t kScrapeTimeoutMs = 2000;  // a split scrape not complete by then is dropped
constexpr const char* kNotRegistered = "not a registered transfer: this tracker serves peers only for its deploy transfers";
}  // namespace

uint16_t effective_numwant(int64_t numwant, shm::Event event, const conf::Config& cfg, uint16_t limit) {
  if (event == shm::Event::stopped) return 0;  // the peer leaves: it gets no peers
  uint64_t want = numwant < 0 ? cfg.default_numwant : uint64_t(numwant);
  return uint16_t(std::min<uint64_t>({want, cfg.max_numwant, limit}));
}

RequestPath::RequestPath(const conf::Config& cfg, std::vector<shm::SpscRing<shm::Request>> requests,
                         std::vector<shm::SpscRing<shm::Response>> responses, std::vector<int> wake_fds,
                         const AccessCheck* access, shm::CounterBlock* counters, event_base* base,
                         uint32_t first_scrape_id, uint64_t partition_key)
    : cfg_(cfg), requests_(std::move(requests)), responses_(std::move(responses)), wake_fds_(std::move(wake_fds)),
      pending_(requests_.size(), 0), access_(access), counters_(counters), partition_key_(partition_key),
      scrapes_(first_scrape_id) {
  if (base) {
    publish_soon_ = event_new(base, -1, 0, &on_publish_soon, this);
    event_priority_set(publish_soon_, kPriorityLow);
  }
}

RequestPath::~RequestPath() {
  if (publish_soon_) event_free(publish_soon_);
}

void RequestPath::attach(shm::Protocol p, ResponseSink* sink, PeerLimits limits) {
  size_t i = size_t(p);
  if (i >= kProtocols) return;
  sinks_[i] = sink;
  limits_[i] = limits;
}

bool RequestPath::has_room(const uint8_t* info_hash) const {
  uint32_t w = partition_of(info_hash, partitions(), partition_key_);
  return requests_[w].free_slots() > pending_[w];
}

bool RequestPath::has_room_everywhere(uint64_t n) const {
  for (size_t w = 0; w < requests_.size(); ++w)
    if (requests_[w].free_slots() < pending_[w] + n) return false;
  return true;
}

PathStatus RequestPath::announce(const AnnounceIn& a, const shm::ReplyContext& ctx) {
  if (access_ && !access_->allowed(a.info_hash)) {
    shm::count(counters_, Counter::access_denied);
    return PathStatus::access_denied;
  }
  uint32_t w = partition_of(a.info_hash, partitions(), partition_key_);
  if (requests_[w].free_slots() <= pending_[w]) {
    shm::count(counters_, Counter::ring_full_drops);
    return PathStatus::ring_full;
  }
  shm::Request* r = requests_[w].slot_for_write(pending_[w]++);
  r->ctx = ctx;
  r->ctx.scrape_id = 0;
  r->ctx.scrape_index = r->ctx.scrape_total = 0;
  std::memcpy(r->info_hash, a.info_hash, 20);
  std::memset(r->peer_addr, 0, sizeof r->peer_addr);
  r->peer_port = htons(a.peer_port);
  r->family = a.family;
  r->kind = uint8_t(shm::RequestKind::announce);
  r->event = uint8_t(a.event);
  r->seeder = a.seeder;
  size_t p = ctx.protocol < kProtocols ? ctx.protocol : 0;
  if (a.family == shm::kFamilyWebTorrent) {  // a connection, not an address: no topology, no deploy
    std::memcpy(r->peer_id, a.peer_id, 20);
    r->conn_generation = a.conn_generation;
    r->conn_family = a.conn_family == 6 ? 6 : 4;
    std::memcpy(r->peer_addr, a.peer_addr, r->conn_family == 6 ? 16 : 4);
    r->numwant = a.event == shm::Event::stopped ? 0 : uint16_t(std::min<int64_t>(std::max<int64_t>(a.numwant, 0), limits_[p].v4));
    r->topology_group = 0;
    r->ctx.flags = 0;
    r->progress = shm::kProgressUnknown;
    return PathStatus::ok;
  }
  std::memcpy(r->peer_addr, a.peer_addr, a.family == 4 ? 4 : 16);
  r->numwant = effective_numwant(a.numwant, a.event, cfg_, a.family == 4 ? limits_[p].v4 : limits_[p].v6);
  r->topology_group = access_ ? access_->topology_group(a.family, a.peer_addr) : 0;
  // transfers.mode "deploy": a torrent that is not a registered transfer is counted and stored
  // like any other, but its peers are not handed out (p2ptracker's behaviour). A registered
  // one records how far each peer is (deploy progress) and when it started and completed.
  const shm::TransferEntry* t = access_ ? access_->transfer(a.info_hash) : nullptr;
  r->ctx.flags = t ? shm::kReplyRegistered : 0;
  r->progress = t ? progress_permille(a.left, t->length) : shm::kProgressUnknown;
  if (t) access_->note_transfer_event(*t, a.event, a.seeder);
  if (!t && access_ && access_->deploy_mode()) r->numwant = 0;
  return PathStatus::ok;
}

PathStatus RequestPath::scrape(const ScrapeIn& s, const shm::ReplyContext& ctx) {
  uint32_t n = std::min<uint32_t>(s.count, kMaxScrapeHashes);
  uint32_t parts[shm::kMaxSwarmWorkers] = {};
  bool refused[kMaxScrapeHashes] = {};
  uint32_t served = 0;
  for (uint32_t h = 0; h < n; h++) {
    const uint8_t* hash = s.info_hashes + 20 * h;
    if ((refused[h] = access_ && !access_->allowed(hash))) continue;
    parts[partition_of(hash, partitions(), partition_key_)]++;
    served++;
  }
  for (size_t w = 0; w < requests_.size(); w++) {  // all parts or none
    if (parts[w] && requests_[w].free_slots() < pending_[w] + parts[w]) {
      shm::count(counters_, Counter::ring_full_drops);
      return PathStatus::ring_full;
    }
  }
  if (served < n) shm::count(counters_, Counter::access_denied, n - served);
  bool expired = false;
  uint32_t id = scrapes_.start(uint16_t(n), s.info_hashes, now_ms(), kScrapeTimeoutMs, &expired);
  if (expired) shm::count(counters_, Counter::scrape_timeouts);
  if (id == 0) {
    shm::count(counters_, Counter::ring_full_drops);
    return PathStatus::busy;
  }
  PendingScrape* done = nullptr;
  for (uint32_t h = 0; h < n; h++) {
    if (refused[h]) {  // answered as an unknown torrent
      done = scrapes_.add(id, uint16_t(h), {0, 0, 0});
      continue;
    }
    const uint8_t* hash = s.info_hashes + 20 * h;
    uint32_t w = partition_of(hash, partitions(), partition_key_);
    shm::Request* r = requests_[w].slot_for_write(pending_[w]++);
    r->ctx = ctx;
    r->ctx.scrape_id = id;
    r->ctx.scrape_index = uint16_t(h);
    r->ctx.scrape_total = uint16_t(n);
    std::memcpy(r->info_hash, hash, 20);
    std::memset(r->peer_addr, 0, sizeof r->peer_addr);
    r->family = ctx.family;
    r->kind = uint8_t(shm::RequestKind::scrape);
    r->numwant = 0;
  }
  if (done) {  // every hash refused: nothing went to a ring
    ResponseSink* sink = ctx.protocol < kProtocols ? sinks_[ctx.protocol] : nullptr;
    ScrapeResult res{done->total, done->info_hashes, done->counts};
    if (sink) sink->on_scrape(ctx, res);
    scrapes_.finish(id);
  }
  return PathStatus::ok;
}

bool RequestPath::publish() {
  bool any = false;
  for (size_t w = 0; w < requests_.size(); w++) {
    if (!pending_[w]) continue;
    requests_[w].publish(pending_[w]);
    pending_[w] = 0;
    wake(wake_fds_[w]);
    shm::count(counters_, Counter::ring_wakeups);
    any = true;
  }
  return any;
}

void RequestPath::flush() {
  uint64_t waiting = queued();
  if (waiting >= kUdpBatch)
    publish();
  else if (waiting && publish_soon_)
    event_active(publish_soon_, EV_TIMEOUT, 1);  // no-op while it is already active
}

uint64_t RequestPath::queued() const {
  uint64_t waiting = 0;
  for (uint64_t n : pending_) waiting += n;
  return waiting;
}

uint64_t RequestPath::drain_responses() {
  uint64_t total = 0;
  uint64_t taken[shm::kMaxSwarmWorkers] = {};  // one response ring per swarm worker
  for (size_t r = 0; r < responses_.size(); r++) {
    uint64_t n = taken[r] = responses_[r].available();
    if (n == 0) continue;
    for (uint64_t k = 0; k < n; k++) deliver(*responses_[r].peek(k));
    total += n;
    shm::count(counters_, Counter::ring_batches);
    shm::count(counters_, Counter::ring_messages, n);
  }
  for (ResponseSink* s : sinks_)
    if (s) s->after_responses();
  // Only now: a sink may send peers straight from the slots until after_responses() (UDP).
  for (size_t r = 0; r < responses_.size(); r++)
    if (taken[r]) responses_[r].retire(taken[r]);
  publish();  // front-ends may have queued follow-up work
  return total;
}

void RequestPath::deliver(const shm::Response& r) {
  const shm::ReplyContext& c = r.ctx;
  ResponseSink* sink = c.protocol < kProtocols ? sinks_[c.protocol] : nullptr;
  if (!sink) return;  // no front-end of that protocol here (any more)
  if (r.kind == uint8_t(shm::RequestKind::scrape)) return deliver_scrape_part(r);
  AnnounceResult a;
  a.status = r.status == uint8_t(shm::ResponseStatus::ok)              ? PathStatus::ok
             : r.status == uint8_t(shm::ResponseStatus::peer_id_taken) ? PathStatus::peer_id_taken
             : r.status == uint8_t(shm::ResponseStatus::source_quota)  ? PathStatus::source_quota
                                                                        : PathStatus::tracker_full;
  a.seeders = r.seeders;
  a.leechers = r.leechers;
  a.completed = r.completed;
  a.family = r.family;
  size_t entry = r.family == shm::kFamilyWebTorrent ? sizeof(shm::WsTarget) : r.family == 6 ? 18 : 6;
  a.peer_count = uint16_t(std::min<size_t>(r.peer_count, shm::kMaxResponsePeerBytes / entry));
  a.peers = r.peers;
  // Two intervals (issue 11): a registered transfer in progress (someone still downloading, or
  // no completion yet) is asked back soon; everything else at the passive interval. Whether it
  // is registered was decided when the request was made (ReplyContext::flags).
  if (r.family == shm::kFamilyWebTorrent) {
    a.interval = cfg_.ws_announce_interval;
    sink->on_announce(c, a);
    return;
  }
  bool registered = c.flags & shm::kReplyRegistered;
  a.interval = registered && (r.leechers > 0 || r.completed == 0) ? cfg_.transfers_active_interval : cfg_.announce_interval;
  if (!registered && access_ && access_->deploy_mode()) a.warning = kNotRegistered;
  sink->on_announce(c, a);
}

void RequestPath::deliver_scrape_part(const shm::Response& r) {
  const shm::ReplyContext& c = r.ctx;
  PendingScrape* e = scrapes_.add(c.scrape_id, c.scrape_index, {r.seeders, r.completed, r.leechers});
  if (!e) return;  // incomplete, a duplicate, or of a scrape that is gone
  ScrapeResult res{e->total, e->info_hashes, e->counts};
  sinks_[c.protocol]->on_scrape(c, res);
  scrapes_.finish(c.scrape_id);
}

void RequestPath::discard_stale_responses() {
  for (auto& ring : responses_) ring.retire(ring.available());
}

bool RequestPath::rings_empty() const {
  for (const auto& r : requests_)
    if (r.depth() != 0) return false;
  for (const auto& r : responses_)
    if (r.depth() != 0) return false;
  return true;
}

uint32_t RequestPath::now_ms() const { return uint32_t(shm::monotonic_ns() / 1000000ull); }

void RequestPath::on_publish_soon(evutil_socket_t, short, void* arg) {
  static_cast<RequestPath*>(arg)->publish();
}

}  // namespace shoal::worker
