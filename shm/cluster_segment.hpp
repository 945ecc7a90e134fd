// shm/cluster_segment.hpp — the cluster segment (issue 14, several shoald nodes as one tracker):
// the rings between the swarm workers and the sync worker, and the bus status the sync worker
// publishes for `shoalctl show cluster` and the metrics. Created fresh by the supervisor at
// every start when cluster.enabled is true (never re-attached: a delta still in a ring when
// shoald stops is lost, and the resync after the next connection sends the node's peers again).
//
// Layout:
//   SegmentHeader                                   64 B (count = swarm workers)
//   ClusterStatus                                   written by the sync worker only
//   ClusterChannel channels[swarm_workers], each 64-byte aligned:
//     ClusterChannelControl                         64 B: resync request / answer words
//     out ring  SpscRing<Delta> (swarm worker → sync worker): changes the swarm worker applied
//               from its own clients; single producer the swarm worker, consumer the sync worker
//     in ring   SpscRing<Delta> (sync worker → swarm worker): other nodes' changes to apply
//               without a reply; producer the sync worker, consumer the swarm worker
//   transfer out ring  SpscRing<TransferNotice>, kTransferNoticeSlots: deploy transfers this
//               node's operator registered or removed; producer the supervisor, consumer the
//               sync worker (which publishes them: worker/cluster_transfers.hpp)
//   transfer in ring   SpscRing<TransferNotice>: other nodes' registrations and removals;
//               producer the sync worker, consumer the supervisor
// A full out ring drops the delta and counts it (cluster_deltas_dropped): a swarm worker never
// waits for the bus. A full in ring likewise (the sync worker counts it). Both sides survive the
// other's crash: ring head and tail live here, and the consumer of a ring retires entries only
// after handling them (a replacement handles them again: applying a delta twice changes
// nothing, publishing one twice neither).
#pragma once
#include <cstddef>
#include <cstdint>

#include "shm/layout.hpp"
#include "shm/spsc_ring.hpp"

namespace shoal::shm {

// Delta flags (Delta::flags and the wire format, worker/cluster_codec.hpp).
inline constexpr uint8_t kDeltaSeeder = 1;     // the peer's last announce had left == 0
inline constexpr uint8_t kDeltaStopped = 2;    // event=stopped: remove the peer
inline constexpr uint8_t kDeltaCompleted = 4;  // this announce counted the peer's completion at its origin
inline constexpr uint8_t kDeltaCounted = 8;    // the peer's completion was counted (now or before)
inline constexpr uint8_t kDeltaKnownFlags = 15;
// In rings only, never on the wire: an entry of the snapshot a joining node loads
// (worker/cluster_join.hpp). family 4/6: a peer, stored only where this node has no such peer
// (a delta that arrived meanwhile is newer), its age in join_age_s; family 0: a torrent's
// completed count in join_age_s, raised to it if lower here (reserved[1] = 1: of the info_hash's
// WebTorrent swarm); family 'w': a WebTorrent peer (shm::Partition::restore_webtorrent), addr
// its 16-byte peer key, origin/reserved[0]/port_be the node, socket slot and generation (low 16
// bits) holding its connection, topology_group and progress together the connection's token
// (4 bytes, host order), its age in join_age_s.
inline constexpr uint8_t kDeltaJoin = 0x80;

// One peer change, 52 B. Addresses and ports in network order (IPv4 in addr[0..3], the rest 0).
//   family          4 or 6; 'w' (kFamilyWebTorrent): a WebTorrent delta packed as shm/cluster_ws.hpp says
//   topology_group  the peer's location group at its origin (0 unknown)
//   progress        permille of a registered transfer, 0xffff unknown
//   origin          node id of the node whose client announced (in rings: 0 on the way out)
//   join_age_s      kDeltaJoin entries only (then origin is unused): seconds between the peer's
//                   last announce and the moment its node answered with the snapshot, or the
//                   torrent's completed count (family 0)
struct Delta {
  uint8_t info_hash[20];
  uint8_t addr[16];
  uint16_t port_be;
  uint8_t family;
  uint8_t flags;
  uint16_t topology_group;
  uint16_t progress;
  uint16_t origin;
  uint8_t reserved[2];
  uint32_t join_age_s;
};
static_assert(sizeof(Delta) == 52 && offsetof(Delta, port_be) == 36 && kShmSafe<Delta>);

// A deploy transfer registered or removed on some node (replicated registrations:
// docs/cluster.md "Deploy transfers"). 24 B. info_hash: 20 raw bytes. op: kTransferNoticeAdd (the
// .torrent is <state_dir>/<hex>.torrent on the out ring, <state_dir>/.cluster-in/<hex>.torrent on
// the in ring) or kTransferNoticeRemove.
inline constexpr uint8_t kTransferNoticeAdd = 1;
inline constexpr uint8_t kTransferNoticeRemove = 2;
inline constexpr uint32_t kTransferNoticeSlots = 256;
struct TransferNotice {
  uint8_t info_hash[20];
  uint8_t op;
  uint8_t reserved[3];
};
static_assert(sizeof(TransferNotice) == 24 && kShmSafe<TransferNotice>);

// Bus states (ClusterStatus::bus_state).
enum class BusState : uint32_t { starting = 0, connecting = 1, connected = 2, reconnecting = 3, closed = 4 };
inline const char* bus_state_name(uint32_t s) {
  switch (BusState(s)) {
    case BusState::starting: return "starting";
    case BusState::connecting: return "connecting";
    case BusState::connected: return "connected";
    case BusState::reconnecting: return "reconnecting";
    case BusState::closed: return "closed";
  }
  return "unknown";
}

inline constexpr uint32_t kClusterMaxNodes = 64;

// Another node as this node's sync worker last heard of it. Times: wall clock, ms since 1970.
//   node_id, name      as the node sent them (name NUL-terminated)
//   session            random number the node's sync worker drew at its start (a new session:
//                      the node restarted; its resync follows)
//   last_seq           sequence number of its last message (per session, from 1)
//   last_message_ms    when the last message arrived here; last_sent_ms: its send time there
//   lag_ms             arrival minus send time of the last message (clocks must agree)
//   messages, deltas   received from it; gaps: messages missed (sequence numbers skipped)
struct ClusterNode {
  uint32_t node_id;
  uint32_t reserved0;
  uint64_t session;
  uint64_t last_seq;
  uint64_t last_message_ms;
  uint64_t last_sent_ms;
  int64_t lag_ms;
  uint64_t messages;
  uint64_t deltas;
  uint64_t gaps;
  char name[56];
};
static_assert(sizeof(ClusterNode) == 128 && kShmSafe<ClusterNode>);

// Join states (ClusterJoin::state), see worker/cluster_join.hpp.
enum class JoinState : uint32_t {
  none = 0,      // shared memory was kept: no join (the resync after connecting fills the gap)
  waiting = 1,   // fresh partitions: asking the other nodes for a snapshot
  loading = 2,   // a node answers: receiving and applying its snapshot
  joined = 3,    // loaded from a node (from_*, torrents, peers)
  alone = 4,     // no node answered within cluster.join_timeout: started with what it had
  failed = 5,    // the stream broke (note says why): started with what it had received
};
inline const char* join_state_name(uint32_t s) {
  switch (JoinState(s)) {
    case JoinState::none: return "none";
    case JoinState::waiting: return "waiting";
    case JoinState::loading: return "loading";
    case JoinState::joined: return "joined";
    case JoinState::alone: return "alone";
    case JoinState::failed: return "failed";
  }
  return "unknown";
}

// The join of a node with fresh partitions. `wanted` is set by the supervisor before any fork;
// the rest is written by the sync worker (kept across its restarts; a restarted sync worker
// whose join had not finished starts it again). Times: wall clock ms since 1970.
//   from_node_id/from_name  the node whose snapshot was loaded
//   torrents, peers         records received (peers: handed to the swarm workers)
struct alignas(64) ClusterJoin {
  uint32_t wanted;
  uint32_t state;
  uint64_t started_ms;
  uint64_t finished_ms;
  uint64_t torrents;
  uint64_t peers;
  uint32_t from_node_id;
  uint32_t reserved0;
  char from_name[56];
  char note[120];
};
static_assert(sizeof(ClusterJoin) % 64 == 0 && kShmSafe<ClusterJoin>);

// Written by the sync worker (every word with release stores, read with acquire; a reader may
// see a node row half updated, which only shows in one `show cluster` line).
//   bus_state        BusState
//   bus_since_ms     when bus_state last changed (wall clock ms)
//   reconnects       times the connection came back after being lost
//   resyncs          times this node republished its own peers (connect, reconnect, another
//                    node's hello)
//   last_publish_ms  when a message was last handed to the NATS client
//   node_count       rows of nodes[] in use
//   connected_url    the server in use ("" while not connected)
struct ClusterStatus {
  uint32_t bus_state;
  uint32_t node_count;
  uint64_t bus_since_ms;
  uint64_t reconnects;
  uint64_t resyncs;
  uint64_t last_publish_ms;
  uint64_t session;
  uint64_t reserved[2];
  char connected_url[192];
  ClusterJoin join;
  ClusterNode nodes[kClusterMaxNodes];
};
static_assert(sizeof(ClusterStatus) % 64 == 0 && kShmSafe<ClusterStatus>);

// Per swarm worker: resync_request is bumped by the sync worker (republish every own peer);
// the swarm worker stores it in resync_started when it starts the pass and in resync_done when
// the pass ends.
struct alignas(64) ClusterChannelControl {
  uint32_t resync_request;
  uint32_t resync_started;
  uint32_t resync_done;
  uint32_t reserved[13];
};
static_assert(sizeof(ClusterChannelControl) == 64 && kShmSafe<ClusterChannelControl>);

// Offsets of everything in the segment, from (swarm workers, ring slots).
struct ClusterGeometry {
  uint32_t swarm_workers;
  uint32_t slots;  // per ring, power of two
  static constexpr size_t align(size_t n) { return (n + 63) & ~size_t(63); }
  size_t ring_bytes_each() const { return align(ring_bytes(slots, sizeof(Delta))); }
  size_t channel_bytes() const { return sizeof(ClusterChannelControl) + 2 * ring_bytes_each(); }
  size_t status_offset() const { return sizeof(SegmentHeader); }
  size_t channel_offset(uint32_t w) const { return align(status_offset() + sizeof(ClusterStatus)) + size_t(w) * channel_bytes(); }
  size_t out_ring_offset(uint32_t w) const { return channel_offset(w) + sizeof(ClusterChannelControl); }
  size_t in_ring_offset(uint32_t w) const { return out_ring_offset(w) + ring_bytes_each(); }
  size_t transfer_ring_bytes() const { return align(ring_bytes(kTransferNoticeSlots, sizeof(TransferNotice))); }
  size_t transfer_out_offset() const { return channel_offset(swarm_workers); }
  size_t transfer_in_offset() const { return transfer_out_offset() + transfer_ring_bytes(); }
  size_t segment_bytes() const { return transfer_in_offset() + transfer_ring_bytes(); }
};

inline ClusterStatus* cluster_status(void* base, const ClusterGeometry& g) {
  return reinterpret_cast<ClusterStatus*>(static_cast<char*>(base) + g.status_offset());
}
inline ClusterChannelControl* cluster_control(void* base, const ClusterGeometry& g, uint32_t w) {
  return reinterpret_cast<ClusterChannelControl*>(static_cast<char*>(base) + g.channel_offset(w));
}
inline SpscRing<Delta> cluster_out_ring(void* base, const ClusterGeometry& g, uint32_t w) {
  return SpscRing<Delta>(static_cast<char*>(base) + g.out_ring_offset(w));
}
inline SpscRing<Delta> cluster_in_ring(void* base, const ClusterGeometry& g, uint32_t w) {
  return SpscRing<Delta>(static_cast<char*>(base) + g.in_ring_offset(w));
}
inline SpscRing<TransferNotice> cluster_transfer_out_ring(void* base, const ClusterGeometry& g) {
  return SpscRing<TransferNotice>(static_cast<char*>(base) + g.transfer_out_offset());
}
inline SpscRing<TransferNotice> cluster_transfer_in_ring(void* base, const ClusterGeometry& g) {
  return SpscRing<TransferNotice>(static_cast<char*>(base) + g.transfer_in_offset());
}

}  // namespace shoal::shm
