// conf/topology_table.cpp — see topology_table.hpp.
//
// Flattening nested CIDR blocks into disjoint ranges: blocks are either nested or disjoint, so
// sorted by (first address, prefix length) they form a forest that one sweep with a stack of
// open blocks walks. Entering a block starts a range with its group; leaving one resumes the
// group of the block around it (or the default). Adjacent ranges with the same group merge.
#include "conf/topology_table.hpp"

#include <algorithm>

namespace shoal::conf {
namespace {

using U128 = unsigned __int128;

struct Block {
  U128 first, last;  // inclusive; IPv4 in the low 32 bits
  uint8_t prefix;
  uint16_t group;
};

U128 addr_value(const Cidr& c) {
  U128 v = 0;
  size_t n = c.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; i++) v = v << 8 | c.addr[i];
  return v;
}

// Sorted (start, group) ranges of one family; `bits` = 32 or 128.
std::vector<std::pair<U128, uint16_t>> flatten(std::vector<Block> blocks, uint16_t default_group, int bits) {
  std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) {
    return a.first != b.first ? a.first < b.first : a.prefix < b.prefix;
  });
  U128 max = bits == 128 ? ~U128(0) : (U128(1) << bits) - 1;
  std::vector<std::pair<U128, uint16_t>> out{{0, default_group}};
  auto emit = [&](U128 start, uint16_t g) {
    if (out.back().first == start) {  // a more specific block starts here: it wins
      out.back().second = g;
      if (out.size() > 1 && out[out.size() - 2].second == g) out.pop_back();
    } else if (out.back().second != g) {
      out.push_back({start, g});
    }
  };
  std::vector<const Block*> open;
  auto close_one = [&]() {
    U128 end = open.back()->last;
    open.pop_back();
    if (end != max) emit(end + 1, open.empty() ? default_group : open.back()->group);
  };
  for (const Block& b : blocks) {
    while (!open.empty() && open.back()->last < b.first) close_one();
    emit(b.first, b.group);
    open.push_back(&b);
  }
  while (!open.empty()) close_one();
  return out;
}

}  // namespace

uint16_t LocationRegistry::find(const std::string& path) const {
  auto it = groups_.find(path);
  return it == groups_.end() ? 0 : it->second;
}

uint16_t LocationRegistry::intern(const std::string& path) {
  if (uint16_t g = find(path)) return g;
  if (entries_.size() >= capacity_ || entries_.size() >= shm::kMaxGroups) return 0;
  shm::LocationEntry e{};
  size_t depth = 0, pos = 0;
  while (depth < 4) {
    size_t slash = path.find('/', pos);
    std::string prefix = path.substr(0, slash);
    auto [it, fresh] = levels_[depth].emplace(prefix, uint16_t(levels_[depth].size() + 1));
    e.level[depth++] = it->second;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  e.depth = uint8_t(depth);
  size_t n = std::min(path.size(), sizeof e.name - 1);
  path.copy(e.name, n);
  entries_.push_back(e);
  uint16_t g = uint16_t(entries_.size());
  groups_.emplace(path, g);
  return g;
}

std::string build_topology(const std::vector<TopologyEntry>& entries, const std::string& default_location,
                           LocationRegistry* registry, RangeTables* out) {
  auto full = [&] {
    return "more than topology.max_locations (" + std::to_string(registry->capacity()) + ") locations";
  };
  uint16_t def = registry->intern(default_location);
  if (def == 0) return full();
  std::vector<Block> v4, v6;
  for (const TopologyEntry& e : entries) {
    uint16_t g = registry->intern(e.location);
    if (g == 0) return full();
    int bits = e.block.family == AF_INET ? 32 : 128;
    U128 first = addr_value(e.block);
    U128 span = e.block.prefix == 0 ? ~U128(0) : (U128(1) << (bits - e.block.prefix)) - 1;
    if (bits == 32 && e.block.prefix == 0) span = 0xffffffffu;
    (bits == 32 ? v4 : v6).push_back({first, first + span, e.block.prefix, g});
  }
  *out = RangeTables{};
  for (auto& [start, g] : flatten(std::move(v4), def, 32)) {
    out->v4_starts.push_back(uint32_t(start));
    out->v4_groups.push_back(g);
  }
  for (auto& [start, g] : flatten(std::move(v6), def, 128)) {
    out->v6_hi.push_back(uint64_t(start >> 64));
    out->v6_lo.push_back(uint64_t(start));
    out->v6_groups.push_back(g);
  }
  return "";
}

}  // namespace shoal::conf
