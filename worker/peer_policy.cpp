// worker/peer_policy.cpp — see peer_policy.hpp. Runs in the swarm worker, once per announce.
#include "worker/peer_policy.hpp"

#include <algorithm>
#include <cstring>

namespace shoal::worker {

uint16_t RandomPolicy::select(const shm::PeerView& c, const shm::Asker&, uint16_t numwant, uint64_t* rng,
                              uint8_t* out) const {
  if (numwant == 0 || out == nullptr || c.n == 0) return 0;
  uint32_t entry = c.entry_bytes();
  uint32_t avail = c.n - (c.self != shm::PeerView::kNoSelf ? 1 : 0);
  // numwant consecutive candidates (but the asker) from a random start, wrapping at the end;
  // all of them, from the first, when there are no more than numwant. The start is drawn among
  // the candidates but the asker, so every one of them is in a reply with probability
  // numwant / avail, the same as with independent draws (BEP 3 and BEP 15 leave the choice to
  // the tracker; what matters is that nobody is left out).
  uint32_t v = 0;
  if (avail > numwant) v = uint32_t(shm::xorshift_next(rng) % avail);
  else numwant = uint16_t(avail);
  if (v >= c.self) ++v;  // kNoSelf: never
  uint16_t got = 0;
  while (got < numwant) {
    // The run from v to the end of its list (A or B), cut at the asker and at numwant: records
    // in address order, all their cache lines asked for before the first is read.
    uint32_t end = v < c.na ? c.na : c.n;
    if (c.self >= v && c.self < end) end = c.self;
    end = std::min<uint32_t>(end, v + (numwant - got));
    const uint8_t* rec = c.record(v);
    const uint8_t* rec_end = rec + size_t(end - v) * c.stride;
    for (const uint8_t* p = rec; p < rec_end; p += 64) __builtin_prefetch(p);
    uint8_t* to = out + size_t(got) * entry;
    got = uint16_t(got + (end - v));
    if (entry == 6)  // constant sizes: the copies are inlined
      for (; rec < rec_end; rec += c.stride, to += 6) std::memcpy(to, rec, 6);
    else
      for (; rec < rec_end; rec += c.stride, to += 18) std::memcpy(to, rec, 18);
    v = end;
    if (v == c.self) ++v;
    if (v >= c.n) v = 0;
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
