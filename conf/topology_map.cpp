// conf/topology_map.cpp — see topology_map.hpp. Reads the whole file (a map of 100,000 prefixes
// is a few MiB), splits it into lines and parses each; the first bad line stops the parse so
// the caller keeps the map it has (reload) or refuses to start.
#include "conf/topology_map.hpp"
#include "conf/line_text.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace shoal::conf {
namespace {


bool level_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// The whitespace-separated fields of one line, comment removed.
std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> out;
  size_t end = line.find('#');
  if (end == std::string::npos) end = line.size();
  size_t i = 0;
  while (i < end) {
    while (i < end && is_space(line[i])) ++i;
    size_t b = i;
    while (i < end && !is_space(line[i])) ++i;
    if (i > b) out.push_back(line.substr(b, i - b));
  }
  return out;
}

std::string block_key(const Cidr& c) {
  return std::string(reinterpret_cast<const char*>(c.addr), 16) + char(c.family) + char(c.prefix);
}

}  // namespace

std::string check_location(const std::string& location) {
  if (location.empty()) return "empty location";
  if (location.size() > kMaxLocationChars)
    return "location \"" + location + "\" is longer than " + std::to_string(kMaxLocationChars) + " characters";
  size_t depth = 1;
  for (size_t i = 0; i < location.size(); i++) {
    char c = location[i];
    if (c == '/') {
      if (i == 0 || i + 1 == location.size() || location[i + 1] == '/')
        return "location \"" + location + "\": empty level";
      ++depth;
    } else if (!level_char(c)) {
      return "location \"" + location + "\": character '" + std::string(1, c) +
             "' not allowed (levels use A-Z a-z 0-9 . _ -)";
    }
  }
  if (depth > kMaxLocationDepth)
    return "location \"" + location + "\" has " + std::to_string(depth) + " levels (at most " +
           std::to_string(kMaxLocationDepth) + ")";
  return "";
}

TopologyMapResult parse_topology_map(const std::string& text, const std::string& name, size_t max_prefixes) {
  TopologyMapResult r;
  std::map<std::string, size_t> seen;  // block → index in r.entries
  std::istringstream in(text);
  std::string line;
  auto fail = [&](const std::string& why) {
    r.error = name + ":" + std::to_string(r.lines) + ": " + why;
    r.entries.clear();
    return r;
  };
  while (std::getline(in, line)) {
    ++r.lines;
    std::vector<std::string> f = fields_of(line);
    if (f.empty()) continue;
    if (f.size() != 2)
      return fail("expected \"<CIDR> <location>\", got " + std::to_string(f.size()) +
                  (f.size() == 1 ? " field" : " fields"));
    TopologyEntry e;
    std::string why;
    if (!parse_cidr(f[0], &e.block, &why)) return fail(why);
    if (std::string bad = check_location(f[1]); !bad.empty()) return fail(bad);
    e.location = f[1];
    e.line = r.lines;
    auto [it, fresh] = seen.emplace(block_key(e.block), r.entries.size());
    if (!fresh) {
      const TopologyEntry& first = r.entries[it->second];
      if (first.location != e.location)
        return fail(f[0] + " is already mapped to \"" + first.location + "\" on line " + std::to_string(first.line));
      continue;
    }
    if (r.entries.size() >= max_prefixes)
      return fail("more than topology.max_prefixes (" + std::to_string(max_prefixes) + ") mappings");
    r.entries.push_back(std::move(e));
  }
  return r;
}

TopologyMapResult load_topology_map(const std::string& path, size_t max_prefixes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    TopologyMapResult r;
    r.error = path + ": cannot open: " + strerror(errno);
    return r;
  }
  std::ostringstream text;
  text << f.rdbuf();
  return parse_topology_map(text.str(), path, max_prefixes);
}

std::string check_topology_config(const Config& cfg) {
  if (cfg.topology_mode != "file") return "";
  TopologyMapResult r = load_topology_map(cfg.topology_file, cfg.topology_max_prefixes);
  return r.error;
}

}  // namespace shoal::conf
