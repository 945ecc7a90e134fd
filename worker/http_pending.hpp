// worker/http_pending.hpp — the fixed tables the HTTP front-end keeps in a socket worker: open
// connections and requests waiting for a swarm worker's reply. Header-only, pure: no I/O, no
// libevent, no shm; memory is allocated once at construction, never per request.
// TimedPool is a fixed pool of entries with a free list and one FIFO list of "timed" entries.
// Every deadline is now + a constant, so FIFO order is deadline order and expiry looks only at
// the head (O(1) per expired entry). PendingTable adds tokens for ReplyContext::conn: slot index
// in the low 32 bits, the slot's generation in the high 32, so a response for a request that is
// gone (answered "try again", client closed, a duplicate after a swarm-worker restart, or sent by
// a previous process of this slot) never matches the slot's next occupant.
#pragma once
#include <cstdint>
#include <vector>

namespace shoal::worker::http {

inline constexpr uint32_t kNone = UINT32_MAX;

template <class T>
class TimedPool {
 public:
  explicit TimedPool(uint32_t capacity) : nodes_(capacity), items_(capacity) {
    for (uint32_t i = 0; i < capacity; i++) nodes_[i].next = i + 1 < capacity ? i + 1 : kNone;
    free_ = capacity ? 0 : kNone;
  }

  // Takes a free entry and appends it to the timed list with `deadline` (any unit, as long as
  // it is the same for every call). Returns its index, or kNone when all are busy. The entry's
  // value is reset to T{}.
  uint32_t acquire(uint64_t deadline) {
    if (free_ == kNone) return kNone;
    uint32_t i = free_;
    free_ = nodes_[i].next;
    nodes_[i] = Node{};
    nodes_[i].busy = true;
    items_[i] = T{};
    used_++;
    link_tail(i, deadline);
    return i;
  }

  // Returns a busy entry to the free list (unlinking it from the timed list). Idempotent.
  void release(uint32_t i) {
    if (i >= nodes_.size() || !nodes_[i].busy) return;
    unlink(i);
    nodes_[i].busy = false;
    nodes_[i].next = free_;
    free_ = i;
    used_--;
  }

  // Moves a busy entry to the tail of the timed list with a new deadline (which must not be
  // earlier than any deadline already in the list).
  void retime(uint32_t i, uint64_t deadline) {
    if (!busy(i)) return;
    unlink(i);
    link_tail(i, deadline);
  }

  // Takes a busy entry off the timed list: it stays busy but never expires until retime().
  void untime(uint32_t i) {
    if (busy(i)) unlink(i);
  }

  // The oldest timed entry whose deadline <= now, or kNone.
  uint32_t expired(uint64_t now) const {
    return head_ != kNone && nodes_[head_].deadline <= now ? head_ : kNone;
  }

  bool busy(uint32_t i) const { return i < nodes_.size() && nodes_[i].busy; }
  bool timed(uint32_t i) const { return busy(i) && nodes_[i].timed; }
  uint64_t deadline(uint32_t i) const { return nodes_[i].deadline; }
  uint32_t used() const { return used_; }
  uint32_t capacity() const { return uint32_t(nodes_.size()); }
  T& operator[](uint32_t i) { return items_[i]; }
  const T& operator[](uint32_t i) const { return items_[i]; }

 private:
  struct Node {
    uint64_t deadline = 0;
    uint32_t prev = kNone, next = kNone;  // timed list when timed, free list when free
    bool busy = false, timed = false;
  };

  void link_tail(uint32_t i, uint64_t deadline) {
    Node& n = nodes_[i];
    n.deadline = deadline;
    n.timed = true;
    n.next = kNone;
    n.prev = tail_;
    if (tail_ != kNone) nodes_[tail_].next = i; else head_ = i;
    tail_ = i;
  }

  void unlink(uint32_t i) {
    Node& n = nodes_[i];
    if (!n.timed) return;
    if (n.prev != kNone) nodes_[n.prev].next = n.next; else head_ = n.next;
    if (n.next != kNone) nodes_[n.next].prev = n.prev; else tail_ = n.prev;
    n.prev = n.next = kNone;
    n.timed = false;
  }

  std::vector<Node> nodes_;
  std::vector<T> items_;
  uint32_t free_ = kNone, head_ = kNone, tail_ = kNone, used_ = 0;
};

// Requests in flight to swarm workers, addressed by token.
template <class T>
class PendingTable {
 public:
  // first_generation seeds every slot's generation; pass (worker generation << 20) so tokens
  // of a previous process of this slot (still in the response rings) match nothing here unless
  // that process reused one slot over a million times.
  PendingTable(uint32_t capacity, uint32_t first_generation)
      : pool_(capacity), generation_(capacity, first_generation ? first_generation : 1) {}

  // Reserves a slot until `deadline`; returns its token, or 0 when the table is full (0 is never
  // a token: generations skip 0, and 0 is what UDP requests carry). *index gets the slot or kNone.
  uint64_t acquire(uint64_t deadline, uint32_t* index) {
    uint32_t i = pool_.acquire(deadline);
    *index = i;
    return i == kNone ? 0 : make_token(i);
  }

  // The slot a token names, or kNone when that request is gone (released or never issued).
  uint32_t lookup(uint64_t token) const {
    uint32_t i = uint32_t(token);
    if (!pool_.busy(i) || make_token(i) != token) return kNone;
    return i;
  }

  // The token of busy slot i (as acquire returned it).
  uint64_t token(uint32_t i) const { return make_token(i); }

  // Frees a slot; its current token stops matching. Idempotent.
  void release(uint32_t i) {
    if (!pool_.busy(i)) return;
    pool_.release(i);
    if (++generation_[i] == 0) generation_[i] = 1;
  }

  uint32_t expired(uint64_t now) const { return pool_.expired(now); }
  // Takes a slot off the expiry list (its reply is ready); it stays busy until release().
  void untime(uint32_t i) { pool_.untime(i); }
  bool busy(uint32_t i) const { return pool_.busy(i); }
  uint32_t used() const { return pool_.used(); }
  uint32_t capacity() const { return pool_.capacity(); }
  T& operator[](uint32_t i) { return pool_[i]; }

 private:
  uint64_t make_token(uint32_t i) const { return uint64_t(i) | (uint64_t(generation_[i]) << 32); }

  TimedPool<T> pool_;
  std::vector<uint32_t> generation_;
};

}  // namespace shoal::worker::http
