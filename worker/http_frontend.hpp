// worker/http_frontend.hpp — the HTTP and HTTPS tracker front-end of a socket worker (BEP 3, 7,
// 23, 48; HTTP/1.x framing by the http_parser library on libevent bufferevents, TLS through
// bufferevent_openssl; pipelined requests are answered in order, a batch with one write). It accepts on the slot's
// inherited TCP listeners, answers malformed requests itself, hands announces and scrapes to
// the socket worker's RequestPath, and answers each request when its result comes back (as the
// path's ResponseSink for shm::Protocol::http), or "try again" after 2 s. Lives in the socket
// worker's event loop; it touches shared memory only through the RequestPath and its counters.
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "conf/config.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

// Builds the front-end for `listeners` (the slot's TcpListener list; HTTP and HTTPS may both be
// present). Reads http.*, https.* and tracker.* from cfg, which must outlive it. Installs a
// SIGHUP handler on `base` that reloads the TLS certificate when HTTPS is on. `generation` is the
// slot's process generation (seeds reply tokens so a previous process's responses never match).
// Submits through `path` and counts into `counters`; the caller attaches the front-end to `path`.
// Raises the open-file limit toward http.max_connections, or lowers the limit it enforces to fit.
// Throws std::runtime_error when the TLS certificate cannot be loaded or libevent fails.
std::unique_ptr<ProtocolFrontend> make_http_frontend(event_base* base, const conf::Config& cfg,
                                                     RequestPath* path, shm::CounterBlock* counters,
                                                     const std::vector<TcpListener>& listeners,
                                                     uint32_t generation);

}  // namespace shoal::worker
