// conf/cidr.cpp — parses the address blocks of http.trusted_proxies ("10.0.0.0/8", "::1") and
// tests addresses against them. Parsing runs in the supervisor while the configuration is
// loaded; cidr_contains runs in socket workers on every HTTP request from a configured proxy
// (pure, no allocation). Touches no shared memory. Numeric addresses only, like listen
// addresses: a trust decision must not depend on DNS.
#include <arpa/inet.h>

#include <cstring>

#include "conf/config.hpp"

namespace shoal::conf {
namespace {

bool fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return false;
}

// Decimal 0..max, digits only. Returns -1 when invalid.
int parse_prefix(const std::string& text, int max) {
  if (text.empty() || text.size() > 3) return -1;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value <= max ? value : -1;
}

// Clears the bits after `prefix` in addr[0..bytes).
void clear_host_bits(uint8_t* addr, size_t bytes, int prefix) {
  for (size_t i = 0; i < bytes; i++) {
    int keep = prefix - int(i) * 8;
    if (keep >= 8) continue;
    addr[i] = keep <= 0 ? 0 : uint8_t(addr[i] & (0xff << (8 - keep)));
  }
}

const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

bool parse_cidr(const std::string& text, Cidr* out, std::string* why) {
  size_t slash = text.find('/');
  std::string host = text.substr(0, slash);
  Cidr parsed;
  if (inet_pton(AF_INET, host.c_str(), parsed.addr) == 1) {
    parsed.family = AF_INET;
  } else if (inet_pton(AF_INET6, host.c_str(), parsed.addr) == 1) {
    parsed.family = AF_INET6;
  } else {
    return fail(why, "not a numeric IPv4 or IPv6 address: \"" + host + "\"");
  }
  int max = parsed.family == AF_INET ? 32 : 128;
  int prefix = max;
  if (slash != std::string::npos) {
    prefix = parse_prefix(text.substr(slash + 1), max);
    if (prefix < 0) {
      return fail(why, "bad prefix length \"" + text.substr(slash + 1) + "\" (must be 0 to " +
                           std::to_string(max) + ")");
    }
  }
  if (parsed.family == AF_INET6 && prefix >= 96 && memcmp(parsed.addr, kMappedPrefix, 12) == 0) {
    memmove(parsed.addr, parsed.addr + 12, 4);
    memset(parsed.addr + 4, 0, 12);
    parsed.family = AF_INET;
    prefix -= 96;
  }
  clear_host_bits(parsed.addr, parsed.family == AF_INET ? 4 : 16, prefix);
  parsed.prefix = uint8_t(prefix);
  parsed.text = text;
  *out = std::move(parsed);
  return true;
}

bool cidr_contains(const Cidr& block, int family, const uint8_t* addr) {
  if (family != block.family) return false;
  int full = block.prefix / 8, rest = block.prefix % 8;
  if (memcmp(block.addr, addr, size_t(full)) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - rest));
  return (addr[full] & mask) == block.addr[full];
}

}  // namespace shoal::conf
