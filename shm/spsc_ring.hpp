// shm/spsc_ring.hpp — fixed-slot single-producer single-consumer ring in shared memory.
//
// Layout (at any 64-byte aligned offset of a segment):
//   RingHeader (192 B): head (producer-owned cache line), tail (consumer-owned cache line),
//                       capacity and slot size (written once at creation)
//   slots[capacity]     slot_size bytes each
// head and tail are monotonic u64 counters; slot of counter c is c % capacity.
//
// Ordering: the producer writes slots, then release-stores head (once per batch); the consumer
// acquire-loads head, reads slots, then release-stores tail. A producer killed mid-write leaves
// an unpublished slot that nobody sees; a consumer killed before retiring an entry leaves tail
// behind, so its replacement sees the entry again (consumers must be idempotent).
// No locks, no allocation; safe across processes and crashes.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "shm/layout.hpp"

namespace shoal::shm {

struct RingHeader {
  alignas(64) uint64_t head;  // next counter the producer will publish; producer writes
  alignas(64) uint64_t tail;  // next counter the consumer will read; consumer writes
  alignas(64) uint32_t capacity;  // slots, power of two
  uint32_t slot_size;             // bytes, multiple of 8
  uint64_t reserved[7];
};
static_assert(sizeof(RingHeader) == 192);
static_assert(offsetof(RingHeader, tail) == 64 && offsetof(RingHeader, capacity) == 128);
static_assert(kShmSafe<RingHeader>);

// Bytes needed for a ring of `capacity` slots of `slot_size` bytes.
inline constexpr size_t ring_bytes(uint32_t capacity, uint32_t slot_size) {
  return sizeof(RingHeader) + size_t(capacity) * slot_size;
}

// Typed view over a ring in shm. T must be kShmSafe. Cheap to copy; holds only the base pointer.
// Producer side: reserve()/publish(); consumer side: peek()/retire(). One process per side.
template <class T>
class SpscRing {
 public:
  static_assert(kShmSafe<T>);
  SpscRing() = default;
  explicit SpscRing(void* at) : h_(static_cast<RingHeader*>(at)), slots_(reinterpret_cast<T*>(h_ + 1)) {}

  // Initialises a zeroed ring at `at` (supervisor, before fork). capacity must be a power of two.
  static SpscRing init(void* at, uint32_t capacity) {
    auto* h = static_cast<RingHeader*>(at);
    h->head = h->tail = 0;
    h->capacity = capacity;
    h->slot_size = sizeof(T);
    return SpscRing(at);
  }

  bool valid() const { return h_ != nullptr; }
  uint32_t capacity() const { return h_->capacity; }

  // Producer: free slots right now (acquire-loads tail).
  uint64_t free_slots() const { return h_->capacity - (ref(h_->head).load(std::memory_order_relaxed) -
                                                       ref(h_->tail).load(std::memory_order_acquire)); }
  // Producer: slot for the entry `offset` places after the last published one (not yet visible).
  // Caller must have checked free_slots() > offset.
  T* slot_for_write(uint64_t offset) {
    uint64_t c = ref(h_->head).load(std::memory_order_relaxed) + offset;
    return &slots_[c & (h_->capacity - 1)];
  }
  // Producer: makes the next `n` written slots visible to the consumer (release).
  void publish(uint64_t n) {
    uint64_t c = ref(h_->head).load(std::memory_order_relaxed);
    ref(h_->head).store(c + n, std::memory_order_release);
  }

  // Consumer: entries available (acquire-loads head).
  uint64_t available() const { return ref(h_->head).load(std::memory_order_acquire) -
                                      ref(h_->tail).load(std::memory_order_relaxed); }
  // Consumer: the entry `offset` places after tail. Caller must have checked available() > offset.
  const T* peek(uint64_t offset) const {
    uint64_t c = ref(h_->tail).load(std::memory_order_relaxed) + offset;
    return &slots_[c & (h_->capacity - 1)];
  }
  // Consumer: the counter of the entry at peek(0) (entries ever retired): a request's stable
  // position in its ring.
  uint64_t read_position() const { return ref(h_->tail).load(std::memory_order_relaxed); }
  // Consumer: retires `n` entries (release), returning their slots to the producer.
  void retire(uint64_t n) {
    uint64_t c = ref(h_->tail).load(std::memory_order_relaxed);
    ref(h_->tail).store(c + n, std::memory_order_release);
  }

  // Producer: the counter after every entry published so far (entries ever published).
  uint64_t write_position() const { return ref(h_->head).load(std::memory_order_relaxed); }
  // Producer or a third process: entries ever retired by the consumer (acquire: what it did with
  // them is visible).
  uint64_t retired() const { return ref(h_->tail).load(std::memory_order_acquire); }

  // Either side or a third process (monitoring): entries in flight, always within 0..capacity.
  // The two counters cannot be read at one instant. tail is loaded first: tail ≤ head at every
  // instant and head only grows, so the difference never wraps below zero (loading head first,
  // or both in one unsequenced expression, let a racing consumer retire past the head already
  // read: ~2^64). A stale tail can still overshoot while both sides run, hence the clamp.
  uint64_t depth() const {
    uint64_t tail = ref(h_->tail).load(std::memory_order_acquire);
    uint64_t head = ref(h_->head).load(std::memory_order_acquire);
    uint64_t d = head - tail;
    return d < h_->capacity ? d : h_->capacity;
  }

 private:
  static std::atomic_ref<uint64_t> ref(uint64_t& v) { return std::atomic_ref<uint64_t>(v); }
  RingHeader* h_ = nullptr;
  T* slots_ = nullptr;
};

}  // namespace shoal::shm
