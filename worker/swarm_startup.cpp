// worker/swarm_startup.cpp — see swarm_startup.hpp.
#include "worker/swarm_startup.hpp"

#include <atomic>
#include <ctime>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/snapshot_segment.hpp"
#include "shm/topology_segment.hpp"
#include "supervisor/log.hpp"
#include "worker/peer_policy_location.hpp"
#include "worker/snapshot_pass.hpp"

namespace shoal::worker {
namespace {

// Writes the heartbeat while a snapshot loads (the worker is not ready yet; the tick says it lives).
void load_tick(void* arg) {
  auto* shared = static_cast<SharedState*>(arg);
  shm::store_u32(shared->slot->last_tick, shm::seconds_since(shared->clock_base_ns));
}

}  // namespace

shm::Partition recover_partition(const shm::Segment& seg, uint32_t index, shm::CounterBlock* counters, bool fast) {
  shm::Partition part(seg.base(), seg.size());
  uint64_t t0 = shm::monotonic_ns();
  shm::RecoverReport rep = fast ? part.recover_fast() : part.recover();
  double ms = double(shm::monotonic_ns() - t0) / 1e6;
  if (rep.was_dirty || rep.rebuilt) {
    shm::count(counters, shm::Counter::partition_repairs);
    LOG_WARN("partition %u was mid-update when its previous owner died: rolled back %u writes%s%s in %.2f ms; %u torrents, %u peers kept",
             index, rep.undone_writes, rep.rebuilt ? ", rebuilt indexes: " : "", rep.rebuilt ? rep.problem.c_str() : "", ms,
             rep.torrents, rep.peers);
  } else {
    LOG_INFO("partition %u attached clean: %u torrents, %u peers (%s in %.2f ms)", index, rep.torrents, rep.peers,
             fast ? "header checked; full check in the background" : "checked", ms);
  }
  return part;
}

bool poison_suspected(const shm::WorkerSlot* ws) {
  uint64_t died_on = std::atomic_ref<const uint64_t>(ws->applying).load(std::memory_order_relaxed);
  return died_on != 0 && died_on == ws->poison_suspect;
}

std::unique_ptr<shm::PeerPolicy> open_policy(const conf::Config& cfg, const shm::Segment& topology) {
  Locations loc;
  const shm::TopologyHeader* h = shm::topology_header(topology.base());
  if (topology.size() >= shm::topology_segment_bytes(h->location_capacity, h->capacity) && h->location_capacity > 0) {
    loc.entries = shm::location_entries(topology.base());
    loc.count = &h->locations;
  }
  std::unique_ptr<shm::PeerPolicy> p = make_peer_policy(cfg.peer_selection_policy, loc, cfg.max_representatives_per_rack);
  if (!p) throw std::runtime_error("unknown peer_selection.policy \"" + cfg.peer_selection_policy + "\"");
  return p;
}

bool load_snapshot_if_pending(const WorkerContext& ctx, SharedState& shared, shm::Partition* part, const shm::Segment& seg) {
  shm::SnapshotControl* ctl = shm::snapshot_control(seg.base(), ctx.index);
  if (shm::load_u32(ctl->load_pending) == 0) return true;
  const conf::Config& c = *ctx.config;
  shm::store_u32(ctl->load_state, shm::kLoadRunning);
  LoadReport r = load_snapshot(c.snapshot_load, part, ctx.index, c.swarm_workers, shared.control->control.partition_key, c.peer_ttl,
                               uint64_t(time(nullptr)), shm::seconds_since(shared.clock_base_ns), &load_tick, &shared);
  if (!r.ok) {
    shm::store_u32(ctl->load_state, shm::kLoadFailed);
    LOG_ERROR("partition %u: cannot load the snapshot %s", ctx.index, r.error.c_str());
    return false;
  }
  ctl->loaded_peers = r.peers;
  ctl->skipped_expired = r.expired;
  ctl->refused_full = r.full;
  ctl->loaded_torrents = part->totals().torrents;
  shm::store_u32(ctl->load_state, shm::kLoadDone);
  shm::store_u32(ctl->load_pending, 0);
  LOG_INFO("partition %u loaded the snapshot %s: %llu torrents, %llu peers; %llu peers skipped (older than peer_ttl), "
           "%llu refused (partition full); %.2f s",
           ctx.index, c.snapshot_load.c_str(), (unsigned long long)ctl->loaded_torrents, (unsigned long long)r.peers,
           (unsigned long long)r.expired, (unsigned long long)r.full, r.seconds);
  return true;
}

}  // namespace shoal::worker
