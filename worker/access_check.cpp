// worker/access_check.cpp — see access_check.hpp. Runs in socket workers; reads the access
// segment (mapped read-only) and writes only its own slot's access_generation word.
#include "worker/access_check.hpp"

#include <algorithm>
#include <atomic>
#include <ctime>
#include <stdexcept>

namespace shoal::worker {

AccessCheck::AccessCheck(const std::string& shm_name, shm::WorkerSlot* slot, uint32_t generation)
    : seg_(shm::Segment::attach(shm::access_segment_name(shm_name), shm::SegmentKind::access, true)),
      slot_(slot), process_generation_(generation),
      topo_seg_(shm::Segment::attach(shm::topology_segment_name(shm_name), shm::SegmentKind::topology, true)),
      // read-write: socket workers update the transfers' stats slots (shm/transfers_segment.hpp)
      transfers_seg_(shm::Segment::attach(shm::transfers_segment_name(shm_name), shm::SegmentKind::transfers, false)) {
  if (seg_.size() < shm::kAccessBuffersOffset) throw std::runtime_error(seg_.name() + ": too small for its header");
  header_ = shm::access_header(seg_.base());
  capacity_ = header_->capacity;  // both written before fork, never changed
  mode_ = conf::AccessMode(header_->mode);
  if (seg_.size() < shm::access_segment_bytes(capacity_))
    throw std::runtime_error(seg_.name() + ": smaller than its capacity of " + std::to_string(capacity_) + " hashes");
  if (mode_ != conf::AccessMode::off && mode_ != conf::AccessMode::allow && mode_ != conf::AccessMode::deny)
    throw std::runtime_error(seg_.name() + ": unknown access mode " + std::to_string(header_->mode));
  if (topo_seg_.size() < shm::kLocationsOffset) throw std::runtime_error(topo_seg_.name() + ": too small for its header");
  const shm::TopologyHeader* th = shm::topology_header(topo_seg_.base());
  if (topo_seg_.size() < shm::topology_segment_bytes(th->location_capacity, th->capacity))
    throw std::runtime_error(topo_seg_.name() + ": smaller than its capacity");
  if (th->mode > uint32_t(shm::TopologyMode::prefix))
    throw std::runtime_error(topo_seg_.name() + ": unknown topology mode " + std::to_string(th->mode));
  topo_mode_ = shm::TopologyMode(th->mode);
  prefix4_ = std::clamp<uint8_t>(th->prefix4, 1, 32);
  prefix6_ = std::clamp<uint8_t>(th->prefix6, 1, 128);
  const shm::TransfersHeader* xh = shm::transfers_header(transfers_seg_.base());
  if (transfers_seg_.size() < shm::transfers_segment_bytes(xh->capacity))
    throw std::runtime_error(transfers_seg_.name() + ": smaller than its capacity");
  deploy_ = xh->mode == uint32_t(shm::TransfersMode::deploy);
  transfers_capacity_ = xh->capacity;
  transfer_stats_ = shm::transfers_stats(transfers_seg_.base(), xh->capacity);
  begin_batch();
}

void AccessCheck::begin_batch() {
  if (!header_) return;  // a fixed list
  // generation first: an ack must never claim a newer list than the one read (see the header).
  uint32_t g = shm::acquire_load(header_->generation);
  if (g != generation_) {
    uint32_t b = shm::acquire_load(header_->active) & 1;
    count_ = std::min<uint64_t>(shm::acquire_load(header_->count[b]), capacity_);
    list_ = shm::access_buffer(seg_.base(), capacity_, b);
    snapshot_topology();
    snapshot_transfers();
    generation_ = g;
  }
  // A superseded process (rolling restart) must not overwrite its successor's ack.
  if (shm::load_u32(slot_->generation) == process_generation_) shm::store_u32(slot_->access_generation, generation_);
}

// Reads the topology buffer in use (after the access generation: see shm/topology_segment.hpp).
void AccessCheck::snapshot_topology() {
  if (topo_mode_ != shm::TopologyMode::file) return;
  const shm::TopologyHeader* h = shm::topology_header(topo_seg_.base());
  uint32_t b = shm::acquire_load(h->active) & 1, cap = h->capacity;
  const char* buf = static_cast<const char*>(topo_seg_.base()) + shm::range_buffer_offset(h->location_capacity, cap, b);
  shm::RangeBufferLayout l = shm::RangeBufferLayout::of(cap);
  v4_ = {reinterpret_cast<const uint32_t*>(buf + l.v4_starts), reinterpret_cast<const uint16_t*>(buf + l.v4_groups),
         std::min(shm::acquire_load(h->count4[b]), cap)};
  v6_ = {reinterpret_cast<const uint64_t*>(buf + l.v6_hi), reinterpret_cast<const uint64_t*>(buf + l.v6_lo),
         reinterpret_cast<const uint16_t*>(buf + l.v6_groups), std::min(shm::acquire_load(h->count6[b]), cap)};
}

// Reads the transfers buffer in use (after the access generation: shm/transfers_segment.hpp).
void AccessCheck::snapshot_transfers() {
  if (!transfers_seg_.valid()) return;
  const shm::TransfersHeader* h = shm::transfers_header(transfers_seg_.base());
  if (h->capacity == 0) return;
  uint32_t b = shm::acquire_load(h->active) & 1;
  transfers_ = shm::transfers_buffer(transfers_seg_.base(), h->capacity, b);
  transfers_count_ = std::min(shm::acquire_load(h->count[b]), h->capacity);
}

namespace {
// *word = min(*word, v) when *word is 0 (unset) or larger; max when `up`.
void atomic_extreme(uint64_t& word, uint64_t v, bool up) {
  std::atomic_ref<uint64_t> w(word);
  uint64_t cur = w.load(std::memory_order_relaxed);
  while ((up ? cur < v : (cur == 0 || cur > v)) && !w.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
}  // namespace

void AccessCheck::note_transfer_event(const shm::TransferEntry& t, shm::Event event, bool seeder) const {
  if (!transfer_stats_ || t.slot >= transfers_capacity_) return;
  shm::TransferStats& s = transfer_stats_[t.slot];
  if (event == shm::Event::started) {
    atomic_extreme(s.first_started, uint64_t(time(nullptr)), false);
  } else if (event == shm::Event::completed && seeder) {
    uint64_t now = uint64_t(time(nullptr));
    atomic_extreme(s.first_completed, now, false);
    atomic_extreme(s.last_completed, now, true);
  }
}

}  // namespace shoal::worker
