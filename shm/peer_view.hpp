// shm/peer_view.hpp — the seam between peer storage (shm/partition.cpp) and peer selection
// (worker/peer_policy.cpp): a read-only view of the candidates of one announce reply, and the
// interface a selection policy implements. The storage code builds the view and calls the
// policy; a policy never sees the partition's tables, so it can be added and unit-tested on
// constructed swarms without touching the storage code.
#pragma once
#include <cstdint>
#include <cstring>

namespace shoal::shm {

// Candidates of one reply, of the asker's address family: list A (the leechers) then list B
// (the seeders; empty for a seeder asker, who is never sent seeders), as one virtual array of
// n entries. Each record is `stride` bytes: the address (4 bytes for family 4, 16 for 6, network
// order), then the port (network order, 2 bytes), the topology group (uint16, 0 = unknown) and
// a state word whose low 4 bits are the flags: the PeerTail of shm/partition_layout.hpp.
//   self  the asker's own index (it is never chosen), or kNoSelf
// Peer flag a policy may set through PeerPolicy::elect (policy `tiered`): the peer is one of its
// rack's representatives in this torrent. Kept in the partition (PeerTail::state) so it survives
// a kill -9 of the swarm worker; only leechers carry it (completion clears it).
inline constexpr uint8_t kPeerRepresentative = 4;

struct PeerView {
  static constexpr uint32_t kNoSelf = 0xffffffffu;
  const uint8_t* list_a = nullptr;  // na records
  const uint8_t* list_b = nullptr;  // n - na records
  uint32_t na = 0, n = 0;
  uint32_t self = kNoSelf;
  uint8_t family = 4;
  uint32_t stride = 12;

  uint32_t addr_bytes() const { return family == 6 ? 16u : 4u; }
  // Compact entry bytes of one chosen peer in a reply: address + port (6 or 18).
  uint32_t entry_bytes() const { return addr_bytes() + 2; }
  const uint8_t* record(uint32_t v) const {
    return v < na ? list_a + size_t(v) * stride : list_b + size_t(v - na) * stride;
  }
  bool is_seeder(uint32_t v) const { return v >= na; }
  // The record's flags byte (kPeerRepresentative and the storage's own bits).
  uint8_t flags(uint32_t v) const { return record(v)[addr_bytes() + 4] & 0xf; }  // state's low byte (little-endian)
  bool is_representative(uint32_t v) const { return flags(v) & kPeerRepresentative; }
  uint16_t topology_group(uint32_t v) const {
    uint16_t g;
    std::memcpy(&g, record(v) + addr_bytes() + 2, 2);
    return g;
  }
  // Writes candidate v as a compact entry (BEP 23 / BEP 15: address then port, network order).
  void emit(uint32_t v, uint8_t* out) const {
    const uint8_t* rec = record(v);
    std::memcpy(out, rec, addr_bytes() + 2);  // the port follows the address in the record
  }
};

// Who asks: its family (that of the view), whether it is a seeder, its topology group, and
// whether it is (after elect) a representative of its rack.
struct Asker {
  uint8_t family = 4;
  bool seeder = false;
  uint16_t topology_group = 0;
  bool representative = false;
};

// xorshift64 step: the selection's randomness. The state lives in the partition header and is
// not journaled (it is not data: any value is valid).
inline uint64_t xorshift_next(uint64_t* state) {
  uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

// A peer-selection policy (issue: location-aware swarms). select() writes at most `numwant`
// distinct candidates of `view`, never view.self, as compact entries of view.entry_bytes() each
// into `out`, and returns how many it wrote. It must not depend on anything but its arguments
// (the view is valid during the call only). `rng`: xorshift state to draw from.
class PeerPolicy {
 public:
  virtual ~PeerPolicy() = default;
  virtual const char* name() const = 0;
  virtual uint16_t select(const PeerView& view, const Asker& asker, uint16_t numwant, uint64_t* rng,
                          uint8_t* out) const = 0;
  // Called before select() for a leecher asker (the view's `self`): whether the asker shall carry
  // kPeerRepresentative from now on (asker.representative: whether it does now). The storage
  // stores the answer in the asker's record. Policies without representatives keep none.
  virtual bool elect(const PeerView& view, const Asker& asker) const {
    (void)view;
    (void)asker;
    return false;
  }
  // Whether elect() can ever answer true (the storage skips it, and the record read, otherwise).
  virtual bool elects() const { return false; }
};

// The default policy, `random` (defined with the policies, worker/peer_policy.cpp).
const PeerPolicy& default_peer_policy();

}  // namespace shoal::shm
