// tests/unit/config_test.cpp — configuration loading (conf/): the embedded default file against
// the schema table and the Config defaults, and the exact "file:line: setting: problem" lines a
// user sees for syntax, unknown, type, range and cross-field errors, plus listen address parsing.
// Pure in-process tests: no sockets, no shared memory; file tests use mkstemp under /tmp.
#include "conf/config.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace shoal::conf {
namespace {

LoadResult load(const std::string& text) { return load_config_text(text, "t.conf"); }

// The error lines a user would see, in order.
std::vector<std::string> messages(const LoadResult& result) {
  std::vector<std::string> out;
  for (const ConfigError& error : result.errors) out.push_back(error.to_string());
  return out;
}

using Lines = std::vector<std::string>;

// ---- the default configuration ---------------------------------------------------------------

TEST(ConfigDefaults, DefaultTextLoadsAndEqualsConfigDefaults) {
  LoadResult result = load_config_text(default_config_text(), "shoal.conf");
  ASSERT_EQ(messages(result), Lines{});
  const Config& c = result.config;
  const Config d;
  EXPECT_EQ(c.socket_workers, d.socket_workers);
  EXPECT_EQ(c.swarm_workers, d.swarm_workers);
  EXPECT_EQ(c.shm_name, d.shm_name);
  EXPECT_EQ(c.pid_file, d.pid_file);
  EXPECT_EQ(c.log_level, d.log_level);
  EXPECT_EQ(c.restart_backoff_min_ms, d.restart_backoff_min_ms);
  EXPECT_EQ(c.restart_backoff_max_ms, d.restart_backoff_max_ms);
  EXPECT_EQ(c.restart_healthy_after_s, d.restart_healthy_after_s);
  EXPECT_EQ(c.udp_enabled, d.udp_enabled);
  EXPECT_EQ(c.udp_recv_buffer, d.udp_recv_buffer);
  EXPECT_EQ(c.udp_send_buffer, d.udp_send_buffer);
  EXPECT_EQ(c.announce_interval, d.announce_interval);
  EXPECT_EQ(c.peer_ttl, d.peer_ttl);
  EXPECT_EQ(c.default_numwant, d.default_numwant);
  EXPECT_EQ(c.max_numwant, d.max_numwant);
  EXPECT_EQ(c.max_scrape_hashes, d.max_scrape_hashes);
  EXPECT_EQ(c.cleanup_interval, d.cleanup_interval);
  EXPECT_EQ(c.cleanup_budget, d.cleanup_budget);
  EXPECT_EQ(c.torrents_per_partition, d.torrents_per_partition);
  EXPECT_EQ(c.peers_per_partition, d.peers_per_partition);
  EXPECT_EQ(c.ring_slots, d.ring_slots);
  ASSERT_EQ(c.udp_listen.size(), 2u);
  EXPECT_EQ(c.udp_listen[0].text, "0.0.0.0:6969");
  EXPECT_EQ(c.udp_listen[0].family, AF_INET);
  EXPECT_EQ(c.udp_listen[0].port, 6969);
  EXPECT_EQ(c.udp_listen[1].text, "[::]:6969");
  EXPECT_EQ(c.udp_listen[1].family, AF_INET6);
  EXPECT_EQ(c.udp_listen[1].port, 6969);
}

// Absent settings keep their defaults: an empty file is the default file.
TEST(ConfigDefaults, EmptyTextEqualsDefaultText) {
  LoadResult empty = load("");
  LoadResult full = load(default_config_text());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty.config.socket_workers, full.config.socket_workers);
  EXPECT_EQ(empty.config.peer_ttl, full.config.peer_ttl);
  EXPECT_EQ(empty.config.ring_slots, full.config.ring_slots);
  ASSERT_EQ(empty.config.udp_listen.size(), full.config.udp_listen.size());
  for (size_t i = 0; i < empty.config.udp_listen.size(); ++i) {
    EXPECT_EQ(empty.config.udp_listen[i].text, full.config.udp_listen[i].text);
    EXPECT_EQ(empty.config.udp_listen[i].addr_len, full.config.udp_listen[i].addr_len);
  }
}

TEST(ConfigDefaults, PartialFileOverridesOnlyWhatItSets) {
  LoadResult result = load("swarm_workers = 4;\ntracker: { peer_ttl = 7200; };\n");
  ASSERT_EQ(messages(result), Lines{});
  EXPECT_EQ(result.config.swarm_workers, 4u);
  EXPECT_EQ(result.config.peer_ttl, 7200u);
  EXPECT_EQ(result.config.announce_interval, 1800u);
  EXPECT_EQ(result.config.udp_listen.size(), 2u);
  EXPECT_EQ(result.config.source, "t.conf");
}

// `shoald -p` prints the file byte for byte (the generator's leading newline is dropped).
TEST(ConfigDefaults, DefaultTextIsTheFile) {
  std::string text = default_config_text();
  EXPECT_EQ(text.rfind("# shoal.conf", 0), 0u);
  EXPECT_EQ(text.back(), '\n');
}

// Where a setting sits in shoal.conf: its value text and the comment block directly above.
struct FileEntry {
  std::string value;
  std::string comment;  // comment lines joined with " ", "# " stripped
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Reads "name = value;" lines inside "group:\n{ ... };" blocks of the default text.
std::map<std::string, FileEntry> settings_in_default_text() {
  std::map<std::string, FileEntry> out;
  std::istringstream in(default_config_text());
  std::string line, group, comment;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.rfind("#", 0) == 0) {
      comment += (comment.empty() ? "" : " ") + trim(t.substr(1));
      continue;
    }
    size_t eq = t.find(" = ");
    if (t.size() > 1 && t.back() == ':') group = t.substr(0, t.size() - 1);
    if (t == "};") group.clear();
    if (eq != std::string::npos && t.back() == ';') {
      std::string name = (group.empty() ? "" : group + ".") + t.substr(0, eq);
      out[name] = FileEntry{t.substr(eq + 3, t.size() - eq - 4), comment};
    }
    comment.clear();
  }
  return out;
}

TEST(ConfigSchema, EveryRowIsInShoalConfWithItsDefaultAndComment) {
  std::map<std::string, FileEntry> in_file = settings_in_default_text();
  EXPECT_EQ(in_file.size(), schema().size()) << "shoal.conf and the schema list different settings";
  for (const SettingSpec& spec : schema()) {
    SCOPED_TRACE(spec.path);
    auto it = in_file.find(spec.path);
    ASSERT_NE(it, in_file.end()) << "missing from conf/shoal.conf";
    EXPECT_EQ(it->second.value, spec.def);
    EXPECT_FALSE(it->second.comment.empty()) << "no comment line directly above";
    EXPECT_EQ(it->second.comment, spec.doc);
  }
}

TEST(ConfigSchema, EachDefaultLoadsAloneWithoutErrors) {
  for (const SettingSpec& spec : schema()) {
    std::string path = spec.path;
    size_t dot = path.find('.');
    std::string text =
        dot == std::string::npos
            ? path + " = " + spec.def + ";"
            : path.substr(0, dot) + ": { " + path.substr(dot + 1) + " = " + spec.def + "; };";
    EXPECT_EQ(messages(load(text)), Lines{}) << text;
  }
}

// ---- syntax, unknown settings, types ---------------------------------------------------------

TEST(ConfigErrors, SyntaxErrorReportsItsLine) {
  LoadResult result = load("socket_workers = 2;\n\nswarm_workers = = 3;\n");
  EXPECT_EQ(messages(result), Lines{"t.conf:3: syntax error"});
  EXPECT_EQ(result.errors[0].setting, "");
}

TEST(ConfigErrors, UnknownTopLevelSettingReportsItsLine) {
  EXPECT_EQ(messages(load("socket_workers = 2;\n# x\nsocket_worker = 3;\n")),
            Lines{"t.conf:3: socket_worker: unknown setting"});
}

TEST(ConfigErrors, UnknownNestedSettingAndGroupReportTheirLines) {
  std::string text =
      "tracker:\n{\n  peer_tll = 7200;\n};\n"
      "gopher:\n{\n  enabled = true;\n};\n";
  EXPECT_EQ(messages(load(text)), (Lines{"t.conf:3: tracker.peer_tll: unknown setting",
                                         "t.conf:5: gopher: unknown setting"}));
}

TEST(ConfigErrors, MisplacedSettingSuggestsItsGroup) {
  EXPECT_EQ(messages(load("peer_ttl = 7200;\n")),
            Lines{"t.conf:1: peer_ttl: unknown setting (did you mean tracker.peer_ttl?)"});
}

TEST(ConfigErrors, WrongTypes) {
  std::string text =
      "socket_workers = \"2\";\n"
      "log_level = 3;\n"
      "udp: { enabled = 1; recv_buffer = 8.5; };\n"
      "tracker = 5;\n"
      "capacity: { ring_slots: { x = 1; }; };\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:1: socket_workers: expected an integer, got a string",
                   "t.conf:2: log_level: expected a string, got an integer",
                   "t.conf:3: udp.enabled: expected a boolean (true or false), got an integer",
                   "t.conf:3: udp.recv_buffer: expected an integer, got a floating-point number",
                   "t.conf:4: tracker: expected a group, tracker: { ... };",
                   "t.conf:5: capacity.ring_slots: expected an integer, got a group"}));
}

TEST(ConfigErrors, Int64SuffixIsAccepted) {
  LoadResult result =
      load("udp: { recv_buffer = 16777216L; };\ncapacity: { ring_slots = 0x400; };");
  ASSERT_EQ(messages(result), Lines{});
  EXPECT_EQ(result.config.udp_recv_buffer, 16777216u);
  EXPECT_EQ(result.config.ring_slots, 1024u);
}

// libconfig 1.5 would read 4294971392 as 4096 (in range); the user must see the real value.
TEST(ConfigErrors, IntegerWiderThan32BitsIsNotWrapped) {
  std::string text =
      "# 4294971392 in a comment\nudp: { recv_buffer = 4294971392; };\n"
      "tracker: { cleanup_budget = -4294967296; };\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:2: udp.recv_buffer: must be between 4096 and 1073741824, got 4294971392",
                   "t.conf:3: tracker.cleanup_budget: must be between 100 and 10000000, got "
                   "-4294967296"}));
}

// ---- ranges and value checks -----------------------------------------------------------------

TEST(ConfigErrors, RangeErrorsAtBothEnds) {
  std::string text =
      "socket_workers = 0;\n"
      "swarm_workers = 65;\n"
      "udp: { send_buffer = 4095; };\n"
      "tracker: { max_scrape_hashes = 75; };\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:1: socket_workers: must be between 1 and 64, got 0",
                   "t.conf:2: swarm_workers: must be between 1 and 64, got 65",
                   "t.conf:3: udp.send_buffer: must be between 4096 and 1073741824, got 4095",
                   "t.conf:4: tracker.max_scrape_hashes: must be between 1 and 74, got 75"}));
}

TEST(ConfigErrors, RangeBoundsThemselvesAreAccepted) {
  LoadResult result =
      load("socket_workers = 64;\nswarm_workers = 1;\ntracker: { default_numwant = 0; };");
  ASSERT_EQ(messages(result), Lines{});
  EXPECT_EQ(result.config.socket_workers, 64u);
  EXPECT_EQ(result.config.default_numwant, 0u);
}

TEST(ConfigErrors, RingSlotsMustBeAPowerOfTwo) {
  EXPECT_EQ(messages(load("capacity: { ring_slots = 100; };")),
            Lines{"t.conf:1: capacity.ring_slots: must be a power of two, got 100"});
  EXPECT_EQ(load("capacity: { ring_slots = 65536; };").config.ring_slots, 65536u);
  EXPECT_EQ(messages(load("capacity: { ring_slots = 32; };")),
            Lines{"t.conf:1: capacity.ring_slots: must be between 64 and 65536, got 32"});
}

// Configurations that parse but cannot work are refused by `shoald -t`, not at start.
TEST(ConfigUnworkable, EveryProtocolDisabledIsAnError) {
  EXPECT_EQ(messages(load("udp: { enabled = false; };")),
            Lines{"t.conf:1: udp.enabled: every protocol is disabled (udp, http, https, ws, wss): shoald would serve nothing"});
  // Reported on the last enabled = false written.
  EXPECT_EQ(messages(load("https: { enabled = false; };\nudp: { enabled = false; };\nhttp: { enabled = false; };")),
            Lines{"t.conf:3: http.enabled: every protocol is disabled (udp, http, https, ws, wss): shoald would serve nothing"});
  EXPECT_EQ(messages(load("udp: { enabled = false; };\nhttp: { enabled = true; };")), Lines{});
}

TEST(ConfigUnworkable, StatsSocketDirectoryMustExist) {
  EXPECT_EQ(messages(load("stats: { socket = \"/nonexistent-shoal-dir/s.sock\"; };")),
            Lines{"t.conf:1: stats.socket: directory /nonexistent-shoal-dir of \"/nonexistent-shoal-dir/s.sock\": "
                  "no such directory (create it, or set another path)"});
  EXPECT_EQ(messages(load("stats: { socket = \"/etc/hostname/s.sock\"; };")),
            Lines{"t.conf:1: stats.socket: directory /etc/hostname of \"/etc/hostname/s.sock\": "
                  "not a directory (create it, or set another path)"});
  EXPECT_EQ(messages(load("stats: { socket = \"/tmp/s.sock\"; };")), Lines{});
  EXPECT_EQ(messages(load("stats: { socket = \"\"; };")), Lines{});  // off
}

TEST(ConfigUnworkable, AdminApiNeedsAStateDir) {
  EXPECT_EQ(messages(load("admin: { listen = \"127.0.0.1:9470\"; };")),
            Lines{"t.conf:1: admin.listen: needs transfers.state_dir (where registered .torrent files are kept)"});
  EXPECT_EQ(messages(load("transfers: { state_dir = \"/tmp/x\"; };\nadmin: { listen = \"127.0.0.1:9470\"; };")), Lines{});
}

TEST(ConfigUnworkable, DaemonGroupNeedsAUserAndNamesAreChecked) {
  EXPECT_EQ(messages(load("daemon: { group = \"nogroup\"; };")),
            Lines{"t.conf:1: daemon.group: needs daemon.user (the user to run as)"});
  EXPECT_EQ(messages(load("daemon: { user = \"../root\"; group = \"-g\"; };")),
            (Lines{"t.conf:1: daemon.user: must be a user or group name or number, got \"../root\"",
                   "t.conf:1: daemon.group: must be a user or group name or number, got \"-g\""}));
  LoadResult r = load("daemon: { user = \"shoal\"; group = \"998\"; };");
  EXPECT_EQ(messages(r), Lines{});
  EXPECT_EQ(r.config.daemon_user, "shoal");
  EXPECT_EQ(r.config.daemon_group, "998");
}

TEST(ConfigUnworkable, CapacityAbovePartitionLimit) {
  EXPECT_EQ(messages(load("capacity: { torrents_per_partition = 16777217; peers_per_partition = 33554432; };")),
            (Lines{"t.conf:1: capacity.torrents_per_partition: must be between 16 and 16777215, got 16777217",
                   "t.conf:1: capacity.peers_per_partition: must be between 16 and 16777216, got 33554432"}));
  EXPECT_EQ(messages(load("capacity: { peers_per_partition = 16777216; };")), Lines{});
  EXPECT_EQ(messages(load("capacity: { torrents_per_partition = 16777216; };")),  // a peer slot keeps torrent + 1 in 24 bits
            Lines{"t.conf:1: capacity.torrents_per_partition: must be between 16 and 16777215, got 16777216"});
}

TEST(ConfigErrors, StringChecks) {
  std::string text =
      "shm_name = \"my/shoal\";\n"
      "log_level = \"verbose\";\n"
      "pid_file = \"\";\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:1: shm_name: may contain only A-Z a-z 0-9 _ . -, got \"my/shoal\"",
                   "t.conf:2: log_level: must be one of \"error\", \"warn\", \"info\", \"debug\", "
                   "got \"verbose\"",
                   "t.conf:3: pid_file: must be 1 to 4095 characters long, got 0"}));
  EXPECT_EQ(messages(load("shm_name = \"" + std::string(33, 'a') + "\";")),
            Lines{"t.conf:1: shm_name: must be 1 to 32 characters long, got 33"});
  EXPECT_EQ(load("shm_name = \"shoal-2.test_x\";").config.shm_name, "shoal-2.test_x");
}

// ---- cross-field checks ----------------------------------------------------------------------

TEST(ConfigCrossField, ReportedOnTheSecondSetting) {
  std::string text =
      "supervisor:\n{\n  restart_backoff_min = 500;\n  restart_backoff_max = 400;\n};\n"
      "tracker:\n{\n  announce_interval = 600;\n  peer_ttl = 600;\n"
      "  default_numwant = 60;\n  max_numwant = 50;\n};\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:4: supervisor.restart_backoff_max: must be at least "
                   "supervisor.restart_backoff_min (500), got 400",
                   "t.conf:9: tracker.peer_ttl: must be greater than tracker.announce_interval "
                   "(600), got 600",
                   "t.conf:11: tracker.max_numwant: must be at least tracker.default_numwant "
                   "(60), got 50"}));
}

// When only one side is written, the error points at the line the user wrote.
TEST(ConfigCrossField, OnlyOneSideWritten) {
  EXPECT_EQ(messages(load("tracker: { announce_interval = 7200; };")),
            Lines{"t.conf:1: tracker.announce_interval: must be less than tracker.peer_ttl "
                  "(3600), got 7200"});
  EXPECT_EQ(messages(load("tracker: { max_numwant = 20; };")),
            Lines{"t.conf:1: tracker.max_numwant: must be at least tracker.default_numwant (50), "
                  "got 20"});
}

// A setting that is already wrong does not also fail the cross check.
TEST(ConfigCrossField, SkippedWhenASideIsInvalid) {
  EXPECT_EQ(messages(load("tracker: { announce_interval = 5; peer_ttl = 1; };")),
            (Lines{"t.conf:1: tracker.announce_interval: must be between 10 and 86400, got 5",
                   "t.conf:1: tracker.peer_ttl: must be between 20 and 172800, got 1"}));
}

TEST(ConfigErrors, AllErrorsInOneFileAreReportedInLineOrder) {
  std::string text =
      "socket_workers = 100;\n"
      "bogus = 1;\n"
      "supervisor: { restart_backoff_min = 50; restart_backoff_max = 10; };\n"
      "udp: { listen = [ \"1.2.3.4\" ]; };\n"
      "capacity: { ring_slots = 1000; torrents = 5; };\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:1: socket_workers: must be between 1 and 64, got 100",
                   "t.conf:2: bogus: unknown setting",
                   "t.conf:3: supervisor.restart_backoff_max: must be at least "
                   "supervisor.restart_backoff_min (50), got 10",
                   "t.conf:4: udp.listen: \"1.2.3.4\": missing port",
                   "t.conf:5: capacity.ring_slots: must be a power of two, got 1000",
                   "t.conf:5: capacity.torrents: unknown setting"}));
}

// ---- udp.listen ------------------------------------------------------------------------------

TEST(ConfigUdpListen, BadElementsReportTheirOwnLines) {
  std::string text =
      "udp:\n{\n  listen = [ \"127.0.0.1:80\",\n    \"::1:80\",\n    \"[::1]:x\" ];\n};\n";
  EXPECT_EQ(messages(load(text)),
            (Lines{"t.conf:4: udp.listen: \"::1:80\": IPv6 address must be in brackets, as in "
                   "[::1]:6969",
                   "t.conf:5: udp.listen: \"[::1]:x\": bad port \"x\" (must be a number from 0 to "
                   "65535)"}));
}

TEST(ConfigUdpListen, ReplacesTheDefaults) {
  LoadResult result = load("udp: { listen = ( \"127.0.0.1:6881\" ); };");
  ASSERT_EQ(messages(result), Lines{});
  ASSERT_EQ(result.config.udp_listen.size(), 1u);
  EXPECT_EQ(result.config.udp_listen[0].port, 6881);
}

TEST(ConfigUdpListen, EmptyOnlyWhenDisabled) {
  EXPECT_EQ(
      messages(load("udp: { listen = [ ]; };")),
      Lines{"t.conf:1: udp.listen: must list at least one address while udp.enabled is true"});
  LoadResult off = load("udp: { enabled = false; listen = [ ]; };\nhttp: { enabled = true; };");
  EXPECT_EQ(messages(off), Lines{});
  EXPECT_FALSE(off.config.udp_enabled);
}

TEST(ConfigUdpListen, TooManyDuplicateAndNonString) {
  std::string many = "udp: { listen = [ ";
  for (int i = 0; i < 17; ++i) {
    many += std::string(i ? ", " : "") + "\"10.0.0.1:" + std::to_string(i) + "\"";
  }
  EXPECT_EQ(messages(load(many + " ]; };")),
            Lines{"t.conf:1: udp.listen: must list at most 16 addresses, got 17"});
  EXPECT_EQ(messages(load("udp: { listen = [ \"[::]:1\", \"[0::0]:1\" ]; };")),
            Lines{"t.conf:1: udp.listen: \"[0::0]:1\": listed twice"});
  EXPECT_EQ(messages(load("udp: { listen = ( \"1.2.3.4:1\", 5 ); };")),
            Lines{"t.conf:1: udp.listen: element 2: expected a string, got an integer"});
  EXPECT_EQ(
      messages(load("udp: { listen = \"1.2.3.4:1\"; };")),
      Lines{"t.conf:1: udp.listen: expected a list of strings, [ \"...\", ... ], got a string"});
}

// ---- parse_listen_address --------------------------------------------------------------------

TEST(ConfigListenAddress, GoodAddresses) {
  struct Case {
    const char* text;
    int family;
    uint16_t port;
    const char* host;
  };
  const Case cases[] = {
      {"1.2.3.4:6969", AF_INET, 6969, "1.2.3.4"},
      {"0.0.0.0:0", AF_INET, 0, "0.0.0.0"},
      {"255.255.255.255:65535", AF_INET, 65535, "255.255.255.255"},
      {"[::1]:6969", AF_INET6, 6969, "::1"},
      {"[::]:0", AF_INET6, 0, "::"},
      {"[2001:db8::7]:80", AF_INET6, 80, "2001:db8::7"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    ListenAddress a;
    std::string why;
    ASSERT_TRUE(parse_listen_address(c.text, &a, &why)) << why;
    EXPECT_EQ(a.text, c.text);
    EXPECT_EQ(a.family, c.family);
    EXPECT_EQ(a.port, c.port);
    char host[INET6_ADDRSTRLEN] = {};
    if (c.family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(&a.addr);
      EXPECT_EQ(a.addr_len, sizeof(sockaddr_in));
      EXPECT_EQ(sin->sin_family, AF_INET);
      EXPECT_EQ(ntohs(sin->sin_port), c.port);
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
    } else {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
      EXPECT_EQ(a.addr_len, sizeof(sockaddr_in6));
      EXPECT_EQ(sin6->sin6_family, AF_INET6);
      EXPECT_EQ(ntohs(sin6->sin6_port), c.port);
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
    }
    EXPECT_STREQ(host, c.host);
  }
}

TEST(ConfigListenAddress, BadAddresses) {
  const std::pair<const char*, const char*> cases[] = {
      {"1.2.3.4", "missing port"},
      {"1.2.3.4:", "bad port \"\" (must be a number from 0 to 65535)"},
      {"1.2.3.4:65536", "bad port \"65536\" (must be a number from 0 to 65535)"},
      {"1.2.3.4:-1", "bad port \"-1\" (must be a number from 0 to 65535)"},
      {"1.2.3.4: 80", "bad port \" 80\" (must be a number from 0 to 65535)"},
      {"localhost:6969", "not a numeric IPv4 or IPv6 address: \"localhost\""},
      {"1.2.3:6969", "not a numeric IPv4 or IPv6 address: \"1.2.3\""},
      {"[1.2.3.4]:6969", "not a numeric IPv4 or IPv6 address: \"1.2.3.4\""},
      {"::1:6969", "IPv6 address must be in brackets, as in [::1]:6969"},
      {"[::1]", "missing port"},
      {"[::1:6969", "missing ']' after the IPv6 address"},
      {"[::1]6969", "expected ':' and a port after ']'"},
      {":6969", "missing host (use 0.0.0.0 or [::] for any address)"},
      {"", "missing port"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    ListenAddress a;
    a.port = 1234;
    std::string why;
    EXPECT_FALSE(parse_listen_address(text, &a, &why));
    EXPECT_EQ(why, expected);
    EXPECT_EQ(a.port, 1234) << "output touched on failure";
  }
}

// ---- files and error formatting --------------------------------------------------------------

TEST(ConfigFile, MissingFileIsOneError) {
  LoadResult result = load_config_file("/nonexistent/shoal.conf");
  EXPECT_EQ(messages(result),
            Lines{"/nonexistent/shoal.conf: cannot read: No such file or directory"});
  EXPECT_EQ(messages(load_config_file("/tmp")), Lines{"/tmp: cannot read: Is a directory"});
}

TEST(ConfigFile, LoadsAFileAndNamesItInErrors) {
  char path[] = "/tmp/config_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << "swarm_workers = 3;\nudp: { nope = 1; };\n";
  LoadResult result = load_config_file(path);
  EXPECT_EQ(result.config.source, path);
  EXPECT_EQ(result.config.swarm_workers, 3u);
  EXPECT_EQ(messages(result), Lines{std::string(path) + ":2: udp.nope: unknown setting"});
  std::ofstream(path) << "swarm_workers = 3\nudp: {\n";
  EXPECT_EQ(messages(load_config_file(path)), Lines{std::string(path) + ":3: syntax error"});
  unlink(path);
}

TEST(ConfigFile, ToStringFormats) {
  EXPECT_EQ((ConfigError{"a.conf", 7, "udp.listen", "bad"}).to_string(),
            "a.conf:7: udp.listen: bad");
  EXPECT_EQ((ConfigError{"a.conf", 7, "", "syntax error"}).to_string(), "a.conf:7: syntax error");
  EXPECT_EQ((ConfigError{"a.conf", 0, "x", "bad"}).to_string(), "a.conf: x: bad");
}

}  // namespace
}  // namespace shoal::conf

namespace shoal::conf {
namespace {

// The cluster section (issue 14): every problem reported on its line, with what is wrong.
TEST(ConfigCluster, AValidSectionLoads) {
  LoadResult r = load_config_text(
      "cluster: { enabled = true; node_id = 7; node_name = \"eu-1\";\n"
      "  servers = [ \"nats://a:4222\", \"tls://user:pw@b:4223\" ]; subject = \"shoal.prod\"; batch_delay = 50; };\n",
      "t.conf");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_TRUE(r.config.cluster_enabled);
  EXPECT_EQ(r.config.cluster_node_id, 7u);
  ASSERT_EQ(r.config.cluster_servers.size(), 2u);
  EXPECT_EQ(r.config.cluster_servers[1], "tls://user:pw@b:4223");
  EXPECT_EQ(r.config.cluster_batch_delay_ms, 50u);
}

TEST(ConfigCluster, BadValuesAreReportedOnTheirLines) {
  LoadResult r = load_config_text(
      "cluster: { enabled = true;\n"
      "  servers = [ \"http://a:4222\", \"nats://b\" ];\n"
      "  subject = \"a.*\";\n"
      "  node_id = 0;\n"
      "  renewal_suppression = 3000;\n"
      "  ring_slots = 1000;\n"
      "  tls_certificate = \"/c.pem\";\n"
      "};\n",
      "t.conf");
  std::vector<std::string> got;
  for (const ConfigError& e : r.errors) got.push_back(e.to_string());
  auto has = [&](const std::string& want) {
    for (const std::string& g : got)
      if (g.find(want) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("t.conf:2: cluster.servers: \"http://a:4222\": must start with nats:// or tls://")) << ::testing::PrintToString(got);
  EXPECT_TRUE(has("t.conf:2: cluster.servers: \"nats://b\": must be scheme://host:port"));
  EXPECT_TRUE(has("t.conf:3: cluster.subject: must be NATS subject tokens"));
  EXPECT_TRUE(has("t.conf:4: cluster.node_id: must be between 1 and 65535, got 0"));
  EXPECT_TRUE(has("t.conf:5: cluster.renewal_suppression: must be less than tracker.peer_ttl (3600) minus "
                  "tracker.announce_interval (1800), got 3000"));
  EXPECT_TRUE(has("t.conf:6: cluster.ring_slots: must be a power of two"));
  EXPECT_TRUE(has("t.conf:7: cluster.tls_certificate: needs cluster.tls_private_key"));
}

TEST(ConfigCluster, AnEnabledClusterNeedsAServer) {
  LoadResult r = load_config_text("cluster: { enabled = true; servers = [ ]; };\n", "t.conf");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "t.conf:1: cluster.servers: must list at least one server while cluster.enabled is true");
  EXPECT_TRUE(load_config_text("cluster: { servers = [ ]; };\n", "t.conf").ok()) << "off: nothing to connect to";
}

}  // namespace
}  // namespace shoal::conf
