// supervisor/reload.hpp — the access list in the supervisor: the first load into the freshly
// created access segment (before any fork), and reloads on SIGUSR1 / `shoalctl reload`. A reload
// parses the file completely first; a bad file keeps the list in force. A good one is copied
// into the inactive buffer only once every live socket worker has acked the current generation
// and no socket worker is draining after a rolling restart (so none still reads that buffer),
// then published by flipping `active` and bumping `generation` (protocol:
// shm/access_segment.hpp). The wait for acks is polled from a timer on
// the supervisor's event loop, never by blocking it.
#pragma once
#include <event2/event.h>

#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"
#include "shm/segment.hpp"
#include "shm/transfers_segment.hpp"
#include "supervisor/segments.hpp"

namespace shoal::supervisor {

// Fills the access header (mode, capacity, generation 1) of the new segment `access` and, unless
// the mode is off, loads cfg.access_list_path into buffer 0 and logs how many hashes it holds.
// Throws std::runtime_error("path:line: reason") for a bad or unreadable file.
void load_access_list_at_start(const conf::Config& cfg, const shm::Segment& access);

// Reloads the access list (SIGUSR1, shoalctl reload). Parses the file now. On a bad file logs
// "path:line: reason; keeping previous list (N hashes)", counts it in the access header's
// reload_errors and returns false. On success publishes the list at once if every live socket
// worker has acked the current generation, else from a timer as soon as they have (normally
// within 100 ms; a worker that has not acked after 2 s is named in a warning and waited for
// again, never overwritten), logs "access list reloaded: N hashes in X ms", and returns true.
// A request while an earlier one still waits replaces the list it would publish. *msg (if not
// null) gets a one-line summary for the stats socket. The first call binds the reloader to
// `base`, `cfg` and `segments`, which must outlive the supervisor loop.
bool request_access_list_reload(event_base* base, const conf::Config& cfg, const SegmentSet& segments,
                                std::string* msg = nullptr);

// Which socket-worker slot keeps a reload from overwriting the inactive access buffer: the
// first whose live worker has not acked `generation` (*ack gets the generation it acked), or
// whose previous worker is still draining after a rolling restart (*draining = true: it shares
// the slot's ack word with its successor, so its own ack cannot be read, and it may still
// check a request against the old buffer until it exits). -1 when no slot does.
// Writes `sorted` (registered transfers by info_hash, at most the segment's capacity) into the
// inactive buffer of the transfers segment and flips its `active`. Before any fork (start) the
// caller may use it directly; afterwards only the reloader does, right before a generation bump.
void publish_transfers(const shm::Segment& transfers, const std::vector<shm::TransferEntry>& sorted);

// Publishes the registered transfers (after an add or remove) at the next flip of the access
// generation, as a reload publishes the access list: at once if every socket worker has acked,
// else from the reloader's timer. The access list and topology map stay as they are.
void request_transfers_publish(event_base* base, const conf::Config& cfg, const SegmentSet& segments,
                               std::vector<shm::TransferEntry> sorted);

int access_laggard(const shm::ControlSegment* control, uint32_t generation, uint32_t* ack, bool* draining);

}  // namespace shoal::supervisor
