// supervisor/reload.cpp — see reload.hpp. Runs only in the supervisor. The reloader is one object
// created on the first request and never destroyed (its timer lives on the supervisor's event
// base; the process exits with it). It writes only the access segment, and reads the socket
// workers' pid and access_generation words in the control segment.
#include "supervisor/reload.hpp"

#include <cstring>
#include <stdexcept>
#include <vector>

#include "conf/access_list.hpp"
#include "shm/access_segment.hpp"
#include "shm/clock.hpp"
#include "shm/control_segment.hpp"
#include "supervisor/log.hpp"
#include "supervisor/topology_load.hpp"
#include "shm/transfers_segment.hpp"

namespace shoal::supervisor {
namespace {

constexpr uint64_t kAckPollMs = 20;         // how often the acks are polled while waiting
constexpr uint64_t kAckWarnAfterMs = 2000;  // a worker this late is named in a warning

uint64_t ms_since(uint64_t start_ns) { return (shm::monotonic_ns() - start_ns) / 1000000ull; }

conf::AccessMode mode_of(const conf::Config& cfg) {
  conf::AccessMode mode = conf::AccessMode::off;
  conf::parse_access_mode(cfg.access_list_mode, &mode);
  return mode;
}

// Copies `hashes` into buffer b and publishes it: count, then active, then generation.
void publish(shm::AccessHeader* h, void* base, uint32_t b, const std::vector<conf::InfoHash>& hashes) {
  uint8_t* dst = shm::access_buffer(base, h->capacity, b);
  if (!hashes.empty()) std::memcpy(dst, hashes.data(), hashes.size() * shm::kAccessEntryBytes);
  shm::release_store(h->count[b], uint64_t(hashes.size()));
  shm::release_store(h->active, b);
  shm::release_store(h->generation, shm::acquire_load(h->generation) + 1);
}

class AccessReloader {
 public:
  AccessReloader(event_base* base, const conf::Config& cfg, const SegmentSet& segments)
      : cfg_(cfg), control_(segments.control_view()), seg_base_(segments.access.base()),
        h_(shm::access_header(segments.access.base())), topology_(segments.topology),
        transfers_(segments.transfers) {
    timer_ = evtimer_new(base, &AccessReloader::on_timer, this);
  }

  // Publishes `sorted` (by info_hash) as the registered transfers at the next flip, without
  // touching the access list or the topology map (unless a reload of those is pending too).
  void request_transfers(std::vector<shm::TransferEntry> sorted) {
    pending_transfers_ = std::move(sorted);
    transfers_pending_ = true;
    if (!have_pending_) requested_ns_ = waiting_since_ns_ = shm::monotonic_ns();
    have_pending_ = true;
    if (!try_publish()) evtimer_add(timer_, &kPoll);
  }

  bool request(std::string* msg) {
    bool access_on = mode_of(cfg_) != conf::AccessMode::off, topology_on = cfg_.topology_mode == "file";
    if (!access_on && !topology_on) {
      LOG_INFO("reload requested, but access_list.mode is \"off\" and there is no topology map: nothing to reload");
      return say(msg, "access_list.mode is \"off\" and topology.mode is not \"file\": nothing to reload"), false;
    }
    uint64_t t0 = shm::monotonic_ns();
    conf::AccessListResult r;
    if (access_on) r = conf::load_access_list(cfg_.access_list_path, h_->capacity);
    if (!r.ok()) {
      shm::release_store(h_->reload_errors, shm::acquire_load(h_->reload_errors) + 1);
      uint64_t kept = shm::acquire_load(h_->count[shm::acquire_load(h_->active)]);
      std::string line = r.error + "; keeping previous list (" + std::to_string(kept) + " hashes)";
      if (topology_on) line += " and topology map";
      LOG_ERROR("%s", line.c_str());
      return say(msg, line), false;
    }
    PendingTopology topo;
    std::string topo_error;
    if (!prepare_topology_reload(cfg_, topology_, &topo, &topo_error)) {
      shm::release_store(h_->reload_errors, shm::acquire_load(h_->reload_errors) + 1);
      std::string line = topo_error + "; keeping previous topology map" + (access_on ? " and access list" : "");
      LOG_ERROR("%s", line.c_str());
      return say(msg, line), false;
    }
    pending_topology_ = std::move(topo);
    pending_ = std::move(r.hashes);
    lists_pending_ = true;
    if (!have_pending_) requested_ns_ = waiting_since_ns_ = t0;
    have_pending_ = true;
    parse_ms_ = ms_since(t0);
    if (try_publish()) return say(msg, last_line_), true;
    evtimer_add(timer_, &kPoll);
    return say(msg, "parsed " + std::to_string(pending_.size()) + " hashes in " + std::to_string(parse_ms_) +
                        " ms; publishing once every socket worker has left the old list"),
           true;
  }

 private:
  static constexpr timeval kPoll{0, long(kAckPollMs * 1000)};

  static void say(std::string* msg, const std::string& text) {
    if (msg) *msg = text;
  }

  // Publishes the pending list if no live worker can still read the inactive buffer.
  bool try_publish() {
    uint32_t generation = shm::acquire_load(h_->generation), ack = 0;
    bool draining = false;
    int late = access_laggard(control_, generation, &ack, &draining);
    if (late >= 0) {
      if (ms_since(waiting_since_ns_) >= kAckWarnAfterMs) {
        const shm::WorkerSlot& ws = control_->slots[shm::socket_slot(uint32_t(late))];
        if (draining)
          LOG_WARN("access list reload: the previous socket worker %d is still draining after a rolling restart "
                   "(%llu ms); not overwriting the list it may read, retrying",
                   late, (unsigned long long)ms_since(waiting_since_ns_));
        else
          LOG_WARN("access list reload: socket worker %d (pid %u) still acks generation %u, not %u, after %llu ms; "
                   "not overwriting the list it may read, retrying",
                   late, shm::load_u32(ws.pid), ack, generation, (unsigned long long)ms_since(waiting_since_ns_));
        waiting_since_ns_ = shm::monotonic_ns();
      }
      return false;
    }
    uint32_t inactive = 1 - shm::acquire_load(h_->active);
    uint64_t copy_ns = shm::monotonic_ns();
    // Every part first, then one generation: one ack covers them all.
    if (transfers_pending_) publish_transfers(transfers_, pending_transfers_);
    if (lists_pending_) publish_topology(topology_, pending_topology_);
    if (lists_pending_) publish(h_, seg_base_, inactive, pending_);
    else shm::release_store(h_->generation, shm::acquire_load(h_->generation) + 1);
    uint64_t total_ms = ms_since(requested_ns_);
    shm::release_store(h_->reloads, shm::acquire_load(h_->reloads) + 1);
    shm::release_store(h_->last_reload_ms, total_ms);
    char what[160] = "", line[300];
    bool topology = lists_pending_ && cfg_.topology_mode == "file";
    if (lists_pending_ && mode_of(cfg_) != conf::AccessMode::off)
      snprintf(what, sizeof what, "access list reloaded: %zu hashes", pending_.size());
    if (topology)
      snprintf(what + strlen(what), sizeof what - strlen(what), "%stopology map reloaded: %zu prefixes",
               what[0] ? "; " : "", pending_topology_.prefixes);
    if (transfers_pending_)
      snprintf(what + strlen(what), sizeof what - strlen(what), "%sregistered transfers published: %zu",
               what[0] ? "; " : "", pending_transfers_.size());
    snprintf(line, sizeof line, "%s in %llu ms (parse %llu ms, copy %llu ms; generation %u)", what,
             (unsigned long long)total_ms, (unsigned long long)parse_ms_, (unsigned long long)ms_since(copy_ns),
             generation + 1);
    last_line_ = line;
    LOG_INFO("%s", last_line_.c_str());
    std::vector<conf::InfoHash>().swap(pending_);  // give the memory back
    pending_topology_ = PendingTopology{};
    std::vector<shm::TransferEntry>().swap(pending_transfers_);
    have_pending_ = lists_pending_ = transfers_pending_ = false;
    return true;
  }

  static void on_timer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<AccessReloader*>(arg);
    if (self->have_pending_ && !self->try_publish()) evtimer_add(self->timer_, &kPoll);
  }

  const conf::Config& cfg_;
  shm::ControlSegment* control_;
  void* seg_base_;
  shm::AccessHeader* h_;
  event* timer_ = nullptr;
  const shm::Segment& topology_;
  const shm::Segment& transfers_;
  std::vector<conf::InfoHash> pending_;
  PendingTopology pending_topology_;
  std::vector<shm::TransferEntry> pending_transfers_;
  bool have_pending_ = false;     // something waits for the flip
  bool lists_pending_ = false;    // the access list and topology map (a reload)
  bool transfers_pending_ = false;
  uint64_t requested_ns_ = 0, waiting_since_ns_ = 0, parse_ms_ = 0;
  std::string last_line_;
};

AccessReloader* g_reloader = nullptr;  // supervisor only; intentionally never freed

}  // namespace

int access_laggard(const shm::ControlSegment* control, uint32_t generation, uint32_t* ack, bool* draining) {
  *draining = false;
  for (uint32_t i = 0; i < control->control.socket_workers; i++) {
    if (shm::load_u32(control->socket_sets[i].draining_generation) != 0) {
      *draining = true;
      return int(i);
    }
    const shm::WorkerSlot& ws = control->slots[shm::socket_slot(i)];
    if (shm::load_u32(ws.pid) == 0) continue;  // not running: reads nothing
    *ack = shm::load_u32(ws.access_generation);
    if (*ack != generation) return int(i);
  }
  return -1;
}

void load_access_list_at_start(const conf::Config& cfg, const shm::Segment& access) {
  shm::AccessHeader* h = shm::access_header(access.base());
  conf::AccessMode mode = mode_of(cfg);
  h->mode = uint32_t(mode);
  h->capacity = mode == conf::AccessMode::off ? 0 : cfg.access_list_max_entries;
  h->active = 0;
  h->generation = 1;
  if (mode == conf::AccessMode::off) return;
  uint64_t t0 = shm::monotonic_ns();
  conf::AccessListResult r = conf::load_access_list(cfg.access_list_path, h->capacity);
  if (!r.ok()) throw std::runtime_error(r.error);
  if (!r.hashes.empty()) std::memcpy(shm::access_buffer(access.base(), h->capacity, 0), r.hashes.data(), r.hashes.size() * 20);
  shm::release_store(h->count[0], uint64_t(r.hashes.size()));
  LOG_INFO("access list (%s mode): %zu hashes from %s in %llu ms", conf::access_mode_name(mode), r.hashes.size(),
           cfg.access_list_path.c_str(), (unsigned long long)ms_since(t0));
}

bool request_access_list_reload(event_base* base, const conf::Config& cfg, const SegmentSet& segments,
                                std::string* msg) {
  if (!g_reloader) g_reloader = new AccessReloader(base, cfg, segments);
  return g_reloader->request(msg);
}

void publish_transfers(const shm::Segment& seg, const std::vector<shm::TransferEntry>& sorted) {
  shm::TransfersHeader* h = shm::transfers_header(seg.base());
  uint32_t n = uint32_t(std::min<size_t>(sorted.size(), h->capacity));
  uint32_t b = 1 - (shm::acquire_load(h->active) & 1);
  if (n) std::memcpy(shm::transfers_buffer(seg.base(), h->capacity, b), sorted.data(), n * sizeof(shm::TransferEntry));
  shm::release_store(h->count[b], n);
  shm::release_store(h->active, b);
}

void request_transfers_publish(event_base* base, const conf::Config& cfg, const SegmentSet& segments,
                               std::vector<shm::TransferEntry> sorted) {
  if (segments.transfers.size() < shm::transfers_segment_bytes(1)) return;  // no state_dir: nothing to publish
  if (!g_reloader) g_reloader = new AccessReloader(base, cfg, segments);
  g_reloader->request_transfers(std::move(sorted));
}

}  // namespace shoal::supervisor
