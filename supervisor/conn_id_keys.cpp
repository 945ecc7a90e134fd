// supervisor/conn_id_keys.cpp — see conn_id_keys.hpp. Runs in the supervisor, at start (before
// any fork) and on SIGHUP from its event loop. The supervisor is the only writer of
// ControlSegment::conn_id_keys.
#include "supervisor/conn_id_keys.hpp"

#include <openssl/crypto.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "conf/conn_id_key_file.hpp"
#include "supervisor/log.hpp"

namespace shoal::supervisor {
namespace {

shm::ConnIdKeySet key_set(const conf::KeyFileResult& r) {
  shm::ConnIdKeySet set;
  set.count = r.count;
  std::memcpy(set.keys, r.keys, sizeof set.keys);
  return set;
}

// Counts in the block are written only by the supervisor; readers load them atomically.
void bump(uint32_t& counter) {
  std::atomic_ref<uint32_t> c(counter);
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

std::string conn_id_key_fingerprints(const shm::ControlSegment* control) {
  shm::ConnIdKeySet set;
  uint64_t seq = 0;
  if (!shm::read_conn_id_keys(&control->conn_id_keys, &set, &seq)) return "(being written)";
  std::string out;
  for (uint32_t k = 0; k < set.count; k++) {
    if (k) out += ", ";
    out += conf::key_fingerprint(set.keys[k]) + (k == 0 ? " (current)" : " (previous)");
  }
  OPENSSL_cleanse(&set, sizeof set);
  return out;
}

void publish_conn_id_keys_at_start(const conf::Config& cfg, shm::ControlSegment* control) {
  const std::string& path = cfg.udp_connection_id_key_file;
  shm::ConnIdKeys* block = &control->conn_id_keys;
  block->reloads = 0;
  block->reload_errors = 0;
  if (path.empty()) {
    shm::ConnIdKeySet own;
    own.count = 1;
    std::memcpy(own.keys[0], control->control.conn_id_key, 16);
    shm::publish_conn_id_keys(block, own, false);
    OPENSSL_cleanse(&own, sizeof own);
    LOG_INFO("connection ids: this shoald's own random key (no udp.connection_id_key_file), 120 s buckets of its clock");
    return;
  }
  conf::KeyFileResult r = conf::load_key_file(path);
  if (!r.ok()) throw std::runtime_error("udp.connection_id_key_file " + r.error);
  shm::ConnIdKeySet set = key_set(r);
  shm::publish_conn_id_keys(block, set, true);
  OPENSSL_cleanse(&set, sizeof set);
  OPENSSL_cleanse(r.keys, sizeof r.keys);
  LOG_INFO("connection ids: %u key%s from %s: %s; 120 s buckets of wall-clock time, %u s skew allowed", r.count,
           r.count == 1 ? "" : "s", path.c_str(), conn_id_key_fingerprints(control).c_str(), cfg.udp_connection_id_skew);
}

bool reload_conn_id_keys(const conf::Config& cfg, shm::ControlSegment* control, std::string* msg) {
  const std::string& path = cfg.udp_connection_id_key_file;
  std::string line;
  bool good = true;
  if (path.empty()) {
    line = "connection-id keys: no udp.connection_id_key_file, nothing to reload";
  } else {
    conf::KeyFileResult r = conf::load_key_file(path);
    shm::ConnIdKeys* block = &control->conn_id_keys;
    if (!r.ok()) {
      bump(block->reload_errors);
      line = "udp.connection_id_key_file " + r.error + "; keeping the connection-id keys in force (" +
             conn_id_key_fingerprints(control) + ")";
      LOG_WARN("%s", line.c_str());
      good = false;
    } else {
      shm::ConnIdKeySet set = key_set(r);
      shm::publish_conn_id_keys(block, set, true);
      OPENSSL_cleanse(&set, sizeof set);
      OPENSSL_cleanse(r.keys, sizeof r.keys);
      bump(block->reloads);
      line = "connection-id keys reloaded from " + path + ": " + conn_id_key_fingerprints(control);
      LOG_INFO("%s", line.c_str());
    }
  }
  if (msg) *msg = line;
  return good;
}

}  // namespace shoal::supervisor
