// shm/conn_id_keys.hpp — the BEP 15 connection-id keys in force, in the control segment
// (ControlSegment::conn_id_keys). The supervisor is the only writer: at start (the daemon's own
// random key, ControlHeader::conn_id_key, or the keys of udp.connection_id_key_file) and on
// SIGHUP (the key file re-read, supervisor/conn_id_reload.cpp). Socket workers read it once per
// batch of datagrams (worker/udp_frontend.cpp) and re-key only when `seq` changed.
//
// Seqlock (one writer, readers never block it and never use a half-written key):
//   writer: seq = s + 1 (odd: writing); release fence; key words and count (relaxed atomic
//           stores); seq = s + 2 (release).
//   reader: s1 = seq (acquire); odd → retry; copy count and key words (relaxed atomic loads);
//           acquire fence; s2 = seq (relaxed); s1 != s2 → retry. After a bounded number of
//           tries the reader keeps the keys it has and tries again at its next batch.
// Every word is accessed through std::atomic_ref, so a torn read is detected, never a data race.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/layout.hpp"

namespace shoal::shm {

inline constexpr uint32_t kConnIdMaxKeys = 2;

// seq            seqlock sequence: even = stable, odd = being written; +2 per publication
// count          keys in force, 1 or 2: key 0 makes new ids, every key is accepted
// from_file      1 when the keys come from udp.connection_id_key_file (wall-clock buckets),
//                0 for the daemon's own random key (informational: workers follow the config)
// keys           key k is the 16 bytes of words 2k and 2k+1, in file order (raw bytes)
// reloads        successful re-reads of the key file (SIGHUP) since start
// reload_errors  re-reads refused because the file was bad; the keys in force stayed
struct ConnIdKeys {
  uint64_t seq;
  uint32_t count;
  uint32_t from_file;
  uint64_t keys[2 * kConnIdMaxKeys];
  uint32_t reloads;
  uint32_t reload_errors;
  uint64_t reserved;
};
static_assert(sizeof(ConnIdKeys) == 64);
static_assert(offsetof(ConnIdKeys, keys) == 16 && offsetof(ConnIdKeys, reloads) == 48);
static_assert(kShmSafe<ConnIdKeys>);

// Keys as a reader holds them: count keys of 16 bytes.
struct ConnIdKeySet {
  uint32_t count = 0;
  uint8_t keys[kConnIdMaxKeys][16] = {};
};

// Writer (the supervisor only): publishes `set` (count 1..kConnIdMaxKeys) under the seqlock.
inline void publish_conn_id_keys(ConnIdKeys* k, const ConnIdKeySet& set, bool from_file) {
  std::atomic_ref<uint64_t> seq(k->seq);
  uint64_t s = seq.load(std::memory_order_relaxed);
  seq.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  uint64_t words[2 * kConnIdMaxKeys] = {};
  std::memcpy(words, set.keys, sizeof set.keys);
  for (uint32_t w = 0; w < 2 * kConnIdMaxKeys; w++)
    std::atomic_ref<uint64_t>(k->keys[w]).store(w < 2 * set.count ? words[w] : 0, std::memory_order_relaxed);
  std::atomic_ref<uint32_t>(k->count).store(set.count, std::memory_order_relaxed);
  std::atomic_ref<uint32_t>(k->from_file).store(from_file ? 1 : 0, std::memory_order_relaxed);
  seq.store(s + 2, std::memory_order_release);
}

// The sequence number a reader compares with the one its keys came from (acquire).
inline uint64_t conn_id_keys_seq(const ConnIdKeys* k) { return acquire_load(k->seq); }

// Reader: copies a consistent set into *out and its sequence into *seq_out. False when the
// writer was busy for all `tries` attempts or the block holds no valid count (*out untouched).
inline bool read_conn_id_keys(const ConnIdKeys* k, ConnIdKeySet* out, uint64_t* seq_out, int tries = 64) {
  auto* mk = const_cast<ConnIdKeys*>(k);
  for (int t = 0; t < tries; t++) {
    uint64_t s1 = std::atomic_ref<uint64_t>(mk->seq).load(std::memory_order_acquire);
    if (s1 & 1) continue;
    uint32_t count = std::atomic_ref<uint32_t>(mk->count).load(std::memory_order_relaxed);
    uint64_t words[2 * kConnIdMaxKeys];
    for (uint32_t w = 0; w < 2 * kConnIdMaxKeys; w++)
      words[w] = std::atomic_ref<uint64_t>(mk->keys[w]).load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (std::atomic_ref<uint64_t>(mk->seq).load(std::memory_order_relaxed) != s1) continue;
    if (count == 0 || count > kConnIdMaxKeys) return false;
    out->count = count;
    std::memcpy(out->keys, words, sizeof out->keys);
    *seq_out = s1;
    return true;
  }
  return false;
}

}  // namespace shoal::shm
