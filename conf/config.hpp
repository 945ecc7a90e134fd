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

// An address block "a.b.c.d/n" or "v6addr/n" (a bare address means /32 or /128), as listed in
// http.trusted_proxies. addr holds the network address with the host bits cleared, network order;
// IPv4 uses the first 4 bytes.
struct Cidr {
  std::string text;    // as written in the config
  int family = 0;      // AF_INET or AF_INET6
  uint8_t addr[16] = {};
  uint8_t prefix = 0;  // 0-32 (IPv4) or 0-128 (IPv6)
};

// Parses "10.0.0.0/8", "127.0.0.1", "::1/128", "fd00::/8". Numeric only; an IPv4-mapped IPv6
// block (::ffff:a.b.c.d/n with n >= 96) becomes the IPv4 block, as client addresses are
// canonicalised the same way. Returns false and sets *why (if not null) on error.
bool parse_cidr(const std::string& text, Cidr* out, std::string* why);

// True when `addr` (4 bytes for AF_INET, 16 for AF_INET6, network order, already canonical:
// IPv4-mapped IPv6 addresses given as AF_INET) lies in `block`. Families must match.
bool cidr_contains(const Cidr& block, int family, const uint8_t* addr);

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
  uint32_t crash_loop_limit = 5;             // crashes within crash_loop_window that stop restarts; 0 = never
  uint32_t heartbeat_timeout_s = 10;         // a ready worker silent this long is killed; 0 = never
  uint32_t crash_loop_window_s = 60;         // seconds
  std::string daemon_user;   // after binding, run as this user (name or number); "" = stay
  std::string daemon_group;  // and this group; "" = daemon_user's primary group

  // UDP tracker (BEP 15)
  bool udp_enabled = true;
  std::vector<ListenAddress> udp_listen;     // default 0.0.0.0:6969 and [::]:6969
  uint32_t udp_recv_buffer = 8 << 20;        // SO_RCVBUF bytes per socket
  uint32_t udp_send_buffer = 4 << 20;        // SO_SNDBUF bytes per socket
  uint32_t udp_per_source_rate = 0;          // datagrams/s per source and socket worker; 0 = no limit
  uint32_t udp_per_source_burst = 200;       // bucket size, datagrams
  std::string udp_connection_id_key_file;    // cluster key file (conf/conn_id_key_file.hpp); "" = own random key
  uint32_t udp_connection_id_skew = 10;      // seconds of clock difference between nodes accepted

  // HTTP tracker (BEP 3, 7, 23, 48), served by the socket workers
  bool http_enabled = false;
  std::vector<ListenAddress> http_listen;    // default 0.0.0.0:6969 and [::]:6969 (TCP)
  uint32_t http_max_connections = 10000;     // open HTTP+HTTPS connections per socket worker
  uint32_t http_max_connections_per_source = 256;  // per /32 (IPv4) or /64 (IPv6); 0 = no limit
  uint32_t http_per_source_accept_rate = 0;  // new HTTP(S) connections/s per source and socket worker; 0 = no limit
  uint32_t http_per_source_accept_burst = 100;  // bucket size, connections
  uint32_t http_idle_timeout = 15;           // seconds a connection may take to send a request
  uint32_t http_first_request_timeout = 5;   // seconds a new connection has for its first request
  uint32_t http_max_header_bytes = 4096;     // request line + headers
  uint32_t http_max_scrape_hashes = 64;      // info_hashes answered per HTTP scrape
  std::string http_real_ip_header;           // e.g. "X-Forwarded-For"; "" = never read
  std::vector<Cidr> http_trusted_proxies;    // sources whose real_ip_header is believed

  // HTTPS: the same tracker over TLS
  bool https_enabled = false;
  std::vector<ListenAddress> https_listen;   // default 0.0.0.0:6970 and [::]:6970 (TCP)
  std::string https_certificate;             // PEM certificate chain file
  std::string https_private_key;             // PEM private key file
  std::string https_ciphersuites =           // TLS 1.3 suites, the server's order of preference (https, wss)
      "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";

  // WebTorrent tracker over WebSocket (issue 10): ws:// plain, wss:// over TLS with the https
  // certificate. Limits are per socket worker or per connection as named.
  bool ws_enabled = false;
  std::vector<ListenAddress> ws_listen;      // default 0.0.0.0:6971 and [::]:6971 (TCP)
  bool wss_enabled = false;
  std::vector<ListenAddress> wss_listen;     // default 0.0.0.0:6972 and [::]:6972 (TCP)
  uint32_t ws_max_connections = 16384;       // open WS+WSS connections per socket worker
  uint32_t ws_max_connections_per_source = 256;  // of them, per /32 (IPv4) or /64 (IPv6); 0 = no limit
  uint32_t ws_per_source_accept_rate = 0;    // new WS(S) connections/s per source and socket worker; 0 = no limit
  uint32_t ws_per_source_accept_burst = 100; // bucket size, connections
  uint32_t ws_max_message_bytes = 65536;     // one reassembled message
  uint32_t ws_handshake_timeout = 10;        // seconds to finish the opening handshake (and TLS)
  uint32_t ws_idle_timeout = 360;            // seconds without a message before the close
  uint32_t ws_announce_interval = 120;       // seconds, the "interval" sent to WebTorrent clients
  uint32_t ws_max_offers = 10;               // offers relayed per announce
  uint32_t ws_max_pending_offers = 64;       // offers delivered to a connection awaiting its answer
  uint32_t ws_offer_ttl = 30;                // seconds an answer to a delivered offer is accepted
  uint32_t ws_relay_bytes_per_second = 262144;  // offers+answers a connection may send, bytes/s
  uint32_t ws_relay_ring_bytes = 1 << 20;    // each socket-to-socket relay ring, bytes
  bool ws_io_uring = true;                   // a loop pass's sends in one io_uring_enter

  // tracker behaviour
  uint32_t announce_interval = 1800;  // seconds, sent to clients
  uint32_t peer_ttl = 3600;           // seconds without announce before a peer is removed
  std::string snapshot_load;          // swarm snapshot read when the shm segments are new; "" = none
  uint32_t default_numwant = 50;      // numwant when the client sends a negative one (or none)
  uint32_t max_numwant = 200;         // cap (UDP also caps to one datagram: 200 IPv4 / 67 IPv6)
  uint32_t max_scrape_hashes = 74;    // info_hashes per scrape request (BEP 15 limit ~74)
  uint32_t cleanup_interval = 10;     // seconds between expiry sweep steps
  uint32_t cleanup_budget = 10000;    // peers examined per sweep step
  uint32_t new_torrents_per_source_rate = 0;     // torrents one source may create per second per partition; 0 = no limit
  uint32_t new_torrents_per_source_burst = 1000; // bucket size, torrents

  // capacity (fixed at start; shm segments are sized from it)
  uint32_t torrents_per_partition = 262144;
  uint32_t peers_per_partition = 1048576;
  uint32_t headroom_percent = 10;     // of peers_per_partition, kept for existing swarms
  uint32_t ring_slots = 4096;         // slots per request/response ring (power of two)

  // access list (conf/access_list.hpp): which info_hashes are served
  std::string access_list_mode = "off";        // "off" | "allow" | "deny"
  std::string access_list_path;                // hex info_hash file; required unless off
  uint32_t access_list_max_entries = 1048576;  // hashes a list may hold (sizes shared memory)
  // topology map and peer selection (issue 11: conf/topology_map.hpp, worker/peer_policy.hpp)
  std::string topology_mode = "off";              // "off" | "file" | "prefix"
  std::string topology_file;                      // map file; required when mode is "file"
  std::string topology_default_location = "unknown";  // location of uncovered addresses
  uint32_t topology_prefix_v4 = 24;               // mode prefix: bits that make one location
  uint32_t topology_prefix_v6 = 64;
  uint32_t topology_max_prefixes = 131072;        // mappings a map may hold (sizes shared memory)
  uint32_t topology_max_locations = 4096;         // locations over the daemon's life
  std::string peer_selection_policy = "random";   // "random" | "nearest" | "tiered"
  uint32_t max_representatives_per_rack = 2;      // policy tiered

  // operations
  std::string stats_socket = "/run/shoald.sock";  // Unix socket for shoalctl; "" = off
  std::string stats_mode = "0600";                // its file mode (octal)
  std::string metrics_listen;                     // "host:port" of GET /metrics; "" = off

  // deploy transfers (supervisor/transfer_store.hpp, supervisor/admin_http.hpp)
  std::string transfers_state_dir;  // where registered .torrent files are kept; "" = off
  std::string transfers_mode = "open";       // "open" | "deploy" (peers only for registered transfers)
  uint32_t transfers_max = 4096;             // transfers registered at once (sizes shared memory)
  uint32_t transfers_active_interval = 30;   // seconds: registered transfers in progress
  std::string admin_listen;         // "host:port" of the admin HTTP API; "" = off

  // several nodes as one tracker over NATS (issue 14: worker/sync_worker.cpp)
  bool cluster_enabled = false;
  uint32_t cluster_node_id = 1;                 // unique per node, 1-65535
  std::string cluster_node_name;                // "" = the host name
  std::vector<std::string> cluster_servers = {"nats://127.0.0.1:4222"};  // NATS server URLs
  std::string cluster_subject = "shoal";        // subject prefix: deltas go to <subject>.deltas
  uint32_t cluster_batch_delay_ms = 100;        // deltas are sent at most this long after the announce
  uint32_t cluster_renewal_suppression = 600;   // seconds a renewal that changes nothing is not sent again
  std::string cluster_credentials;              // NATS .creds file (JWT + NKey seed); "" = none
  bool cluster_tls = false;                     // TLS to the servers (tls:// URLs turn it on too)
  std::string cluster_tls_ca;                   // PEM CA file; "" = the system's
  std::string cluster_tls_certificate;          // client certificate (PEM) for mutual TLS; "" = none
  std::string cluster_tls_private_key;          // its key
  uint32_t cluster_join_timeout = 3;            // seconds a fresh node waits for a snapshot answer; 0 = no join
  uint32_t cluster_ring_slots = 16384;          // deltas per ring between a swarm worker and the sync worker
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
