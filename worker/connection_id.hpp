// worker/connection_id.hpp — BEP 15 connection ids, derived rather than stored.
// Runs in every socket worker. The 16-byte key comes from the control segment (conn_id_key,
// written once by the supervisor before fork), so every socket worker, and a restarted one,
// makes and accepts the same ids (docs/hardening.md A2, A3). Touches no shm itself: the caller passes
// the key and the time (u32 seconds since the segment clock base, shm/clock.hpp).
//   id     = first 8 bytes (big-endian) of CBC-MAC-AES-128(key, block1 ‖ block2)
//   block1 = canonical client address as 16 bytes (IPv4 as ::ffff:a.b.c.d)
//   block2 = bucket (u32 BE) ‖ family byte (4 or 6) ‖ 11 zero bytes; bucket = now_s / 120
// The input is always exactly two blocks, so plain CBC-MAC is secure here. An id is accepted in
// its bucket and the next one, i.e. for 120 to 240 s after it was made (BEP 15 asks ≥ 2 min).
#pragma once
#include <cstdint>

struct evp_cipher_ctx_st;

namespace shoal::worker {

inline constexpr uint32_t kConnectionIdBucketSeconds = 120;

// Canonicalises a client address: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes AF_INET
// with its 4 bytes (docs/hardening.md A20). addr_in: 4 bytes (AF_INET) or 16 bytes (AF_INET6), network
// order. Writes 4 or 16 bytes to addr_out16 (room for 16 required) and returns the canonical
// family (AF_INET or AF_INET6); returns AF_UNSPEC and writes nothing for any other family.
int canonical_address(int family, const uint8_t* addr_in, uint8_t* addr_out16);

// Makes and checks connection ids for one key. Holds one OpenSSL AES-128-ECB context with the
// key schedule set once; not thread-safe (one object per socket worker process/thread).
class ConnectionIds {
 public:
  // key: 16 bytes. Throws std::runtime_error if OpenSSL cannot set up the cipher.
  explicit ConnectionIds(const uint8_t key[16]);
  ~ConnectionIds();
  ConnectionIds(const ConnectionIds&) = delete;
  ConnectionIds& operator=(const ConnectionIds&) = delete;

  // BEP 15 connect: the id to return to a client at `addr` (4 bytes for AF_INET, 16 for AF_INET6,
  // network order; IPv4-mapped IPv6 gives the same id as the IPv4 address) at time now_s.
  // Returns 0 for an unknown family or if OpenSSL fails (valid() never accepts either case).
  uint64_t make(int family, const uint8_t* addr, uint32_t now_s);

  // BEP 15 announce/scrape: true when `id` was made for this address in the current or the
  // previous bucket. Each comparison is constant-time (CRYPTO_memcmp); the previous bucket's MAC
  // is computed only when the current one does not match.
  bool valid(uint64_t id, int family, const uint8_t* addr, uint32_t now_s);

 private:
  // The 8-byte tag for (canonical family, canonical 16-byte address, bucket) into tag[8].
  bool tag(int family, const uint8_t* addr16, uint32_t bucket, uint8_t tag[8]);

  evp_cipher_ctx_st* ctx_ = nullptr;
};

}  // namespace shoal::worker
