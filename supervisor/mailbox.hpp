// supervisor/mailbox.hpp — turns at a swarm worker's admin mailbox (shm::TorrentQuery, one
// request at a time per swarm worker). Every user of a mailbox (the stats socket's "show
// torrent", the deploy-progress poller, a transfer's swarm drop) takes a ticket and writes its
// query only when its ticket is served; a ticket given up (timeout, closed connection) is
// skipped, so the queue never stalls. Supervisor only (single-threaded).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "shm/control_segment.hpp"

namespace shoal::supervisor {

// One query at a time per swarm worker's mailbox (it holds one request): queries of any number
// of stats clients take a ticket and go in ticket order. A ticket whose client gave up (timeout,
// closed connection) is skipped, so the queue never stalls. Supervisor only (single-threaded).
struct MailboxQueue {
  uint64_t next_ticket = 0;
  uint64_t serving = 0;               // the ticket whose query may use the mailbox now
  std::vector<uint64_t> abandoned;    // tickets given up before they were served
  void advance() {
    ++serving;
    for (auto it = abandoned.begin(); it != abandoned.end();) {
      if (*it == serving) {
        ++serving;
        abandoned.erase(it);
        it = abandoned.begin();
      } else {
        ++it;
      }
    }
  }
};

inline MailboxQueue& mailbox_queue(uint32_t partition) {
  static std::vector<MailboxQueue> queues(shm::kMaxSwarmWorkers);
  return queues[partition];
}

// Held by a mailbox user until its query is answered: gives the ticket up however it ends.
struct Ticket {
  Ticket(uint32_t p, uint64_t n) : partition(p), number(n) {}
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  uint32_t partition;
  uint64_t number;
  ~Ticket() {
    MailboxQueue& m = mailbox_queue(partition);
    if (m.serving == number) m.advance();
    else if (number > m.serving) m.abandoned.push_back(number);
  }
};

}  // namespace shoal::supervisor
