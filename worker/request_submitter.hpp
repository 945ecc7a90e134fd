// worker/request_submitter.hpp — how a protocol front-end inside a socket worker (HTTP, later
// WebSocket) hands requests to the swarm workers. The socket worker implements it over its
// request rings; front-ends never touch rings directly.
#pragma once
#include <cstdint>

#include "shm/counters.hpp"
#include "shm/messages.hpp"

namespace shoal::worker {

class RequestSubmitter {
 public:
  virtual ~RequestSubmitter() = default;
  // Copies `r` into the request ring of the swarm worker owning r.info_hash (partition_of).
  // Not visible to the swarm worker until flush(). Returns false if that ring is full (the
  // caller answers "try again" and counts it).
  virtual bool submit(const shm::Request& r) = 0;
  // Number of swarm workers (partition_of(info_hash, partitions()) picks the ring).
  virtual uint32_t partitions() = 0;
  // Requests that can still be submitted to `partition` before flush() (for all-or-nothing
  // multi-hash scrapes).
  virtual uint64_t room(uint32_t partition) = 0;
  // Publishes everything submitted, soon: at the end of this event-loop pass, once every ready
  // connection has been read (so one wake-up carries many requests), or at once when a batch's
  // worth is waiting. Each swarm worker that got something is woken once per publication.
  virtual void flush() = 0;
  // Seconds since the shared clock base.
  virtual uint32_t now_s() = 0;
  // This worker's counter block.
  virtual shm::CounterBlock* counters() = 0;
  // Access list (access_list.mode): false when the 20-byte info_hash must not be served; the
  // refusal is counted (access_denied). The list is the worker's snapshot, refreshed at each UDP
  // batch and every 100 ms (so a reload reaches HTTP within 0.1 s), never within one callback:
  // all hashes of one request are checked against the same list. A
  // refused announce gets the protocol's error ("info_hash not allowed"); in a scrape, answer
  // a refused hash as an unknown torrent (zeros) and the others normally.
  virtual bool info_hash_allowed(const uint8_t* info_hash) = 0;
};

// A protocol front-end living in a socket worker's event loop (HTTP/HTTPS, later WS). The
// socket worker routes each Response whose ctx.protocol is the front-end's protocol to it.
class ProtocolFrontend {
 public:
  virtual ~ProtocolFrontend() = default;
  virtual shm::Protocol protocol() const = 0;
  // A response for a request this front-end submitted (possibly by a previous process of this
  // slot, or a duplicate after a swarm-worker restart: check ctx.conn and ignore unknown ones).
  virtual void on_response(const shm::Response& r) = 0;
  // Called after a batch of responses was delivered (flush buffered output, if any).
  virtual void after_responses() {}
  // Called once when the worker is asked to stop (stop accepting, finish in-flight work).
  virtual void drain() {}
  // True when nothing is in flight and no connection is open (after drain(), the socket worker
  // exits once every front-end is idle, or after a grace period).
  virtual bool idle() const { return true; }
};

}  // namespace shoal::worker
