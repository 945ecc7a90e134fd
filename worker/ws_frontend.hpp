// worker/ws_frontend.hpp — the WebTorrent tracker front-end of a socket worker (issue 10):
// WebSocket (RFC 6455) over plain TCP (ws.listen) and TLS (wss.listen, the https certificate,
// reloaded on SIGHUP). Per connection: TLS and opening handshake (worker/ws_handshake.hpp) under
// ws.handshake_timeout, frames through worker/ws_session.hpp, JSON messages through
// worker/webtorrent_codec.hpp, an idle timeout and an output cap.
//
// Announces and scrapes go through the socket worker's RequestPath like UDP and HTTP ones
// (shm::kFamilyWebTorrent: the peer is this connection, keyed by peer_id in the swarm). An
// announce's reply carries offer targets: each offer is delivered to one target connection,
// directly when it is on this process, else through the socket-to-socket relay rings
// (worker/ws_relay.hpp). A connection remembers the offers it was given (offer_id, swarm,
// offering peer, its connection, expiry; at most ws.max_pending_offers), so an answer is routed
// back with that table alone: an answer to an offer the connection never received, for another
// peer, replayed, or expired matches nothing and is dropped (ws_answers_dropped). When a
// connection closes, its peers leave their swarms (stopped announces); when the process dies,
// the swarm workers drop its peers (their generation is gone). Draining (rolling restart) closes
// every connection with 1001 so clients reconnect to the new process.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "conf/config.hpp"
#include "shm/counters.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/worker_context.hpp"
#include "worker/ws_relay.hpp"

namespace shoal::worker {

// The WebTorrent front-end, with the relay poll the socket worker calls on every wake-up.
class WsFrontendApi : public ProtocolFrontend {
 public:
  // Delivers the offers and answers other socket workers relayed to this process's
  // connections. Returns how many records were read.
  virtual uint64_t poll_relay() = 0;
};

// Builds the front-end for `listeners` (the slot's TcpListeners with websocket set; ws and wss
// may both be present). `relay` may be null (one socket worker: every target is local). Reads
// ws.*, wss.* and https.* from cfg, which must outlive it. Raises the open-file limit for
// ws.max_connections. Throws std::runtime_error when the TLS certificate cannot be loaded or
// libevent fails.
std::unique_ptr<WsFrontendApi> make_ws_frontend(event_base* base, const conf::Config& cfg, RequestPath* path,
                                                shm::CounterBlock* counters, const std::vector<TcpListener>& listeners,
                                                WsIdentity self, std::unique_ptr<WsRelay> relay);

}  // namespace shoal::worker
