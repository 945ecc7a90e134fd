// worker/cluster_link.cpp — see cluster_link.hpp.
#include "worker/cluster_link.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/cluster_ws.hpp"
#include "shm/control_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition_layout.hpp"
#include "supervisor/log.hpp"

namespace shoal::worker {

namespace {
constexpr uint32_t kResyncBudget = 4096;  // peers queued per resync slice
constexpr timeval kResyncPause{0, 5000};  // between slices (and while the out ring is full)
}  // namespace

bool should_publish(uint8_t change, uint32_t prev_last_seen, uint32_t now, uint32_t suppress_s) {
  if (change & (shm::kChangeNew | shm::kChangeSeeder | shm::kChangeCompleted | shm::kChangeRemoved)) return true;
  if (suppress_s == 0) return true;
  return prev_last_seen / suppress_s != now / suppress_s;
}

ClusterLink::ClusterLink(void* cluster_base, const conf::Config& cfg, uint32_t index, shm::Partition* part,
                         shm::CounterBlock* counters, event_base* base)
    : index_(index), suppress_s_(cfg.cluster_renewal_suppression), part_(part), counters_(counters) {
  if (!cluster_base) return;
  base_ = cluster_base;
  g_ = shm::ClusterGeometry{cfg.swarm_workers, cfg.cluster_ring_slots};
  out_ = shm::cluster_out_ring(base_, g_, index);
  in_ = shm::cluster_in_ring(base_, g_, index);
  control_ = shm::cluster_control(base_, g_, index);
  resync_timer_ = evtimer_new(base, &on_resync, this);
}

ClusterLink::~ClusterLink() {
  if (resync_timer_) event_free(resync_timer_);
}

shm::Delta* ClusterLink::reserve() {
  if (room_ == 0) room_ = out_.free_slots() - queued_;
  if (room_ == 0) return nullptr;
  room_--;
  return out_.slot_for_write(queued_++);
}

shm::Delta* ClusterLink::delta_for(uint8_t status, bool stopped, uint8_t change, uint32_t prev_last_seen, uint32_t now) {
  if (!base_ || status != uint8_t(shm::ResponseStatus::ok)) return nullptr;
  if (stopped ? !(change & shm::kChangeRemoved) : !should_publish(change, prev_last_seen, now, suppress_s_)) {
    if (!stopped) shm::count(counters_, shm::Counter::cluster_deltas_suppressed);
    return nullptr;
  }
  shm::Delta* d = reserve();
  if (!d) shm::count(counters_, shm::Counter::cluster_deltas_dropped);
  return d;
}

namespace {

// The delta flags of an applied announce: stopped alone, or seeder / completed now / counted.
uint8_t delta_flags(bool stopped, bool seeder, uint8_t change) {
  if (stopped) return shm::kDeltaStopped;
  return uint8_t((seeder ? shm::kDeltaSeeder : 0) | ((change & shm::kChangeCompleted) ? shm::kDeltaCompleted : 0) |
                 ((change & shm::kChangeCounted) ? shm::kDeltaCounted : 0));
}

}  // namespace

void ClusterLink::on_announce(const shm::AnnounceInput& in, const shm::AnnounceResult& r) {
  bool stopped = in.event == uint8_t(shm::Event::stopped);
  shm::Delta* d = delta_for(r.status, stopped, r.change, r.prev_last_seen, in.now);
  if (!d) return;
  std::memcpy(d->info_hash, in.info_hash, 20);
  std::memcpy(d->addr, in.addr, 16);
  d->port_be = in.port;
  d->family = in.family;
  d->flags = delta_flags(stopped, in.seeder, r.change);
  d->topology_group = in.topology_group;
  d->progress = in.progress;
  d->origin = 0;
  shm::count(counters_, shm::Counter::cluster_deltas_queued);
}

void ClusterLink::on_ws_announce(const shm::WsAnnounceInput& in, const shm::WsAnnounceResult& r) {
  bool stopped = in.event == uint8_t(shm::Event::stopped);
  shm::Delta* d = delta_for(r.status, stopped, r.change, r.prev_last_seen, in.now);
  if (!d) return;
  shm::WsDelta w{};
  std::memcpy(w.info_hash, in.info_hash, 20);
  std::memcpy(w.peer_id, in.peer_id, 20);
  w.flags = delta_flags(stopped, in.seeder, r.change);
  w.slot = in.slot;
  w.generation = uint16_t(in.generation);
  w.token = in.token;
  shm::pack_ws_delta(w, d);
  shm::count(counters_, shm::Counter::cluster_deltas_queued);
}

uint64_t cluster_ws_key_seed(const std::string& subject) {
  static const char kLabel[] = "shoal webtorrent peer key v1";  // with its NUL
  std::string text(kLabel, sizeof kLabel);
  text += subject;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!EVP_Digest(text.data(), text.size(), md, &n, EVP_sha256(), nullptr) || n < 8)
    throw std::runtime_error("SHA-256 failed (OpenSSL)");
  uint64_t seed = 0;
  for (int i = 0; i < 8; i++) seed = seed << 8 | md[i];
  return seed;
}

shm::Delta resync_ws_delta(const shm::OwnPeer& p) {
  shm::WsDelta w{};
  std::memcpy(w.info_hash, p.info_hash, 20);
  std::memcpy(w.peer_id, p.addr, 16);
  w.flags = uint8_t(p.flags | shm::kDeltaWsKeyed);
  w.slot = p.slot;
  w.generation = uint16_t(p.generation);
  w.token = p.token;
  shm::Delta d;
  shm::pack_ws_delta(w, &d);
  return d;
}

uint8_t apply_ws_delta(shm::Partition& part, const shm::Delta& d, uint32_t now, const shm::WsLiveness& live) {
  shm::WsDelta w = shm::unpack_ws_delta(d);
  shm::WsRemoteInput in{};
  in.info_hash = w.info_hash;
  in.peer_id = w.peer_id;
  in.node = w.origin;
  in.slot = w.slot;
  in.generation = w.generation;
  in.token = w.token;
  in.flags = w.flags;
  in.now = now;
  return part.apply_remote_webtorrent(in, live);
}

namespace {

// A join entry's seeder/counted delta flags as partition peer flags.
uint8_t join_peer_flags(uint8_t delta_flags) {
  return uint8_t(((delta_flags & shm::kDeltaSeeder) ? shm::kPeerSeeder : 0) |
                 ((delta_flags & shm::kDeltaCounted) ? shm::kPeerCompletedCounted : 0));
}

}  // namespace

uint8_t apply_join_entry(shm::Partition& part, const shm::Delta& d, uint32_t now) {
  shm::RestoreInput in{};
  in.info_hash = d.info_hash;
  in.join = true;
  in.family = d.family;
  if (d.family == 0) {
    in.completed = d.join_age_s;
    in.kind = d.reserved[1] == 1 ? shm::kTorrentWebTorrent : shm::kTorrentBitTorrent;
    return part.restore_peer(in);
  }
  uint32_t last_seen = now > d.join_age_s ? now - d.join_age_s : 0;  // join_age_s: the peer's age
  if (d.family == shm::kFamilyWebTorrent) {
    shm::WsRestoreInput w{};
    w.info_hash = d.info_hash;
    std::memcpy(w.key, d.addr, 16);
    w.node = d.origin;
    w.slot = d.reserved[0];
    w.generation = d.port_be;
    std::memcpy(&w.token, &d.topology_group, 4);
    w.flags = join_peer_flags(d.flags);
    w.last_seen = last_seen;
    return part.restore_webtorrent(w);
  }
  std::memcpy(in.addr, d.addr, 16);
  in.port_be = d.port_be;
  in.flags = uint8_t(join_peer_flags(d.flags) | shm::kPeerRemote);
  in.last_seen = last_seen;
  in.topology_group = d.topology_group;
  in.progress = d.progress;
  return part.restore_peer(in);
}

void ClusterLink::flush() {
  if (queued_ == 0) return;
  out_.publish(queued_);
  queued_ = 0;
  room_ = 0;
}

bool ClusterLink::apply_incoming(uint32_t now, uint32_t budget, DeltaGuard& guard) {
  if (!base_) return false;
  uint64_t avail = in_.available();
  uint64_t n = std::min<uint64_t>(avail, budget), pos = in_.read_position();
  uint64_t applied = 0, refused = 0;
  for (uint64_t k = 0; k < n; k++) {
    if (guard.skip(pos + k)) continue;
    guard.mark(pos + k);
    const shm::Delta& d = *in_.peek(k);
    if (d.flags & shm::kDeltaJoin) {
      if (apply_join_entry(*part_, d, now) == uint8_t(shm::ResponseStatus::ok)) applied++;
      else refused++;
      continue;
    }
    if (shm::is_ws_gone(d)) {
      shm::WsDelta w = shm::unpack_ws_delta(d);
      if (on_gone_) on_gone_(w.origin, w.slot, w.generation);
      applied++;
      continue;
    }
    uint8_t st = !shm::is_ws_delta(d) ? part_->apply_remote(remote_input(d, now))
                 : live_                ? apply_ws_delta(*part_, d, now, *live_)
                                        : uint8_t(shm::ResponseStatus::bad_request);
    if (st == uint8_t(shm::ResponseStatus::ok)) applied++;
    else refused++;
  }
  guard.done();
  in_.retire(n);
  if (applied) shm::count(counters_, shm::Counter::cluster_deltas_applied, applied);
  if (refused) shm::count(counters_, shm::Counter::cluster_deltas_dropped, refused);
  return avail > n;
}

void ClusterLink::check_resync() {
  if (!base_) return;
  uint32_t want = shm::load_u32(control_->resync_request);
  if (want == shm::load_u32(control_->resync_started)) return;
  shm::store_u32(control_->resync_started, want);
  cursor_ = shm::SnapshotCursor{};  // a pass in progress starts over: the new request wants all
  if (!resyncing_) LOG_INFO("partition %u: sending this node's peers to the cluster again (resync %u)", index_, want);
  resyncing_ = true;
  resync_step();
}

void ClusterLink::on_resync(evutil_socket_t, short, void* arg) { static_cast<ClusterLink*>(arg)->resync_step(); }

void ClusterLink::resync_step() {
  struct Sink final : shm::OwnPeerSink {
    ClusterLink* link;
    uint64_t n = 0;
    bool put(const shm::OwnPeer& p) override {
      shm::Delta* d = link->reserve();
      if (!d) return false;
      if (p.family == shm::kFamilyWebTorrent) {
        *d = resync_ws_delta(p);
        n++;
        return true;
      }
      *d = shm::Delta{};
      std::memcpy(d->info_hash, p.info_hash, 20);
      std::memcpy(d->addr, p.addr, p.family == 4 ? 4 : 16);
      d->port_be = p.port_be;
      d->family = p.family;
      d->flags = p.flags;
      d->topology_group = p.topology_group;
      d->progress = p.progress;
      n++;
      return true;
    }
  } sink;
  sink.link = this;
  part_->replicate_step(cursor_, sink, kResyncBudget, live_);
  flush();
  if (sink.n) shm::count(counters_, shm::Counter::cluster_resync_peers, sink.n);
  if (cursor_.done) {
    resyncing_ = false;
    shm::store_u32(control_->resync_done, shm::load_u32(control_->resync_started));
    return;
  }
  evtimer_add(resync_timer_, &kResyncPause);
}

}  // namespace shoal::worker
