// worker/protocol_frontend.hpp — a protocol front-end living in a socket worker's event loop
// (UDP, HTTP/HTTPS, later WebSocket). It owns its codec and its connections, hands validated
// requests to the worker's RequestPath, and gets the answers as the RequestPath's ResponseSink
// for its protocol; the socket worker attaches it and drives its lifecycle (rolling-restart
// drain). One virtual call per response; the request side calls the RequestPath directly.
#pragma once
#include "shm/messages.hpp"
#include "worker/request_path.hpp"

namespace shoal::worker {

class ProtocolFrontend : public ResponseSink {
 public:
  // The ReplyContext::protocol of every request it submits (its responses come back to it).
  virtual shm::Protocol protocol() const = 0;
  // Most peers one announce reply can carry, per family of the asker.
  virtual PeerLimits peer_limits() const = 0;
  // Called once when the worker is asked to stop (stop accepting, finish in-flight work).
  virtual void drain() {}
  // True when nothing is in flight and no connection is open (after drain(), the socket worker
  // exits once every front-end is idle, or after a grace period).
  virtual bool idle() const { return true; }
};

}  // namespace shoal::worker
