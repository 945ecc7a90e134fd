// tests/unit/access_list_test.cpp — the access list: the file parser (conf/access_list.cpp) with
// the exact "path:line: reason" messages, case, comments, whitespace, de-duplication, sorting and
// max_entries; the lookup; the access_list config settings; and the worker-side snapshot
// (worker/access_check.cpp) over a real access segment, including its ack. Files are made with
// mkstemp under /tmp; the segment has a name unique to this process and is unlinked after.
#include "conf/access_list.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "shm/access_segment.hpp"
#include "shm/control_segment.hpp"
#include "supervisor/reload.hpp"
#include "supervisor/topology_load.hpp"
#include "worker/access_check.hpp"

namespace shoal::conf {
namespace {

const std::string kA = "0123456789abcdef0123456789abcdef01234567";
const std::string kB = "fedcba9876543210fedcba9876543210fedcba98";
const std::string kC = "8000000000000000000000000000000000000000";

InfoHash hash_of(const std::string& hex) {
  InfoHash h{};
  for (size_t i = 0; i < 20; i++) h[i] = uint8_t(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return h;
}

AccessListResult parse(const std::string& text, size_t max_entries = 100) {
  return parse_access_list(text, "t.txt", max_entries);
}

// A temp file holding `text`; removed by the destructor.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/shoal-acl-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path = name;
    std::ofstream(path, std::ios::binary) << text;
  }
  ~TempFile() { unlink(path.c_str()); }
};

// ---- parser: good input -------------------------------------------------------------------

TEST(AccessListParse, SortsDeduplicatesAndIgnoresCaseCommentsAndWhitespace) {
  std::string text = "# allowed torrents\n\n" + kB + "\n  " + kA + "\t\r\n" + "FEDCBA9876543210FEDCBA9876543210FEDCBA98\n" +
                     kC + "   # trailing comment\n   \n\t# indented comment\n" + kA;  // no final newline
  AccessListResult r = parse(text);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.lines, 9u);
  ASSERT_EQ(r.hashes.size(), 3u);
  EXPECT_EQ(r.hashes[0], hash_of(kA));
  EXPECT_EQ(r.hashes[1], hash_of(kC));
  EXPECT_EQ(r.hashes[2], hash_of(kB));
}

TEST(AccessListParse, EmptyAndCommentOnlyFilesGiveEmptyLists) {
  EXPECT_TRUE(parse("").ok());
  AccessListResult r = parse("# nothing yet\n\n   \n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.hashes.empty());
}

// ---- parser: errors, exact text ------------------------------------------------------------

TEST(AccessListParse, WrongLengthNamesLineAndLength) {
  EXPECT_EQ(parse(kA + "\n# c\n" + kA.substr(0, 39) + "\n").error, "t.txt:3: expected 40 hex characters, got 39");
  EXPECT_EQ(parse(kA + "0\n").error, "t.txt:1: expected 40 hex characters, got 41");
  EXPECT_EQ(parse(kA + kA.substr(0, 24) + "\n").error, "t.txt:1: expected 40 hex characters, got 64");
  EXPECT_EQ(parse("\n\nabc # short\n").error, "t.txt:3: expected 40 hex characters, got 3");
}

TEST(AccessListParse, BadCharacterNamesLineAndRawColumn) {
  std::string bad = kA;
  bad[6] = 'g';
  EXPECT_EQ(parse(kA + "\n" + bad + "\n").error, "t.txt:2: not a hex digit 'g' at column 7");
  EXPECT_EQ(parse("  " + bad + "\n").error, "t.txt:1: not a hex digit 'g' at column 9");  // columns count the indent
  EXPECT_EQ(parse("0x" + kA.substr(2) + "\n").error, "t.txt:1: not a hex digit 'x' at column 2");
  EXPECT_EQ(parse(kA.substr(0, 20) + " " + kA.substr(20) + "\n").error, "t.txt:1: not a hex digit ' ' at column 21");
  EXPECT_EQ(parse(kA.substr(0, 3) + "\xc3\xa9" + kA.substr(5) + "\n").error, "t.txt:1: not a hex digit '\\xc3' at column 4");
  EXPECT_EQ(parse(kA.substr(0, 5) + std::string(1, '\0') + kA.substr(6) + "\n").error,
            "t.txt:1: not a hex digit '\\x00' at column 6");
}

TEST(AccessListParse, FirstErrorStopsAndDropsThePartialList) {
  AccessListResult r = parse(kA + "\nzz\n" + kB.substr(1) + "\n");
  EXPECT_EQ(r.error, "t.txt:2: not a hex digit 'z' at column 1");
  EXPECT_TRUE(r.hashes.empty());
}

TEST(AccessListParse, MaxEntriesCountsDistinctHashes) {
  // Issue 12: duplicate lines used to count toward max_entries.
  EXPECT_EQ(parse(kA + "\n" + kB + "\n# c\n" + kC + "\n", 2).error, "t.txt:4: more than max_entries (2) distinct hashes");
  AccessListResult dup = parse(kA + "\n" + kA + "\n" + kA + "\n" + kB + "\n" + kA + "\n", 2);
  EXPECT_EQ(dup.error, "");
  EXPECT_EQ(dup.hashes.size(), 2u);
  // Many repeated lines: memory stays bounded (compaction at 2 x max_entries), still accepted.
  std::string many;
  for (int i = 0; i < 1000; i++) many += (i % 2 ? kA : kB) + "\n";
  AccessListResult m = parse(many, 3);
  EXPECT_EQ(m.error, "");
  EXPECT_EQ(m.hashes.size(), 2u);
  // A third distinct hash among them: the error names the line where the excess was found.
  EXPECT_EQ(parse(many + kC + "\n" + kC + "\n", 2).error, "t.txt:1002: more than max_entries (2) distinct hashes");
}

// Large lists take the bucket sort; duplicates far apart in the file still collapse.
TEST(AccessListParse, LargeListIsSortedAndDeduplicated) {
  std::string text;
  char line[64];
  for (int pass = 0; pass < 2; pass++)
    for (uint32_t i = 0; i < 5000; i++) {
      snprintf(line, sizeof line, "%08x%032x\n", i * 2654435761u, i);
      text += line;
    }
  AccessListResult r = parse(text, 10000);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.hashes.size(), 5000u);
  EXPECT_TRUE(std::is_sorted(r.hashes.begin(), r.hashes.end()));
  EXPECT_EQ(std::adjacent_find(r.hashes.begin(), r.hashes.end()), r.hashes.end());
}

// ---- files ----------------------------------------------------------------------------------

TEST(AccessListFile, MissingFileIsOneError) {
  AccessListResult r = load_access_list("/nonexistent/allow.txt", 10);
  EXPECT_EQ(r.error, "/nonexistent/allow.txt: cannot open: No such file or directory");
}

// Lines cross the 1 MiB read blocks; the line numbers must still be right.
TEST(AccessListFile, LinesAcrossReadBlocksAndErrorLineNumbers) {
  std::string text;
  const size_t n = 60000;  // 41 bytes a line: about 2.4 MiB, three read blocks
  char line[64];
  for (size_t i = 0; i < n; i++) {
    snprintf(line, sizeof line, "%08zx%032x\n", i * 2654435761u % 0xffffffffu, 7u);
    text += line;
  }
  TempFile good(text);
  AccessListResult r = load_access_list(good.path, n);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.hashes.size(), n);
  EXPECT_TRUE(std::is_sorted(r.hashes.begin(), r.hashes.end()));
  TempFile bad(text + kA.substr(1) + "\n");
  EXPECT_EQ(load_access_list(bad.path, n + 1).error, bad.path + ":60001: expected 40 hex characters, got 39");
}

// 1,000,000 distinct hashes: the reload path's parse. Prints the time; bound is generous.
TEST(AccessListFile, MillionLinesParseFast) {
  std::string text;
  text.reserve(41u * 1000000u);
  char line[64];
  for (uint32_t i = 0; i < 1000000; i++) {
    uint32_t x = i * 2654435761u;  // a bijection of i: distinct, unsorted
    snprintf(line, sizeof line, "%08x%08x%024d\n", x, i, 0);
    text += line;
  }
  TempFile f(text);
  auto t0 = std::chrono::steady_clock::now();
  AccessListResult r = load_access_list(f.path, 1048576);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.hashes.size(), 1000000u);
  EXPECT_TRUE(std::is_sorted(r.hashes.begin(), r.hashes.end()));
  printf("[   INFO   ] parsed, sorted and de-duplicated 1,000,000 hashes (%.1f MB) in %.0f ms\n", text.size() / 1e6, ms);
  EXPECT_LT(ms, 3000);
}

// ---- lookup and mode -------------------------------------------------------------------------

TEST(AccessListLookup, BinarySearchOverSortedRecords) {
  AccessListResult r = parse(kB + "\n" + kA + "\n" + kC + "\n");
  ASSERT_TRUE(r.ok());
  const uint8_t* base = r.hashes[0].data();
  for (const std::string& h : {kA, kB, kC}) EXPECT_TRUE(access_list_contains(base, 3, hash_of(h).data())) << h;
  InfoHash other = hash_of(kC);
  other[19] = 1;
  EXPECT_FALSE(access_list_contains(base, 3, other.data()));
  EXPECT_FALSE(access_list_contains(base, 0, hash_of(kA).data()));
  InfoHash low{}, high;
  high.fill(0xff);
  EXPECT_FALSE(access_list_contains(base, 3, low.data()));
  EXPECT_FALSE(access_list_contains(base, 3, high.data()));
}

TEST(AccessListLookup, ModeDecidesWhatListedMeans) {
  EXPECT_TRUE(access_allows(AccessMode::off, false));
  EXPECT_TRUE(access_allows(AccessMode::off, true));
  EXPECT_TRUE(access_allows(AccessMode::allow, true));
  EXPECT_FALSE(access_allows(AccessMode::allow, false));
  EXPECT_FALSE(access_allows(AccessMode::deny, true));
  EXPECT_TRUE(access_allows(AccessMode::deny, false));
  AccessMode m;
  EXPECT_TRUE(parse_access_mode("deny", &m));
  EXPECT_EQ(m, AccessMode::deny);
  EXPECT_FALSE(parse_access_mode("Allow", &m));
}

// ---- configuration -------------------------------------------------------------------------

std::vector<std::string> config_errors(const std::string& text) {
  std::vector<std::string> out;
  for (const ConfigError& e : load_config_text(text, "t.conf").errors) out.push_back(e.to_string());
  return out;
}

TEST(AccessListConfig, DefaultsAndErrors) {
  LoadResult d = load_config_text("", "t.conf");
  EXPECT_EQ(d.config.access_list_mode, "off");
  EXPECT_EQ(d.config.access_list_max_entries, 1048576u);
  EXPECT_EQ(config_errors("access_list: {\n  mode = \"allow\";\n};\n"),
            std::vector<std::string>{"t.conf:2: access_list.path: must name a file of info_hashes while access_list.mode is \"allow\""});
  EXPECT_EQ(config_errors("access_list: {\n  mode = \"deny\";\n  path = \"\";\n};\n"),
            std::vector<std::string>{"t.conf:3: access_list.path: must name a file of info_hashes while access_list.mode is \"deny\""});
  EXPECT_EQ(config_errors("access_list: {\n  mode = \"on\";\n};\n"),
            std::vector<std::string>{"t.conf:2: access_list.mode: must be one of \"off\", \"allow\", \"deny\", got \"on\""});
  EXPECT_EQ(config_errors("access_list: { max_entries = 0; };\n"),
            std::vector<std::string>{"t.conf:1: access_list.max_entries: must be between 1 and 16777216, got 0"});
  EXPECT_TRUE(config_errors("access_list: { mode = \"allow\"; path = \"/x\"; max_entries = 10; };").empty());
}

TEST(AccessListConfig, CheckForDashT) {
  TempFile f("# list\n" + kA + "\nnot a hash\n");
  Config c;
  EXPECT_EQ(check_access_list_config(c), "");  // off: the file is not read
  c.access_list_mode = "allow";
  c.access_list_path = f.path;
  EXPECT_EQ(check_access_list_config(c), f.path + ":3: not a hex digit 'n' at column 1");
}

// ---- the worker's snapshot over a real segment ------------------------------------------------

// The topology map (issue 11) rides on the same snapshot: its buffers flip with the access
// generation, so a batch resolves every address under one map.
TEST(AccessListCheck, SnapshotPerBatchAckAndFlip) {
  TempFile f(kA + "\n" + kB + "\n");
  TempFile map("10.0.0.0/8 eu/r1\n");
  Config cfg;
  cfg.shm_name = "shoalunit-" + std::to_string(getpid());
  cfg.access_list_mode = "allow";
  cfg.access_list_path = f.path;
  cfg.access_list_max_entries = 4;
  cfg.topology_mode = "file";
  cfg.topology_file = map.path;
  shm::Segment topo = supervisor::create_topology_segment(cfg, 0);
  shm::Segment xfers = shm::Segment::create(shm::transfers_segment_name(cfg.shm_name), shm::transfers_segment_bytes(4),
                                            shm::SegmentKind::transfers, 0, 0, 0);
  shm::transfers_header(xfers.base())->capacity = 4;
  shm::TransferEntry registered{};
  std::memcpy(registered.info_hash, hash_of(kB).data(), 20);
  const uint8_t in10[4] = {10, 1, 2, 3}, in11[4] = {11, 1, 2, 3};
  std::string name = shm::access_segment_name(cfg.shm_name);
  shm::Segment seg = shm::Segment::create(name, shm::access_segment_bytes(4), shm::SegmentKind::access, 0, 0, 0);
  supervisor::load_access_list_at_start(cfg, seg);
  shm::AccessHeader* h = shm::access_header(seg.base());
  EXPECT_EQ(h->generation, 1u);
  EXPECT_EQ(h->count[0], 2u);

  shm::WorkerSlot slot{};
  slot.generation = 7;  // this process's slot generation
  worker::AccessCheck check(cfg.shm_name, &slot, 7);
  EXPECT_EQ(slot.access_generation, 1u);
  EXPECT_TRUE(check.allowed(hash_of(kA).data()));
  EXPECT_FALSE(check.allowed(hash_of(kC).data()));
  const shm::LocationEntry* locations = shm::location_entries(topo.base());
  EXPECT_STREQ(locations[check.topology_group(4, in10) - 1].name, "eu/r1");
  EXPECT_STREQ(locations[check.topology_group(4, in11) - 1].name, "unknown");

  // A new map, prepared and published into the inactive buffer as reload.cpp does.
  { std::ofstream(map.path) << "10.0.0.0/8 us/r9\n11.0.0.0/8 eu/r1\n"; }
  supervisor::PendingTopology pending;
  std::string error;
  ASSERT_TRUE(supervisor::prepare_topology_reload(cfg, topo, &pending, &error)) << error;
  supervisor::publish_topology(topo, pending);
  supervisor::publish_transfers(xfers, {registered});
  EXPECT_EQ(check.transfer(hash_of(kB).data()), nullptr) << "published, but not flipped yet";
  // The supervisor's flip (reload.cpp's order): buffer 1, count, active, generation.
  std::memcpy(shm::access_buffer(seg.base(), 4, 1), hash_of(kC).data(), 20);
  shm::release_store(h->count[1], uint64_t(1));
  shm::release_store(h->active, 1u);
  shm::release_store(h->generation, 2u);
  EXPECT_TRUE(check.allowed(hash_of(kA).data())) << "the batch's snapshot must not change mid-batch";
  EXPECT_STREQ(locations[check.topology_group(4, in10) - 1].name, "eu/r1");
  EXPECT_EQ(slot.access_generation, 1u);
  check.begin_batch();
  EXPECT_EQ(slot.access_generation, 2u);
  EXPECT_FALSE(check.allowed(hash_of(kA).data()));
  EXPECT_TRUE(check.allowed(hash_of(kC).data()));
  EXPECT_STREQ(locations[check.topology_group(4, in10) - 1].name, "us/r9");
  EXPECT_STREQ(locations[check.topology_group(4, in11) - 1].name, "eu/r1");  // the same group as before
  ASSERT_NE(check.transfer(hash_of(kB).data()), nullptr);
  EXPECT_EQ(check.transfer(hash_of(kA).data()), nullptr);

  // A superseded process (its successor has generation 8) reads on but never acks.
  slot.generation = 8;
  shm::release_store(h->generation, 3u);
  check.begin_batch();
  EXPECT_EQ(check.generation(), 3u);
  EXPECT_EQ(slot.access_generation, 2u);
  shm::Segment::unlink(name);
  shm::Segment::unlink(shm::topology_segment_name(cfg.shm_name));
  shm::Segment::unlink(shm::transfers_segment_name(cfg.shm_name));
}

TEST(AccessListCheck, BadFileAtStartThrowsTheLine) {
  TempFile f(kA + "\n" + kA.substr(2) + "\n");
  Config cfg;
  cfg.access_list_mode = "deny";
  cfg.access_list_path = f.path;
  std::string name = "/shoalunit-bad-" + std::to_string(getpid());
  shm::Segment seg = shm::Segment::create(name, shm::access_segment_bytes(16), shm::SegmentKind::access, 0, 0, 0);
  cfg.access_list_max_entries = 16;
  try {
    supervisor::load_access_list_at_start(cfg, seg);
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), f.path + ":2: expected 40 hex characters, got 38");
  }
  shm::Segment::unlink(name);
}

// The reload may overwrite the inactive buffer only when no socket worker can read it: every
// live worker acked the current generation, and no slot has a worker draining after a rolling
// restart (its ack word is its successor's, so the old worker's own ack is unknown).
TEST(AccessListReload, WaitsForAcksAndForDrainingWorkers) {
  auto c = std::make_unique<shm::ControlSegment>();
  c->control.socket_workers = 2;
  uint32_t ack = 0;
  bool draining = true;
  c->slots[shm::socket_slot(0)].pid = 100;
  c->slots[shm::socket_slot(0)].access_generation = 3;
  c->slots[shm::socket_slot(1)].pid = 0;  // not running: reads nothing
  EXPECT_EQ(supervisor::access_laggard(c.get(), 3, &ack, &draining), -1);
  EXPECT_FALSE(draining);
  c->slots[shm::socket_slot(1)].pid = 101;
  c->slots[shm::socket_slot(1)].access_generation = 2;
  EXPECT_EQ(supervisor::access_laggard(c.get(), 3, &ack, &draining), 1);
  EXPECT_EQ(ack, 2u);
  EXPECT_FALSE(draining);
  c->slots[shm::socket_slot(1)].access_generation = 3;
  c->socket_sets[0].draining_generation = 7;  // slot 0's previous worker is finishing its work
  EXPECT_EQ(supervisor::access_laggard(c.get(), 3, &ack, &draining), 0);
  EXPECT_TRUE(draining);
  c->socket_sets[0].draining_generation = 0;  // it exited
  EXPECT_EQ(supervisor::access_laggard(c.get(), 3, &ack, &draining), -1);
}

}  // namespace
}  // namespace shoal::conf
