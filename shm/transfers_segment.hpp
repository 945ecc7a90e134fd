// shm/transfers_segment.hpp — the registered deploy transfers as socket workers see them
// (issue 11): "/<shm_name>-transfers", a header and two buffers of sorted TransferEntry records
// (double buffering). The supervisor is the only writer (at start and whenever a transfer is
// added or removed, supervisor/reload.cpp); socket workers map it read-only and search it per
// announce (worker/access_check.hpp): transfers.mode "deploy" serves peers only for registered
// info_hashes, and a registered transfer in progress gets transfers.active_interval.
//
// Reload protocol: the buffers flip under the access segment's generation, exactly like the
// topology map's (shm/topology_segment.hpp): the writer fills buffer 1-active only when every
// socket worker acked the current access generation, release-stores count and `active`, then the
// access segment's generation; readers read both after the generation.
//
// Deploy progress: each registered transfer has a stats slot (TransferEntry::slot, stable while
// it is registered) that socket workers update with atomic min/max when a peer of the transfer
// starts or completes; it is the only part of the segment they write (they map it read-write).
// The supervisor zeroes a slot before it gives it to a new transfer.
//
// Layout:
//   SegmentHeader     64 B   kind transfers
//   TransfersHeader   64 B
//   buffer 0, 1       capacity × TransferEntry (32 B), sorted by info_hash (memcmp order)
//   stats             capacity × TransferStats (32 B), by slot
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/layout.hpp"

namespace shoal::shm {

enum class TransfersMode : uint32_t { open = 0, deploy = 1 };

// mode      TransfersMode; written once, before fork
// active    buffer in use: 0 or 1
// capacity  entries each buffer can hold (transfers.max_transfers; 0 without a state_dir)
// count[b]  entries in buffer b
struct TransfersHeader {
  uint32_t mode;
  uint32_t active;
  uint32_t capacity;
  uint32_t count[2];
  uint8_t reserved[44];
};
static_assert(sizeof(TransfersHeader) == 64 && kShmSafe<TransfersHeader>);

// One registered transfer. length: total bytes of its files (the .torrent's info), for the
// progress of a peer from its `left`; slot: its TransferStats (< capacity).
struct TransferEntry {
  uint8_t info_hash[20];
  uint32_t slot;
  uint64_t length;
};
static_assert(sizeof(TransferEntry) == 32 && kShmSafe<TransferEntry>);

// When a transfer's peers started and completed: Unix seconds, 0 = not yet. first_started: the
// first event=started; first_completed / last_completed: the first and last event=completed of
// a peer with left = 0.
struct TransferStats {
  uint64_t first_started;
  uint64_t first_completed;
  uint64_t last_completed;
  uint64_t reserved;
};
static_assert(sizeof(TransferStats) == 32 && kShmSafe<TransferStats>);

inline constexpr size_t kTransfersHeaderOffset = sizeof(SegmentHeader);
inline constexpr size_t kTransfersBuffersOffset = kTransfersHeaderOffset + sizeof(TransfersHeader);

inline constexpr size_t transfers_segment_bytes(uint32_t capacity) {
  return kTransfersBuffersOffset + 2 * size_t(capacity) * sizeof(TransferEntry) + size_t(capacity) * sizeof(TransferStats);
}
inline TransferStats* transfers_stats(void* base, uint32_t capacity) {
  return reinterpret_cast<TransferStats*>(static_cast<char*>(base) + kTransfersBuffersOffset +
                                          2 * size_t(capacity) * sizeof(TransferEntry));
}
inline TransfersHeader* transfers_header(void* base) {
  return reinterpret_cast<TransfersHeader*>(static_cast<char*>(base) + kTransfersHeaderOffset);
}
inline TransferEntry* transfers_buffer(void* base, uint32_t capacity, uint32_t b) {
  return reinterpret_cast<TransferEntry*>(static_cast<char*>(base) + kTransfersBuffersOffset +
                                          size_t(b) * capacity * sizeof(TransferEntry));
}

// The entry for the 20-byte `info_hash` among `count` sorted entries, or nullptr.
inline const TransferEntry* find_transfer(const TransferEntry* sorted, uint32_t count, const uint8_t* info_hash) {
  uint32_t lo = 0, hi = count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int c = std::memcmp(sorted[mid].info_hash, info_hash, 20);
    if (c == 0) return &sorted[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return nullptr;
}

}  // namespace shoal::shm
