// shm/relay_ring.hpp — socket-to-socket rings of variable-length records (issue 10): a socket
// worker forwards a WebTorrent offer to the socket worker holding the target peer's connection,
// and an answer back to the one holding the offering peer's. Single producer, single consumer,
// one ring per (source slot, source ring set, target slot, target ring set), so a rolling
// restart (old and new process of a slot, each on its own ring set) never puts two producers or
// two consumers on one ring.
//
// Segment "/<shm_name>-relay" (created at every start: what is in flight is not worth keeping):
//   SegmentHeader (64 B), padded to 4 KiB; then the rings, each RingHeader + `bytes` of data.
// Ring of (s, ks, d, kd) is number ((s * 2 + ks) * workers + d) * 2 + kd. Pages of rings never
// used (a worker to itself, or sets not in use) are never touched, so cost no memory.
//
// A ring's head and tail count bytes (monotonic u64; offset = count % bytes). A record is
// RelayRecord (its header) followed by `length` payload bytes, padded to 16. A record never
// wraps: when it does not fit before the end, the producer writes a header with kind
// kRelaySkip there and starts the record at offset 0. Publication and crash rules as
// shm/spsc_ring.hpp (write, then release head; read, then release tail).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/layout.hpp"
#include "shm/spsc_ring.hpp"  // RingHeader

namespace shoal::shm {

inline constexpr uint16_t kRelaySkip = 0xffff;  // padding to the end of the data area
inline constexpr uint16_t kRelayOffer = 1;      // a WebTorrent offer for one of the target's connections
inline constexpr uint16_t kRelayAnswer = 2;     // an answer for one of the target's connections

// Header of one relay record; the payload's meaning depends on kind (worker/ws_relay.hpp).
//   length             payload bytes after this header
//   target_slot        records to the sync worker (cluster, issue 14): the socket slot on the
//                      node named in the payload that holds the target connection; else 0
//   target_generation  generation of the target slot's process the record is for (a record
//                      for an older process is dropped); target_token the connection's token
struct RelayRecord {
  uint32_t length;
  uint16_t kind;
  uint16_t target_slot;
  uint32_t target_generation;
  uint32_t target_token;
};
static_assert(sizeof(RelayRecord) == 16 && kShmSafe<RelayRecord>);

// Data bytes of each relay ring for a configured size (ws.relay_ring_bytes): rounded up to a
// power of two, at most 1 GiB.
inline uint32_t relay_ring_bytes(uint32_t configured) {
  uint32_t b = 1;
  while (b < configured && b < (1u << 30)) b <<= 1;
  return b;
}

// Endpoints of the rings: socket slots 0..workers-1 and, on a cluster node (sync = 1), the sync
// worker as endpoint number `workers` (ring set 0 only: one sync process at a time), which
// carries offers and answers for connections on other nodes (docs/cluster.md).
struct RelayGeometry {
  uint32_t workers;  // socket workers
  uint32_t bytes;    // data bytes per ring, a power of two ≥ 64 KiB
  uint32_t sync = 0; // 1: the sync worker is an endpoint (cluster.enabled)
  static constexpr size_t kAlign = 4096;
  static constexpr uint32_t kSets = 2;
  uint32_t endpoints() const { return workers + sync; }
  size_t ring_stride() const { return (sizeof(RingHeader) + size_t(bytes) + kAlign - 1) & ~(kAlign - 1); }
  size_t ring_offset(uint32_t s, uint32_t ks, uint32_t d, uint32_t kd) const {
    return kAlign + ((size_t(s * kSets + ks) * endpoints() + d) * kSets + kd) * ring_stride();
  }
  size_t segment_bytes() const { return kAlign + size_t(endpoints()) * kSets * endpoints() * kSets * ring_stride(); }
};

// View of one relay ring. Producer: reserve()/commit() per record, publish() per batch;
// consumer: next()/consume() per record, release() per batch.
class RelayRing {
 public:
  RelayRing() = default;
  explicit RelayRing(void* at) : h_(static_cast<RingHeader*>(at)), data_(reinterpret_cast<uint8_t*>(h_ + 1)) {}
  // Initialises a zeroed ring (supervisor, before fork). bytes: a power of two.
  static RelayRing init(void* at, uint32_t bytes) {
    auto* h = static_cast<RingHeader*>(at);
    h->head = h->tail = 0;
    h->capacity = bytes;
    h->slot_size = 1;
    return RelayRing(at);
  }
  bool valid() const { return h_ != nullptr; }

  // Producer: room for a record of `payload` bytes, or nullptr when the ring is full (the
  // caller drops the record and counts it). Fill the header and payload, then commit().
  uint8_t* reserve(uint32_t payload) {
    uint64_t size = padded(sizeof(RelayRecord) + payload);
    uint64_t cap = h_->capacity, head = head_local();
    uint64_t tail = ref(h_->tail).load(std::memory_order_acquire);
    uint64_t off = head & (cap - 1), skip = off + size > cap ? cap - off : 0;
    if (size > cap / 2 || head + skip + size - tail > cap) return nullptr;
    if (skip) {
      RelayRecord pad{uint32_t(skip - sizeof(RelayRecord)), kRelaySkip, 0, 0, 0};
      std::memcpy(data_ + off, &pad, sizeof pad);  // skip ≥ 16: records are multiples of 16
      pending_ += skip;
    }
    reserved_ = size;
    return data_ + ((head + skip) & (cap - 1));
  }
  // Producer: the reserved record is complete (still invisible until publish()).
  void commit() {
    pending_ += reserved_;
    reserved_ = 0;
  }
  // Producer: makes committed records visible (release). Returns whether there were any.
  bool publish() {
    if (!pending_) return false;
    ref(h_->head).store(ref(h_->head).load(std::memory_order_relaxed) + pending_, std::memory_order_release);
    pending_ = 0;
    return true;
  }

  // Consumer: the next record (header, payload after it), or nullptr when none is published.
  const RelayRecord* next() {
    for (;;) {
      uint64_t head = ref(h_->head).load(std::memory_order_acquire);
      uint64_t at = ref(h_->tail).load(std::memory_order_relaxed) + consumed_;
      if (at >= head) return nullptr;
      auto* r = reinterpret_cast<const RelayRecord*>(data_ + (at & (h_->capacity - 1)));
      if (r->kind != kRelaySkip) return r;
      consumed_ += sizeof(RelayRecord) + r->length;
    }
  }
  // Consumer: done with the record next() returned.
  void consume(const RelayRecord* r) { consumed_ += padded(sizeof(RelayRecord) + r->length); }
  // Consumer: returns consumed space to the producer (release).
  void release() {
    if (!consumed_) return;
    ref(h_->tail).store(ref(h_->tail).load(std::memory_order_relaxed) + consumed_, std::memory_order_release);
    consumed_ = 0;
  }
  // A process that starts on a ring simply continues: a producer from the published head
  // (what a killed predecessor reserved but never published is overwritten), a consumer from
  // the tail, dropping records whose target_generation is not its own.

 private:
  // Records are multiples of 16 bytes, so a gap at the end of the data area always holds a
  // skip header.
  static constexpr uint64_t padded(uint64_t n) { return (n + 15) & ~uint64_t(15); }
  uint64_t head_local() const { return ref(h_->head).load(std::memory_order_relaxed) + pending_; }
  static std::atomic_ref<uint64_t> ref(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }
  RingHeader* h_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t pending_ = 0;   // producer: committed bytes not yet published
  uint64_t reserved_ = 0;  // producer: size of the record being written
  uint64_t consumed_ = 0;  // consumer: bytes read but not yet released
};

inline RelayRing relay_ring(void* base, const RelayGeometry& g, uint32_t s, uint32_t ks, uint32_t d, uint32_t kd) {
  return RelayRing(static_cast<char*>(base) + g.ring_offset(s, ks, d, kd));
}

}  // namespace shoal::shm
