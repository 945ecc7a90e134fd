// supervisor/stats_cluster.hpp — what an operator sees of the cluster (issue 14): the stats
// command `show cluster` and the shoal_cluster_* metrics, both read from the cluster segment's
// status block (written by the sync worker, shm/cluster_segment.hpp) and the counters. Runs in
// the supervisor; reads shm only.
#pragma once
#include <jansson.h>

#include <string>

#include "conf/config.hpp"
#include "supervisor/stats_commands.hpp"

namespace shoal::supervisor {

class Supervisor;
struct SegmentSet;

// At start, when the partitions are new (not kept) and cluster.join_timeout > 0: marks the join
// as wanted in the fresh cluster segment (the sync worker asks a live node for a snapshot and
// reports ready only after loading it, worker/cluster_join.hpp) and says so in the systemd
// status line. Nothing when cluster.enabled is false.
void prepare_cluster_join(const conf::Config& cfg, const SegmentSet& segs);

// The join as `show cluster` and `show info` (cluster_join) report it: state (none, waiting,
// loading, joined, alone, failed), from_node_id/from_name, torrents, peers, seconds (so far
// while it runs), note (why alone or failed). nullptr when cluster.enabled is false.
json_t* cluster_join_json(const Supervisor& sup);

// `show cluster`: this node, the bus (state, since when, server, reconnects, resyncs), the
// rings' depths, the replication counters and one row per other node seen (its last message's
// age and lag, messages, deltas, lost messages). An error when cluster.enabled is false.
CommandResult show_cluster(Supervisor& sup, const std::string&);

// Appends the shoal_cluster_* gauges (nothing when cluster.enabled is false). The counters
// (shoal_cluster_deltas_*_total) come with every other worker counter.
void render_cluster_metrics(std::string* out, const Supervisor& sup);

}  // namespace shoal::supervisor
