// supervisor/segments_attach.cpp — start-up after a previous shoald with the same shm_name died
// or stopped: re-attach its segments instead of creating new ones, so every swarm survives a
// supervisor crash, a restart or a binary upgrade. Only a layout of the same version and the
// same geometry (worker counts, ring slots, partition capacity) is re-attached; anything else
// is reported and the caller starts fresh. Runs in the supervisor before any worker exists.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/partition.hpp"
#include "shm/rings_layout.hpp"
#include "supervisor/log.hpp"
#include "supervisor/segments.hpp"

namespace shoal::supervisor {

bool is_shoald_process(uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmd;
  std::getline(f, cmd, '\0');
  return cmd.rfind("shoald", 0) == 0;
}

namespace {

// Workers of the previous supervisor get SIGTERM when it dies (PR_SET_PDEATHSIG) and exit
// within a second; never let one of them write a partition next to a new worker. Each slot may
// have two: its current process and, during a rolling restart, the previous one (draining_pid).
void wait_for_old_workers(shm::ControlSegment* c) {
  uint64_t deadline = shm::monotonic_ns() + 2000000000ull;
  for (uint32_t k = 0; k < 2 * shm::kMaxWorkerSlots; k++) {
    const shm::WorkerSlot& ws = c->slots[k / 2];
    uint32_t pid = shm::load_u32(k % 2 ? ws.draining_pid : ws.pid);
    if (pid == 0 || pid == uint32_t(getpid())) continue;
    while (kill(pid_t(pid), 0) == 0 && is_shoald_process(pid) && shm::monotonic_ns() < deadline) usleep(10000);
    if (kill(pid_t(pid), 0) == 0 && is_shoald_process(pid)) {
      LOG_WARN("worker pid %u of the previous shoald is still running after 2 s: sending SIGKILL", pid);
      kill(pid_t(pid), SIGKILL);
      usleep(100000);
    }
  }
}

}  // namespace

bool reattach_segments(const conf::Config& cfg, SegmentSet* set, std::string* why) {
  try {
    shm::Segment control = shm::Segment::attach(shm::control_segment_name(cfg.shm_name), shm::SegmentKind::control);
    if (control.size() != sizeof(shm::ControlSegment)) throw std::runtime_error("control segment has another size");
    auto* c = static_cast<shm::ControlSegment*>(control.base());
    if (c->control.socket_workers != cfg.socket_workers || c->control.swarm_workers != cfg.swarm_workers)
      throw std::runtime_error("it was made for " + std::to_string(c->control.socket_workers) + " socket and " +
                               std::to_string(c->control.swarm_workers) + " swarm workers");
    shm::RingsGeometry g{cfg.socket_workers, cfg.swarm_workers, cfg.ring_slots};
    shm::Segment rings = shm::Segment::attach(shm::rings_segment_name(cfg.shm_name), shm::SegmentKind::rings);
    if (rings.size() != g.segment_bytes()) throw std::runtime_error("its rings have another ring_slots");
    shm::PartitionCapacity cap{cfg.torrents_per_partition, cfg.peers_per_partition};
    for (uint32_t p = 0; p < cfg.swarm_workers; p++) {
      shm::Segment part = shm::Segment::attach(shm::partition_segment_name(cfg.shm_name, p), shm::SegmentKind::partition);
      if (part.size() != shm::partition_segment_bytes(cap))
        throw std::runtime_error("partition " + std::to_string(p) + " has another capacity");
    }  // the supervisor does not keep partitions mapped; each swarm worker validates its own
    wait_for_old_workers(c);
    for (uint32_t s = 0; s < shm::kMaxWorkerSlots; s++) {
      shm::store_u32(c->slots[s].pid, 0);
      shm::store_u32(c->slots[s].draining_pid, 0);
      shm::store_u32(c->slots[s].ready, 0);
    }
    for (uint32_t s = 0; s < shm::kMaxSocketWorkers; s++) {
      shm::store_u32(c->socket_sets[s].active_generation, 0);
      shm::store_u32(c->socket_sets[s].draining_generation, 0);
    }
    set->control = std::move(control);
    set->rings = std::move(rings);
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
}

}  // namespace shoal::supervisor
