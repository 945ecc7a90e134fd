// libFuzzer target, stateful: a small partition (shm/partition.cpp) driven by a sequence of
// announces, stops, scrapes and expiry steps decoded from the input; after every operation the
// full consistency check (Partition::validate: index <-> records, counts, free lists) must pass,
// and the reply must respect the rules (never the asker, at most numwant peers).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "shm/partition.hpp"
#include "tests/unit/partition_segment.hpp"

using namespace shoal::shm;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const PartitionCapacity cap{16, 64};
  test_support::Seg seg(cap);
  Partition p(seg.base, seg.size);
  p.recover();
  uint8_t out[200 * 18];
  uint32_t now = 1;
  for (size_t i = 0; i + 6 <= size; i += 6) {
    const uint8_t* op = data + i;
    uint8_t hash[20] = {};
    hash[0] = op[1] & 7;  // 8 torrents
    if (op[0] % 8 == 7) {
      p.expire_step(now, 5 + op[2] % 20, 1 + op[3] % 16);
    } else if (op[0] % 8 == 6) {
      p.scrape(hash);
    } else {
      AnnounceInput in{};
      in.info_hash = hash;
      in.family = (op[2] & 1) ? 6 : 4;
      in.addr[0] = 10;
      in.addr[1] = op[3] & 15;  // 16 addresses
      in.port = uint16_t(6881 + (op[4] & 3));
      in.event = uint8_t(op[0] % 4);
      in.seeder = op[5] & 1;
      in.numwant = uint16_t(op[5] >> 1);
      in.now = now;
      AnnounceResult r = p.announce(in, out);
      if (r.peer_count > in.numwant) __builtin_trap();
      uint32_t entry = in.family == 6 ? 18 : 6;
      for (uint16_t k = 0; k < r.peer_count; k++) {
        uint16_t port;
        std::memcpy(&port, out + size_t(k) * entry + entry - 2, 2);
        if (port == in.port && std::memcmp(out + size_t(k) * entry, in.addr, entry - 2) == 0) __builtin_trap();
      }
    }
    now += op[4] >> 5;
    if (!p.validate().empty()) __builtin_trap();
  }
  return 0;
}
