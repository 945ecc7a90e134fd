// conf/config.hpp — shoald's typed configuration and how it is loaded.
// The schema table (conf/config_schema.cpp) is the single source of names, types, bounds,
// defaults and documentation; conf/shoal.conf is the default file (embedded in the binary and
// printed by `shoald -p`); conf/config_load.cpp walks a libconfig tree against the schema and
// reports every error as "file:line: setting: problem".
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shoal::conf {

// A parsed "host:port" / "[v6host]:port" listen address. port in host byte order.
struct ListenAddress {
  std::string text;   // as written in the config
  int family = 0;     // AF_INET or AF_INET6
  sockaddr_storage addr{};  // port included, network byte order inside
  socklen_t addr_len = 0;
  uint16_t port = 0;
};

// Parses "1.2.3.4:6969", "0.0.0.0:6969", "[::]:6969", "[::1]:0". Numeric hosts only.
// Returns false and sets *why on error.
bool parse_listen_address(const std::string& text, ListenAddress* out, std::string* why);

struct Config {
  std::string source = "<embedded default>";  // file the config came from

  // processes
  uint32_t socket_workers = 1;
  uint32_t swarm_workers = 1;
  std::string shm_name = "shoal";            // shm segment prefix: /<shm_name>-control, ...
  std::string pid_file = "/run/shoald.pid";  // written with -d
  std::string log_level = "info";            // error | warn | info | debug
  uint32_t restart_backoff_min_ms = 100;     // first restart delay after a crash
  uint32_t restart_backoff_max_ms = 10000;   // cap of the doubling delay
  uint32_t restart_healthy_after_s = 60;     // uptime after which the delay resets

  // UDP tracker (BEP 15)
  bool udp_enabled = true;
  std::vector<ListenAddress> udp_listen;     // default 0.0.0.0:6969 and [::]:6969
  uint32_t udp_recv_buffer = 8 << 20;        // SO_RCVBUF bytes per socket
  uint32_t udp_send_buffer = 4 << 20;        // SO_SNDBUF bytes per socket

  // tracker behaviour
  uint32_t announce_interval = 1800;  // seconds, sent to clients
  uint32_t peer_ttl = 3600;           // seconds without announce before a peer is removed
  uint32_t default_numwant = 50;      // numwant when the client sends <= 0
  uint32_t max_numwant = 200;         // cap (UDP also caps to one datagram: 200 IPv4 / 74 IPv6)
  uint32_t max_scrape_hashes = 74;    // info_hashes per scrape request (BEP 15 limit ~74)
  uint32_t cleanup_interval = 10;     // seconds between expiry sweep steps
  uint32_t cleanup_budget = 10000;    // peers examined per sweep step

  // capacity (fixed at start; shm segments are sized from it)
  uint32_t torrents_per_partition = 262144;
  uint32_t peers_per_partition = 1048576;
  uint32_t ring_slots = 4096;         // slots per request/response ring (power of two)
};

// One problem found in a configuration. line 0 when unknown.
struct ConfigError {
  std::string file;
  int line = 0;
  std::string setting;  // dotted path, e.g. "udp.listen"; "" for syntax errors
  std::string message;
  std::string to_string() const;  // "file:line: setting: message"
};

struct LoadResult {
  Config config;
  std::vector<ConfigError> errors;  // empty when the configuration is valid
  bool ok() const { return errors.empty(); }
};

// Loads and validates a libconfig file. Reports every error found, not just the first.
LoadResult load_config_file(const std::string& path);
// Same for text in memory; `name` is used as the file name in errors.
LoadResult load_config_text(const std::string& text, const std::string& name);
// The embedded default configuration (conf/shoal.conf), as `shoald -p` prints it.
const char* default_config_text();

// Schema row, for tests and documentation.
struct SettingSpec {
  const char* path;       // dotted path
  const char* type;       // "int", "bool", "string", "list"
  int64_t min, max;       // bounds for ints
  const char* def;        // default, as written in shoal.conf
  const char* doc;        // one-line description (the comment in shoal.conf)
};
const std::vector<SettingSpec>& schema();

}  // namespace shoal::conf
