// shm/layout.hpp — the header every shared-memory segment starts with.
// Types and static_asserts only. Every process checks magic, layout version and kind before
// trusting anything else in a segment (shm/segment.cpp). Bump kLayoutVersion whenever any shm
// struct changes size, offset or meaning: a process never attaches to another layout.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace shoal::shm {

inline constexpr uint64_t kMagic = 0x67657320616f6873ull;  // "shoa seg" little-endian
inline constexpr uint32_t kLayoutVersion = 8;  // 6: connection-id keys in the control segment; 7: the sync worker's slot (issue 14);
                                               // 8: 8-byte peer index slots, 12-byte IPv4 peers, a packed state word (issue 13)

// A word of a segment shared with other processes, read with acquire / written with release
// ordering (the publication protocols of the access, topology and transfers segments).
template <class T>
inline T acquire_load(const T& v) {
  return std::atomic_ref<T>(const_cast<T&>(v)).load(std::memory_order_acquire);
}
template <class T>
inline void release_store(T& v, T x) {
  std::atomic_ref<T>(v).store(x, std::memory_order_release);
}

// Which segment a header belongs to.
enum class SegmentKind : uint32_t { control = 1, rings = 2, partition = 3, access = 4, topology = 5, transfers = 6, relay = 7,
                                    snapshot = 8, cluster = 9 };

// First 64 bytes of every segment.
//   magic           kMagic
//   layout_version  kLayoutVersion of the binary that created it
//   kind            SegmentKind
//   header_size     sizeof(SegmentHeader)
//   segment_size    bytes mapped, including this header
//   index           partition index (partition segments), else 0
//   count           number of partitions (partition) / socket workers (rings), else 0
//   clock_base_ns   CLOCK_MONOTONIC (ns) when the segment set was created; shm times are
//                   u32 seconds since this base (shm/clock.hpp). Same value in every segment.
//   generation      bumped by the supervisor each time a new owner is started (informational)
struct SegmentHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t kind;
  uint32_t header_size;
  uint32_t index;
  uint64_t segment_size;
  uint32_t count;
  uint32_t reserved0;
  uint64_t clock_base_ns;
  uint64_t generation;
  uint64_t reserved1;
};
static_assert(sizeof(SegmentHeader) == 64);
static_assert(offsetof(SegmentHeader, segment_size) == 24);
static_assert(offsetof(SegmentHeader, clock_base_ns) == 40);
static_assert(std::is_standard_layout_v<SegmentHeader> && std::is_trivially_copyable_v<SegmentHeader>);

// Checks every struct placed in shm must pass.
template <class T>
inline constexpr bool kShmSafe = std::is_standard_layout_v<T> && std::is_trivially_copyable_v<T>;

}  // namespace shoal::shm
