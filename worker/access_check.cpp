// worker/access_check.cpp — see access_check.hpp. Runs in socket workers; reads the access
// segment (mapped read-only) and writes only its own slot's access_generation word.
#include "worker/access_check.hpp"

#include <algorithm>
#include <stdexcept>

namespace shoal::worker {

AccessCheck::AccessCheck(const std::string& shm_name, shm::WorkerSlot* slot, uint32_t generation)
    : seg_(shm::Segment::attach(shm::access_segment_name(shm_name), shm::SegmentKind::access, true)),
      slot_(slot), process_generation_(generation) {
  if (seg_.size() < shm::kAccessBuffersOffset) throw std::runtime_error(seg_.name() + ": too small for its header");
  header_ = shm::access_header(seg_.base());
  capacity_ = header_->capacity;  // both written before fork, never changed
  mode_ = conf::AccessMode(header_->mode);
  if (seg_.size() < shm::access_segment_bytes(capacity_))
    throw std::runtime_error(seg_.name() + ": smaller than its capacity of " + std::to_string(capacity_) + " hashes");
  if (mode_ != conf::AccessMode::off && mode_ != conf::AccessMode::allow && mode_ != conf::AccessMode::deny)
    throw std::runtime_error(seg_.name() + ": unknown access mode " + std::to_string(header_->mode));
  begin_batch();
}

void AccessCheck::begin_batch() {
  if (!header_) return;  // a fixed list
  // generation first: an ack must never claim a newer list than the one read (see the header).
  uint32_t g = shm::access_load(header_->generation);
  if (g != generation_) {
    uint32_t b = shm::access_load(header_->active) & 1;
    count_ = std::min<uint64_t>(shm::access_load(header_->count[b]), capacity_);
    list_ = shm::access_buffer(seg_.base(), capacity_, b);
    generation_ = g;
  }
  // A superseded process (rolling restart) must not overwrite its successor's ack.
  if (shm::load_u32(slot_->generation) == process_generation_) shm::store_u32(slot_->access_generation, generation_);
}

}  // namespace shoal::worker
