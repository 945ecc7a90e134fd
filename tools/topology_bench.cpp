// topology_bench: how fast the topology map (issue 11) resolves an address, as `make bench`
// reports it. Builds a random map of --prefixes mappings (IPv4 /8 to /30 and IPv6 /20 to
// /64, nested: zones with racks inside, over --locations locations) with the same code as the
// supervisor (conf/topology_table), then times --lookups lookups of random addresses (half
// inside mapped blocks) through shm::range_lookup_v4/_v6, the functions socket workers call.
// The same run times a linear scan over the same prefixes (the naive structure) on fewer
// lookups, as the peer the ratio is measured against, and checks both agree.
//
//   topology_bench [--prefixes 100000] [--locations 4096] [--lookups 20000000] [--seed 1] [--json]
//
// Prints ns per lookup for each family and structure; exit 2 for bad arguments, 1 if the two
// structures disagree on an address.
#include <arpa/inet.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "conf/topology_table.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using shoal::conf::TopologyEntry;

struct Args {
  size_t prefixes = 100000, locations = 4096, lookups = 20000000;
  uint32_t seed = 1;
  bool json = false;
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    if (k == "--json") {
      a->json = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    unsigned long long v = strtoull(argv[++i], nullptr, 10);
    if (k == "--prefixes") a->prefixes = v;
    else if (k == "--locations") a->locations = v;
    else if (k == "--lookups") a->lookups = v;
    else if (k == "--seed") a->seed = uint32_t(v);
    else return false;
  }
  return a->prefixes > 0 && a->locations > 1 && a->locations <= 65000 && a->lookups > 0;
}

// A random map: one block in ten is a zone (short prefix), the rest racks that usually sit
// inside an earlier zone; 80 % IPv4.
std::vector<TopologyEntry> random_map(const Args& a, std::mt19937_64& rng) {
  std::vector<TopologyEntry> out;
  std::vector<TopologyEntry> zones4, zones6;
  std::set<std::string> seen;
  for (size_t i = 0; i < a.prefixes; i++) {
    TopologyEntry e;
    bool v4 = rng() % 10 < 8, zone = rng() % 10 == 0;
    std::vector<TopologyEntry>& zones = v4 ? zones4 : zones6;
    e.block.family = v4 ? AF_INET : AF_INET6;
    int bits = v4 ? 32 : 128;
    if (!zone && !zones.empty()) {  // a rack inside a zone
      const TopologyEntry& z = zones[rng() % zones.size()];
      e.block = z.block;
      e.block.prefix = uint8_t(std::min(bits - 2, z.block.prefix + 4 + int(rng() % (v4 ? 12 : 24))));
      for (int b = z.block.prefix; b < e.block.prefix; b++)
        if (rng() & 1) e.block.addr[b / 8] |= uint8_t(0x80 >> (b % 8));
    } else {
      e.block.prefix = uint8_t(v4 ? 8 + rng() % 9 : 20 + rng() % 17);
      for (int b = 0; b < e.block.prefix; b++)
        if (rng() & 1) e.block.addr[b / 8] |= uint8_t(0x80 >> (b % 8));
      if (v4) e.block.addr[0] = uint8_t(1 + rng() % 223);
      else e.block.addr[0] = 0x20, e.block.addr[1] = 0x01;
    }
    e.location = "r" + std::to_string(rng() % (a.locations - 1));
    std::string key(reinterpret_cast<const char*>(e.block.addr), 16);
    key += char(e.block.family) + std::string(1, char(e.block.prefix));
    if (!seen.insert(key).second) {  // a map names a block once (the parser refuses repeats)
      --i;
      continue;
    }
    if (zone) zones.push_back(e);
    out.push_back(e);
  }
  return out;
}

// Addresses to look up: half inside a mapped block, half anywhere.
std::vector<std::array<uint8_t, 16>> addresses(const std::vector<TopologyEntry>& map, int family, size_t n,
                                               std::mt19937_64& rng) {
  std::vector<const TopologyEntry*> of;
  for (const TopologyEntry& e : map)
    if (e.block.family == family) of.push_back(&e);
  std::vector<std::array<uint8_t, 16>> out(n);
  for (auto& a : out) {
    for (auto& b : a) b = uint8_t(rng());
    if (rng() & 1 && !of.empty()) {
      const shoal::conf::Cidr& c = of[rng() % of.size()]->block;
      for (int b = 0; b < c.prefix; b++) {
        uint8_t bit = uint8_t(0x80 >> (b % 8));
        a[b / 8] = uint8_t((a[b / 8] & ~bit) | (c.addr[b / 8] & bit));
      }
    }
  }
  return out;
}

// The linear scan: the longest of the family's blocks that contains the address.
uint16_t linear(const std::vector<TopologyEntry>& map, const std::vector<uint16_t>& groups, uint16_t def, int family,
                const uint8_t* addr) {
  int best = -1;
  for (size_t i = 0; i < map.size(); i++)
    if (map[i].block.family == family && shoal::conf::cidr_contains(map[i].block, family, addr) &&
        (best < 0 || map[i].block.prefix > map[size_t(best)].block.prefix))
      best = int(i);
  return best < 0 ? def : groups[size_t(best)];
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    fprintf(stderr, "usage: topology_bench [--prefixes N] [--locations N] [--lookups N] [--seed N] [--json]\n");
    return 2;
  }
  std::mt19937_64 rng(a.seed);
  std::vector<TopologyEntry> map = random_map(a, rng);
  shoal::conf::LocationRegistry reg(uint32_t(a.locations));
  shoal::conf::RangeTables t;
  auto b0 = Clock::now();
  std::string why = shoal::conf::build_topology(map, "unknown", &reg, &t);
  double build_ms = std::chrono::duration<double, std::milli>(Clock::now() - b0).count();
  if (!why.empty()) return fprintf(stderr, "topology_bench: %s\n", why.c_str()), 2;
  std::vector<uint16_t> groups;
  for (const TopologyEntry& e : map) groups.push_back(reg.find(e.location));
  uint16_t def = reg.find("unknown");

  double ns[2] = {}, linear_ns[2] = {};
  uint64_t sink = 0;
  for (int f = 0; f < 2; f++) {
    int family = f == 0 ? AF_INET : AF_INET6;
    uint8_t fam = f == 0 ? 4 : 6;
    size_t distinct = std::min<size_t>(a.lookups, 1 << 20);
    auto addrs = addresses(map, family, distinct, rng);
    auto t0 = Clock::now();
    for (size_t i = 0; i < a.lookups; i++) sink += t.group_of(fam, addrs[i & (distinct - 1)].data());
    ns[f] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(a.lookups);
    size_t slow = std::min<size_t>(distinct, 2000);
    t0 = Clock::now();
    for (size_t i = 0; i < slow; i++) {
      uint16_t want = linear(map, groups, def, family, addrs[i].data());
      if (want != t.group_of(fam, addrs[i].data())) {
        fprintf(stderr, "topology_bench: the range table and the linear scan disagree\n");
        return 1;
      }
    }
    linear_ns[f] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(slow);
  }
  if (a.json) {
    printf("{\"prefixes\": %zu, \"ranges_v4\": %zu, \"ranges_v6\": %zu, \"build_ms\": %.1f, \"v4_ns\": %.1f, "
           "\"v6_ns\": %.1f, \"linear_v4_ns\": %.0f, \"linear_v6_ns\": %.0f, \"sink\": %llu}\n",
           a.prefixes, t.v4_starts.size(), t.v6_hi.size(), build_ms, ns[0], ns[1], linear_ns[0], linear_ns[1],
           (unsigned long long)(sink & 1));
  } else {
    printf("%zu prefixes -> %zu IPv4 + %zu IPv6 ranges, built in %.1f ms\n", a.prefixes, t.v4_starts.size(),
           t.v6_hi.size(), build_ms);
    printf("range table: IPv4 %.1f ns/lookup, IPv6 %.1f ns/lookup\n", ns[0], ns[1]);
    printf("linear scan: IPv4 %.0f ns/lookup, IPv6 %.0f ns/lookup (the same answers)\n", linear_ns[0], linear_ns[1]);
  }
  return 0;
}
