// shm/segment.hpp — create, attach and validate POSIX shared-memory segments.
// Uses Boost.Interprocess shared_memory_object + mapped_region only (never its mutexes,
// containers or allocator: see ../ARCHITECTURE "Hard rules").
// Segment names: "/<prefix>-control", "/<prefix>-rings", "/<prefix>-part-<n>", "/<prefix>-access",
// "/<prefix>-topology", "/<prefix>-transfers", "/<prefix>-relay",
// where <prefix> is the configured shm_name (default "shoal"), so two daemons with different
// names coexist.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "shm/layout.hpp"

namespace shoal::shm {

// A mapped segment. Move-only; unmaps on destruction (the segment itself stays until unlink()).
class Segment {
 public:
  Segment();
  ~Segment();
  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;

  // Creates (replacing any old one) and maps read-write a zero-filled segment of `size` bytes,
  // and writes its SegmentHeader. Throws std::runtime_error naming the segment and errno.
  static Segment create(const std::string& name, size_t size, SegmentKind kind, uint32_t index,
                        uint32_t count, uint64_t clock_base_ns);
  // Maps an existing segment (read-write unless `read_only`) and validates its header:
  // magic, layout version, kind. Throws std::runtime_error saying what did not match.
  static Segment attach(const std::string& name, SegmentKind kind, bool read_only = false);
  // Removes the name; existing mappings stay valid. Returns false if it did not exist.
  static bool unlink(const std::string& name);

  void* base() const { return base_; }
  size_t size() const { return size_; }
  SegmentHeader* header() const { return static_cast<SegmentHeader*>(base_); }
  const std::string& name() const { return name_; }
  bool valid() const { return base_ != nullptr; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void* base_ = nullptr;
  size_t size_ = 0;
  std::string name_;
};

// Segment names for a prefix (see file comment).
std::string control_segment_name(const std::string& prefix);
std::string rings_segment_name(const std::string& prefix);
std::string partition_segment_name(const std::string& prefix, uint32_t index);
std::string access_segment_name(const std::string& prefix);  // the access list (shm/access_segment.hpp)
std::string topology_segment_name(const std::string& prefix);  // the topology map (shm/topology_segment.hpp)
std::string transfers_segment_name(const std::string& prefix);  // registered transfers (shm/transfers_segment.hpp)
std::string relay_segment_name(const std::string& prefix);  // socket-to-socket relay rings (shm/relay_ring.hpp)
std::string snapshot_segment_name(const std::string& prefix);  // snapshot channels (shm/snapshot_segment.hpp)
std::string cluster_segment_name(const std::string& prefix);  // cluster rings and bus status (shm/cluster_segment.hpp)

}  // namespace shoal::shm
