// supervisor/segments.cpp — see segments.hpp. Runs in the supervisor at start and at stop.
#include "supervisor/segments.hpp"

#include <openssl/rand.h>

#include <ctime>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/partition.hpp"
#include "shm/rings_layout.hpp"

namespace shoal::supervisor {

SegmentSet create_segments(const conf::Config& cfg) {
  SegmentSet set;
  uint64_t base = shm::monotonic_ns();
  set.control = shm::Segment::create(shm::control_segment_name(cfg.shm_name), sizeof(shm::ControlSegment),
                                     shm::SegmentKind::control, 0, 0, base);
  shm::ControlSegment* c = set.control_view();
  if (RAND_bytes(c->control.conn_id_key, sizeof c->control.conn_id_key) != 1)
    throw std::runtime_error("cannot get random bytes for the connection-id key");
  c->control.socket_workers = cfg.socket_workers;
  c->control.swarm_workers = cfg.swarm_workers;
  c->control.created_unix = uint64_t(time(nullptr));
  for (uint32_t i = 0; i < cfg.socket_workers; i++)
    c->slots[shm::socket_slot(i)] = {uint32_t(shm::WorkerRole::socket), i, 0, 0, 0, 0, 0, {}};
  for (uint32_t i = 0; i < cfg.swarm_workers; i++)
    c->slots[shm::swarm_slot(i)] = {uint32_t(shm::WorkerRole::swarm), i, 0, 0, 0, 0, 0, {}};

  shm::RingsGeometry g{cfg.socket_workers, cfg.swarm_workers, cfg.ring_slots};
  set.rings = shm::Segment::create(shm::rings_segment_name(cfg.shm_name), g.segment_bytes(), shm::SegmentKind::rings,
                                   cfg.swarm_workers, cfg.socket_workers, base);
  for (uint32_t s = 0; s < cfg.socket_workers; s++) {
    for (uint32_t w = 0; w < cfg.swarm_workers; w++) {
      shm::SpscRing<shm::Request>::init(static_cast<char*>(set.rings.base()) + g.request_offset(s, w), cfg.ring_slots);
      shm::SpscRing<shm::Response>::init(static_cast<char*>(set.rings.base()) + g.response_offset(s, w), cfg.ring_slots);
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
  for (uint32_t p = 0; p < cfg.swarm_workers; p++) shm::Segment::unlink(shm::partition_segment_name(cfg.shm_name, p));
}

}  // namespace shoal::supervisor
