// worker/connection_id.hpp — BEP 15 connection ids, derived rather than stored.
// Runs in every socket worker. The keys come from the control segment (shm/conn_id_keys.hpp:
// the daemon's random key, or the cluster key file's keys, published by the supervisor), so
// every socket worker, a restarted one, and with a shared key file every node, makes and accepts
// the same ids (docs/hardening.md A2, A3). Touches no shm itself: the caller passes the keys and
// the time in seconds (since the segment clock base, shm/clock.hpp; or wall-clock Unix seconds
// when nodes share a key file, so that their buckets agree).
//   id     = first 8 bytes (big-endian) of CBC-MAC-AES-128(key, block1 ‖ block2)
//   block1 = canonical client address as 16 bytes (IPv4 as ::ffff:a.b.c.d)
//   block2 = bucket (u32 BE) ‖ family byte (4 or 6) ‖ 11 zero bytes; bucket = now_s / 120
// The input is always exactly two blocks, so plain CBC-MAC is secure here. New ids are made
// with the first key; an id made with any key held is accepted. An id is accepted in its bucket
// and the next one, i.e. for 120 to 240 s after it was made (BEP 15 asks ≥ 2 min). With a skew
// of k seconds the check runs as if now were anywhere in [now − k, now + k]: an id made by a
// node whose clock is up to k seconds ahead or behind is accepted for those 120–240 s as well
// (and one made here lives up to k seconds longer).
#pragma once
#include <cstdint>

struct evp_cipher_ctx_st;

namespace shoal::worker {

inline constexpr uint32_t kConnectionIdBucketSeconds = 120;
inline constexpr uint32_t kMaxConnectionIdKeys = 2;      // the current key and the previous one
inline constexpr uint32_t kMaxConnectionIdSkew = 60;     // seconds; keeps the window ≤ 3 buckets

// Canonicalises a client address: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes AF_INET
// with its 4 bytes (docs/hardening.md A20). addr_in: 4 bytes (AF_INET) or 16 bytes (AF_INET6), network
// order. Writes 4 or 16 bytes to addr_out16 (room for 16 required) and returns the canonical
// family (AF_INET or AF_INET6); returns AF_UNSPEC and writes nothing for any other family.
int canonical_address(int family, const uint8_t* addr_in, uint8_t* addr_out16);

// Makes and checks connection ids for one to kMaxConnectionIdKeys keys. Holds one OpenSSL
// AES-128-ECB context per key with the key schedule set once; not thread-safe (one object per
// socket worker process/thread).
class ConnectionIds {
 public:
  // One 16-byte key, no skew. Throws std::runtime_error if OpenSSL cannot set up the cipher.
  explicit ConnectionIds(const uint8_t key[16]);
  // `count` (1..kMaxConnectionIdKeys) keys of 16 bytes, keys[0] the one new ids are made with;
  // skew_s: seconds, at most kMaxConnectionIdSkew (larger is clamped). Throws like the above,
  // and std::invalid_argument for a count out of range.
  ConnectionIds(const uint8_t (*keys)[16], uint32_t count, uint32_t skew_s);
  ~ConnectionIds();
  ConnectionIds(const ConnectionIds&) = delete;
  ConnectionIds& operator=(const ConnectionIds&) = delete;

  // Replaces the keys (key rotation). The new contexts are set up first: on failure (count out
  // of range, OpenSSL error) returns false and the object keeps its previous keys.
  bool set_keys(const uint8_t (*keys)[16], uint32_t count);
  uint32_t key_count() const { return count_; }

  // BEP 15 connect: the id to return to a client at `addr` (4 bytes for AF_INET, 16 for AF_INET6,
  // network order; IPv4-mapped IPv6 gives the same id as the IPv4 address) at time now_s.
  // Returns 0 for an unknown family or if OpenSSL fails (valid() never accepts either case).
  uint64_t make(int family, const uint8_t* addr, uint32_t now_s);

  // BEP 15 announce/scrape: true when `id` was made for this address with one of the keys in a
  // bucket from bucket(now_s − skew) − 1 to bucket(now_s + skew) (the current and the previous
  // bucket when skew is 0). Each comparison is constant-time (CRYPTO_memcmp); the newest bucket
  // of the current key is tried first, so a fresh id costs one address block and one bucket
  // block; an id that matches nothing costs keys × (1 + buckets) AES blocks (at most 8).
  bool valid(uint64_t id, int family, const uint8_t* addr, uint32_t now_s);

 private:
  // E_k(block1) of the canonical address for key k into c1[16], and the family byte.
  bool address_block(uint32_t k, int family, const uint8_t* addr16, uint8_t c1[16], uint8_t* family_byte);
  // The 8-byte tag of (c1 = E_k(block1), bucket, family byte) for key k into tag[8].
  bool tag(uint32_t k, const uint8_t c1[16], uint8_t family_byte, uint32_t bucket, uint8_t tag[8]);

  evp_cipher_ctx_st* ctx_[kMaxConnectionIdKeys] = {};
  uint32_t count_ = 0;
  uint32_t skew_ = 0;
};

}  // namespace shoal::worker
