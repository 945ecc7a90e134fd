// worker/cluster_link.hpp — a swarm worker's end of the cluster rings (issue 14,
// shm/cluster_segment.hpp). Runs in the swarm worker only, on its event loop; never calls NATS
// and never waits: a full ring drops the delta and counts it.
//   out: after each announce applied from this node's clients, the change goes into the out ring
//        unless it is a renewal that changes nothing within cluster.renewal_suppression (see
//        should_publish); published once per batch (flush).
//   in:  other nodes' changes, applied to the partition between batches without replies.
//   resync: when the sync worker asks (a (re)connection to NATS, another node's hello), every
//        peer this node's clients announced (not those learned from other nodes) is queued
//        again, in slices as the out ring has room, from a 5 ms timer.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "conf/config.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/counters.hpp"
#include "shm/partition.hpp"

namespace shoal::worker {

// Renewal suppression without per-peer state: a renewal that changes nothing is sent when it is
// the peer's first announce in its time bucket of `suppress_s` seconds (now / suppress_s differs
// from prev_last_seen / suppress_s). A peer announcing regularly is so sent at least every
// suppress_s + its interval, and at most once per bucket; a crash or restart forgets nothing.
// `change` is AnnounceResult::change; suppress_s 0 sends every renewal.
bool should_publish(uint8_t change, uint32_t prev_last_seen, uint32_t now, uint32_t suppress_s);

// A remote delta (another node's change, from the cluster in ring) as Partition::apply_remote
// takes it; `now` in seconds of this node's segment clock. The delta must outlive the result
// (info_hash points into it).
inline shm::RemoteInput remote_input(const shm::Delta& d, uint32_t now) {
  shm::RemoteInput in{};
  in.info_hash = d.info_hash;
  in.family = d.family;
  std::memcpy(in.addr, d.addr, 16);
  in.port_be = d.port_be;
  in.flags = d.flags;
  in.topology_group = d.topology_group;
  in.progress = d.progress;
  in.now = now;
  return in;
}

// Guards the partition against a delta that kills every swarm worker applying it (the poison
// request mechanism of worker/swarm_worker.cpp, with the in ring as one more ring).
class DeltaGuard {
 public:
  virtual ~DeltaGuard() = default;
  virtual bool skip(uint64_t position) = 0;   // true: skip this one (it killed workers before)
  virtual void mark(uint64_t position) = 0;   // about to apply it
  virtual void done() = 0;                    // between batches
};

// Applies one entry of a joining node's snapshot (kDeltaJoin, shm/cluster_segment.hpp) at
// `now` (seconds since the clock base): a peer is stored as learned from another node
// (kPeerRemote, last_seen = now - join_age_s) only where the partition has no such peer — a
// delta that reached it first is newer; family 0 raises the torrent's completed count to
// join_age_s. ResponseStatus of Partition::restore_peer.
uint8_t apply_join_entry(shm::Partition& part, const shm::Delta& d, uint32_t now);

// The seed of WebTorrent peer keys on every node of the cluster whose subject is `subject`
// (shm::Partition::set_ws_key_seed): the first 8 bytes of SHA-256("shoal webtorrent peer key
// v1" NUL subject). Every node derives the same seed from its configuration, so a partition's
// 16-byte key of a peer_id is the same on all nodes, and a join answer carries keys, not
// peer_ids (which no partition keeps). Not a secret, and it need not be: the peer index hashes
// the key again with the partition's own secret hash_seed (crafted keys still spread over the
// index), and making a peer_id collide with another's key takes knowing that peer_id, which
// serves the same ends directly. Independent of the connection-id keys: their rotation changes
// nothing here.
uint64_t cluster_ws_key_seed(const std::string& subject);

// The resync's WebTorrent delta for this node's own WebTorrent peer `p` (family 'w' of
// Partition::replicate_step): keyed (shm::kDeltaWsKeyed: the peer_id field carries the key).
shm::Delta resync_ws_delta(const shm::OwnPeer& p);

// Applies another node's WebTorrent delta (family 'w', shm/cluster_ws.hpp) at `now`: that node's
// peer (origin) is stored, refreshed or removed (Partition::apply_remote_webtorrent).
uint8_t apply_ws_delta(shm::Partition& part, const shm::Delta& d, uint32_t now, const shm::WsLiveness& live);

class ClusterLink {
 public:
  // `cluster_base`: the mapped cluster segment, or nullptr when cluster.enabled is false (then
  // every method does nothing). `part`, `counters` and `base` outlive the link.
  ClusterLink(void* cluster_base, const conf::Config& cfg, uint32_t index, shm::Partition* part,
              shm::CounterBlock* counters, event_base* base);
  ~ClusterLink();
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  bool enabled() const { return base_ != nullptr; }
  // After an announce from this node's clients was applied (r.status ok): queues its change.
  void on_announce(const shm::AnnounceInput& in, const shm::AnnounceResult& r);
  // After a WebTorrent announce from this node's clients was applied (issue 14): queues its
  // change as a WebTorrent delta (shm/cluster_ws.hpp) under the same suppression rule.
  void on_ws_announce(const shm::WsAnnounceInput& in, const shm::WsAnnounceResult& r);
  // The liveness of this node's socket processes, for other nodes' WebTorrent deltas (a peer_id
  // held by a live connection here keeps it), and what to do when another node says one of its
  // socket processes is gone (shm::kDeltaWsGone: node, slot, generation's low 16 bits). Must
  // outlive the link; set before apply_incoming.
  using GoneFn = std::function<void(uint16_t node, uint8_t slot, uint16_t generation)>;
  void set_liveness(const shm::WsLiveness* live, GoneFn on_gone) {
    live_ = live;
    on_gone_ = std::move(on_gone);
  }
  // Publishes what on_announce and the resync queued (one release store). Once per batch.
  void flush();
  // Applies up to `budget` deltas of the in ring at `now`; true when more are waiting.
  bool apply_incoming(uint32_t now, uint32_t budget, DeltaGuard& guard);
  // Starts a resync pass when the sync worker asked for one (cheap: one load). Call per batch.
  void check_resync();

 private:
  shm::Delta* reserve();  // a slot of the out ring after those queued, or nullptr (full: counted)
  // The slot for an applied announce's delta, or nullptr: not ok, a renewal within the
  // suppression time (counted as suppressed), a stopped that removed nothing, or the ring full
  // (counted as dropped). now and prev_last_seen in seconds since the clock base.
  shm::Delta* delta_for(uint8_t status, bool stopped, uint8_t change, uint32_t prev_last_seen, uint32_t now);
  static void on_resync(evutil_socket_t, short, void* arg);
  void resync_step();

  void* base_ = nullptr;
  shm::ClusterGeometry g_{};
  uint32_t index_ = 0;
  uint32_t suppress_s_ = 0;
  shm::Partition* part_ = nullptr;
  shm::CounterBlock* counters_ = nullptr;
  const shm::WsLiveness* live_ = nullptr;
  GoneFn on_gone_;
  shm::SpscRing<shm::Delta> out_, in_;
  shm::ClusterChannelControl* control_ = nullptr;
  uint64_t queued_ = 0;  // written, not yet published
  uint64_t room_ = 0;    // free slots known after queued_ (refreshed when it runs out)
  event* resync_timer_ = nullptr;
  bool resyncing_ = false;
  shm::SnapshotCursor cursor_{};
};

}  // namespace shoal::worker
