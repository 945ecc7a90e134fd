// worker/snapshot_pass.cpp — see snapshot_pass.hpp. Runs in a swarm worker; touches its own
// partition (read-only in a pass, restores at load) and its own channel of the snapshot segment.
#include "worker/snapshot_pass.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/control_segment.hpp"
#include "shm/messages.hpp"
#include "shm/partition_layout.hpp"
#include "supervisor/log.hpp"
#include "worker/worker_common.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

namespace {
constexpr timeval kEvery{0, 1000};      // one slice a millisecond while a pass runs
constexpr uint64_t kSliceNs = 300000;   // ~0.3 ms of work a slice
constexpr uint32_t kStepPeers = 256;    // peers per snapshot_step (the time is checked between)
}  // namespace

SnapshotPass::SnapshotPass(event_base* base, shm::Partition* part, void* segment_base, uint32_t index, const char* purpose,
                           uint32_t partition)
    : part_(part), ctl_(shm::snapshot_control(segment_base, index)), ring_(shm::snapshot_ring_at(segment_base, index)), index_(index),
      purpose_(purpose), partition_(partition == ~0u ? index : partition) {
  ev_ = event_new(base, -1, EV_PERSIST, &on_slice, this);
  if (!ev_) throw std::runtime_error("event_new failed");
  event_priority_set(ev_, kPriorityLow);
  uint32_t req = shm::load_u32(ctl_->request_seq);
  if (req != shm::load_u32(ctl_->response_seq)) {  // a predecessor died during a pass
    ctl_->status = shm::kSnapshotAbandoned;
    shm::store_u32(ctl_->response_seq, req);
  }
}

SnapshotPass::~SnapshotPass() { event_free(ev_); }

void SnapshotPass::poll() {
  if (running_) return;
  uint32_t req = shm::load_u32(ctl_->request_seq);
  if (req == shm::load_u32(ctl_->response_seq)) return;
  seq_ = req;
  cursor_ = {};
  writer_ = {};
  holding_ = false;
  running_ = true;
  slices_ = 0;
  started_ns_ = shm::monotonic_ns();
  event_add(ev_, &kEvery);
}

void SnapshotPass::on_slice(evutil_socket_t, short, void* arg) { static_cast<SnapshotPass*>(arg)->slice(); }

bool SnapshotPass::take_slot() {
  if (ring_.free_slots() == 0) return false;
  writer_.begin(ring_.slot_for_write(0)->bytes);
  holding_ = true;
  return true;
}

void SnapshotPass::publish_slot() {
  size_t len = writer_.seal();
  holding_ = false;
  if (len == 0) return;
  ring_.slot_for_write(0)->len = uint32_t(len);
  ring_.publish(1);
}

void SnapshotPass::slice() {
  uint64_t t0 = shm::monotonic_ns();
  slices_++;
  do {
    if (!holding_ && !take_slot()) return;  // the ring is full: the supervisor has not caught up
    uint32_t n = part_->snapshot_step(cursor_, writer_, ctl_->t0, kStepPeers, with_ws_ ? &ws_ : nullptr);
    if (cursor_.done) {
      publish_slot();
      ctl_->status = shm::kSnapshotOk;
      ctl_->torrents = writer_.torrents();
      ctl_->peers = writer_.peers();
      shm::store_u32(ctl_->response_seq, seq_);
      running_ = false;
      event_del(ev_);
      LOG_INFO("partition %u %s written: %llu torrents, %llu peers in %u slices, %.1f ms", partition_, purpose_,
               (unsigned long long)writer_.torrents(), (unsigned long long)writer_.peers(), slices_,
               double(shm::monotonic_ns() - started_ns_) / 1e6);
      return;
    }
    if (n < kStepPeers) publish_slot();  // the chunk is full
  } while (shm::monotonic_ns() - t0 < kSliceNs);
}

// ---- load at start ---------------------------------------------------------------------------

namespace {

struct LoadSink final : shm::SnapshotSink {
  shm::Partition* part;
  uint32_t index, swarm_workers, peer_ttl, now;
  uint64_t key, now_unix, elapsed = 0, records = 0;
  bool mine = false;
  LoadReport* rep;
  void (*tick)(void*);
  void* tick_arg;
  bool on_header(const shm::SnapshotInfo& info) override {
    elapsed = now_unix > info.created_unix ? now_unix - info.created_unix : 0;
    return true;
  }
  bool on_torrent(const shm::SnapTorrent& t) override {
    mine = t.kind == 0 && partition_of(t.info_hash, swarm_workers, key) == index;
    if (mine && !(t.flags & shm::kSnapTorrentContinued)) rep->torrents++;
    return true;
  }
  bool on_peer(const shm::SnapTorrent& t, const shm::SnapPeer& p) override {
    if (++records % 65536 == 0 && tick) tick(tick_arg);
    if (!mine) return true;
    uint64_t age = uint64_t(p.age_s) + elapsed;
    if (age > peer_ttl) return rep->expired++, true;
    shm::RestoreInput in{};
    in.info_hash = t.info_hash;
    in.completed = t.completed;
    in.family = p.family;
    std::memcpy(in.addr, p.addr, sizeof in.addr);
    in.port_be = p.port_be;
    in.flags = uint8_t(((p.flags & shm::kSnapPeerSeeder) ? shm::kPeerSeeder : 0) |
                       ((p.flags & shm::kSnapPeerCompletedCounted) ? shm::kPeerCompletedCounted : 0) |
                       ((p.flags & shm::kSnapPeerRepresentative) ? shm::kPeerRepresentative : 0));
    in.last_seen = now >= age ? uint32_t(now - age) : 0;
    in.topology_group = p.topology_group;
    in.progress = p.progress;
    if (part->restore_peer(in) == uint8_t(shm::ResponseStatus::ok)) rep->peers++;
    else rep->full++;
    return true;
  }
};

}  // namespace

LoadReport load_snapshot(const std::string& path, shm::Partition* part, uint32_t index, uint32_t swarm_workers,
                         uint64_t partition_key, uint32_t peer_ttl, uint64_t now_unix, uint32_t now,
                         void (*tick)(void*), void* tick_arg) {
  LoadReport rep;
  uint64_t t0 = shm::monotonic_ns();
  std::unique_ptr<FILE, int (*)(FILE*)> f(fopen(path.c_str(), "rbe"), &fclose);
  if (!f) {
    rep.error = path + ": " + strerror(errno);
    return rep;
  }
  LoadSink sink;
  sink.part = part;
  sink.index = index;
  sink.swarm_workers = swarm_workers;
  sink.peer_ttl = peer_ttl;
  sink.now = now;
  sink.key = partition_key;
  sink.now_unix = now_unix;
  sink.rep = &rep;
  sink.tick = tick;
  sink.tick_arg = tick_arg;
  shm::SnapshotDecoder dec(&sink);
  static uint8_t buf[65536];
  size_t n;
  bool ok = true;
  while (ok && (n = fread(buf, 1, sizeof buf, f.get())) > 0) ok = dec.feed(buf, n);
  if (ok && ferror(f.get())) {
    rep.error = path + ": read error: " + strerror(errno);
    return rep;
  }
  if (ok) ok = dec.finish();
  rep.seconds = double(shm::monotonic_ns() - t0) / 1e9;
  if (!ok) {
    rep.error = path + ": " + dec.error();
    return rep;
  }
  rep.ok = true;
  return rep;
}

}  // namespace shoal::worker
