// worker/source_limiter.cpp — see source_limiter.hpp.
#include "worker/source_limiter.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

namespace shoal::worker {
namespace {

constexpr uint64_t kOne = 1024;  // one token in fixed point

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

SourceLimiter::SourceLimiter(uint32_t rate, uint32_t burst, uint32_t slots)
    : rate_(rate), burst_(uint64_t(burst ? burst : 1) * kOne) {
  uint32_t n = 1;
  while (n < slots) n <<= 1;
  table_.assign(rate ? n : 0, Bucket{0, 0, 0});
  // Seeded only when it limits: RAND_bytes' first call loads OpenSSL's configuration, ~3 ms of
  // a swarm worker's start (recovery time, issue 12) for a limiter that is off.
  if (rate && RAND_bytes(reinterpret_cast<unsigned char*>(&seed_), sizeof seed_) != 1) seed_ = 0x9e3779b97f4a7c15ull;
}

bool SourceLimiter::allow(uint8_t family, const uint8_t* addr, uint64_t now_ms) {
  if (rate_ == 0) return true;
  uint64_t key = source_key(family, addr);  // never 0: 0 marks an empty slot
  Bucket& b = table_[mix(key ^ seed_) & (table_.size() - 1)];
  uint32_t now = uint32_t(now_ms);
  if (b.key != key) {  // a new source (or another one's slot): a full bucket
    b = Bucket{key, uint32_t(burst_), now};
  } else {
    uint64_t refill = uint64_t(uint32_t(now - b.last_ms)) * rate_ * kOne / 1000;
    if (refill > 0) {
      b.tokens = uint32_t(std::min<uint64_t>(burst_, b.tokens + refill));
      b.last_ms = now;
    }
  }
  if (b.tokens < kOne) return false;
  b.tokens -= uint32_t(kOne);
  return true;
}

}  // namespace shoal::worker
