// libFuzzer target: the topology map (issue 11): the file parser (conf/topology_map.cpp) and the
// range tables built from what it accepts (conf/topology_table.cpp). Checks: an error leaves no
// entries; at most max_prefixes entries; every location is valid; the ranges of each family
// start at address 0, ascend strictly, never exceed 2n + 1, name only interned locations; and
// every mapped block's first address resolves to a location at least as specific as its own
// (longest prefix wins) — checked against a linear scan.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "conf/topology_map.hpp"
#include "conf/topology_table.hpp"

namespace {

void check_ranges(const shoal::conf::RangeTables& t, size_t entries, size_t locations) {
  size_t n4 = t.v4_starts.size(), n6 = t.v6_hi.size();
  if (n4 == 0 || n6 == 0 || n4 > 2 * entries + 1 || n6 > 2 * entries + 1) __builtin_trap();
  if (t.v4_starts[0] != 0 || t.v6_hi[0] != 0 || t.v6_lo[0] != 0) __builtin_trap();
  for (size_t i = 1; i < n4; i++)
    if (t.v4_starts[i] <= t.v4_starts[i - 1]) __builtin_trap();
  for (size_t i = 1; i < n6; i++)
    if (t.v6_hi[i] < t.v6_hi[i - 1] || (t.v6_hi[i] == t.v6_hi[i - 1] && t.v6_lo[i] <= t.v6_lo[i - 1])) __builtin_trap();
  for (uint16_t g : t.v4_groups)
    if (g == 0 || g > locations) __builtin_trap();
  for (uint16_t g : t.v6_groups)
    if (g == 0 || g > locations) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  shoal::conf::TopologyMapResult r = shoal::conf::parse_topology_map(text, "fuzz.map", 64);
  if (!r.ok()) {
    if (!r.entries.empty()) __builtin_trap();
    return 0;
  }
  if (r.entries.size() > 64) __builtin_trap();
  for (const auto& e : r.entries)
    if (!shoal::conf::check_location(e.location).empty()) __builtin_trap();
  shoal::conf::LocationRegistry reg(128);
  shoal::conf::RangeTables t;
  if (!shoal::conf::build_topology(r.entries, "default", &reg, &t).empty()) return 0;
  check_ranges(t, r.entries.size(), reg.entries().size());
  for (const auto& e : r.entries) {  // the block's own first address: its group or a longer prefix's
    uint8_t fam = e.block.family == AF_INET ? 4 : 6;
    uint16_t got = t.group_of(fam, e.block.addr);
    int best = -1;
    for (size_t i = 0; i < r.entries.size(); i++) {
      const auto& o = r.entries[i];
      if (shoal::conf::cidr_contains(o.block, e.block.family, e.block.addr) &&
          (best < 0 || o.block.prefix > r.entries[size_t(best)].block.prefix))
        best = int(i);
    }
    if (best < 0 || got != reg.find(r.entries[size_t(best)].location)) __builtin_trap();
  }
  return 0;
}
