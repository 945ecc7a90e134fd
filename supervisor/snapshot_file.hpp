// supervisor/snapshot_file.hpp — the supervisor's side of swarm snapshots (issue 14; format:
// shm/snapshot_codec.hpp, docs/snapshot-format.md): checking a snapshot file before it is
// loaded (at start and by `shoald -t`), asking the swarm workers to load it, the stats-socket
// command "snapshot save FILE", and what "show info" says about both. The supervisor never
// reads partition data: the swarm workers write their partitions into the snapshot segment's
// channels (worker/snapshot_pass.hpp) and the supervisor copies the chunks into the file.
#pragma once
#include <string>

#include "conf/config.hpp"
#include "shm/snapshot_codec.hpp"
#include "supervisor/stats_commands.hpp"

namespace shoal::supervisor {

class Supervisor;
struct SegmentSet;

// Reads the whole snapshot file at `path` and checks it (every chunk's checksum, the end
// chunk's totals). "" when it is good (*info and *totals filled); else one line naming the
// path and the reason ("/var/lib/shoal/snapshot: offset 4108: data chunk checksum mismatch").
// *missing is set (and the line says so) when the file does not exist.
std::string check_snapshot_file(const std::string& path, shm::SnapshotInfo* info, shm::SnapshotTotals* totals,
                                bool* missing);

// At start, with new partitions (first start, --fresh, a layout change): checks
// tracker.snapshot_load and, when it names a good file, asks every swarm worker to load it
// before it reports ready. A missing file: logged, nothing loaded. Throws std::runtime_error
// ("snapshot PATH: reason") for a file that exists but cannot be read or is damaged.
void prepare_snapshot_load(const conf::Config& cfg, const SegmentSet& segs);

// "snapshot save FILE": every swarm worker writes its partition; the chunks go to FILE.tmp.PID,
// which is checked, synced and renamed to FILE. One save at a time.
CommandResult snapshot_save(Supervisor& sup, const std::string& path);

// For "show info": the load at start (state, counts) and the last save.
json_t* snapshot_info_json(Supervisor& sup);

}  // namespace shoal::supervisor
