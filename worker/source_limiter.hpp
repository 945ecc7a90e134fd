// worker/source_limiter.hpp — per-source token buckets (issue 12, floods): one address (an IPv4
// address, or an IPv6 /64, which one host usually holds) may make at most `rate` requests a
// second on average, in bursts of at most `burst`, so one source cannot take a socket worker's
// whole time. Used by the UDP front-end for every datagram (udp.per_source_rate) and by the
// HTTP/HTTPS front-end for every new connection (http.per_source_accept_rate). Runs in one
// socket worker (single-threaded); each worker keeps its own table.
//
// The table is fixed-size and direct-mapped: a source's slot is a keyed hash of its address
// (a random key per process, so nobody can aim two addresses at one slot). A source that finds
// its slot taken by another address takes it over with a full bucket: memory stays bounded
// whatever the number of sources, at the price that a flood from very many addresses can reset
// other sources' buckets (it then gets no more than those addresses could send anyway).
// Tokens are kept in fixed point (1/1024 token) and refilled from a millisecond clock. No
// allocation after construction.
#pragma once
#include <cstdint>
#include <vector>

namespace shoal::worker {

// The source of an address for every per-source limit (token buckets here, and the connection
// shares of the HTTP and WebSocket front-ends): an IPv4 address (family 4, 4 bytes of addr), or
// an IPv6 /64 (family 6, the first 8 of 16 bytes; one host or customer usually holds a whole
// /64, RFC 4291 §2.5.4, RFC 6177). Network byte order in. Never 0; an IPv4 key has bit 63 set,
// an IPv6 key (the /64 through splitmix64's finaliser, a bijection) has it clear.
inline uint64_t source_key(uint8_t family, const uint8_t* addr) {
  uint64_t k = 0;
  if (family == 4) {
    for (int i = 0; i < 4; i++) k = k << 8 | addr[i];
    return (uint64_t(1) << 63) | k;
  }
  for (int i = 0; i < 8; i++) k = k << 8 | addr[i];
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ull;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebull;
  k ^= k >> 31;
  return (k & ~(uint64_t(1) << 63)) | 1;
}

class SourceLimiter {
 public:
  // rate: requests per second per source (0: the limiter allows everything); burst: bucket
  // size in requests (>= 1); slots: table size, rounded up to a power of two.
  SourceLimiter(uint32_t rate, uint32_t burst, uint32_t slots = 1u << 16);

  // Takes one token of the source at `addr` (4 bytes for family 4, 16 for family 6, network
  // order) at `now_ms` (a monotonic millisecond clock). False when its bucket is empty: the
  // request is over the limit.
  bool allow(uint8_t family, const uint8_t* addr, uint64_t now_ms);

  bool enabled() const { return rate_ != 0; }

 private:
  struct Bucket {
    uint64_t key;      // the source (IPv4 address or IPv6 /64), 0 = empty slot
    uint32_t tokens;   // fixed point, 1024 = one request
    uint32_t last_ms;  // low 32 bits of the clock at the last refill
  };
  uint64_t rate_, burst_;  // rate in tokens per second; burst in fixed point
  uint64_t seed_ = 0;
  std::vector<Bucket> table_;
};

}  // namespace shoal::worker
