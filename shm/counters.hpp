// shm/counters.hpp — the one list of per-worker counters. Each worker slot owns a block in the
// control segment and is its only writer (relaxed increments); readers (supervisor, shoal-shm,
// later the stats socket and metrics) sum the blocks. Because the blocks live in shm, a restarted
// worker keeps its slot's totals and counters never go backwards.
#pragma once
#include <atomic>
#include <cstdint>

#include "shm/layout.hpp"

namespace shoal::shm {

// X(name, help). Append only within a layout version.
#define SHOAL_WORKER_COUNTERS(X)                                                          \
  X(udp_received, "UDP datagrams received")                                               \
  X(udp_sent, "UDP datagrams sent")                                                       \
  X(udp_connect, "BEP 15 connect requests answered")                                      \
  X(udp_announce, "BEP 15 announce requests accepted")                                    \
  X(udp_scrape, "BEP 15 scrape requests accepted")                                        \
  X(udp_error_sent, "BEP 15 error responses sent")                                        \
  X(udp_bad_connection_id, "requests dropped: unknown or expired connection id")          \
  X(udp_malformed, "datagrams dropped: too short, wrong protocol id or unknown action")   \
  X(udp_bad_request, "requests answered with an error: invalid field")                    \
  X(udp_source_port_zero, "datagrams dropped: source port 0")                             \
  X(udp_send_errors, "UDP responses that could not be sent")                              \
  X(ring_full_drops, "requests dropped because a request ring was full")                  \
  X(ring_wakeups, "eventfd wake-ups written to other workers")                            \
  X(ring_batches, "ring batches drained")                                                 \
  X(ring_messages, "ring messages drained")                                               \
  X(scrape_timeouts, "split scrapes abandoned because a part did not come back")          \
  X(announces_applied, "announces applied to a partition")                                \
  X(scrapes_applied, "scrape lookups served by a partition")                              \
  X(announce_tracker_full, "announces refused: partition full")                           \
  X(peers_expired, "peers removed by the expiry sweep")                                   \
  X(torrents_removed, "empty torrents removed by the expiry sweep")                       \
  X(partition_repairs, "partitions found mid-update at attach and repaired")              \
  X(http_connections, "HTTP and HTTPS connections accepted")                              \
  X(http_connections_refused, "HTTP(S) connections closed: over http.max_connections(_per_source)") \
  X(http_announce, "HTTP announce requests passed to a swarm worker")                     \
  X(http_scrape, "HTTP scrape requests passed to swarm workers")                          \
  X(http_failure, "HTTP requests answered with a failure reason (bad or refused input)")  \
  X(http_not_found, "HTTP requests for a path other than announce or scrape (404)")       \
  X(http_timeouts, "HTTP requests answered \"try again\": no swarm reply within 2 s")      \
  X(tls_handshake_failures, "HTTPS connections closed before the TLS handshake finished") \
  X(access_denied, "announces refused and scrape hashes zeroed by the access list")           \
  X(udp_rate_limited, "UDP datagrams dropped: over udp.per_source_rate")                    \
  X(poison_requests_skipped, "requests skipped: swarm workers died applying them twice")   \
  X(ws_connections, "WebSocket connections accepted (ws and wss)")                        \
  X(ws_connections_closed, "WebSocket connections closed (open = accepted - closed)")     \
  X(ws_connections_refused, "WebSocket connections closed at once: over ws.max_connections(_per_source) or the accept rate") \
  X(ws_handshake_failures, "WebSocket connections closed before the TLS or opening handshake finished") \
  X(ws_messages_in, "WebSocket text messages received")                                   \
  X(ws_messages_out, "WebSocket text messages sent")                                      \
  X(ws_bytes_in, "bytes received on WebSocket connections (after TLS)")                   \
  X(ws_bytes_out, "bytes sent on WebSocket connections (before TLS)")                     \
  X(ws_announce, "WebTorrent announces passed to a swarm worker")                         \
  X(ws_scrape, "WebTorrent scrapes passed to swarm workers")                              \
  X(ws_failure, "WebTorrent messages answered with a failure reason (malformed or refused)") \
  X(ws_offers_relayed, "WebRTC offers delivered to a peer's connection")                  \
  X(ws_answers_relayed, "WebRTC answers delivered to the offering peer's connection")     \
  X(ws_answers_dropped, "answers dropped: not an offer this connection received, expired or replayed") \
  X(ws_relay_dropped, "offers and answers dropped: target gone, relay ring full or over ws.relay_bytes_per_second") \
  X(http_accept_rate_limited, "HTTP(S) connections closed at once: over http.per_source_accept_rate") \
  X(new_torrents_refused, "announces refused: a new torrent over tracker.new_torrents_per_source_rate") \
  X(cluster_deltas_queued, "peer changes a swarm worker handed to the sync worker (cluster)")  \
  X(cluster_deltas_suppressed, "renewals not sent to the other nodes: nothing changed within cluster.renewal_suppression") \
  X(cluster_deltas_sent, "peer changes the sync worker handed to NATS")                   \
  X(cluster_deltas_received, "peer changes received from other nodes")                    \
  X(cluster_deltas_applied, "other nodes' peer changes applied to a partition")            \
  X(cluster_deltas_dropped, "peer changes dropped: a ring full, NATS refused them or the partition was full") \
  X(cluster_bad_messages, "NATS messages refused: malformed, or sent with this node's id by another node") \
  X(cluster_resync_peers, "own peers sent again after a (re)connection or another node's hello") \
  X(cluster_bus_reconnects, "times the NATS connection came back after being lost")          \
  X(cluster_ws_offers_sent, "WebRTC offers sent to the node holding the target peer's connection") \
  X(cluster_ws_answers_sent, "answers sent back to the node holding the offering peer's connection") \
  X(cluster_ws_offers_received, "offers from other nodes handed to the socket worker of the target connection") \
  X(cluster_ws_answers_received, "answers from other nodes handed to the socket worker of the offering connection") \
  X(cluster_ws_relay_dropped, "offers/answers across nodes dropped: malformed, the target's process gone, a ring full or NATS refused them")

enum class Counter : uint32_t {
#define SHOAL_COUNTER_ENUM(name, help) name,
  SHOAL_WORKER_COUNTERS(SHOAL_COUNTER_ENUM)
#undef SHOAL_COUNTER_ENUM
      count
};
inline constexpr uint32_t kCounterCount = uint32_t(Counter::count);

struct CounterInfo {
  const char* name;
  const char* help;
};
inline constexpr CounterInfo kCounterInfo[kCounterCount] = {
#define SHOAL_COUNTER_INFO(name, help) {#name, help},
    SHOAL_WORKER_COUNTERS(SHOAL_COUNTER_INFO)
#undef SHOAL_COUNTER_INFO
};

// One worker slot's counters; single writer, cache-line aligned so slots never share a line.
struct alignas(64) CounterBlock {
  uint64_t value[64];
};
static_assert(kCounterCount <= 64, "grow CounterBlock::value (a layout change)");
static_assert(kShmSafe<CounterBlock>);

// Owner-side increment (relaxed: counters order nothing).
inline void count(CounterBlock* b, Counter c, uint64_t n = 1) {
  std::atomic_ref<uint64_t>(b->value[uint32_t(c)]).fetch_add(n, std::memory_order_relaxed);
}
// Reader-side load.
inline uint64_t read_counter(const CounterBlock* b, Counter c) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(b->value[uint32_t(c)])).load(std::memory_order_relaxed);
}

}  // namespace shoal::shm
