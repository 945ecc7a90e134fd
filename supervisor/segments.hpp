// supervisor/segments.hpp — creates every shared-memory segment before the workers exist:
// the control segment (connection-id key, worker slots, counters), the rings segment, one
// partition segment per swarm worker, and the access-list segment (loaded with the list, see
// supervisor/reload.hpp). Names come from shm_name (shm/segment.hpp).
#pragma once
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"
#include "shm/segment.hpp"

namespace shoal::supervisor {

struct SegmentSet {
  shm::Segment control;
  shm::Segment rings;
  shm::Segment access;    // shm/access_segment.hpp; only the supervisor writes it
  shm::Segment topology;  // shm/topology_segment.hpp; only the supervisor writes it
  shm::Segment transfers; // shm/transfers_segment.hpp; only the supervisor writes it
  shm::Segment relay;     // shm/relay_ring.hpp; only when ws or wss is enabled (socket workers)
  shm::Segment snapshot;  // shm/snapshot_segment.hpp; one channel per swarm worker
  shm::Segment cluster;   // shm/cluster_segment.hpp; only with cluster.enabled (swarm workers, sync worker)
  shm::ControlSegment* control_view() const { return static_cast<shm::ControlSegment*>(control.base()); }
};

// Creates (replacing old ones of the same name) and initialises all segments. Partition
// segments are formatted and unmapped again: the supervisor never touches partition data.
// Throws std::runtime_error with the segment name and reason, or "path:line: reason" for a bad
// access list file.
SegmentSet create_segments(const conf::Config& cfg);

// Creates the access-list, topology, transfers and relay segments and loads the configured list
// and map into them (at start, also after re-attaching). Throws like create_segments.
void create_access_segment(const conf::Config& cfg, SegmentSet* set, uint64_t clock_base_ns);

// Re-attaches the control, rings and partition segments a previous shoald with this shm_name
// left (it died, was killed, or stopped cleanly), if their layout version and geometry match
// this configuration; waits for (or kills) workers of the previous shoald that are still
// alive. Returns false with *why when there is nothing usable (the caller starts fresh).
// supervisor/segments_attach.cpp.
bool reattach_segments(const conf::Config& cfg, SegmentSet* set, std::string* why);

// Removes every segment name of this configuration (clean stop).
void unlink_segments(const conf::Config& cfg);

// True when `pid` runs and its command line starts with "shoald" (supervisor/segments_attach.cpp).
bool is_shoald_process(uint32_t pid);

// supervisor/segments_remove.cpp:
// Paths under /dev/shm of every segment named after shm_name (control, rings, access,
// part-N of any N), sorted.
std::vector<std::string> segment_files(const std::string& shm_name);
// Pid of a live shoald worker recorded in shm_name's control segment, or 0 (none recorded, or
// none of them is running). A running shoald always has live workers.
uint32_t live_worker_pid(const std::string& shm_name);
// "" when this user may read and write every existing segment of cfg.shm_name (or there are
// none); otherwise one sentence naming the segment, its owner, and the remedies.
std::string foreign_segments_problem(const conf::Config& cfg);
// `shoald --remove-shm`: unlinks the segments of a stopped shoald and prints what it freed.
// Refuses (exit 1) while a shoald runs on them. Returns the exit code.
int remove_segments_command(const conf::Config& cfg);

}  // namespace shoal::supervisor
