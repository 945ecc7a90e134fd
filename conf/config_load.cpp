// conf/config_load.cpp — reads a libconfig file or text, walks its tree against the schema table
// (conf/config_schema.cpp) and returns the Config with every problem found, each as
// "file:line: setting: problem". Runs in the supervisor at start and on reload, and for
// `shoald -t` / `-p`; touches no shared memory. A load never stops at the first error: absent
// settings keep their defaults, unknown ones are errors, and cross-field checks run only when
// both settings are individually valid (so one mistake is reported once).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <libconfig.h++>

#include "conf/config.hpp"

namespace shoal::conf {

extern const char kDefaultConfigText[];  // conf/shoal.conf, generated into default_conf.cpp

namespace internal {
// Defined in conf/config_schema.cpp (no private header in this folder).
void store_setting(size_t row, const libconfig::Setting& setting, Config* config,
                   std::vector<ConfigError>* errors);
int64_t int_setting_value(size_t row, const Config& config);
Config default_config();
}  // namespace internal

namespace {

constexpr size_t kNoRow = static_cast<size_t>(-1);

// An ordering between two int settings. Reported on `high` (later in the file) when it is
// present, else on `low`.
struct CrossCheck {
  const char* low;
  const char* high;
  bool strict;  // low < high rather than low <= high
};

const CrossCheck kCrossChecks[] = {
    {"supervisor.restart_backoff_min", "supervisor.restart_backoff_max", false},
    {"tracker.announce_interval", "tracker.peer_ttl", true},
    {"tracker.default_numwant", "tracker.max_numwant", false},
};

// What one load has found so far, per schema row.
struct LoadState {
  Config config = internal::default_config();
  std::vector<ConfigError> errors;
  std::vector<const libconfig::Setting*> found =
      std::vector<const libconfig::Setting*>(schema().size());  // null when absent
  std::vector<bool> failed = std::vector<bool>(schema().size());
};

size_t find_row(const std::string& path) {
  const std::vector<SettingSpec>& specs = schema();
  for (size_t i = 0; i < specs.size(); ++i) {
    if (path == specs[i].path) return i;
  }
  return kNoRow;
}

// True when `path` is a group of the schema ("udp" for "udp.listen").
bool is_group_path(const std::string& path) {
  std::string prefix = path + ".";
  for (const SettingSpec& spec : schema()) {
    if (std::string_view(spec.path).starts_with(prefix)) return true;
  }
  return false;
}

void add_error(const libconfig::Setting& at, const std::string& path, std::string message,
               LoadState* st) {
  const char* file = at.getSourceFile();
  st->errors.push_back(ConfigError{file ? file : "", static_cast<int>(at.getSourceLine()), path,
                                   std::move(message)});
}

// "unknown setting", with a hint when the name exists elsewhere (peer_ttl → tracker.peer_ttl).
std::string unknown_problem(const std::string& name) {
  for (const SettingSpec& spec : schema()) {
    std::string_view path = spec.path;
    size_t dot = path.rfind('.');
    if (dot != std::string_view::npos && path.substr(dot + 1) == name) {
      return "unknown setting (did you mean " + std::string(path) + "?)";
    }
  }
  return "unknown setting";
}

void walk_group(const libconfig::Setting& group, const std::string& prefix, LoadState* st);

// Visits one named setting of a group: a schema row, a schema group, or an unknown name.
void visit(const libconfig::Setting& s, const std::string& prefix, LoadState* st) {
  std::string path = prefix.empty() ? s.getName() : prefix + "." + s.getName();
  size_t row = find_row(path);
  if (row != kNoRow) {
    size_t before = st->errors.size();
    st->found[row] = &s;
    internal::store_setting(row, s, &st->config, &st->errors);
    st->failed[row] = st->errors.size() > before;
  } else if (!is_group_path(path)) {
    add_error(s, path, unknown_problem(s.getName()), st);
  } else if (s.getType() != libconfig::Setting::TypeGroup) {
    add_error(s, path, "expected a group, " + path + ": { ... };", st);
  } else {
    walk_group(s, path, st);
  }
}

void walk_group(const libconfig::Setting& group, const std::string& prefix, LoadState* st) {
  for (int i = 0; i < group.getLength(); ++i) visit(group[i], prefix, st);
}

// Message for a violated CrossCheck, phrased from the side it is reported on.
std::string cross_problem(const CrossCheck& check, bool on_high, int64_t low, int64_t high) {
  std::string relation = on_high ? (check.strict ? "greater than " : "at least ")
                                 : (check.strict ? "less than " : "at most ");
  std::string other = on_high ? check.low : check.high;
  int64_t other_value = on_high ? low : high;
  return "must be " + relation + other + " (" + std::to_string(other_value) + "), got " +
         std::to_string(on_high ? high : low);
}

void check_cross_fields(LoadState* st) {
  for (const CrossCheck& check : kCrossChecks) {
    size_t low_row = find_row(check.low), high_row = find_row(check.high);
    if (st->failed[low_row] || st->failed[high_row]) continue;
    int64_t low = internal::int_setting_value(low_row, st->config);
    int64_t high = internal::int_setting_value(high_row, st->config);
    if (check.strict ? low < high : low <= high) continue;
    bool on_high = st->found[high_row] != nullptr;
    const libconfig::Setting* at = on_high ? st->found[high_row] : st->found[low_row];
    if (!at) continue;  // both absent: the defaults satisfy every check
    add_error(*at, on_high ? check.high : check.low, cross_problem(check, on_high, low, high), st);
  }
}

// A listen list may be empty only when its protocol is off.
struct ListenCheck {
  const char* enabled;
  const char* listen;
  bool Config::*enabled_field;
  std::vector<ListenAddress> Config::*listen_field;
};

const ListenCheck kListenChecks[] = {
    {"udp.enabled", "udp.listen", &Config::udp_enabled, &Config::udp_listen},
    {"http.enabled", "http.listen", &Config::http_enabled, &Config::http_listen},
    {"https.enabled", "https.listen", &Config::https_enabled, &Config::https_listen},
    {"ws.enabled", "ws.listen", &Config::ws_enabled, &Config::ws_listen},
    {"wss.enabled", "wss.listen", &Config::wss_enabled, &Config::wss_listen},
};

void check_listen_lists(LoadState* st) {
  for (const ListenCheck& check : kListenChecks) {
    size_t listen_row = find_row(check.listen), enabled_row = find_row(check.enabled);
    const libconfig::Setting* listen = st->found[listen_row];
    if (!listen || st->failed[listen_row] || st->failed[enabled_row]) continue;
    if (st->config.*check.enabled_field && (st->config.*check.listen_field).empty()) {
      add_error(*listen, check.listen,
                std::string("must list at least one address while ") + check.enabled +
                    " is true",
                st);
    }
  }
}

// HTTP, HTTPS, WS and WSS are all TCP: one address cannot serve two of them (reported on the
// later list of a clashing pair; their defaults differ in port).
void check_tcp_overlap(LoadState* st) {
  const ListenCheck* tcp = kListenChecks + 1;  // every row after udp
  size_t n = std::size(kListenChecks) - 1;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      size_t ri = find_row(tcp[i].listen), rj = find_row(tcp[j].listen);
      if (st->failed[ri] || st->failed[rj] || (!st->found[ri] && !st->found[rj])) continue;
      const libconfig::Setting* at = st->found[rj] ? st->found[rj] : st->found[ri];
      const char* where = st->found[rj] ? tcp[j].listen : tcp[i].listen;
      for (const ListenAddress& a : st->config.*tcp[j].listen_field)
        for (const ListenAddress& b : st->config.*tcp[i].listen_field)
          if (a.addr_len == b.addr_len && memcmp(&a.addr, &b.addr, a.addr_len) == 0 && a.port != 0)
            add_error(*at, where, "\"" + a.text + "\" is in both " + tcp[i].listen + " and " + tcp[j].listen, st);
    }
  }
}

// https.enabled needs a certificate and a key; a real_ip_header needs proxies to trust.
void check_https_and_proxies(LoadState* st) {
  size_t enabled_row = find_row("https.enabled");
  if (!st->config.https_enabled && st->config.wss_enabled && !st->failed[find_row("wss.enabled")])
    enabled_row = find_row("wss.enabled");  // wss uses the https certificate
  if (st->found[enabled_row] && !st->failed[enabled_row] && (st->config.https_enabled || st->config.wss_enabled)) {
    for (const char* path : {"https.certificate", "https.private_key"}) {
      size_t row = find_row(path);
      if (st->failed[row]) continue;
      const std::string& value = std::string_view(path) == "https.certificate"
                                     ? st->config.https_certificate
                                     : st->config.https_private_key;
      if (value.empty()) {
        const libconfig::Setting* at = st->found[row] ? st->found[row] : st->found[enabled_row];
        add_error(*at, path, std::string("must name a PEM file while ") + (st->config.https_enabled ? "https" : "wss") +
                                 ".enabled is true", st);
      }
    }
  }
  size_t header_row = find_row("http.real_ip_header"), proxies_row = find_row("http.trusted_proxies");
  const libconfig::Setting* header = st->found[header_row];
  if (header && !st->failed[header_row] && !st->failed[proxies_row] &&
      !st->config.http_real_ip_header.empty() && st->config.http_trusted_proxies.empty()) {
    add_error(*header, "http.real_ip_header",
              "is read only from http.trusted_proxies, which is empty; list the proxies", st);
  }
}

// access_list.mode "allow" or "deny" needs a file (reported on path when written, else on mode).
void check_access_list(LoadState* st) {
  size_t mode_row = find_row("access_list.mode"), path_row = find_row("access_list.path");
  const libconfig::Setting* mode = st->found[mode_row];
  if (!mode || st->failed[mode_row] || st->failed[path_row] || st->config.access_list_mode == "off") return;
  if (!st->config.access_list_path.empty()) return;
  const libconfig::Setting* at = st->found[path_row] ? st->found[path_row] : mode;
  add_error(*at, "access_list.path",
            "must name a file of info_hashes while access_list.mode is \"" + st->config.access_list_mode + "\"", st);
}

// topology.mode "file" needs a file; the nearest and tiered policies need a topology.
void check_topology(LoadState* st) {
  size_t mode_row = find_row("topology.mode"), file_row = find_row("topology.file");
  const libconfig::Setting* mode = st->found[mode_row];
  if (mode && !st->failed[mode_row] && !st->failed[file_row] && st->config.topology_mode == "file" &&
      st->config.topology_file.empty()) {
    const libconfig::Setting* at = st->found[file_row] ? st->found[file_row] : mode;
    add_error(*at, "topology.file", "must name a topology map while topology.mode is \"file\"", st);
  }
  size_t policy_row = find_row("peer_selection.policy");
  const libconfig::Setting* policy = st->found[policy_row];
  if (policy && !st->failed[policy_row] && !st->failed[mode_row] && st->config.peer_selection_policy != "random" &&
      st->config.topology_mode == "off") {
    add_error(*policy, "peer_selection.policy",
              "\"" + st->config.peer_selection_policy + "\" needs locations: set topology.mode to \"file\" or \"prefix\"",
              st);
  }
}

// A tracker that listens on nothing would start "ready" and serve no one: at least one of
// udp.enabled, http.enabled and https.enabled must be true (reported on the last one written).
void check_some_protocol(LoadState* st) {
  const libconfig::Setting* at = nullptr;
  const char* path = nullptr;
  for (const ListenCheck& check : kListenChecks) {
    size_t row = find_row(check.enabled);
    if (st->failed[row] || st->config.*check.enabled_field) return;
    if (st->found[row] && (!at || st->found[row]->getSourceLine() > at->getSourceLine())) {
      at = st->found[row];
      path = check.enabled;
    }
  }
  if (at) add_error(*at, path, "every protocol is disabled (udp, http, https, ws, wss): shoald would serve nothing", st);
}

// stats.socket is bound at start: its directory must exist then (checked here so `shoald -t`
// says so, not the start). The file itself is created by shoald.
void check_stats_socket_dir(LoadState* st) {
  size_t row = find_row("stats.socket");
  const std::string& path = st->config.stats_socket;
  if (st->failed[row] || path.empty()) return;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat sb{};
  std::string why;
  if (stat(dir.c_str(), &sb) != 0) why = errno == ENOENT ? "no such directory" : strerror(errno);
  else if (!S_ISDIR(sb.st_mode)) why = "not a directory";
  else return;
  std::string message = "directory " + dir + " of \"" + path + "\": " + why + " (create it, or set another path)";
  if (st->found[row]) add_error(*st->found[row], "stats.socket", message, st);
  else st->errors.push_back(ConfigError{"", 0, "stats.socket", message});
}

// The admin API registers transfers into transfers.state_dir: it cannot work without one.
void check_admin_needs_state_dir(LoadState* st) {
  size_t row = find_row("admin.listen");
  const libconfig::Setting* at = st->found[row];
  if (!at || st->failed[row] || st->config.admin_listen.empty() || !st->config.transfers_state_dir.empty()) return;
  add_error(*at, "admin.listen", "needs transfers.state_dir (where registered .torrent files are kept)", st);
}

// cluster (issue 14): at least one server; renewal suppression short enough that other nodes
// hear of a live peer before they expire it (each node expires by its own last-seen time, and a
// suppressed peer is heard of every renewal_suppression + announce_interval seconds at worst);
// a client certificate comes with its key.
void check_cluster(LoadState* st) {
  const Config& c = st->config;
  if (!c.cluster_enabled) return;
  size_t enabled_row = find_row("cluster.enabled"), servers_row = find_row("cluster.servers");
  const libconfig::Setting* at = st->found[servers_row] ? st->found[servers_row] : st->found[enabled_row];
  if (at && !st->failed[servers_row] && c.cluster_servers.empty())
    add_error(*at, "cluster.servers", "must list at least one server while cluster.enabled is true", st);
  size_t sup_row = find_row("cluster.renewal_suppression");
  const libconfig::Setting* sup = st->found[sup_row] ? st->found[sup_row] : st->found[enabled_row];
  if (sup && !st->failed[sup_row] && uint64_t(c.cluster_renewal_suppression) + c.announce_interval >= c.peer_ttl)
    add_error(*sup, "cluster.renewal_suppression",
              "must be less than tracker.peer_ttl (" + std::to_string(c.peer_ttl) + ") minus tracker.announce_interval (" +
                  std::to_string(c.announce_interval) + "), got " + std::to_string(c.cluster_renewal_suppression) +
                  ": other nodes would expire peers that still announce",
              st);
  size_t cert_row = find_row("cluster.tls_certificate");
  if (const libconfig::Setting* cert = st->found[cert_row];
      cert && !c.cluster_tls_certificate.empty() && c.cluster_tls_private_key.empty())
    add_error(*cert, "cluster.tls_certificate", "needs cluster.tls_private_key", st);
}

// daemon.group is the group of daemon.user: without a user to switch to, root would keep uid 0.
void check_group_needs_user(LoadState* st) {
  size_t row = find_row("daemon.group");
  const libconfig::Setting* at = st->found[row];
  if (!at || st->failed[row] || st->config.daemon_group.empty() || !st->config.daemon_user.empty()) return;
  add_error(*at, "daemon.group", "needs daemon.user (the user to run as)", st);
}

// transfers.mode "deploy" serves only registered transfers: without a state_dir there are none.
void check_deploy_needs_state_dir(LoadState* st) {
  size_t row = find_row("transfers.mode");
  const libconfig::Setting* at = st->found[row];
  if (!at || st->failed[row] || st->config.transfers_mode != "deploy" || !st->config.transfers_state_dir.empty()) return;
  add_error(*at, "transfers.mode", "\"deploy\" needs transfers.state_dir (where registered transfers are kept)", st);
}

// libconfig 1.5 silently wraps integer literals that do not fit in 32 bits (4294971392 reads as
// 4096). promote_wide_integers() appends the L suffix to those, so libconfig reads them as 64-bit
// and the range checks see what the user wrote. Line numbers are unchanged. The scanner only
// needs to tell numbers from comments, strings and names; @include'd files are not rewritten.
bool one_of(char c, std::string_view set) { return set.find(c) != std::string_view::npos; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || one_of(c, "-_*");
}

int digit_value(char c, bool hex) {
  if (is_digit(c)) return c - '0';
  if (hex && c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (hex && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

size_t float_end(const std::string& t, size_t j) {
  while (j < t.size() && (is_digit(t[j]) || one_of(t[j], ".eE+-"))) ++j;
  return j;
}

// End of the number at t[i] ([+-]digits, 0xhex, or a float); *wide when it is an integer
// without L that does not fit in an int32.
size_t number_end(const std::string& t, size_t i, bool* wide) {
  bool negative = t[i] == '-';
  size_t j = one_of(t[i], "+-") ? i + 1 : i;
  bool hex = t.compare(j, 2, "0x") == 0 || t.compare(j, 2, "0X") == 0;
  uint64_t value = 0;
  for (j += hex ? 2 : 0; j < t.size() && digit_value(t[j], hex) >= 0; ++j) {
    value = std::min<uint64_t>(value * (hex ? 16 : 10) + digit_value(t[j], hex), 1ull << 40);
  }
  if (!hex && j < t.size() && one_of(t[j], ".eE")) return float_end(t, j);
  bool has_suffix = j < t.size() && t[j] == 'L';
  *wide = !has_suffix && value > (negative ? 2147483648ull : 2147483647ull);
  return j;
}

// End of the token at t[i]: a comment, a string, a name, a number, or one character.
size_t token_end(const std::string& t, size_t i, bool* wide) {
  char c = t[i];
  bool next_digit = i + 1 < t.size() && is_digit(t[i + 1]);
  if (c == '#' || t.compare(i, 2, "//") == 0) return std::min(t.find('\n', i), t.size());
  if (t.compare(i, 2, "/*") == 0) {
    size_t close = t.find("*/", i + 2);
    return close == std::string::npos ? t.size() : close + 2;
  }
  if (c == '"') {
    size_t j = i + 1;
    while (j < t.size() && t[j] != '"') j += t[j] == '\\' ? 2 : 1;
    return std::min(j + 1, t.size());
  }
  if (is_name_char(c) && !is_digit(c) && !one_of(c, "-")) {  // a name: a1, foo-bar
    size_t j = i + 1;
    while (j < t.size() && is_name_char(t[j])) ++j;
    return j;
  }
  if (c == '.' && next_digit) return float_end(t, i);
  if (is_digit(c) || (one_of(c, "+-") && next_digit)) return number_end(t, i, wide);
  return i + 1;
}

std::string promote_wide_integers(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    bool wide = false;
    size_t end = token_end(text, i, &wide);
    out.append(text, i, end - i);
    if (wide) out += 'L';
    i = end;
  }
  return out;
}

// Parses `text`; on a syntax error appends it to st->errors and returns false.
bool parse_text(const std::string& text, const std::string& include_dir, libconfig::Config* lc,
                LoadState* st) {
  if (!include_dir.empty()) lc->setIncludeDir(include_dir.c_str());
  try {
    lc->readString(promote_wide_integers(text));
    return true;
  } catch (const libconfig::ParseException& e) {
    st->errors.push_back(
        ConfigError{e.getFile() ? e.getFile() : "", e.getLine(), "", e.getError()});
  } catch (const libconfig::ConfigException& e) {
    st->errors.push_back(ConfigError{"", 0, "", e.what()});
  }
  return false;
}

LoadResult load(const std::string& text, const std::string& name, const std::string& include_dir) {
  LoadState st;
  libconfig::Config lc;
  if (parse_text(text, include_dir, &lc, &st)) {
    walk_group(lc.getRoot(), "", &st);
    check_cross_fields(&st);
    check_listen_lists(&st);
    check_tcp_overlap(&st);
    check_https_and_proxies(&st);
    check_access_list(&st);
    check_topology(&st);
    check_some_protocol(&st);
    check_stats_socket_dir(&st);
    check_admin_needs_state_dir(&st);
    check_deploy_needs_state_dir(&st);
    check_group_needs_user(&st);
    check_cluster(&st);
  }
  for (ConfigError& error : st.errors) {
    if (error.file.empty()) error.file = name;
  }
  std::stable_sort(st.errors.begin(), st.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  st.config.source = name;
  return LoadResult{std::move(st.config), std::move(st.errors)};
}

// Reads a whole file; on failure returns false with *error = errno.
bool read_file(const std::string& path, std::string* text, int* error) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = errno;
    return false;
  }
  char buffer[16384];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof buffer)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text->append(buffer, static_cast<size_t>(n));
  }
  *error = n < 0 ? errno : 0;
  close(fd);
  return n == 0;
}

}  // namespace

// "file:line: setting: message"; "file: ..." when the line is unknown (0), no "setting: " when
// the problem is not about one setting (syntax errors, unreadable files).
std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!setting.empty()) out += setting + ": ";
  return out + message;
}

// Loads `path`. An unreadable file gives the single error "path: cannot read: <strerror>".
// @include paths are relative to the file's directory.
LoadResult load_config_file(const std::string& path) {
  std::string text;
  int error = 0;
  if (!read_file(path, &text, &error)) {
    LoadResult result{internal::default_config(), {}};
    result.errors.push_back(
        ConfigError{path, 0, "", std::string("cannot read: ") + strerror(error)});
    result.config.source = path;
    return result;
  }
  size_t slash = path.rfind('/');
  return load(text, path, slash == std::string::npos ? "" : path.substr(0, slash + 1));
}

// Loads configuration text held in memory; `name` stands for the file in errors and in
// Config::source.
LoadResult load_config_text(const std::string& text, const std::string& name) {
  return load(text, name, "");
}

// conf/shoal.conf as embedded at build time, byte for byte (the generator's raw string starts
// with a newline, which is dropped here so line numbers match the file).
const char* default_config_text() {
  return kDefaultConfigText[0] == '\n' ? kDefaultConfigText + 1 : kDefaultConfigText;
}

}  // namespace shoal::conf
