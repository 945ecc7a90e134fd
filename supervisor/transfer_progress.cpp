// supervisor/transfer_progress.cpp — see transfer_progress.hpp. Runs only in the supervisor, from
// a 10 ms timer on its event loop; never blocks. Reads the topology segment's location table
// (names) and the transfers segment (the active buffer it published, and the stats slots).
#include "supervisor/transfer_progress.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "shm/clock.hpp"
#include "shm/topology_segment.hpp"
#include "shm/transfers_segment.hpp"
#include "supervisor/log.hpp"
#include "supervisor/mailbox.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/transfer_store.hpp"
#include "worker/request_path.hpp"  // partition_of

namespace shoal::supervisor {
namespace {

constexpr timeval kTick{0, 10 * 1000};
constexpr uint64_t kQueryTimeoutMs = 2000;  // a swarm worker that does not answer (restarting)

uint64_t now_ms() { return shm::monotonic_ns() / 1000000ull; }

// The location name of group g (see LocationProgress::name).
std::string location_name(const shm::Segment& topology, uint16_t g) {
  if (g == 0) return "unknown";
  const shm::TopologyHeader* h = shm::topology_header(topology.base());
  uint32_t n = std::min(shm::acquire_load(h->locations), h->location_capacity);
  if (g <= n) return shm::location_entries(topology.base())[g - 1].name;
  return "group " + std::to_string(g);
}

// The stats slot of a registered transfer in the buffer the supervisor published last.
const shm::TransferStats* stats_of(const shm::Segment& transfers, const uint8_t* hash) {
  shm::TransfersHeader* h = shm::transfers_header(transfers.base());
  if (h->capacity == 0) return nullptr;
  uint32_t b = shm::acquire_load(h->active) & 1;
  const shm::TransferEntry* e = shm::find_transfer(shm::transfers_buffer(transfers.base(), h->capacity, b),
                                                   std::min(shm::acquire_load(h->count[b]), h->capacity), hash);
  if (!e || e->slot >= h->capacity) return nullptr;
  return &shm::transfers_stats(transfers.base(), h->capacity)[e->slot];
}

uint64_t load64(const uint64_t& v) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(v)).load(std::memory_order_relaxed);
}

}  // namespace

TransferProgressPoller::TransferProgressPoller(Supervisor* sup, event_base* base, uint32_t min_age_ms)
    : sup_(sup), timer_(event_new(base, -1, EV_PERSIST, &TransferProgressPoller::on_timer, this)),
      min_age_ms_(min_age_ms) {
  event_add(timer_, &kTick);
}

TransferProgressPoller::~TransferProgressPoller() { event_free(timer_); }

const TransferProgress* TransferProgressPoller::get(const uint8_t* info_hash) const {
  Hash h;
  std::memcpy(h.data(), info_hash, 20);
  auto it = snapshots_.find(h);
  return it == snapshots_.end() ? nullptr : &it->second;
}

void TransferProgressPoller::drop_swarm(const uint8_t* info_hash) {
  Hash h;
  std::memcpy(h.data(), info_hash, 20);
  drops_.push_back(h);
  snapshots_.erase(h);
  polled_ms_.erase(h);
}

void TransferProgressPoller::on_timer(evutil_socket_t, short, void* arg) {
  static_cast<TransferProgressPoller*>(arg)->step();
}

bool TransferProgressPoller::next_job(Job* out) {
  if (!drops_.empty()) {
    *out = {drops_.front(), true};
    drops_.pop_front();
    return true;
  }
  TransferStore* store = sup_->transfers();
  if (!store) return false;
  uint64_t now = now_ms(), oldest = UINT64_MAX;
  bool found = false;
  for (const Transfer* t : store->list()) {
    Hash h;
    std::memcpy(h.data(), t->meta.info_hash, 20);
    auto it = polled_ms_.find(h);
    uint64_t at = it == polled_ms_.end() ? 0 : it->second;
    if (at + min_age_ms_ > now || at >= oldest) continue;
    oldest = at;
    *out = {h, false};
    found = true;
  }
  // Forget snapshots of transfers no longer registered.
  for (auto it = snapshots_.begin(); it != snapshots_.end();)
    it = store->find(it->first.data()) ? std::next(it) : (polled_ms_.erase(it->first), snapshots_.erase(it));
  return found;
}

void TransferProgressPoller::step() {
  if (!busy_) {
    if (!next_job(&job_)) return;
    uint32_t part = worker::partition_of(job_.hash.data(), sup_->config().swarm_workers,
                                         sup_->control()->control.partition_key);
    ticket_ = std::make_shared<Ticket>(part, mailbox_queue(part).next_ticket++);
    busy_ = true;
    seq_ = 0;
    sent_ms_ = now_ms();
  }
  shm::TorrentQuery& q = sup_->control()->queries[ticket_->partition];
  if (now_ms() - sent_ms_ > kQueryTimeoutMs) {  // give the turn up; try again later
    if (job_.drop) drops_.push_back(job_.hash);
    else polled_ms_[job_.hash] = now_ms();
    ticket_.reset();
    busy_ = false;
    return;
  }
  if (mailbox_queue(ticket_->partition).serving != ticket_->number) return;
  if (seq_ == 0) {
    seq_ = shm::load_u32(q.request_seq) + 1;
    if (seq_ == 0) seq_ = 1;
    std::memcpy(q.info_hash, job_.hash.data(), 20);
    q.op = uint8_t(job_.drop ? shm::QueryOp::drop : shm::QueryOp::locations);
    shm::store_u32(q.request_seq, seq_);
    sup_->wake_swarm_worker(ticket_->partition);
    sent_ms_ = now_ms();
    return;
  }
  if (shm::load_u32(q.response_seq) != seq_) return;
  finish(job_);
  ticket_.reset();  // the next user's turn
  busy_ = false;
}

void TransferProgressPoller::finish(const Job& job) {
  const shm::TorrentQuery& q = sup_->control()->queries[ticket_->partition];
  if (job.drop) {
    LOG_INFO("transfer %s removed: its swarm (%u peers) is dropped", info_hash_hex(job.hash.data()).c_str(), q.peer_total);
    return;
  }
  TransferProgress p;
  p.polled_unix = uint64_t(time(nullptr));
  p.seeders = q.seeders;
  p.leechers = q.leechers;
  p.completed = q.completed;
  p.peers = q.peer_total;
  p.complete = q.leechers == 0 && q.seeders > 0 && q.completed > 0;
  uint64_t sum = 0, known = 0;
  for (uint32_t i = 0; i < std::min<uint32_t>(q.location_total, shm::kQueryMaxLocations); i++) {
    const shm::QueryLocation& l = q.locations[i];
    LocationProgress lp;
    lp.group = l.topology_group;
    lp.name = location_name(sup_->segments().topology, l.topology_group);
    lp.hosts = l.hosts;
    lp.seeders = l.seeders;
    lp.representatives = l.representatives;
    if (l.known) lp.progress = double(l.progress_sum) / l.known / 10.0;
    sum += l.progress_sum;
    known += l.known;
    p.locations.push_back(lp);
  }
  if (known) p.progress = double(sum) / double(known) / 10.0;
  std::stable_sort(p.locations.begin(), p.locations.end(),
                   [](const LocationProgress& a, const LocationProgress& b) { return a.hosts > b.hosts; });
  if (const shm::TransferStats* s = stats_of(sup_->segments().transfers, job.hash.data())) {
    p.first_started = load64(s->first_started);
    p.first_completed = load64(s->first_completed);
    p.last_completed = load64(s->last_completed);
  }
  snapshots_[job.hash] = std::move(p);
  polled_ms_[job.hash] = now_ms();
}

json_t* progress_json(const TransferProgress& p, bool locations) {
  auto time_or_null = [](uint64_t t) { return t ? json_integer(json_int_t(t)) : json_null(); };
  auto pct = [](double v) { return v < 0 ? json_null() : json_real(double(int64_t(v * 10 + 0.5)) / 10); };
  json_t* o = json_object();
  json_object_set_new(o, "polled", time_or_null(p.polled_unix));
  json_object_set_new(o, "seeders", json_integer(p.seeders));
  json_object_set_new(o, "leechers", json_integer(p.leechers));
  json_object_set_new(o, "completed", json_integer(p.completed));
  json_object_set_new(o, "complete", json_boolean(p.complete));
  json_object_set_new(o, "progress", pct(p.progress));
  json_object_set_new(o, "first_started", time_or_null(p.first_started));
  json_object_set_new(o, "first_completed", time_or_null(p.first_completed));
  json_object_set_new(o, "last_completed", time_or_null(p.last_completed));
  if (locations) {
    json_t* rows = json_array();
    for (const LocationProgress& l : p.locations) {
      json_array_append_new(rows, json_pack("{s:s,s:i,s:i,s:i,s:o}", "location", l.name.c_str(), "hosts", int(l.hosts),
                                            "seeders", int(l.seeders), "representatives", int(l.representatives),
                                            "progress", pct(l.progress)));
    }
    json_object_set_new(o, "locations", rows);
  }
  return o;
}

}  // namespace shoal::supervisor
