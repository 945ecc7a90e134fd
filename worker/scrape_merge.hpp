// worker/scrape_merge.hpp — reassembles a multi-info_hash scrape that the request path split
// into one ring request per hash (each hash may belong to another swarm worker). Fixed table,
// no allocation; an entry whose parts do not all come back within the timeout is reused and
// counted. Duplicate parts (a swarm worker redoing requests after a restart) are ignored.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

#include "shm/messages.hpp"

namespace shoal::worker {

inline constexpr uint32_t kScrapeTableSize = 2048;  // scrapes in flight, every protocol
inline constexpr uint32_t kMaxScrapeHashes = 74;  // BEP 15 limit

// Per-hash counts as BEP 15 scrape reports them.
struct ScrapeCounts {
  uint32_t seeders, completed, leechers;
};

// An aggregate, so calloc's zero bytes are a free entry (C++20 implicit object creation).
struct PendingScrape {
  uint32_t id = 0;       // scrape_id it serves; 0 = free
  uint32_t created_ms = 0;
  uint16_t total = 0;
  uint16_t received = 0;
  uint64_t seen[2] = {0, 0};  // bitmap of parts received
  ScrapeCounts counts[kMaxScrapeHashes];
  uint8_t info_hashes[kMaxScrapeHashes][20];  // as requested, in order
};

static_assert(std::is_aggregate_v<PendingScrape> && std::is_trivially_destructible_v<PendingScrape>);

class ScrapeTable {
 public:
  // `first_id` seeds the ids (random per process), so parts still in the rings
  // from a previous process of this slot never match a new scrape.
  // The table (~4.9 MB) comes from calloc: pages the kernel hands out zeroed, which are free
  // entries as they are (id 0), touched only once used. Constructing 2,048 entries in place
  // took a page fault per 4 KB at every socket worker's start, ~4 ms of CPU measured (perf)
  // during a rolling restart, when the start shares one CPU with the workers serving.
  explicit ScrapeTable(uint32_t first_id = 0)
      : next_id_(first_id), table_(static_cast<PendingScrape*>(std::calloc(kScrapeTableSize, sizeof(PendingScrape)))) {
    if (!table_) throw std::bad_alloc();
  }

  // Reserves an entry for a scrape of `total` (<= kMaxScrapeHashes) hashes at time now_ms and
  // copies the hashes (20 bytes each, contiguous). Returns its scrape_id (never 0), or 0 if the
  // next entry is still busy and younger than timeout_ms (table full). `*expired` is set when a
  // timed-out entry was reused.
  uint32_t start(uint16_t total, const uint8_t* info_hashes, uint32_t now_ms, uint32_t timeout_ms, bool* expired) {
    *expired = false;
    uint32_t id = ++next_id_;
    if (id == 0) id = ++next_id_;
    PendingScrape& e = table_[id % kScrapeTableSize];
    if (e.id != 0) {
      if (now_ms - e.created_ms < timeout_ms) {
        --next_id_;
        return 0;
      }
      *expired = true;
    }
    e.id = id;
    e.created_ms = now_ms;
    e.total = total;
    e.received = 0;
    e.seen[0] = e.seen[1] = 0;
    std::memcpy(e.info_hashes, info_hashes, size_t(total) * 20);
    return id;
  }

  // Records part `index` of scrape `id`. Returns the entry when this part completes it (the
  // caller encodes the reply, then calls finish()); nullptr otherwise (incomplete, stale, dup).
  PendingScrape* add(uint32_t id, uint16_t index, const ScrapeCounts& c) {
    PendingScrape& e = table_[id % kScrapeTableSize];
    if (e.id != id || index >= e.total) return nullptr;
    uint64_t bit = 1ull << (index % 64);
    if (e.seen[index / 64] & bit) return nullptr;
    e.seen[index / 64] |= bit;
    e.counts[index] = c;
    return ++e.received == e.total ? &e : nullptr;
  }

  // Frees the entry of scrape `id` (after its reply was sent, or when it was abandoned).
  void finish(uint32_t id) {
    PendingScrape& e = table_[id % kScrapeTableSize];
    if (e.id == id) e.id = 0;
  }

 private:
  struct Free {
    void operator()(PendingScrape* p) const { std::free(p); }
  };
  uint32_t next_id_ = 0;
  std::unique_ptr<PendingScrape[], Free> table_;  // kScrapeTableSize entries
};

}  // namespace shoal::worker
