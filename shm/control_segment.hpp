// shm/control_segment.hpp — the control segment: what every process reads.
// The supervisor creates and fills it before forking; after that it writes only the slot
// `pid`/`generation` words when it (re)starts a worker (and the ring-set words), and the
// connection-id keys on SIGHUP (seqlock, shm/conn_id_keys.hpp). Workers write their own slot's
// heartbeat words and counter block. Nothing here is locked; every shared word is accessed
// through std::atomic_ref.
//
// Layout:
//   SegmentHeader                      64 B
//   ControlHeader                      64 B   (connection-id key, worker counts)
//   WorkerSlot slots[kMaxWorkerSlots]  64 B each; socket workers first, then swarm workers, then
//                                      the sync worker
//   CounterBlock counters[kMaxWorkerSlots]  512 B each, same order as slots
//   PartitionGauges gauges[kMaxSwarmWorkers]  64 B each: totals of each partition
//   TorrentQuery queries[kMaxSwarmWorkers]    admin mailbox of each swarm worker
//   SocketSets socket_sets[kMaxSocketWorkers] ring sets of each socket-worker slot
//   ConnIdKeys conn_id_keys                   64 B: connection-id keys in force (seqlock,
//                                             shm/conn_id_keys.hpp)
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shm/conn_id_keys.hpp"
#include "shm/counters.hpp"
#include "shm/layout.hpp"

namespace shoal::shm {

inline constexpr uint32_t kMaxSocketWorkers = 64;
inline constexpr uint32_t kMaxSwarmWorkers = 64;
// The last slot is the sync worker's (issue 14: one per node, only with cluster.enabled).
inline constexpr uint32_t kMaxWorkerSlots = kMaxSocketWorkers + kMaxSwarmWorkers + 1;

enum class WorkerRole : uint32_t { socket = 1, swarm = 2, sync = 3 };

// conn_id_key    the daemon's own 16-byte AES-128 key for BEP 15 connection ids (random, set at
//                creation); in force (conn_id_keys) unless udp.connection_id_key_file is set
// partition_key  secret of the info_hash → partition map (worker::partition_of; random, set at
//                creation, kept across re-attach so stored swarms stay where they are)
struct ControlHeader {
  uint8_t conn_id_key[16];
  uint32_t socket_workers;
  uint32_t swarm_workers;
  uint64_t created_unix;  // wall-clock seconds when created (for "show info")
  uint64_t partition_key;
  uint8_t reserved[24];
};
static_assert(sizeof(ControlHeader) == 64);
static_assert(kShmSafe<ControlHeader>);

// One worker slot. pid/generation: supervisor writes at spawn. ready/last_tick: the worker
// writes (ready = generation it runs once it serves; last_tick = seconds since clock base).
// access_generation: a socket worker writes the access-list generation it reads (its ack;
// shm/access_segment.hpp); 0 = none yet.
// Poison requests (swarm workers; worker/swarm_worker.cpp): applying = 1 + (ring << 48 |
// position) of the request being applied, 0 between batches, so a replacement knows which
// request its predecessor died on; poison_suspect / poison_strikes: the last such request and how
// many workers in a row died on it (a replacement skips it after kPoisonStrikes).
struct alignas(64) WorkerSlot {
  uint32_t role;  // WorkerRole
  uint32_t index;
  uint32_t pid;
  uint32_t generation;
  uint32_t ready;
  uint32_t last_tick;
  uint32_t restarts;
  uint32_t access_generation;
  uint64_t applying;
  uint64_t poison_suspect;
  uint32_t poison_strikes;
  uint32_t reserved[3];
};
static_assert(sizeof(WorkerSlot) == 64);
static_assert(offsetof(WorkerSlot, access_generation) == 28 && offsetof(WorkerSlot, applying) == 32);
static_assert(kShmSafe<WorkerSlot>);

// Totals of one partition, published by its swarm worker after every batch (single writer;
// readers load each word with atomic_ref). Gauges, not counters: they go up and down.
struct alignas(64) PartitionGauges {
  uint32_t torrents;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t peers_v4;
  uint32_t peers_v6;
  uint32_t seeders_v6;    // of `seeders`, IPv6 ones (the rest are IPv4)
  uint64_t completed;     // sum of the torrents' completed counts
  uint32_t peers_ws;      // WebTorrent peers (issue 10; not in peers_v4/v6, in seeders/leechers)
  uint32_t seeders_ws;    // of `seeders`, WebTorrent ones
  uint64_t reserved1[3];
};
static_assert(sizeof(PartitionGauges) == 64);
static_assert(kShmSafe<PartitionGauges>);

// One peer in a TorrentQuery answer. addr: 4 bytes (family 4) or 16 (family 6), network order.
struct QueryPeer {
  uint8_t family;
  uint8_t seeder;
  uint16_t port_be;
  uint8_t addr[16];
};
static_assert(sizeof(QueryPeer) == 20);

inline constexpr uint32_t kQueryMaxPeers = 100;

// One location of a torrent in a TorrentQuery answer of op `locations` (deploy progress):
// hosts (peers) there, of which seeders and representatives, and the sum of their progress in
// permille over the `known` hosts whose progress is known (registered transfers only).
struct QueryLocation {
  uint16_t topology_group;
  uint16_t representatives;
  uint16_t hosts;
  uint16_t seeders;
  uint16_t known;
  uint16_t reserved;
  uint32_t progress_sum;
};
static_assert(sizeof(QueryLocation) == 16);
inline constexpr uint32_t kQueryMaxLocations = 125;

// What a TorrentQuery asks (its `op`).
enum class QueryOp : uint8_t {
  show = 0,       // counts and the first 100 peers (peers[])
  locations = 1,  // counts and one row per location (locations[]; location_total rows in all)
  drop = 2,       // remove the torrent and its peers (transfer remove); counts are those before
};

// Admin mailbox of one swarm worker, used by the stats socket's "show torrent" and the deploy
// transfers: the supervisor writes op and info_hash, release-stores request_seq (+1) and wakes
// the worker; the worker writes the answer and release-stores response_seq = request_seq. The
// supervisor never reads partition data itself. peer_total counts every peer; peers[] holds
// the first min(peer_total, 100) (op show), locations[] the first min(location_total, 125)
// (op locations).
struct alignas(64) TorrentQuery {
  uint32_t request_seq;
  uint32_t response_seq;
  uint8_t info_hash[20];
  uint8_t found;
  uint8_t op;  // QueryOp
  uint16_t location_total;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t completed;
  uint32_t peer_total;
  uint32_t ws_seeders;    // the torrent's WebTorrent peers (issue 10), apart from the counts
  uint32_t ws_leechers;   // above, which are its UDP/HTTP peers
  uint32_t ws_completed;
  uint32_t reserved;
  union {
    QueryPeer peers[kQueryMaxPeers];
    QueryLocation locations[kQueryMaxLocations];
  };
};
static_assert(offsetof(TorrentQuery, peers) == 64);
static_assert(kShmSafe<TorrentQuery>);

// Which ring sets of a socket-worker slot are in use (supervisor writes, swarm workers read).
//   active_generation    generation of the slot's current process (0 before the first start)
//   active_set           the ring set (0 or 1) the supervisor gave that process
//   draining_generation  generation of a process finishing its work during a rolling restart,
//                        0 when none
//   draining_set         its ring set
// Ring sets are assigned, never derived from generations: a process started while another of
// its slot drains always gets the set the draining one does not use (also when it is itself a
// respawn of a successor that died), so two live processes never share a single-producer ring.
// A set used by neither is orphaned: swarm workers still apply its requests but write no
// responses for it.
struct alignas(64) SocketSets {
  uint32_t active_generation;
  uint32_t draining_generation;
  uint32_t active_set;
  uint32_t draining_set;
  uint32_t reserved[12];
};
static_assert(sizeof(SocketSets) == 64);
static_assert(kShmSafe<SocketSets>);

struct ControlSegment {
  SegmentHeader header;
  ControlHeader control;
  WorkerSlot slots[kMaxWorkerSlots];
  CounterBlock counters[kMaxWorkerSlots];
  PartitionGauges gauges[kMaxSwarmWorkers];
  TorrentQuery queries[kMaxSwarmWorkers];
  SocketSets socket_sets[kMaxSocketWorkers];
  ConnIdKeys conn_id_keys;
};
static_assert(offsetof(ControlSegment, control) == 64);
static_assert(offsetof(ControlSegment, slots) == 128);
static_assert(offsetof(ControlSegment, counters) == 128 + 64 * kMaxWorkerSlots);
static_assert(offsetof(ControlSegment, gauges) == 128 + (64 + 512) * kMaxWorkerSlots);
static_assert(offsetof(ControlSegment, conn_id_keys) == offsetof(ControlSegment, socket_sets) + 64 * kMaxSocketWorkers);
static_assert(kShmSafe<ControlSegment>);

// Slot number of a worker: socket workers 0..S-1, swarm workers kMaxSocketWorkers + i.
inline constexpr uint32_t socket_slot(uint32_t i) { return i; }
inline constexpr uint32_t swarm_slot(uint32_t i) { return kMaxSocketWorkers + i; }
inline constexpr uint32_t sync_slot() { return kMaxSocketWorkers + kMaxSwarmWorkers; }

inline uint32_t load_u32(const uint32_t& v) {
  return std::atomic_ref<uint32_t>(const_cast<uint32_t&>(v)).load(std::memory_order_acquire);
}
inline void store_u32(uint32_t& v, uint32_t x) { std::atomic_ref<uint32_t>(v).store(x, std::memory_order_release); }
inline uint64_t load_u64(const uint64_t& v) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(v)).load(std::memory_order_acquire);
}

// Reader side: counter k summed over every worker slot (stats socket, metrics, shm_inspect).
inline uint64_t sum_counter(const ControlSegment* c, Counter k) {
  uint64_t sum = 0;
  for (uint32_t s = 0; s < kMaxWorkerSlots; s++) sum += read_counter(&c->counters[s], k);
  return sum;
}

// Reader side: the gauges of partitions 0..partitions-1 added up.
struct GaugeTotals {
  uint64_t torrents = 0, seeders = 0, leechers = 0, peers_v4 = 0, peers_v6 = 0, seeders_v6 = 0, completed = 0;
  uint64_t peers_ws = 0, seeders_ws = 0;
};
inline GaugeTotals sum_gauges(const ControlSegment* c, uint32_t partitions) {
  GaugeTotals t;
  for (uint32_t p = 0; p < partitions; p++) {
    const PartitionGauges& g = c->gauges[p];
    t.torrents += load_u32(g.torrents);
    t.seeders += load_u32(g.seeders);
    t.leechers += load_u32(g.leechers);
    t.peers_v4 += load_u32(g.peers_v4);
    t.peers_v6 += load_u32(g.peers_v6);
    t.seeders_v6 += load_u32(g.seeders_v6);
    t.peers_ws += load_u32(g.peers_ws);
    t.seeders_ws += load_u32(g.seeders_ws);
    t.completed += load_u64(g.completed);
  }
  return t;
}

}  // namespace shoal::shm
