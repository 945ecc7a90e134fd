// shm/partition_journal.hpp — the undo journal that makes every partition mutation all-or-nothing.
// Runs in the swarm worker that owns the partition (transactions) and in its replacement
// (undo_journal during Partition::recover). Touches only the partition segment it is given.
//
// Ordering: for each write, the old bytes are appended as a JournalEntry, the new count is
// release-stored, a compiler barrier (atomic_signal_fence) keeps the data write after that store,
// then the data is written. Commit release-stores count = 0. A process killed at any instruction
// therefore leaves either count == 0 (nothing in flight) or a journal that restores, in reverse
// order, every byte the transaction changed. Undo clears count only after all entries are
// restored, so a replacement killed during recovery simply undoes again.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "shm/partition_layout.hpp"

namespace shoal::shm {

// Restores every entry of an interrupted transaction, newest first, then clears the journal.
// Entries outside [sizeof(SegmentHeader), segment_bytes) or overlapping the journal itself are
// skipped and counted in *bad (a count above kJournalCapacity restores nothing and counts 1).
// Returns the number of entries restored.
inline uint32_t undo_journal(PartitionLayout* l, uint32_t* bad) {
  auto* base = reinterpret_cast<uint8_t*>(l);
  std::atomic_ref<uint32_t> count(l->journal.count);
  uint32_t n = count.load(std::memory_order_acquire);
  *bad = n > kJournalCapacity ? 1 : 0;
  if (n > kJournalCapacity) n = 0;  // garbage count: restore nothing; validation decides
  const uint64_t journal_begin = offsetof(PartitionLayout, journal);
  const uint64_t journal_end = sizeof(PartitionLayout);
  uint32_t restored = 0;
  for (uint32_t i = n; i-- > 0;) {
    const JournalEntry& e = l->entries[i];
    uint64_t end = uint64_t(e.offset) + e.len;
    bool overlaps_journal = end > journal_begin && e.offset < journal_end;
    if (e.len == 0 || e.len > kJournalMaxBytes || e.offset < sizeof(SegmentHeader) ||
        end > l->header.segment_bytes || overlaps_journal) {
      ++*bad;
      continue;
    }
    std::memcpy(base + e.offset, e.old, e.len);
    ++restored;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  count.store(0, std::memory_order_release);
  return restored;
}

// One transaction (or a run of consecutive ones) over a partition. Process-local object; it
// holds no resource, so an exception thrown out of the crash hook leaves shm exactly as a
// killed process would. Not reentrant; one per operation.
class UndoTx {
 public:
  using Hook = void (*)(uint32_t write_number);

  UndoTx(PartitionLayout* l, Hook hook)
      : l_(l), base_(reinterpret_cast<uint8_t*>(l)), hook_(hook), count_(l->journal.count) {}

  // Writes `len` bytes from `src` (process memory, or shm not overlapping dst) to `dst` in the
  // segment, journaling the old bytes first (in pieces of ≤ 16 bytes).
  void write(void* dst, const void* src, size_t len) {
    auto* d = static_cast<uint8_t*>(dst);
    auto* s = static_cast<const uint8_t*>(src);
    while (len > 0) {
      size_t n = len < kJournalMaxBytes ? len : kJournalMaxBytes;
      save(d, n);
      std::memcpy(d, s, n);
      d += n;
      s += n;
      len -= n;
    }
  }

  // Typed single-field write.
  template <class T>
  void set(T& field, T value) {
    write(&field, &value, sizeof(T));
  }

  // Journals `len` (≤ 16) bytes at `at` without changing them, so undo restores them after
  // later unjournaled writes (e.g. the link word of a block popped from a free list).
  void save(void* at, size_t len) {
    if (hook_) hook_(writes_ + 1);
    ++writes_;
    if (count_ >= kJournalCapacity) overflow();
    JournalEntry& e = l_->entries[count_];
    e.offset = uint32_t(static_cast<uint8_t*>(at) - base_);
    e.len = uint16_t(len);
    std::memcpy(e.old, at, len);
    ++count_;
    std::atomic_ref<uint32_t>(l_->journal.count).store(count_, std::memory_order_release);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (count_ > l_->journal.high_water) l_->journal.high_water = count_;
  }

  // Makes everything written so far permanent. The transaction may continue afterwards.
  void commit() {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    std::atomic_ref<uint32_t>(l_->journal.count).store(0, std::memory_order_release);
    count_ = 0;
  }

  // Undoes everything written since the last commit, in place (e.g. the tracker is full).
  void abort() {
    uint32_t bad = 0;
    undo_journal(l_, &bad);
    count_ = 0;
  }

  uint32_t writes() const { return writes_; }
  uint32_t pending() const { return count_; }  // entries since the last commit

 private:
  // A transaction larger than the journal is a bug (transactions are bounded by design).
  // Crash: the replacement undoes the partial transaction.
  [[noreturn]] static void overflow() {
    std::fputs("shoal: partition undo journal overflow\n", stderr);
    std::abort();
  }

  PartitionLayout* l_;
  uint8_t* base_;
  Hook hook_;
  uint32_t count_;
  uint32_t writes_ = 0;
};

}  // namespace shoal::shm
