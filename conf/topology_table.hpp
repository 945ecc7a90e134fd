// conf/topology_table.hpp — turns a parsed topology map (conf/topology_map.hpp) into the
// longest-prefix-match range tables and location entries of the topology segment
// (shm/topology_segment.hpp). Runs in the supervisor (and in unit tests and the bench); pure,
// touches no shared memory: supervisor/topology_load.cpp copies the result into the segment.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "conf/topology_map.hpp"
#include "shm/topology_segment.hpp"

namespace shoal::conf {

// Location paths → group ids, and each depth's path prefixes → level ids. Append-only, like
// the segment's location table: an id, once given, keeps its path for the daemon's life, so a
// reload never changes what a stored peer's group means. Group g is entries()[g - 1].
class LocationRegistry {
 public:
  explicit LocationRegistry(uint32_t capacity) : capacity_(capacity) {}

  // Group of `path` (a valid location, see check_location), interning it if new. 0 when the
  // registry is full (capacity entries or kMaxGroups).
  uint16_t intern(const std::string& path);
  // Group of `path`, or 0 if it was never interned.
  uint16_t find(const std::string& path) const;

  const std::vector<shm::LocationEntry>& entries() const { return entries_; }
  uint32_t capacity() const { return capacity_; }

 private:
  uint32_t capacity_;
  std::vector<shm::LocationEntry> entries_;
  std::map<std::string, uint16_t> groups_;
  std::map<std::string, uint16_t> levels_[4];  // per depth: prefix → level id (1-based)
};

// The range tables of both families, as vectors (the same shapes as one segment buffer).
struct RangeTables {
  std::vector<uint32_t> v4_starts;
  std::vector<uint16_t> v4_groups;
  std::vector<uint64_t> v6_hi, v6_lo;
  std::vector<uint16_t> v6_groups;

  shm::RangesV4 v4() const { return {v4_starts.data(), v4_groups.data(), uint32_t(v4_starts.size())}; }
  shm::RangesV6 v6() const { return {v6_hi.data(), v6_lo.data(), v6_groups.data(), uint32_t(v6_hi.size())}; }
  // Group of an address (4 or 16 bytes, network order) of family 4 or 6.
  uint16_t group_of(uint8_t family, const uint8_t* addr) const {
    return family == 4 ? shm::range_lookup_v4(v4(), addr) : shm::range_lookup_v6(v6(), addr);
  }
};

// Builds the range tables of `entries`, interning their locations (and `default_location`, the
// group of uncovered addresses) in `registry`. At most 2 × entries + 1 ranges per family.
// Returns "" or why not (the registry is full: "more than topology.max_locations (N) locations").
std::string build_topology(const std::vector<TopologyEntry>& entries, const std::string& default_location,
                           LocationRegistry* registry, RangeTables* out);

}  // namespace shoal::conf
