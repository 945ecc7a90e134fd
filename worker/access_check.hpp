// worker/access_check.hpp — the access-list check of a socket worker, for every protocol. Maps
// the access segment read-only and keeps a snapshot (buffer, count) of the active list, taken
// by begin_batch() at the start of each batch and on the worker's periodic timer. Each
// begin_batch() acks the generation of the snapshot in the worker's WorkerSlot, which is what lets
// the supervisor reuse the other buffer (protocol: shm/access_segment.hpp). Between two
// begin_batch() calls every check uses the same list, so a batch never sees a mixed list.
// During a rolling restart two processes of one slot run for a while; only the one whose
// generation is the slot's current one acks (the one the supervisor waits for).
// The same snapshot covers the topology map (shm/topology_segment.hpp, issue 11) and the
// registered transfers (shm/transfers_segment.hpp), whose buffers flip under the access
// segment's generation: topology_group() resolves a peer's location, transfer() finds a
// registered transfer.
#pragma once
#include <cstdint>
#include <string>

#include "conf/access_list.hpp"
#include "shm/access_segment.hpp"
#include "shm/control_segment.hpp"
#include "shm/messages.hpp"
#include "shm/topology_segment.hpp"
#include "shm/transfers_segment.hpp"
#include "shm/segment.hpp"

namespace shoal::worker {

class AccessCheck {
 public:
  // Attaches "/<shm_name>-access" read-only and takes the first snapshot (acking it in `slot`).
  // `generation` is this process's slot generation. Throws std::runtime_error if the segment is
  // missing or does not match this binary.
  AccessCheck(const std::string& shm_name, shm::WorkerSlot* slot, uint32_t generation);

  // A fixed list without a segment (unit tests of its users): `sorted` holds `count` 20-byte
  // hashes in memcmp order and must outlive this object; begin_batch() does nothing.
  AccessCheck(conf::AccessMode mode, const uint8_t* sorted, uint64_t count)
      : mode_(mode), list_(sorted), count_(count) {}
  // Same, with `n` registered transfers sorted by info_hash (outliving this object) and the
  // transfers mode; their stats slots are not written.
  AccessCheck(conf::AccessMode mode, const uint8_t* sorted, uint64_t count, const shm::TransferEntry* transfers,
              uint32_t n, bool deploy)
      : mode_(mode), list_(sorted), count_(count), deploy_(deploy), transfers_(transfers), transfers_count_(n) {}

  // Re-reads generation, then active and its count (in that order), and acks the generation
  // unless a successor owns the slot. Cheap: a few acquire loads and one release store; call
  // once per batch.
  void begin_batch();

  // True when a request for the 20-byte `info_hash` may be served under the snapshot's list:
  // mode off → always; allow → only listed hashes; deny → all but listed ones. Binary search.
  bool allowed(const uint8_t* info_hash) const {
    if (mode_ == conf::AccessMode::off) return true;
    return conf::access_allows(mode_, conf::access_list_contains(list_, count_, info_hash));
  }

  // Location group of a peer address (4 or 16 bytes, network order; family 4 or 6) under the
  // snapshot's topology: 0 (unknown) when topology.mode is off; mode prefix hashes the address's
  // prefix; mode file searches the map (longest prefix, else the default location).
  uint16_t topology_group(uint8_t family, const uint8_t* addr) const {
    switch (topo_mode_) {
      case shm::TopologyMode::file:
        return family == 4 ? shm::range_lookup_v4(v4_, addr) : shm::range_lookup_v6(v6_, addr);
      case shm::TopologyMode::prefix:
        return shm::prefix_group(family, addr, prefix4_, prefix6_);
      default:
        return 0;
    }
  }

  // The registered transfer (shm/transfers_segment.hpp) with this 20-byte info_hash under the
  // snapshot, or nullptr. Binary search.
  const shm::TransferEntry* transfer(const uint8_t* info_hash) const {
    return transfers_count_ ? shm::find_transfer(transfers_, transfers_count_, info_hash) : nullptr;
  }
  // transfers.mode "deploy": peers only for registered transfers.
  bool deploy_mode() const { return deploy_; }
  // Records an announce of registered transfer `t` in its stats slot (first started, first and
  // last completed: atomic min/max, Unix time). Only started and completed (with left = 0) count.
  void note_transfer_event(const shm::TransferEntry& t, shm::Event event, bool seeder) const;

  conf::AccessMode mode() const { return mode_; }
  uint32_t generation() const { return generation_; }  // of the snapshot in use
  uint64_t size() const { return count_; }              // hashes in the snapshot

 private:
  shm::Segment seg_;
  shm::AccessHeader* header_ = nullptr;
  shm::WorkerSlot* slot_ = nullptr;
  uint32_t process_generation_ = 0;
  conf::AccessMode mode_ = conf::AccessMode::off;
  uint32_t capacity_ = 0;
  uint32_t generation_ = 0;
  const uint8_t* list_ = nullptr;
  uint64_t count_ = 0;
  // topology snapshot
  void snapshot_topology();
  shm::Segment topo_seg_;
  shm::TopologyMode topo_mode_ = shm::TopologyMode::off;
  uint8_t prefix4_ = 24, prefix6_ = 64;
  shm::RangesV4 v4_;
  shm::RangesV6 v6_;
  // registered transfers snapshot
  void snapshot_transfers();
  shm::Segment transfers_seg_;
  bool deploy_ = false;
  const shm::TransferEntry* transfers_ = nullptr;
  uint32_t transfers_count_ = 0;
  shm::TransferStats* transfer_stats_ = nullptr;
  uint32_t transfers_capacity_ = 0;
};

}  // namespace shoal::worker
