// worker/request_path.hpp — the one request path of a socket worker, shared by every protocol
// front-end (UDP BEP 15, HTTP/HTTPS BEP 3, later WebSocket). A front-end owns only its codec and
// its connections: it hands a validated announce or scrape to the RequestPath, which checks the
// access list, caps numwant, splits a scrape over the swarm workers' partitions (all parts or
// none), writes the requests into the request rings, and publishes them once per batch (one
// publication and one eventfd wake-up per swarm worker). Responses from the response rings come
// back through the front-end's ResponseSink, chosen by ReplyContext::protocol; scrape parts are
// merged here first. No allocation after construction; the 128-byte Request is written once, in
// place in its ring slot.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <vector>

#include "conf/config.hpp"
#include "shm/counters.hpp"
#include "shm/messages.hpp"
#include "shm/spsc_ring.hpp"
#include "worker/access_check.hpp"
#include "worker/scrape_merge.hpp"

namespace shoal::worker {

// Outcome of a request, for the front-end to encode in its own protocol.
//   ok             accepted (submit) or answered (result)
//   access_denied  the access list refuses the info_hash (announce only; a refused hash of a
//                  scrape is answered as an unknown torrent: zeros)
//   ring_full      a swarm worker's request ring has no room: "try again"
//   busy           too many scrapes in flight (kScrapeTableSize): "try again"
//   tracker_full   the swarm worker's partition has no room for the torrent or peer
//   peer_id_taken  WebTorrent: the peer_id is bound to another live connection in that swarm
//   source_quota   the announce would create a torrent over its source's quota
//                  (tracker.new_torrents_per_source_rate)
enum class PathStatus : uint8_t { ok, access_denied, ring_full, busy, tracker_full, peer_id_taken, source_quota };

// The client-facing reason of a refused announce (the same text over UDP, HTTP and WebSocket).
inline const char* refusal_text(PathStatus st) {
  switch (st) {
    case PathStatus::access_denied: return "info_hash not allowed";
    case PathStatus::tracker_full: return "tracker is full, try again later";
    case PathStatus::peer_id_taken: return "peer_id is in use by another connection in this swarm";
    case PathStatus::source_quota: return "too many new torrents from your address, try again later";
    default: return "tracker busy, try again";
  }
}

// A validated announce, protocol-neutral. Pointers must stay valid during the call only.
struct AnnounceIn {
  const uint8_t* info_hash = nullptr;  // 20 bytes
  const uint8_t* peer_addr = nullptr;  // 4 (family 4) or 16 (family 6) bytes, network order,
                                       // canonical (IPv4-mapped IPv6 given as IPv4)
  uint8_t family = 4;                  // 4 or 6: the peer's and so the reply peers' family
  uint16_t peer_port = 0;              // the announced port, host order
  shm::Event event = shm::Event::none;
  bool seeder = false;                 // left == 0
  uint64_t left = UINT64_MAX;          // bytes the peer still needs; UINT64_MAX = not sent
  int64_t numwant = -1;                // as the client sent it; negative = absent = default
  // WebTorrent (family shm::kFamilyWebTorrent; peer_addr/peer_port are the connection's and
  // are not stored): the peer_id and the generation of this socket-worker process; numwant is
  // the offers to place (ReplyContext::conn carries the connection's token).
  const uint8_t* peer_id = nullptr;    // 20 bytes
  uint32_t conn_generation = 0;
  uint8_t conn_family = 4;             // family of peer_addr, the connection's address (4 or 6)
};

// A validated scrape: `count` (1..kMaxScrapeHashes) info_hashes of 20 bytes, contiguous.
struct ScrapeIn {
  const uint8_t* info_hashes = nullptr;
  uint32_t count = 0;
};

// An announce's answer. peers: peer_count compact entries of the asker's family (6 bytes for
// IPv4, 18 for IPv6, network order), in the response ring slot: valid until the sink's
// after_responses() of that batch has returned (the UDP front-end sends them from there).
// WebTorrent announces (family shm::kFamilyWebTorrent): peers holds peer_count shm::WsTarget
// entries (the connections to forward one offer each to).
struct AnnounceResult {
  PathStatus status = PathStatus::ok;  // ok, tracker_full or peer_id_taken
  uint32_t seeders = 0, leechers = 0, completed = 0;
  uint8_t family = 4;
  uint16_t peer_count = 0;
  const uint8_t* peers = nullptr;
  uint32_t interval = 1800;        // seconds to tell the client: transfers.active_interval for a
                                   // registered transfer in progress, else tracker.announce_interval
  const char* warning = nullptr;   // a warning for the client (HTTP "warning message"), or none
};

// A scrape's answer, merged over partitions, in the order of the request's info_hashes. Valid
// during the callback only.
struct ScrapeResult {
  uint32_t count = 0;
  const uint8_t (*info_hashes)[20] = nullptr;
  const ScrapeCounts* counts = nullptr;
};

// Implemented by each front-end. ctx is the ReplyContext the front-end gave with the request
// (its own fields: addr, port, family, socket_index, transaction, conn), so it finds its client
// or connection; a context it no longer knows (client gone, timed out, a previous process of the
// slot) must be ignored. Calls come from RequestPath::drain_responses(), and for a scrape whose
// hashes are all refused by the access list, from RequestPath::scrape() itself.
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) = 0;
  virtual void on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) = 0;
  // After each drained batch of responses (flush buffered output, e.g. one sendmmsg).
  virtual void after_responses() {}
};

// Most peers one reply of a front-end can carry, per family of the asker.
struct PeerLimits {
  uint16_t v4 = 200;
  uint16_t v6 = 200;
};

// Peers to ask the swarm worker for. numwant as the client sent it: negative (BEP 15's -1, or
// absent in HTTP) = default_numwant; 0 = none (the client wants counts only); else as asked.
// Then capped at max_numwant and at `limit`, the front-end's reply capacity; stopped → 0.
uint16_t effective_numwant(int64_t numwant, shm::Event event, const conf::Config& cfg, uint16_t limit);

// How far a peer of a registered transfer is, in permille (0..1000): (length - left) / length,
// left clamped to length; a peer that did not send left counts as 0. kProgressUnknown for a
// transfer of length 0.
inline uint16_t progress_permille(uint64_t left, uint64_t length) {
  if (length == 0) return shm::kProgressUnknown;
  if (left >= length) return 0;
  return uint16_t((unsigned __int128)(length - left) * 1000 / length);
}

class RequestPath {
 public:
  // `requests`/`responses`: this process's rings, one per swarm worker (partition_of picks
  // it); `wake_fds`: the swarm workers' eventfds (same order). `access`: the worker's access
  // list snapshot (its owner calls begin_batch()). `base`: the worker's event loop, for
  // flush(); may be nullptr (then flush() publishes only full batches; call publish()).
  // `first_scrape_id` seeds scrape ids (random per process) so parts of a previous process's
  // scrapes never match. `partition_key`: the daemon's partition secret (partition_of). Counts
  // into `counters`.
  RequestPath(const conf::Config& cfg, std::vector<shm::SpscRing<shm::Request>> requests,
              std::vector<shm::SpscRing<shm::Response>> responses, std::vector<int> wake_fds,
              const AccessCheck* access, shm::CounterBlock* counters, event_base* base,
              uint32_t first_scrape_id, uint64_t partition_key);
  ~RequestPath();
  RequestPath(const RequestPath&) = delete;
  RequestPath& operator=(const RequestPath&) = delete;

  // Routes responses whose ctx.protocol is `p` to `sink`, whose replies carry at most `limits`
  // peers. One sink per protocol; nullptr detaches.
  void attach(shm::Protocol p, ResponseSink* sink, PeerLimits limits);

  // Queues an announce (not yet visible to the swarm worker: see publish()/flush()). `ctx`:
  // the front-end's reply context with ctx.protocol set; the scrape fields are overwritten.
  // Returns ok, access_denied or ring_full (both counted).
  PathStatus announce(const AnnounceIn& a, const shm::ReplyContext& ctx);
  // Whether announce() for this info_hash (20 bytes) would find room in its swarm worker's ring
  // now; for requests that wait and retry rather than fail (counting nothing).
  bool has_room(const uint8_t* info_hash) const;
  // Whether every swarm worker's request ring has room for n more requests beyond those queued
  // (a front-end that can wait, like WebSocket's, stops reading before the rings fill).
  bool has_room_everywhere(uint64_t n) const;

  // Queues a scrape, one request per hash in its partition's ring: all of them or none (ok,
  // ring_full, busy). A hash the access list refuses is answered as zeros without a ring trip;
  // when all are refused the sink is called before this returns.
  PathStatus scrape(const ScrapeIn& s, const shm::ReplyContext& ctx);

  // Publishes everything queued and wakes each swarm worker that got something, once. Returns
  // whether anything was published (each request comes back as a response).
  bool publish();
  // Publishes soon: at once when a batch's worth (kUdpBatch) is waiting, else at the end of this
  // event-loop pass (low-priority event), so one wake-up carries many front-ends' requests.
  void flush();
  // Requests queued but not yet published.
  uint64_t queued() const;

  // Delivers every response waiting in the response rings to its sink, then after_responses()
  // of each sink, then releases the ring slots and publishes what the sinks queued meanwhile.
  // Returns responses read.
  uint64_t drain_responses();
  // At start: responses left in this ring set belong to a process two generations back (the
  // clients have long retried); drop them rather than send stale replies.
  void discard_stale_responses();
  // True when no request or response is in any of the rings (for the rolling-restart drain).
  bool rings_empty() const;

  uint32_t partitions() const { return uint32_t(requests_.size()); }

 private:
  uint32_t now_ms() const;
  void deliver(const shm::Response& r);
  void deliver_scrape_part(const shm::Response& r);
  static void on_publish_soon(evutil_socket_t, short, void* arg);

  const conf::Config& cfg_;
  std::vector<shm::SpscRing<shm::Request>> requests_;
  std::vector<shm::SpscRing<shm::Response>> responses_;
  std::vector<int> wake_fds_;
  std::vector<uint64_t> pending_;  // requests written but not yet published, per swarm worker
  const AccessCheck* access_;
  shm::CounterBlock* counters_;
  uint64_t partition_key_;
  event* publish_soon_ = nullptr;  // low priority: publishes after a loop pass
  ScrapeTable scrapes_;
  static constexpr size_t kProtocols = 4;  // indexed by shm::Protocol
  ResponseSink* sinks_[kProtocols] = {};
  PeerLimits limits_[kProtocols] = {};
};

}  // namespace shoal::worker
