// supervisor/stats_cluster.hpp — what an operator sees of the cluster (issue 14): the stats
// command `show cluster` and the shoal_cluster_* metrics, both read from the cluster segment's
// status block (written by the sync worker, shm/cluster_segment.hpp) and the counters. Runs in
// the supervisor; reads shm only.
#pragma once
#include <string>

#include "supervisor/stats_commands.hpp"

namespace shoal::supervisor {

class Supervisor;

// `show cluster`: this node, the bus (state, since when, server, reconnects, resyncs), the
// rings' depths, the replication counters and one row per other node seen (its last message's
// age and lag, messages, deltas, lost messages). An error when cluster.enabled is false.
CommandResult show_cluster(Supervisor& sup, const std::string&);

// Appends the shoal_cluster_* gauges (nothing when cluster.enabled is false). The counters
// (shoal_cluster_deltas_*_total) come with every other worker counter.
void render_cluster_metrics(std::string* out, const Supervisor& sup);

}  // namespace shoal::supervisor
