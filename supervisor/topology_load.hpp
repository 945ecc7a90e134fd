// supervisor/topology_load.hpp — the topology map in the supervisor (issue 11): creates the
// topology segment (shm/topology_segment.hpp) and loads the map at start, and prepares and
// publishes a new map when the access list is reloaded (SIGUSR1, shoalctl reload; the flip
// rides on the access segment's generation, supervisor/reload.cpp). A bad map at start stops
// the start ("path:line: reason"); a bad map on reload keeps the map in force.
// The location registry (group ids) lives for the supervisor's life and is append-only like
// the segment's location table: a stored peer's group keeps its meaning across reloads.
#pragma once
#include <string>

#include "conf/config.hpp"
#include "conf/topology_table.hpp"
#include "shm/segment.hpp"

namespace shoal::supervisor {

// Creates "/<shm_name>-topology" sized from cfg.topology_* (a 128-byte segment unless mode is
// "file"), writes its header and, in mode "file", loads cfg.topology_file into buffer 0 and
// logs what it holds. Throws std::runtime_error with the segment name or "path:line: reason".
shm::Segment create_topology_segment(const conf::Config& cfg, uint64_t clock_base_ns);

// A parsed map waiting for the flip.
struct PendingTopology {
  conf::RangeTables tables;
  size_t prefixes = 0;
};

// Reload, first step: parses and builds cfg.topology_file (mode "file" only; otherwise returns
// true with nothing pending). New locations are appended to the segment's location table now
// (unused until the flip). On a bad map returns false with *error = "path:line: reason".
bool prepare_topology_reload(const conf::Config& cfg, const shm::Segment& topology, PendingTopology* out,
                             std::string* error);

// Reload, second step: copies `p` into the inactive buffer and release-stores its counts and
// `active`. Call only when no socket worker can read the inactive buffer, right before the
// access segment's generation is bumped.
void publish_topology(const shm::Segment& topology, const PendingTopology& p);

}  // namespace shoal::supervisor
