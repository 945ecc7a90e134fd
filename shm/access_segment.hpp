// shm/access_segment.hpp — the access-list segment "/<shm_name>-access": a header and two buffers
// of `capacity` sorted 20-byte info_hashes (double buffering). The supervisor is the only writer
// (at start and on SIGUSR1, supervisor/reload.cpp); socket workers map it read-only
// (worker/access_check.cpp) and ack the generation they read in WorkerSlot::access_generation.
//
// Protocol (every shared word through std::atomic_ref):
//   reader: g = generation (acquire); a = active (acquire); n = count[a] (acquire); then
//           ack g in its slot (release) and use buffer a with n hashes until its next batch.
//           Reading generation first makes an ack never claim more than the reader saw: if it
//           saw the new generation it also sees the new `active`; if it saw the old one it acks
//           the old one and the supervisor keeps waiting.
//   writer: only when every live socket worker's ack == generation (none reads buffer
//           1-active any more) it writes buffer b = 1-active, then release-stores count[b],
//           active = b, generation + 1, in that order. It never waits in place: it polls the
//           acks from a timer and keeps the old list if a worker does not ack.
//
// Layout:
//   SegmentHeader   64 B   kind access
//   AccessHeader    64 B
//   buffer 0        capacity × 20 B at offset 128
//   buffer 1        capacity × 20 B at offset 128 + capacity × 20
// With access_list.mode "off" the capacity is 0 (a 128-byte segment).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shm/layout.hpp"

namespace shoal::shm {

// mode            conf::AccessMode (0 off, 1 allow, 2 deny); written once, before fork
// active          buffer the workers read: 0 or 1
// generation      1 after the start load, +1 per successful reload (u32, compared for equality)
// capacity        hashes each buffer can hold (access_list.max_entries)
// count[b]        hashes in buffer b (sorted, no duplicates)
// reloads         successful reloads since start (SIGUSR1 / shoalctl reload)
// reload_errors   reloads refused because the file was bad; the previous list stayed in force
// last_reload_ms  duration of the last successful reload, from the request to the flip
struct AccessHeader {
  uint32_t mode;
  uint32_t active;
  uint32_t generation;
  uint32_t capacity;
  uint64_t count[2];
  uint64_t reloads;
  uint64_t reload_errors;
  uint64_t last_reload_ms;
  uint64_t reserved;
};
static_assert(sizeof(AccessHeader) == 64);
static_assert(offsetof(AccessHeader, generation) == 8);
static_assert(offsetof(AccessHeader, count) == 16);
static_assert(offsetof(AccessHeader, reload_errors) == 40);
static_assert(kShmSafe<AccessHeader>);

inline constexpr size_t kAccessHeaderOffset = sizeof(SegmentHeader);
inline constexpr size_t kAccessBuffersOffset = kAccessHeaderOffset + sizeof(AccessHeader);
static_assert(kAccessBuffersOffset == 128);
inline constexpr size_t kAccessEntryBytes = 20;

// Bytes of an access segment whose buffers hold `capacity` hashes each.
inline constexpr size_t access_segment_bytes(uint32_t capacity) {
  return kAccessBuffersOffset + 2 * size_t(capacity) * kAccessEntryBytes;
}
inline AccessHeader* access_header(void* segment_base) {
  return reinterpret_cast<AccessHeader*>(static_cast<char*>(segment_base) + kAccessHeaderOffset);
}
// Start of buffer `b` (0 or 1).
inline uint8_t* access_buffer(void* segment_base, uint32_t capacity, uint32_t b) {
  return static_cast<uint8_t*>(segment_base) + kAccessBuffersOffset + size_t(b) * capacity * kAccessEntryBytes;
}

}  // namespace shoal::shm
