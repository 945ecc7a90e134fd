// conf/topology_map.hpp — the topology map file (issue 11, location-aware swarms): which
// location (a path such as "eu-west/az1/rack-042") each address block belongs to. Parsed in
// the supervisor at start, on SIGUSR1 / `shoalctl reload` (with the access list) and by
// `shoald -t`; touches no shared memory (shm/topology_table.hpp turns the entries into the
// lookup structure the socket workers search).
//
// File format, one mapping a line:
//   <CIDR> <location>      e.g.  10.1.2.0/24   eu-west/az1/rack-042
//                                2001:db8:1::/48 eu-west/az1/rack-042
// `#` starts a comment (whole line or after the mapping); blank lines are skipped; fields are
// separated by spaces or tabs. A CIDR is numeric ("a.b.c.d/n", "v6addr/n"; a bare address is a
// /32 or /128; IPv4-mapped IPv6 blocks become IPv4 ones). A location is 1 to 4 levels separated
// by '/', each level 1 or more of [A-Za-z0-9._-], at most kMaxLocationChars characters in all.
// The same block twice with the same location is allowed; with two locations it is an error.
// The longest matching prefix wins (overlaps are how racks are carved out of zones).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace shoal::conf {

inline constexpr size_t kMaxLocationChars = 55;  // fits shm::LocationEntry::name with its NUL
inline constexpr size_t kMaxLocationDepth = 4;

// One mapping: the block and the location path, as written.
struct TopologyEntry {
  Cidr block;
  std::string location;
  size_t line = 0;  // 1-based line in the file
};

struct TopologyMapResult {
  std::vector<TopologyEntry> entries;  // in file order, duplicates removed
  std::string error;                   // "" on success, else "path:line: reason"
  size_t lines = 0;
  bool ok() const { return error.empty(); }
};

// "" when `location` is a valid path (see the file comment), else why not.
std::string check_location(const std::string& location);

// Parses the file at `path`; more than `max_prefixes` mappings is an error at the first line over
// the limit. Errors (the first one stops the parse):
//   path: cannot open: <strerror>
//   path:3: expected "<CIDR> <location>", got 1 field
//   path:4: not a numeric IPv4 or IPv6 address: "10.1.2"
//   path:5: location "a//b": empty level
//   path:9: 10.0.0.0/8 is already mapped to "eu" on line 2
TopologyMapResult load_topology_map(const std::string& path, size_t max_prefixes);

// Same for text in memory; `name` stands for the path in errors (tests).
TopologyMapResult parse_topology_map(const std::string& text, const std::string& name, size_t max_prefixes);

// For `shoald -t`: loads cfg's topology file when topology.mode is "file". "" when fine, else
// the error line.
std::string check_topology_config(const Config& cfg);

}  // namespace shoal::conf
