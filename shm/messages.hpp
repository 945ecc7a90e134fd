// shm/messages.hpp — request and response slots carried by the SPSC rings between socket workers
// and swarm workers. Types and static_asserts only.
//
// One Request carries one info_hash: a multi-hash scrape is split by the socket worker into one
// Request per hash (scrape_index/scrape_total in the ReplyContext), and the Responses are merged
// back in the socket worker. The ReplyContext is opaque to the swarm worker: it is copied from the
// Request into the Response unchanged, so the socket worker needs no per-request state for UDP.
#pragma once
#include <cstddef>
#include <cstdint>

#include "shm/layout.hpp"

namespace shoal::shm {

enum class Protocol : uint8_t { udp = 1, http = 2, ws = 3 };
enum class RequestKind : uint8_t { announce = 1, scrape = 2 };
// BEP 15 event numbering (HTTP/WS map their strings onto it).
enum class Event : uint8_t { none = 0, completed = 1, started = 2, stopped = 3 };
// peer_id_taken: a WebTorrent announce whose peer_id is bound to another live connection in
// that swarm (issue 10).
// source_quota: the announce would create a torrent, and its source has created its share of new
// torrents lately (tracker.new_torrents_per_source_rate, issue 12).
enum class ResponseStatus : uint8_t { ok = 0, tracker_full = 1, bad_request = 2, peer_id_taken = 3, source_quota = 4 };

// Request::family / Response::family of a WebTorrent (WS/WSS) announce or scrape. Not an address
// family: a WebTorrent peer is a connection of a socket worker, keyed by its peer_id, and is
// kept apart from the UDP/HTTP peers of the same info_hash (they cannot connect to each other).
inline constexpr uint8_t kFamilyWebTorrent = 'w';

// Where and how to answer; opaque to the swarm worker. 48 bytes.
//   addr/port     the client's transport address (network byte order), family 4 or 6;
//                 IPv4 addresses use the first 4 bytes of addr
//   socket_index  which of the socket worker's sockets received the request
//   transaction   BEP 15 transaction_id as received (network byte order)
//   scrape_id     socket-worker-local id of a split scrape (0 for announces)
//   scrape_index  position of this hash in the original scrape; scrape_total = hashes in it
//   conn          protocol-specific connection token (HTTP/WS), 0 for UDP
//   flags         kReplyRegistered (worker/request_path.cpp writes it into the request)
struct ReplyContext {
  uint8_t addr[16];
  uint16_t port;
  uint8_t family;
  uint8_t protocol;  // Protocol
  uint8_t socket_index;
  uint8_t flags;  // kReplyRegistered; set by the request path, copied back unchanged
  uint8_t reserved0[2];
  uint32_t transaction;
  uint32_t scrape_id;
  uint16_t scrape_index;
  uint16_t scrape_total;
  uint32_t reserved1;
  uint64_t conn;
};
static_assert(sizeof(ReplyContext) == 48);
// ReplyContext::flags: the announce is for a registered deploy transfer (decided once, when the
// request is made, so its reply's interval and warning need no second lookup).
inline constexpr uint8_t kReplyRegistered = 1;
static_assert(offsetof(ReplyContext, transaction) == 24 && offsetof(ReplyContext, conn) == 40);
static_assert(kShmSafe<ReplyContext>);

// Socket worker → swarm worker. 128 bytes.
//   info_hash     20 raw bytes
//   peer_addr     the announcing peer's address (network byte order; the packet source, never
//                 a client-supplied ip), family 4 or 6; peer_port in network byte order
//   event         Event; seeder = 1 when left == 0
//   numwant       peers wanted, already capped by the socket worker (0 = none)
//   topology_group  location group id of the peer (0 = unknown)
//   progress      permille of a registered transfer the peer has (from its left and the
//                 transfer's length), 0xffff when unknown (not a registered transfer)
// WebTorrent announces (family kFamilyWebTorrent; peer_addr/peer_port unused):
//   peer_id          the announcing peer's 20-byte peer_id
//   conn_generation  generation of the socket-worker process holding the connection;
//                    ctx.conn (low 32 bits) is the connection's token in that process, and the
//                    socket slot is the ring the request came from
//   numwant          offers to place (targets wanted), already capped by the socket worker
//   peer_addr, conn_family  the connection's address (for per-source quotas only)
struct Request {
  ReplyContext ctx;
  uint8_t info_hash[20];
  uint8_t peer_addr[16];
  uint16_t peer_port;
  uint8_t family;
  uint8_t kind;  // RequestKind
  uint8_t event;  // Event
  uint8_t seeder;
  uint16_t numwant;
  uint16_t topology_group;
  uint16_t progress;
  uint8_t peer_id[20];
  uint32_t conn_generation;
  uint8_t conn_family;  // WebTorrent: 4 or 6, the family of peer_addr (the connection's address)
  uint8_t reserved[7];
};
static_assert(sizeof(Request) == 128);
static_assert(offsetof(Request, peer_id) == 96);
static_assert(offsetof(Request, info_hash) == 48 && offsetof(Request, peer_addr) == 68);
static_assert(kShmSafe<Request>);

// Request::progress of a peer whose progress is unknown (not a registered transfer).
inline constexpr uint16_t kProgressUnknown = 0xffff;

// One offer target of a WebTorrent announce, in Response::peers (peer_count entries): the
// connection of another peer of the swarm, where the asking socket worker forwards one offer.
//   slot        socket-worker slot holding the connection; ring_set its process's ring set
//   generation  that process's generation; token the connection's token in it
//   node        0: the connection is on this node. Else (cluster, issue 14; ring_set is then
//               kWsRemoteSet) the node id holding it, generation only its low 16 bits there:
//               the offer goes to that node through the sync worker (docs/cluster.md).
struct WsTarget {
  uint32_t generation;
  uint32_t token;
  uint8_t slot;
  uint8_t ring_set;
  uint16_t node;
};
inline constexpr uint8_t kWsRemoteSet = 0xff;  // WsTarget::ring_set of a peer held by another node
static_assert(sizeof(WsTarget) == 12 && kShmSafe<WsTarget>);

// Most peer bytes a response can carry: 200 IPv6 peers of 18 bytes (covers 200 IPv4 of 6 bytes).
inline constexpr size_t kMaxResponsePeerBytes = 200 * 18;

// Swarm worker → socket worker.
//   seeders/leechers  current counts of the torrent (both address families), completed = times
//                     a peer reported event=completed (BEP 15 "completed"/BEP 48 "downloaded")
//   peer_count        entries in peers; each entry is compact: 4-byte IPv4 + port (6 bytes) when
//                     family == 4, 16-byte IPv6 + port (18 bytes) when family == 6, network order
// Only the first offsetof(Response, peers) + peer bytes are written and read.
struct Response {
  ReplyContext ctx;
  uint8_t info_hash[20];
  uint8_t kind;    // RequestKind
  uint8_t status;  // ResponseStatus
  uint8_t family;
  uint8_t reserved0;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t completed;
  uint16_t peer_count;
  uint16_t reserved1;
  uint8_t reserved2[8];
  uint8_t peers[kMaxResponsePeerBytes];
};
static_assert(offsetof(Response, peers) == 96);
static_assert(sizeof(Response) == 96 + kMaxResponsePeerBytes);
static_assert(kShmSafe<Response>);

}  // namespace shoal::shm
