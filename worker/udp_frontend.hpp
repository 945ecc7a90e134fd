// worker/udp_frontend.hpp — the UDP tracker front-end of a socket worker (BEP 15, BEP 41 options
// ignored). It reads datagrams in batches (recvmmsg) from the slot's SO_REUSEPORT sockets,
// answers connects itself, checks connection ids (no reply at all to a bad one, so the tracker
// cannot reflect traffic at a spoofed source), hands each announce and scrape to the socket
// worker's RequestPath, and publishes the requests of a readable event (up to 8 recvmmsg
// batches) at once (one eventfd wake-up per swarm worker). Replies go out with sendmmsg, once
// per batch of responses, those of one length to one client as one UDP GSO message
// (worker/udp_io.hpp). No per-request allocation; it keeps no state per request (the
// ReplyContext carries the client).
#pragma once
#include <event2/event.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "conf/config.hpp"
#include "shm/conn_id_keys.hpp"
#include "shm/counters.hpp"
#include "worker/access_check.hpp"
#include "worker/protocol_frontend.hpp"
#include "worker/request_path.hpp"
#include "worker/worker_context.hpp"

namespace shoal::worker {

// Builds the front-end for the slot's `sockets` on `base`. `conn_id_keys`: the connection-id keys
// in force (control segment, shm/conn_id_keys.hpp), checked once per batch and taken again when
// the supervisor publishes new ones; `access`: the worker's access list, whose snapshot it
// refreshes at each batch; `clock_base_ns`: the shared clock base (connection ids use its
// seconds, or wall-clock seconds with udp.connection_id_key_file). Submits through `path` and
// counts into `counters`; the caller attaches it to `path`. Throws std::runtime_error if OpenSSL
// cannot set up the connection-id cipher or the keys cannot be read.
std::unique_ptr<ProtocolFrontend> make_udp_frontend(event_base* base, const conf::Config& cfg, RequestPath* path,
                                                    AccessCheck* access, shm::CounterBlock* counters,
                                                    const std::vector<UdpSocket>& sockets,
                                                    const shm::ConnIdKeys* conn_id_keys, uint64_t clock_base_ns);

}  // namespace shoal::worker
