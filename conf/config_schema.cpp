// conf/config_schema.cpp — the schema table: one row per shoald setting (dotted path, type,
// bounds, default as written in conf/shoal.conf, doc = the comment above it there) and the
// checks of single values; conf/config_store.cpp stores a libconfig value by its row.
// Runs in the supervisor (and `shoald -t` / `-p`) before any worker exists; touches no shm.
// Invariant: rows match conf/shoal.conf setting for setting, in file order; defaults here equal
// the Config member initialisers. tests/unit/config_test.cpp checks both.
#include <cstring>
#include <iterator>
#include <libconfig.h++>

#include "conf/config.hpp"
#include "conf/config_row.hpp"
#include "conf/topology_map.hpp"
#include "shm/partition_layout.hpp"  // kMaxTorrents, kMaxCapacity: a partition holds at most 2^24 - 1 torrents, 2^24 peers

namespace shoal::conf::internal {
// Internal interface shared with conf/config_load.cpp (declared there too; no private header).
void store_setting(size_t row, const libconfig::Setting& setting, Config* config,
                   std::vector<ConfigError>* errors);
int64_t int_setting_value(size_t row, const Config& config);
Config default_config();
}  // namespace shoal::conf::internal

namespace shoal::conf {
namespace {

using internal::IntCheck;
using internal::Row;
using internal::StringCheck;

constexpr int64_t kMaxListenAddresses = 16;
constexpr int64_t kMaxTrustedProxies = 64;
const char* const kDefaultUdpListen[] = {"0.0.0.0:6969", "[::]:6969"};
const char* const kDefaultHttpListen[] = {"0.0.0.0:6969", "[::]:6969"};
const char* const kDefaultHttpsListen[] = {"0.0.0.0:6970", "[::]:6970"};
const char* const kDefaultWsListen[] = {"0.0.0.0:6971", "[::]:6971"};
const char* const kDefaultWssListen[] = {"0.0.0.0:6972", "[::]:6972"};


std::string check_power_of_two(int64_t value) {
  if ((value & (value - 1)) == 0) return "";
  return "must be a power of two, got " + std::to_string(value);
}

std::string check_shm_name(const std::string& value) {
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return "may contain only A-Z a-z 0-9 _ . -, got \"" + value + "\"";
  }
  return "";
}

std::string check_log_level(const std::string& value) {
  if (value == "error" || value == "warn" || value == "info" || value == "debug") return "";
  return "must be one of \"error\", \"warn\", \"info\", \"debug\", got \"" + value + "\"";
}

std::string check_octal_mode(const std::string& value) {
  if (value.size() == 4 && value[0] == '0' && value.find_first_not_of("01234567") == std::string::npos) return "";
  return "must be four octal digits such as \"0600\", got \"" + value + "\"";
}

// "" or a user or group name (POSIX portable characters, not starting with '-') or number.
std::string check_account_name(const std::string& value) {
  for (size_t i = 0; i < value.size(); i++) {
    char c = value[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              (c == '-' && i > 0) || (c == '$' && i + 1 == value.size() && i > 0);
    if (!ok) return "must be a user or group name or number, got \"" + value + "\"";
  }
  return "";
}

// "" (disabled) or a "host:port" listen address.
std::string check_optional_address(const std::string& value) {
  if (value.empty()) return "";
  ListenAddress address;
  std::string why;
  if (parse_listen_address(value, &address, &why)) return "";
  return "\"" + value + "\": " + why;
}

std::string check_access_mode(const std::string& value) {
  if (value == "off" || value == "allow" || value == "deny") return "";
  return "must be one of \"off\", \"allow\", \"deny\", got \"" + value + "\"";
}

std::string check_topology_mode(const std::string& value) {
  if (value == "off" || value == "file" || value == "prefix") return "";
  return "must be one of \"off\", \"file\", \"prefix\", got \"" + value + "\"";
}

std::string check_transfers_mode(const std::string& value) {
  if (value == "open" || value == "deploy") return "";
  return "must be one of \"open\", \"deploy\", got \"" + value + "\"";
}

std::string check_location_setting(const std::string& value) { return check_location(value); }

std::string check_policy(const std::string& value) {
  if (value == "random" || value == "nearest" || value == "tiered") return "";
  return "must be one of \"random\", \"nearest\", \"tiered\", got \"" + value + "\"";
}

// An HTTP header name (RFC 9110 token characters), or "" for none.
std::string check_header_name(const std::string& value) {
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
    if (!ok) return "must be an HTTP header name such as \"X-Forwarded-For\", got \"" + value + "\"";
  }
  return "";
}

// cluster.node_name: printable ASCII without spaces (it is shown in one-line reports).
std::string check_node_name(const std::string& value) {
  for (char c : value)
    if (c <= ' ' || c > '~') return "may contain printable characters without spaces only, got \"" + value + "\"";
  return "";
}

// cluster.subject: NATS subject tokens (RFC-less; nats.io "Subject-Based Messaging"): letters,
// digits, - and _, separated by single dots; no wildcards (* >), no spaces.
std::string check_subject(const std::string& value) {
  bool token_empty = true;
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (c == '.' && !token_empty) {
      token_empty = true;
      continue;
    }
    if (!ok) return "must be NATS subject tokens (A-Z a-z 0-9 - _) separated by single dots, got \"" + value + "\"";
    token_empty = false;
  }
  if (token_empty) return "must not end with a dot, got \"" + value + "\"";
  return "";
}

// One cluster.servers URL: nats://, tls:// (or ws:// and wss://, which the C client does not
// speak: refused) followed by [user[:password]@]host:port.
std::string check_nats_url(const std::string& value) {
  size_t scheme = value.find("://");
  if (scheme == std::string::npos || (value.compare(0, scheme, "nats") != 0 && value.compare(0, scheme, "tls") != 0))
    return "\"" + value + "\": must start with nats:// or tls://";
  std::string rest = value.substr(scheme + 3);
  size_t at = rest.rfind('@');
  if (at != std::string::npos) rest = rest.substr(at + 1);
  size_t colon = rest.rfind(':');
  if (rest.empty() || colon == std::string::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.find_first_not_of("0123456789", colon + 1) != std::string::npos || std::stoul(rest.substr(colon + 1)) > 65535 ||
      rest.find_first_of(" /") != std::string::npos)
    return "\"" + value + "\": must be scheme://host:port";
  return "";
}


// clang-format off
const Row kRows[] = {
  {.spec = {"socket_workers", "int", 1, 64, "1",
            "Socket workers: processes doing network I/O, parsing and encoding (1-64)."},
   .int_field = &Config::socket_workers},
  {.spec = {"swarm_workers", "int", 1, 64, "1",
            "Swarm workers: processes each owning one partition of the info_hash space (1-64)."},
   .int_field = &Config::swarm_workers},
  {.spec = {"shm_name", "string", 1, 32, "\"shoal\"",
            "Shared-memory segment prefix: segments are /dev/shm/<name>-control, -rings, "
            "-part-N. Two daemons on one machine need different names."},
   .string_field = &Config::shm_name, .string_check = check_shm_name},
  {.spec = {"pid_file", "string", 1, 4095, "\"/run/shoald.pid\"",
            "PID file written when started with -d (daemonize)."},
   .string_field = &Config::pid_file},
  {.spec = {"log_level", "string", 0, 0, "\"info\"",
            "Log level: \"error\", \"warn\", \"info\" or \"debug\"."},
   .string_field = &Config::log_level, .string_check = check_log_level},
  {.spec = {"supervisor.restart_backoff_min", "int", 1, 60000, "100",
            "Delay (milliseconds) before restarting a worker that crashed twice in a row; the first "
            "crash is restarted at once."},
   .int_field = &Config::restart_backoff_min_ms},
  {.spec = {"supervisor.restart_backoff_max", "int", 1, 600000, "10000",
            "The delay doubles on each crash up to this cap (milliseconds)."},
   .int_field = &Config::restart_backoff_max_ms},
  {.spec = {"supervisor.restart_healthy_after", "int", 1, 86400, "60",
            "A worker that ran this long (seconds) before crashing restarts after the first "
            "delay again."},
   .int_field = &Config::restart_healthy_after_s},
  {.spec = {"supervisor.crash_loop_limit", "int", 0, 1000, "5",
            "A worker slot that crashes this many times within crash_loop_window is not restarted "
            "again (a crash loop); SIGKILL from outside does not count; 0 restarts forever."},
   .int_field = &Config::crash_loop_limit},
  {.spec = {"supervisor.heartbeat_timeout", "int", 0, 3600, "10",
            "A ready worker whose heartbeat (written every second) is this many seconds old is hung: it is "
            "killed and restarted, counting as a crash; 0 never."},
   .int_field = &Config::heartbeat_timeout_s},
  {.spec = {"supervisor.crash_loop_window", "int", 1, 86400, "60",
            "Seconds over which crash_loop_limit counts a slot's crashes."},
   .int_field = &Config::crash_loop_window_s},
  {.spec = {"daemon.user", "string", 0, 32, "\"\"",
            "Started as root, shoald binds its sockets and makes its files as root, then runs as "
            "this user (a name or a number), supervisor and workers; \"\" stays the user it was "
            "started as."},
   .string_field = &Config::daemon_user, .string_check = check_account_name},
  {.spec = {"daemon.group", "string", 0, 32, "\"\"",
            "Group to run as with daemon.user (a name or a number); \"\" = the user's primary "
            "group. The user's supplementary groups are kept."},
   .string_field = &Config::daemon_group, .string_check = check_account_name},
  {.spec = {"udp.enabled", "bool", 0, 1, "true",
            "Serve the UDP tracker protocol (BEP 15)."},
   .bool_field = &Config::udp_enabled},
  {.spec = {"udp.listen", "list", 0, kMaxListenAddresses, "[ \"0.0.0.0:6969\", \"[::]:6969\" ]",
            "Addresses to listen on, \"host:port\" or \"[v6host]:port\"; numeric hosts only."},
   .list_field = &Config::udp_listen},
  {.spec = {"udp.recv_buffer", "int", 4096, 1073741824, "8388608",
            "Kernel receive buffer per socket (bytes, SO_RCVBUF)."},
   .int_field = &Config::udp_recv_buffer},
  {.spec = {"udp.send_buffer", "int", 4096, 1073741824, "4194304",
            "Kernel send buffer per socket (bytes, SO_SNDBUF)."},
   .int_field = &Config::udp_send_buffer},
  {.spec = {"udp.per_source_rate", "int", 0, 1000000, "0",
            "Datagrams per second one source (an IPv4 address or IPv6 /64) may send to a socket worker, "
            "on average; more are dropped and counted. 0: no limit (private deployments)."},
   .int_field = &Config::udp_per_source_rate},
  {.spec = {"udp.per_source_burst", "int", 1, 1000000, "200",
            "Datagrams a source may send at once above udp.per_source_rate (its bucket size)."},
   .int_field = &Config::udp_per_source_burst},
  {.spec = {"udp.connection_id_key_file", "string", 0, 4095, "\"\"",
            "Cluster key file for BEP 15 connection ids, shared by every node behind one tracker address "
            "(anycast, DNS round robin), so a connect answered by one node is accepted by another: the "
            "current key, then optionally the previous one, 32 hex digits a line (openssl rand -hex 16; # "
            "comments). Others may not access it (chmod 600 or 640). Buckets then follow the wall clock "
            "(keep the nodes' clocks in sync). Re-read on SIGHUP (rotation: put the new key first, keep the "
            "old one second, SIGHUP every node, remove the old one 5 minutes later); a bad file keeps the "
            "keys in force. \"\" = a random key of this shoald's own. e.g. \"/etc/shoal/cluster.key\""},
   .string_field = &Config::udp_connection_id_key_file},
  {.spec = {"udp.connection_id_skew", "int", 0, 60, "10",
            "With connection_id_key_file: seconds the nodes' clocks may differ. An id is checked as if now "
            "were anywhere within this many seconds, so an id a node made up to this far in another's future "
            "(or past) is accepted for its whole lifetime (120-240 s), and lives at most this much longer."},
   .int_field = &Config::udp_connection_id_skew},
  {.spec = {"http.enabled", "bool", 0, 1, "false",
            "Serve the HTTP tracker protocol (BEP 3, 7, 23, 48) on TCP."},
   .bool_field = &Config::http_enabled},
  {.spec = {"http.listen", "list", 0, kMaxListenAddresses, "[ \"0.0.0.0:6969\", \"[::]:6969\" ]",
            "TCP addresses for plain HTTP, \"host:port\" or \"[v6host]:port\" (the same port as "
            "UDP is fine: TCP and UDP ports are separate)."},
   .list_field = &Config::http_listen},
  {.spec = {"http.max_connections", "int", 16, 1000000, "10000",
            "Open HTTP and HTTPS connections per socket worker; more are closed at once (also "
            "capped by the open-file limit)."},
   .int_field = &Config::http_max_connections},
  {.spec = {"http.max_connections_per_source", "int", 0, 1000000, "256",
            "Open HTTP and HTTPS connections per source address (an IPv4 address, an IPv6 /64) and "
            "socket worker; at the limit, the source's oldest idle connection (no request in "
            "progress) is closed to make room for the new one, or the new one when none is idle, "
            "so one source cannot take every connection; trusted proxies are exempt; 0 = no "
            "limit."},
   .int_field = &Config::http_max_connections_per_source},
  {.spec = {"http.per_source_accept_rate", "int", 0, 1000000, "0",
            "New HTTP and HTTPS connections per second one source (an IPv4 address or IPv6 /64) "
            "may open to a socket worker, on average; more are closed at once, before any TLS "
            "handshake, and counted; trusted proxies are exempt. Requests on open connections "
            "are not limited. 0: no limit (private deployments)."},
   .int_field = &Config::http_per_source_accept_rate},
  {.spec = {"http.per_source_accept_burst", "int", 1, 1000000, "100",
            "Connections a source may open at once above http.per_source_accept_rate (its bucket "
            "size)."},
   .int_field = &Config::http_per_source_accept_burst},
  {.spec = {"http.idle_timeout", "int", 1, 3600, "15",
            "Seconds a connection has to send a complete request (after connecting, or after the "
            "previous reply) before it is closed; this also bounds slow senders and TLS "
            "handshakes."},
   .int_field = &Config::http_idle_timeout},
  {.spec = {"http.first_request_timeout", "int", 1, 3600, "5",
            "Seconds a new connection has to send its first complete request (including a TLS "
            "handshake) before it is closed; later requests have http.idle_timeout."},
   .int_field = &Config::http_first_request_timeout},
  {.spec = {"http.max_header_bytes", "int", 512, 65536, "4096",
            "Largest request line plus headers (bytes); larger requests get 400 and are closed."},
   .int_field = &Config::http_max_header_bytes},
  {.spec = {"http.max_scrape_hashes", "int", 1, 74, "64",
            "Most info_hashes answered in one HTTP scrape; further ones are ignored."},
   .int_field = &Config::http_max_scrape_hashes},
  {.spec = {"http.real_ip_header", "string", 0, 64, "\"\"",
            "Behind a reverse proxy: header holding the client address (e.g. \"X-Forwarded-For\" "
            "or \"X-Real-IP\"), read only from trusted_proxies; \"\" = always use the "
            "connection's address."},
   .string_field = &Config::http_real_ip_header, .string_check = check_header_name},
  {.spec = {"http.trusted_proxies", "list", 0, kMaxTrustedProxies, "[ ]",
            "Proxy addresses (\"10.0.0.0/8\", \"::1\") whose real_ip_header is believed; the "
            "right-most address in it that is not itself a trusted proxy is the peer."},
   .cidr_field = &Config::http_trusted_proxies},
  {.spec = {"https.enabled", "bool", 0, 1, "false",
            "Serve the same tracker over TLS (1.2 and 1.3); needs certificate and private_key."},
   .bool_field = &Config::https_enabled},
  {.spec = {"https.listen", "list", 0, kMaxListenAddresses, "[ \"0.0.0.0:6970\", \"[::]:6970\" ]",
            "TCP addresses for HTTPS, \"host:port\" or \"[v6host]:port\"."},
   .list_field = &Config::https_listen},
  {.spec = {"https.certificate", "string", 0, 4095, "\"\"",
            "PEM certificate chain file (server certificate first). Re-read on SIGHUP."},
   .string_field = &Config::https_certificate},
  {.spec = {"https.private_key", "string", 0, 4095, "\"\"",
            "PEM private key file of the certificate. Re-read on SIGHUP."},
   .string_field = &Config::https_private_key},
  {.spec = {"https.ciphersuites", "string", 1, 1023,
            "\"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384\"",
            "TLS 1.3 cipher suites for https and wss, in the server's order of preference; a client "
            "that lists ChaCha20-Poly1305 first gets it."},
   .string_field = &Config::https_ciphersuites},
  {.spec = {"ws.enabled", "bool", 0, 1, "false",
            "Serve the WebTorrent tracker over WebSocket (ws://host:port/announce): announces with "
            "WebRTC offers, answers relayed back, scrape."},
   .bool_field = &Config::ws_enabled},
  {.spec = {"ws.listen", "list", 0, kMaxListenAddresses, "[ \"0.0.0.0:6971\", \"[::]:6971\" ]",
            "TCP addresses for ws://, \"host:port\" or \"[v6host]:port\"."},
   .list_field = &Config::ws_listen},
  {.spec = {"ws.max_connections", "int", 16, 1000000, "16384",
            "Open WebSocket connections (ws and wss) per socket worker; a new one past it is closed."},
   .int_field = &Config::ws_max_connections},
  {.spec = {"ws.max_connections_per_source", "int", 0, 1000000, "256",
            "Of those, connections one source (an IPv4 address or an IPv6 /64) may hold per socket "
            "worker; a new one beyond it is closed at once. 0 = no limit."},
   .int_field = &Config::ws_max_connections_per_source},
  {.spec = {"ws.per_source_accept_rate", "int", 0, 1000000, "0",
            "New WebSocket connections per second one source may open per socket worker (token "
            "bucket); the excess is closed at once, before any TLS or opening handshake. 0 = no limit."},
   .int_field = &Config::ws_per_source_accept_rate},
  {.spec = {"ws.per_source_accept_burst", "int", 1, 1000000, "100",
            "Connections a source may open at once above ws.per_source_accept_rate (its bucket size)."},
   .int_field = &Config::ws_per_source_accept_burst},
  {.spec = {"ws.max_message_bytes", "int", 1024, 1048576, "65536",
            "Largest WebSocket message accepted, in bytes (a larger one closes the connection, 1009)."},
   .int_field = &Config::ws_max_message_bytes},
  {.spec = {"ws.handshake_timeout", "int", 1, 300, "10",
            "Seconds a new connection has to finish its TLS and WebSocket handshakes."},
   .int_field = &Config::ws_handshake_timeout},
  {.spec = {"ws.idle_timeout", "int", 10, 86400, "360",
            "Seconds without a message from the client before the tracker closes the connection."},
   .int_field = &Config::ws_idle_timeout},
  {.spec = {"ws.announce_interval", "int", 10, 86400, "120",
            "Seconds WebTorrent clients are told to wait between announces (\"interval\")."},
   .int_field = &Config::ws_announce_interval},
  {.spec = {"ws.max_offers", "int", 0, 50, "10",
            "Offers relayed per announce (each to a different peer of the swarm); more are ignored."},
   .int_field = &Config::ws_max_offers},
  {.spec = {"ws.max_pending_offers", "int", 1, 4096, "64",
            "Offers delivered to one connection and still awaiting its answer; the oldest is forgotten past it."},
   .int_field = &Config::ws_max_pending_offers},
  {.spec = {"ws.offer_ttl", "int", 1, 3600, "30",
            "Seconds an answer to a delivered offer is relayed; a later answer is dropped and counted."},
   .int_field = &Config::ws_offer_ttl},
  {.spec = {"ws.relay_bytes_per_second", "int", 1024, 1073741824, "262144",
            "Bytes of offers and answers one connection may have relayed per second (token bucket, "
            "burst of one second); the excess is dropped and counted."},
   .int_field = &Config::ws_relay_bytes_per_second},
  {.spec = {"ws.relay_ring_bytes", "int", 65536, 67108864, "1048576",
            "Size of each ring carrying offers and answers between two socket workers, in bytes "
            "(4 rings per ordered pair of socket workers)."},
   .int_field = &Config::ws_relay_ring_bytes},
  {.spec = {"ws.io_uring", "bool", 0, 1, "true",
            "Send the WebSocket connections' output (written once the event loop finds no socket "
            "ready, or about 1 ms late) in one io_uring system call instead of one send() per "
            "connection (and read them in one call, waiting "
            "while the request rings are nearly full); where io_uring is unavailable (kernel, sysctl "
            "kernel.io_uring_disabled, seccomp) the worker logs it and goes one by one."},
   .bool_field = &Config::ws_io_uring},
  {.spec = {"wss.enabled", "bool", 0, 1, "false",
            "Serve the WebTorrent tracker over TLS (wss://); uses https.certificate and https.private_key."},
   .bool_field = &Config::wss_enabled},
  {.spec = {"wss.listen", "list", 0, kMaxListenAddresses, "[ \"0.0.0.0:6972\", \"[::]:6972\" ]",
            "TCP addresses for wss://, \"host:port\" or \"[v6host]:port\"."},
   .list_field = &Config::wss_listen},
  {.spec = {"tracker.announce_interval", "int", 10, 86400, "1800",
            "Seconds clients are told to wait between announces (the \"interval\" field)."},
   .int_field = &Config::announce_interval},
  {.spec = {"tracker.new_torrents_per_source_rate", "int", 0, 1000000, "0",
            "Torrents one source (an IPv4 address or an IPv6 /64) may create per second in each "
            "partition (token bucket); an announce that would create one more gets an error. 0 = no limit."},
   .int_field = &Config::new_torrents_per_source_rate},
  {.spec = {"tracker.new_torrents_per_source_burst", "int", 1, 1000000, "1000",
            "Torrents a source may create at once above tracker.new_torrents_per_source_rate (its bucket size)."},
   .int_field = &Config::new_torrents_per_source_burst},
  {.spec = {"tracker.peer_ttl", "int", 20, 172800, "3600",
            "Seconds without an announce after which a peer is dropped from its swarm."},
   .int_field = &Config::peer_ttl},
  {.spec = {"tracker.snapshot_load", "string", 0, 4095, "\"\"",
            "Swarm snapshot (written by `shoalctl snapshot save FILE`) loaded at start when the shared memory is "
            "new: the first start, --fresh, or a shoald with another shared-memory layout (an upgrade). Peers "
            "last seen longer than peer_ttl ago are skipped. shoald reports ready once it is loaded. A missing "
            "file starts empty; a damaged one stops shoald (exit 1; `shoald -t` checks it). \"\" loads nothing. "
            "e.g. \"/var/lib/shoal/snapshot\""},
   .string_field = &Config::snapshot_load},
  {.spec = {"tracker.default_numwant", "int", 0, 200, "50",
            "Peers returned when the client sends no numwant or a negative one (BEP 15: -1); "
            "numwant=0 returns no peers, only the counts."},
   .int_field = &Config::default_numwant},
  {.spec = {"tracker.max_numwant", "int", 1, 200, "200",
            "Most peers returned in one reply (UDP is further capped to one datagram: 200 IPv4, "
            "67 IPv6)."},
   .int_field = &Config::max_numwant},
  {.spec = {"tracker.max_scrape_hashes", "int", 1, 74, "74",
            "Most info_hashes answered in one scrape request (BEP 15 allows about 74)."},
   .int_field = &Config::max_scrape_hashes},
  {.spec = {"tracker.cleanup_interval", "int", 1, 3600, "10",
            "Seconds between steps of the sweep that expires peers and empty torrents."},
   .int_field = &Config::cleanup_interval},
  {.spec = {"tracker.cleanup_budget", "int", 100, 10000000, "10000",
            "Peers examined per sweep step."},
   .int_field = &Config::cleanup_budget},
  {.spec = {"capacity.torrents_per_partition", "int", 16, shm::kMaxTorrents, "262144",
            "Torrents each swarm partition can hold (fixed at start; sizes shared memory)."},
   .int_field = &Config::torrents_per_partition},
  {.spec = {"capacity.peers_per_partition", "int", 16, shm::kMaxCapacity, "1048576",
            "Peers (IPv4 and IPv6) each swarm partition can hold (fixed at start)."},
   .int_field = &Config::peers_per_partition},
  {.spec = {"capacity.headroom_percent", "int", 0, 50, "10",
            "Share of peers_per_partition kept for swarms that exist: a new torrent is refused once a "
            "partition is this close to full, so a flood of new info_hashes cannot lock out every swarm."},
   .int_field = &Config::headroom_percent},
  {.spec = {"capacity.ring_slots", "int", 64, 65536, "4096",
            "Slots in each socket-worker/swarm-worker ring (power of two, 64-65536)."},
   .int_field = &Config::ring_slots, .int_check = check_power_of_two},
  {.spec = {"access_list.mode", "string", 0, 0, "\"off\"",
            "\"off\" serves every info_hash; \"allow\" serves only the hashes in path; \"deny\" "
            "serves all but them."},
   .string_field = &Config::access_list_mode, .string_check = check_access_mode},
  {.spec = {"access_list.path", "string", 0, 4095, "\"\"",
            "File of info_hashes, 40 hex digits a line (# comments, blank lines allowed); "
            "required unless mode is \"off\". Re-read on SIGUSR1."},
   .string_field = &Config::access_list_path},
  {.spec = {"access_list.max_entries", "int", 1, 16777216, "1048576",
            "Most hashes a list may hold (fixed at start; shared memory holds two lists of 20 "
            "bytes a hash)."},
   .int_field = &Config::access_list_max_entries},
  {.spec = {"topology.mode", "string", 0, 0, "\"off\"",
            "Where peers sit, for the location-aware peer_selection policies: \"off\"; \"file\" reads "
            "the map in file; \"prefix\" groups addresses by prefix_v4 / prefix_v6 without a map."},
   .string_field = &Config::topology_mode, .string_check = check_topology_mode},
  {.spec = {"topology.file", "string", 0, 4095, "\"\"",
            "Topology map: \"<CIDR> <location>\" a line, location = 1 to 4 levels such as "
            "region/zone/rack; longest prefix wins. Required when mode is \"file\". Re-read with the "
            "access list (SIGUSR1, shoalctl reload)."},
   .string_field = &Config::topology_file},
  {.spec = {"topology.default_location", "string", 0, 55, "\"unknown\"",
            "Location of addresses the map does not cover."},
   .string_field = &Config::topology_default_location, .string_check = check_location_setting},
  {.spec = {"topology.prefix_v4", "int", 1, 32, "24",
            "Mode \"prefix\": IPv4 addresses sharing this many leading bits are one location (rack)."},
   .int_field = &Config::topology_prefix_v4},
  {.spec = {"topology.prefix_v6", "int", 1, 128, "64",
            "Mode \"prefix\": IPv6 addresses sharing this many leading bits are one location (rack)."},
   .int_field = &Config::topology_prefix_v6},
  {.spec = {"topology.max_prefixes", "int", 1, 4194304, "131072",
            "Most mappings a map may hold (fixed at start; shared memory holds two range tables of "
            "about 48 bytes a mapping)."},
   .int_field = &Config::topology_max_prefixes},
  {.spec = {"topology.max_locations", "int", 1, 65535, "4096",
            "Most distinct locations over the daemon's life (fixed at start; 64 bytes each)."},
   .int_field = &Config::topology_max_locations},
  {.spec = {"peer_selection.policy", "string", 0, 0, "\"random\"",
            "How announce replies pick peers: \"random\"; \"nearest\" (same rack, then zone, then "
            "region, then anywhere); \"tiered\" (rack representatives; needs topology)."},
   .string_field = &Config::peer_selection_policy, .string_check = check_policy},
  {.spec = {"peer_selection.max_representatives_per_rack", "int", 1, 64, "2",
            "Policy \"tiered\": hosts per rack and torrent that get peers from other racks."},
   .int_field = &Config::max_representatives_per_rack},
  {.spec = {"stats.socket", "string", 0, 107, "\"/run/shoald.sock\"",
            "Unix socket of the stats/admin protocol used by shoalctl; \"\" disables it."},
   .string_field = &Config::stats_socket},
  {.spec = {"stats.mode", "string", 0, 0, "\"0600\"",
            "File mode of the stats socket, four octal digits (who may connect)."},
   .string_field = &Config::stats_mode, .string_check = check_octal_mode},
  {.spec = {"metrics.listen", "string", 0, 64, "\"\"",
            "Address of the Prometheus metrics endpoint (GET /metrics), e.g. \"127.0.0.1:9469\"; \"\" disables it."},
   .string_field = &Config::metrics_listen, .string_check = check_optional_address},
  {.spec = {"transfers.state_dir", "string", 0, 4095, "\"\"",
            "Directory where registered deploy transfers (.torrent files) are kept across restarts, "
            "created if missing; \"\" turns transfer registration off."},
   .string_field = &Config::transfers_state_dir},
  {.spec = {"transfers.mode", "string", 0, 0, "\"open\"",
            "\"open\" serves every torrent (registration only adds metadata); \"deploy\" serves peers only "
            "for registered transfers (others get no peers and a warning). Needs state_dir."},
   .string_field = &Config::transfers_mode, .string_check = check_transfers_mode},
  {.spec = {"transfers.max_transfers", "int", 1, 1048576, "4096",
            "Most transfers registered at once (fixed at start; shared memory holds two tables of 32 bytes "
            "a transfer)."},
   .int_field = &Config::transfers_max},
  {.spec = {"transfers.active_interval", "int", 10, 86400, "30",
            "Announce interval (seconds) of a registered transfer in progress (a leecher left, or no completion "
            "yet); every other torrent gets tracker.announce_interval, the passive interval."},
   .int_field = &Config::transfers_active_interval},
  {.spec = {"admin.listen", "string", 0, 64, "\"\"",
            "Address of the admin HTTP API for deploy transfers, e.g. \"127.0.0.1:9470\" (keep it on "
            "loopback or a management network); \"\" disables it. Needs transfers.state_dir."},
   .string_field = &Config::admin_listen, .string_check = check_optional_address},
  {.spec = {"cluster.enabled", "bool", 0, 1, "false",
            "Run as one node of several that serve the same swarms: every node keeps every swarm and "
            "they exchange peer changes over NATS (a sync worker process talks to the servers)."},
   .bool_field = &Config::cluster_enabled},
  {.spec = {"cluster.node_id", "int", 1, 65535, "1",
            "This node's number, unique in the cluster (a node ignores changes sent with its own number)."},
   .int_field = &Config::cluster_node_id},
  {.spec = {"cluster.node_name", "string", 0, 55, "\"\"",
            "Name shown to the other nodes (shoalctl show cluster); \"\" = the host name."},
   .string_field = &Config::cluster_node_name, .string_check = check_node_name},
  {.spec = {"cluster.servers", "list", 0, 32, "[ \"nats://127.0.0.1:4222\" ]",
            "NATS server URLs, \"nats://host:port\" or \"tls://host:port\" (user:password@ allowed); the "
            "client connects to one and fails over to the others and to those the cluster announces."},
   .strings_field = &Config::cluster_servers, .element_check = check_nats_url},
  {.spec = {"cluster.subject", "string", 1, 64, "\"shoal\"",
            "Subject prefix: changes travel on <subject>.deltas. Clusters sharing NATS servers need different ones."},
   .string_field = &Config::cluster_subject, .string_check = check_subject},
  {.spec = {"cluster.batch_delay", "int", 1, 10000, "100",
            "Milliseconds between two batches of changes sent (and received) by the sync worker: a "
            "change reaches the other nodes about this long after the announce."},
   .int_field = &Config::cluster_batch_delay_ms},
  {.spec = {"cluster.renewal_suppression", "int", 0, 86400, "600",
            "A renewal that changes nothing (same seeder state, no event) is sent at most once per this "
            "many seconds per peer (opentracker sends none within 10 minutes); 0 sends every renewal. "
            "Must stay below tracker.peer_ttl minus tracker.announce_interval, or other nodes expire live peers."},
   .int_field = &Config::cluster_renewal_suppression},
  {.spec = {"cluster.credentials", "string", 0, 4095, "\"\"",
            "NATS credentials file (.creds: user JWT and NKey seed) for servers that require it; \"\" = none."},
   .string_field = &Config::cluster_credentials},
  {.spec = {"cluster.tls", "bool", 0, 1, "false",
            "Connect to the servers over TLS (tls:// URLs do too)."},
   .bool_field = &Config::cluster_tls},
  {.spec = {"cluster.tls_ca", "string", 0, 4095, "\"\"",
            "PEM file of the CAs that sign the servers' certificates; \"\" = the system's."},
   .string_field = &Config::cluster_tls_ca},
  {.spec = {"cluster.tls_certificate", "string", 0, 4095, "\"\"",
            "Client certificate (PEM) for servers that verify clients; \"\" = none. Needs tls_private_key."},
   .string_field = &Config::cluster_tls_certificate},
  {.spec = {"cluster.tls_private_key", "string", 0, 4095, "\"\"",
            "Private key (PEM) of tls_certificate."},
   .string_field = &Config::cluster_tls_private_key},
  {.spec = {"cluster.join_timeout", "int", 0, 3600, "3",
            "Seconds a node with new shared memory waits for another node to answer its snapshot request "
            "(and, once loading, for each next part of the answer); it is not ready until it loaded the "
            "snapshot or this time passed without an answer (the first node of a cluster). 0: no join."},
   .int_field = &Config::cluster_join_timeout},
  {.spec = {"cluster.ring_slots", "int", 64, 1048576, "16384",
            "Changes each ring between a swarm worker and the sync worker holds (power of two); a change "
            "that finds its ring full is dropped and counted."},
   .int_field = &Config::cluster_ring_slots, .int_check = check_power_of_two},
};
// clang-format on

}  // namespace

// The schema rows, in conf/shoal.conf order. Built once; safe to call from anywhere.
const std::vector<SettingSpec>& schema() {
  static const std::vector<SettingSpec> specs = [] {
    std::vector<SettingSpec> out;
    for (const Row& row : kRows) out.push_back(row.spec);
    return out;
  }();
  return specs;
}

namespace internal {

// Checks `setting` (the value of schema row `row`) and stores it into *config, or appends one
// error per problem to *errors and leaves *config unchanged for that setting.
void store_setting(size_t row, const libconfig::Setting& setting, Config* config,
                   std::vector<ConfigError>* errors) {
  store_row(kRows[row], setting, config, errors);
}

// The stored value of an "int" row, for cross-field checks.
int64_t int_setting_value(size_t row, const Config& config) { return config.*kRows[row].int_field; }

// Config{} plus the defaults its member initialisers cannot express (the listen lists).
Config default_config() {
  Config config;
  auto fill = [](const char* const* texts, size_t n, std::vector<ListenAddress>* out) {
    for (size_t i = 0; i < n; ++i) {
      ListenAddress address;
      parse_listen_address(texts[i], &address, nullptr);
      out->push_back(address);
    }
  };
  fill(kDefaultUdpListen, std::size(kDefaultUdpListen), &config.udp_listen);
  fill(kDefaultHttpListen, std::size(kDefaultHttpListen), &config.http_listen);
  fill(kDefaultHttpsListen, std::size(kDefaultHttpsListen), &config.https_listen);
  fill(kDefaultWsListen, std::size(kDefaultWsListen), &config.ws_listen);
  fill(kDefaultWssListen, std::size(kDefaultWssListen), &config.wss_listen);
  return config;
}

}  // namespace internal
}  // namespace shoal::conf
