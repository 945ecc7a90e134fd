// supervisor/transfer_progress.hpp — deploy progress of the registered transfers (issue 11), as
// p2ptracker reported it to deploy tooling: per transfer, when its peers started and completed,
// whether it is complete, how far its peers are, and the same per location (hosts,
// representatives, seeders, progress). The supervisor never reads partition data: a poller asks
// each registered transfer's swarm worker through its admin mailbox (op `locations`, in ticket
// order with every other mailbox user: supervisor/mailbox.hpp), one query at a time, and keeps
// the last answer; `shoalctl transfer show`, the admin API and the metrics read that snapshot.
// The same poller carries out `transfer remove`'s drop of the swarm (op `drop`), first.
// Times come from the transfers segment's stats slots (written by the socket workers).
#pragma once
#include <event2/event.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <jansson.h>

namespace shoal::supervisor {

class Supervisor;
struct Ticket;

// One location of a transfer. name: the location's path from the topology map, or "group N"
// (mode prefix), or "unknown" (no topology). progress: percent of the transfer the hosts there
// have, averaged over hosts that reported `left`; -1 when none did.
struct LocationProgress {
  uint16_t group = 0;
  std::string name;
  uint32_t hosts = 0, seeders = 0, representatives = 0;
  double progress = -1;
};

// The last snapshot of one transfer. polled_unix: when the swarm worker answered (0: never).
// Times: Unix seconds, 0 = not yet. complete: every peer a seeder and at least one completed.
struct TransferProgress {
  uint64_t polled_unix = 0;
  uint32_t seeders = 0, leechers = 0, completed = 0, peers = 0;
  uint64_t first_started = 0, first_completed = 0, last_completed = 0;
  bool complete = false;
  double progress = -1;  // percent over every host that reported `left`; -1 when none did
  std::vector<LocationProgress> locations;  // by hosts, most first
};

class TransferProgressPoller {
 public:
  // Polls every registered transfer in turn (each at most every `min_age_ms`), from a timer on
  // `base`. `sup` must outlive the poller.
  TransferProgressPoller(Supervisor* sup, event_base* base, uint32_t min_age_ms = 500);
  ~TransferProgressPoller();

  // The last snapshot of the transfer with this 20-byte info_hash, or nullptr if none yet.
  const TransferProgress* get(const uint8_t* info_hash) const;
  // Queues the removal of this torrent's swarm from its partition (before any poll).
  void drop_swarm(const uint8_t* info_hash);

 private:
  using Hash = std::array<uint8_t, 20>;
  struct Job {
    Hash hash;
    bool drop;
  };
  static void on_timer(evutil_socket_t, short, void* arg);
  void step();
  bool next_job(Job* out);
  void finish(const Job& job);

  Supervisor* sup_;
  event* timer_;
  uint32_t min_age_ms_;
  std::deque<Hash> drops_;
  std::map<Hash, TransferProgress> snapshots_;
  std::map<Hash, uint64_t> polled_ms_;  // monotonic ms of the last answer
  // the query in flight
  bool busy_ = false;
  Job job_{};
  uint32_t seq_ = 0;
  uint64_t sent_ms_ = 0;
  std::shared_ptr<Ticket> ticket_;
};

// The snapshot as JSON: counts, times, complete, progress, and with `locations` one object per
// location (p2ptracker's /transfers/<hash>.json?racks=1).
json_t* progress_json(const TransferProgress& p, bool locations);

}  // namespace shoal::supervisor
