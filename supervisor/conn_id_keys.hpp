// supervisor/conn_id_keys.hpp — the connection-id keys in the supervisor: what it publishes into
// the control segment at start (the key file's keys, or the daemon's own random key) and the
// re-read of udp.connection_id_key_file on SIGHUP (key rotation without a restart). The
// publication is a seqlock (shm/conn_id_keys.hpp): socket workers take the new keys at their next
// batch of datagrams and never see a half-written key. Runs in the supervisor only.
#pragma once
#include <string>

#include "conf/config.hpp"
#include "shm/control_segment.hpp"

namespace shoal::supervisor {

// Publishes the keys in force, before any worker is forked: the keys of
// cfg.udp_connection_id_key_file, or ControlHeader::conn_id_key when it is "". Logs which (with
// the keys' fingerprints). Throws std::runtime_error("udp.connection_id_key_file path: reason")
// for a bad file: shoald does not start.
void publish_conn_id_keys_at_start(const conf::Config& cfg, shm::ControlSegment* control);

// SIGHUP: re-reads the key file and publishes its keys. A bad file keeps the keys in force, logs
// "udp.connection_id_key_file path:line: reason; keeping the connection-id keys in force (...)",
// counts it in ConnIdKeys::reload_errors and returns false. Without a key file it does nothing
// and returns true. *msg (if not null) gets a one-line summary.
bool reload_conn_id_keys(const conf::Config& cfg, shm::ControlSegment* control, std::string* msg = nullptr);

// "a1b2c3d4 (current), e5f6a7b8 (previous)": fingerprints of the keys in force
// (conf::key_fingerprint), for logs and `show info`.
std::string conn_id_key_fingerprints(const shm::ControlSegment* control);

}  // namespace shoal::supervisor
