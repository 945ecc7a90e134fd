// worker/peer_policy.cpp — see peer_policy.hpp. Runs in the swarm worker, once per announce.
#include "worker/peer_policy.hpp"

#include <numeric>

namespace shoal::worker {

uint16_t RandomPolicy::select(const shm::PeerView& c, const shm::Asker&, uint16_t numwant, uint64_t* rng,
                              uint8_t* out) const {
  if (numwant == 0 || out == nullptr || c.n == 0) return 0;
  uint32_t entry = c.entry_bytes();
  uint32_t avail = c.n - (c.self != shm::PeerView::kNoSelf ? 1 : 0);
  uint16_t got = 0;
  if (avail <= numwant) {
    for (uint32_t v = 0; v < c.n; ++v)
      if (v != c.self) c.emit(v, out + size_t(got++) * entry);
    return got;
  }
  // Random start and a stride coprime with n visit n distinct entries; need numwant (+ self).
  uint64_t start = shm::xorshift_next(rng) % c.n;
  uint64_t stride = 1 + shm::xorshift_next(rng) % (c.n - 1);
  while (std::gcd(stride, uint64_t(c.n)) != 1) stride = stride % (c.n - 1) + 1;
  // In chunks, two passes: the positions first, each record prefetched, then the copies.
  constexpr uint16_t kChunk = 32;
  uint32_t picked[kChunk];
  uint64_t v = start;
  while (got < numwant) {
    uint16_t n = 0;
    for (; n < kChunk && got + n < numwant; v = v + stride >= c.n ? v + stride - c.n : v + stride) {
      if (v == c.self) continue;
      picked[n++] = uint32_t(v);
      __builtin_prefetch(c.record(uint32_t(v)));
    }
    for (uint16_t i = 0; i < n; ++i) c.emit(picked[i], out + size_t(got + i) * entry);
    got = uint16_t(got + n);
  }
  return got;
}

const shm::PeerPolicy& random_policy() {
  static const RandomPolicy policy;
  return policy;
}

}  // namespace shoal::worker

namespace shoal::shm {
const PeerPolicy& default_peer_policy() { return worker::random_policy(); }
}  // namespace shoal::shm
