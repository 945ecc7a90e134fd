// The topology map (issue 11): the file parser (conf/topology_map), the longest-prefix-match
// range tables and the location registry (conf/topology_table), and the prefix mode's groups
// (shm/topology_segment.hpp). What a socket worker would resolve for an address.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <random>

#include "conf/topology_map.hpp"
#include "conf/topology_table.hpp"

namespace shoal::conf {
namespace {

// The location path of the group an address resolves to under `map` ("" for group 0).
struct Resolver {
  LocationRegistry reg{4096};
  RangeTables t;
  explicit Resolver(const std::string& map, const std::string& def = "unknown") {
    TopologyMapResult r = parse_topology_map(map, "t.map", 1000);
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(build_topology(r.entries, def, &reg, &t), "");
  }
  std::string operator()(const char* text) const {
    uint8_t a[16] = {};
    uint8_t fam = inet_pton(AF_INET, text, a) == 1 ? 4 : 6;
    if (fam == 6) {
      EXPECT_EQ(inet_pton(AF_INET6, text, a), 1) << text;
    }
    uint16_t g = t.group_of(fam, a);
    return g == 0 ? "" : reg.entries()[g - 1].name;
  }
};

TEST(TopologyMap, ParsesMappingsCommentsAndBlankLines) {
  TopologyMapResult r = parse_topology_map(
      "# racks of eu-west\n\n10.1.0.0/16 eu/az1   # zone\n10.1.2.0/24\teu/az1/r2\r\n2001:db8::/32 eu\n", "t.map", 10);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.entries.size(), 3u);
  EXPECT_EQ(r.entries[1].location, "eu/az1/r2");
  EXPECT_EQ(r.entries[1].line, 4u);
  EXPECT_EQ(r.entries[2].block.family, AF_INET6);
}

TEST(TopologyMap, BadLinesNameTheLineAndWhy) {
  auto err = [](const std::string& text) { return parse_topology_map(text, "t.map", 2).error; };
  EXPECT_EQ(err("10.0.0.0/8 eu\n10.0.0.0/8\n"), "t.map:2: expected \"<CIDR> <location>\", got 1 field");
  EXPECT_EQ(err("10.0.0.0/8 eu extra\n"), "t.map:1: expected \"<CIDR> <location>\", got 3 fields");
  EXPECT_EQ(err("10.1.2/24 eu\n"), "t.map:1: not a numeric IPv4 or IPv6 address: \"10.1.2\"");
  EXPECT_EQ(err("10.0.0.0/33 eu\n"), "t.map:1: bad prefix length \"33\" (must be 0 to 32)");
  EXPECT_EQ(err("10.0.0.0/8 eu//r1\n"), "t.map:1: location \"eu//r1\": empty level");
  EXPECT_EQ(err("10.0.0.0/8 a/b/c/d/e\n"), "t.map:1: location \"a/b/c/d/e\" has 5 levels (at most 4)");
  EXPECT_EQ(err("10.0.0.0/8 eu:west\n"),
            "t.map:1: location \"eu:west\": character ':' not allowed (levels use A-Z a-z 0-9 . _ -)");
  EXPECT_EQ(err("10.0.0.0/8 eu\n10.0.0.0/8 us\n"), "t.map:2: 10.0.0.0/8 is already mapped to \"eu\" on line 1");
  EXPECT_EQ(err("1.0.0.0/8 a\n2.0.0.0/8 a\n3.0.0.0/8 a\n"), "t.map:3: more than topology.max_prefixes (2) mappings");
  EXPECT_EQ(load_topology_map("/nonexistent/t.map", 10).error, "/nonexistent/t.map: cannot open: No such file or directory");
  // The same block twice with the same location is no error.
  EXPECT_TRUE(parse_topology_map("10.0.0.0/8 eu\n10.0.0.0/8 eu\n", "t.map", 2).ok());
}

TEST(TopologyTable, LongestPrefixWinsAndOverlapsNest) {
  Resolver at(
      "10.0.0.0/8 eu\n"
      "10.1.0.0/16 eu/az1\n"
      "10.1.2.0/24 eu/az1/r2\n"
      "10.1.2.128/25 eu/az1/r2b\n"
      "10.1.3.0/24 eu/az1/r3\n"
      "192.168.0.0/16 lab\n");
  EXPECT_EQ(at("10.9.9.9"), "eu");
  EXPECT_EQ(at("10.1.9.9"), "eu/az1");
  EXPECT_EQ(at("10.1.2.0"), "eu/az1/r2");
  EXPECT_EQ(at("10.1.2.127"), "eu/az1/r2");
  EXPECT_EQ(at("10.1.2.128"), "eu/az1/r2b");
  EXPECT_EQ(at("10.1.2.255"), "eu/az1/r2b");
  EXPECT_EQ(at("10.1.3.7"), "eu/az1/r3");
  EXPECT_EQ(at("10.1.4.0"), "eu/az1");  // back in the zone after the racks
  EXPECT_EQ(at("10.255.255.255"), "eu");
  EXPECT_EQ(at("11.0.0.0"), "unknown");  // the default location
  EXPECT_EQ(at("9.255.255.255"), "unknown");
  EXPECT_EQ(at("0.0.0.0"), "unknown");
  EXPECT_EQ(at("255.255.255.255"), "unknown");
  EXPECT_EQ(at("192.168.77.1"), "lab");
  EXPECT_EQ(at("::1"), "unknown");  // no IPv6 prefixes: all default
}

TEST(TopologyTable, IPv6AndTheEdgesOfTheAddressSpace) {
  Resolver at(
      "2001:db8::/32 eu\n"
      "2001:db8:1::/48 eu/az1/r1\n"
      "2001:db8:1:8000::/49 eu/az1/r1b\n"
      "ffff::/16 top\n"
      "0.0.0.0/0 any4\n"
      "255.255.255.255/32 last4\n",
      "elsewhere");
  EXPECT_EQ(at("2001:db8::1"), "eu");
  EXPECT_EQ(at("2001:db8:1::1"), "eu/az1/r1");
  EXPECT_EQ(at("2001:db8:1:7fff:ffff:ffff:ffff:ffff"), "eu/az1/r1");
  EXPECT_EQ(at("2001:db8:1:8000::"), "eu/az1/r1b");
  EXPECT_EQ(at("2001:db8:2::"), "eu");
  EXPECT_EQ(at("2001:db9::"), "elsewhere");
  EXPECT_EQ(at("::"), "elsewhere");
  EXPECT_EQ(at("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "top");
  EXPECT_EQ(at("1.2.3.4"), "any4");
  EXPECT_EQ(at("255.255.255.254"), "any4");
  EXPECT_EQ(at("255.255.255.255"), "last4");
}

// Against a brute-force longest match over random nested blocks.
TEST(TopologyTable, AgreesWithALinearScanOnRandomMaps) {
  std::mt19937 rng(12345);
  std::string map;
  std::vector<Cidr> blocks;
  std::vector<std::string> names;
  for (int i = 0; i < 300; i++) {
    uint32_t a = rng() & 0x0fffffff;  // crowded: many overlaps
    int prefix = 4 + int(rng() % 29);
    char text[64];
    snprintf(text, sizeof text, "%u.%u.%u.%u/%d", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255, prefix);
    Cidr c;
    ASSERT_TRUE(parse_cidr(text, &c, nullptr));
    bool dup = false;
    for (const Cidr& b : blocks) dup |= b.prefix == c.prefix && memcmp(b.addr, c.addr, 4) == 0;
    if (dup) continue;
    blocks.push_back(c);
    names.push_back("r" + std::to_string(i));
    map += std::string(text) + " " + names.back() + "\n";
  }
  Resolver at(map);
  for (int i = 0; i < 20000; i++) {
    uint32_t a = rng() & 0x0fffffff;
    uint8_t addr[4] = {uint8_t(a >> 24), uint8_t(a >> 16), uint8_t(a >> 8), uint8_t(a)};
    int best = -1;
    for (size_t b = 0; b < blocks.size(); b++)
      if (cidr_contains(blocks[b], AF_INET, addr) && (best < 0 || blocks[b].prefix > blocks[size_t(best)].prefix))
        best = int(b);
    char text[32];
    snprintf(text, sizeof text, "%u.%u.%u.%u", addr[0], addr[1], addr[2], addr[3]);
    ASSERT_EQ(at(text), best < 0 ? "unknown" : names[size_t(best)]) << text;
  }
  EXPECT_LE(at.t.v4_starts.size(), 2 * blocks.size() + 1);
}

TEST(LocationRegistry, LevelsAndIdsSurviveAReload) {
  LocationRegistry reg(16);
  uint16_t r1 = reg.intern("eu/az1/r1"), r2 = reg.intern("eu/az1/r2"), z2 = reg.intern("eu/az2/r9");
  const auto& e = reg.entries();
  EXPECT_EQ(e[r1 - 1].depth, 3);
  EXPECT_EQ(e[r1 - 1].level[0], e[z2 - 1].level[0]);  // same region
  EXPECT_EQ(e[r1 - 1].level[1], e[r2 - 1].level[1]);  // same zone
  EXPECT_NE(e[r1 - 1].level[1], e[z2 - 1].level[1]);
  EXPECT_NE(e[r1 - 1].level[2], e[r2 - 1].level[2]);
  // A second map (a reload) keeps the ids of the paths it still has.
  RangeTables t;
  TopologyMapResult m = parse_topology_map("10.0.0.0/8 eu/az1/r2\n11.0.0.0/8 us\n", "t.map", 10);
  ASSERT_EQ(build_topology(m.entries, "unknown", &reg, &t), "");
  uint8_t a[4] = {10, 0, 0, 1};
  EXPECT_EQ(t.group_of(4, a), r2);
  EXPECT_EQ(reg.find("us"), 5);  // after eu/az1/r1, eu/az1/r2, eu/az2/r9, unknown
  LocationRegistry tiny(2);
  EXPECT_NE(build_topology(m.entries, "unknown", &tiny, &t), "");
}

TEST(TopologyPrefixMode, SameBlockSameGroup) {
  uint8_t a[4] = {10, 1, 2, 3}, b[4] = {10, 1, 2, 200}, c[4] = {10, 1, 3, 3};
  EXPECT_EQ(shm::prefix_group(4, a, 24, 64), shm::prefix_group(4, b, 24, 64));
  EXPECT_NE(shm::prefix_group(4, a, 24, 64), shm::prefix_group(4, c, 24, 64));
  EXPECT_EQ(shm::prefix_group(4, a, 16, 64), shm::prefix_group(4, c, 16, 64));
  uint8_t x[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 9, 9, 9, 9, 9, 9, 9, 9};
  uint8_t y[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(shm::prefix_group(6, x, 24, 64), shm::prefix_group(6, y, 24, 64));
  EXPECT_NE(shm::prefix_group(6, x, 24, 64), 0);
}

}  // namespace
}  // namespace shoal::conf
