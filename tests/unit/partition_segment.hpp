// tests/unit/partition_segment.hpp — a partition segment in process memory for the partition
// unit tests: a zeroed, 64-byte aligned buffer with a SegmentHeader, formatted for `cap`
// (partition_format) unless told not to. Copyable (a byte copy: for before/after comparisons).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>

#include "shm/layout.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"

namespace shoal::shm::test_support {

struct Seg {
  size_t size;
  std::unique_ptr<uint8_t[]> raw;
  uint8_t* base;
  explicit Seg(PartitionCapacity cap, bool format = true)
      : size(partition_segment_bytes(cap)), raw(new uint8_t[size + 64]()), base(align(raw.get())) {
    SegmentHeader h{};
    h.magic = kMagic;
    h.layout_version = kLayoutVersion;
    h.kind = uint32_t(SegmentKind::partition);
    h.header_size = sizeof h;
    h.segment_size = size;
    std::memcpy(base, &h, sizeof h);
    if (format) partition_format(base, size, cap);
  }
  Seg(const Seg& o) : size(o.size), raw(new uint8_t[o.size + 64]), base(align(raw.get())) {
    std::memcpy(base, o.base, size);
  }
  PartitionLayout* layout() const { return reinterpret_cast<PartitionLayout*>(base); }

 private:
  static uint8_t* align(uint8_t* p) {
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
  }
};

}  // namespace shoal::shm::test_support
