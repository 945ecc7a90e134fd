// supervisor/segments.cpp — see segments.hpp. Runs in the supervisor at start and at stop.
#include "supervisor/segments.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "conf/access_list.hpp"
#include "shm/access_segment.hpp"
#include "shm/clock.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/partition.hpp"
#include "shm/rings_layout.hpp"
#include "shm/relay_ring.hpp"
#include "shm/snapshot_segment.hpp"
#include "shm/transfers_segment.hpp"
#include "supervisor/reload.hpp"
#include "supervisor/topology_load.hpp"

namespace shoal::supervisor {

namespace {

// Gives the segment its memory now (tmpfs pages), so a full /dev/shm is an error at start
// rather than a SIGBUS when a reload writes the second buffer.
// Snapshot channels: one per swarm worker for `snapshot save`, one more each on a cluster node
// for the answers to joining nodes (worker/cluster_join.hpp).
uint32_t snapshot_channels(const conf::Config& cfg) { return cfg.swarm_workers * (cfg.cluster_enabled ? 2 : 1); }

void reserve(const shm::Segment& seg) {
  int fd = shm_open(seg.name().c_str(), O_RDWR, 0);
  int rc = fd < 0 ? errno : posix_fallocate(fd, 0, off_t(seg.size()));
  if (fd >= 0) close(fd);
  if (rc != 0)
    throw std::runtime_error("cannot reserve " + std::to_string(seg.size()) + " bytes for shared memory segment " +
                             seg.name() + ": " + strerror(rc));
}

}  // namespace

void create_access_segment(const conf::Config& cfg, SegmentSet* set, uint64_t clock_base_ns) {
  conf::AccessMode mode = conf::AccessMode::off;
  conf::parse_access_mode(cfg.access_list_mode, &mode);
  uint32_t capacity = mode == conf::AccessMode::off ? 0 : cfg.access_list_max_entries;
  set->access = shm::Segment::create(shm::access_segment_name(cfg.shm_name), shm::access_segment_bytes(capacity),
                                     shm::SegmentKind::access, 0, 0, clock_base_ns);
  reserve(set->access);
  load_access_list_at_start(cfg, set->access);
  set->topology = create_topology_segment(cfg, clock_base_ns);
  reserve(set->topology);
  // Registered transfers: filled by the supervisor from transfers.state_dir before any fork.
  uint32_t transfers = cfg.transfers_state_dir.empty() ? 0 : cfg.transfers_max;
  set->transfers = shm::Segment::create(shm::transfers_segment_name(cfg.shm_name), shm::transfers_segment_bytes(transfers),
                                        shm::SegmentKind::transfers, 0, 0, clock_base_ns);
  reserve(set->transfers);
  shm::TransfersHeader* th = shm::transfers_header(set->transfers.base());
  th->mode = uint32_t(cfg.transfers_mode == "deploy" ? shm::TransfersMode::deploy : shm::TransfersMode::open);
  th->capacity = transfers;
  // WebTorrent relay rings (issue 10): fresh at every start, touched only when used.
  if (cfg.ws_enabled || cfg.wss_enabled) {
    // On a cluster node the sync worker is one more endpoint (offers across nodes).
    shm::RelayGeometry g{cfg.socket_workers, shm::relay_ring_bytes(cfg.ws_relay_ring_bytes), cfg.cluster_enabled ? 1u : 0u};
    set->relay = shm::Segment::create(shm::relay_segment_name(cfg.shm_name), g.segment_bytes(), shm::SegmentKind::relay,
                                      0, cfg.socket_workers, clock_base_ns);
    for (uint32_t s = 0; s < g.endpoints(); s++)
      for (uint32_t ks = 0; ks < g.kSets; ks++)
        for (uint32_t d = 0; d < g.endpoints(); d++)
          for (uint32_t kd = 0; kd < g.kSets; kd++)
            if (s != d || ks != kd) shm::RelayRing::init(static_cast<char*>(set->relay.base()) + g.ring_offset(s, ks, d, kd), g.bytes);
  } else {
    shm::Segment::unlink(shm::relay_segment_name(cfg.shm_name));
  }
  // Snapshot channels (issue 14): fresh at every start, touched only when used.
  set->snapshot = shm::Segment::create(shm::snapshot_segment_name(cfg.shm_name), shm::snapshot_segment_bytes(snapshot_channels(cfg)),
                                       shm::SegmentKind::snapshot, 0, cfg.swarm_workers, clock_base_ns);
  for (uint32_t w = 0; w < snapshot_channels(cfg); w++)
    shm::SpscRing<shm::SnapshotChunkSlot>::init(shm::snapshot_ring_at(set->snapshot.base(), w), shm::kSnapshotSlots);
  // Cluster rings and bus status (issue 14): fresh at every start, only for a cluster node.
  if (cfg.cluster_enabled) {
    shm::ClusterGeometry g{cfg.swarm_workers, cfg.cluster_ring_slots};
    set->cluster = shm::Segment::create(shm::cluster_segment_name(cfg.shm_name), g.segment_bytes(), shm::SegmentKind::cluster,
                                        0, cfg.swarm_workers, clock_base_ns);
    reserve(set->cluster);
    for (uint32_t w = 0; w < cfg.swarm_workers; w++) {
      shm::SpscRing<shm::Delta>::init(static_cast<char*>(set->cluster.base()) + g.out_ring_offset(w), g.slots);
      shm::SpscRing<shm::Delta>::init(static_cast<char*>(set->cluster.base()) + g.in_ring_offset(w), g.slots);
    }
    shm::SpscRing<shm::TransferNotice>::init(static_cast<char*>(set->cluster.base()) + g.transfer_out_offset(), shm::kTransferNoticeSlots);
    shm::SpscRing<shm::TransferNotice>::init(static_cast<char*>(set->cluster.base()) + g.transfer_in_offset(), shm::kTransferNoticeSlots);
  } else {
    shm::Segment::unlink(shm::cluster_segment_name(cfg.shm_name));
  }
}

SegmentSet create_segments(const conf::Config& cfg) {
  SegmentSet set;
  uint64_t base = shm::monotonic_ns();
  // A snapshot to load holds peers last seen up to peer_ttl before now: the clock base goes that
  // far back (shm times are u32 seconds after it), so their last_seen stays exact.
  uint64_t back = cfg.snapshot_load.empty() && !cfg.cluster_enabled ? 0 : (uint64_t(cfg.peer_ttl) + 60) * 1000000000ull;
  base = base > back ? base - back : 0;
  // The access list first: a bad file is the likeliest start failure, and it stops us here.
  create_access_segment(cfg, &set, base);
  set.control = shm::Segment::create(shm::control_segment_name(cfg.shm_name), sizeof(shm::ControlSegment),
                                     shm::SegmentKind::control, 0, 0, base);
  shm::ControlSegment* c = set.control_view();
  if (RAND_bytes(c->control.conn_id_key, sizeof c->control.conn_id_key) != 1 ||
      RAND_bytes(reinterpret_cast<unsigned char*>(&c->control.partition_key), sizeof c->control.partition_key) != 1)
    throw std::runtime_error("cannot get random bytes for the connection-id and partition keys");
  c->control.socket_workers = cfg.socket_workers;
  c->control.swarm_workers = cfg.swarm_workers;
  c->control.created_unix = uint64_t(time(nullptr));
  for (uint32_t i = 0; i < cfg.socket_workers; i++) {
    c->slots[shm::socket_slot(i)].role = uint32_t(shm::WorkerRole::socket);
    c->slots[shm::socket_slot(i)].index = i;
  }
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) {
    c->slots[shm::swarm_slot(i)].role = uint32_t(shm::WorkerRole::swarm);
    c->slots[shm::swarm_slot(i)].index = i;
  }
  c->slots[shm::sync_slot()].role = uint32_t(shm::WorkerRole::sync);

  shm::RingsGeometry g{cfg.socket_workers, cfg.swarm_workers, cfg.ring_slots};
  set.rings = shm::Segment::create(shm::rings_segment_name(cfg.shm_name), g.segment_bytes(), shm::SegmentKind::rings,
                                   cfg.swarm_workers, cfg.socket_workers, base);
  for (uint32_t s = 0; s < cfg.socket_workers; s++) {
    for (uint32_t k = 0; k < shm::RingsGeometry::kSets; k++) {
      for (uint32_t w = 0; w < cfg.swarm_workers; w++) {
        shm::SpscRing<shm::Request>::init(static_cast<char*>(set.rings.base()) + g.request_offset(s, w, k), cfg.ring_slots);
        shm::SpscRing<shm::Response>::init(static_cast<char*>(set.rings.base()) + g.response_offset(s, w, k), cfg.ring_slots);
      }
    }
  }

  shm::PartitionCapacity cap{cfg.torrents_per_partition, cfg.peers_per_partition};
  size_t bytes = shm::partition_segment_bytes(cap);
  for (uint32_t p = 0; p < cfg.swarm_workers; p++) {
    shm::Segment seg = shm::Segment::create(shm::partition_segment_name(cfg.shm_name, p), bytes,
                                            shm::SegmentKind::partition, p, cfg.swarm_workers, base);
    shm::partition_format(seg.base(), seg.size(), cap);
  }  // unmapped here
  return set;
}

void unlink_segments(const conf::Config& cfg) {
  shm::Segment::unlink(shm::control_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::rings_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::access_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::topology_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::transfers_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::relay_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::snapshot_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::cluster_segment_name(cfg.shm_name));
  for (uint32_t p = 0; p < cfg.swarm_workers; p++) shm::Segment::unlink(shm::partition_segment_name(cfg.shm_name, p));
}

}  // namespace shoal::supervisor
