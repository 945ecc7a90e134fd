// conf/listen_address.cpp — parses the "host:port" / "[v6host]:port" strings of udp.listen into
// sockaddrs ready for bind(2). Runs in the supervisor while the configuration is loaded, before
// any socket is opened; touches no shared memory. Numeric hosts only (inet_pton): a tracker must
// not depend on DNS to start, and a name could resolve to several addresses.
#include <arpa/inet.h>

#include <cstring>

#include "conf/config.hpp"

namespace shoal::conf {
namespace {

// Parses a decimal port 0-65535 (digits only: no sign, no spaces). Returns false when invalid.
bool parse_port(const std::string& text, uint16_t* port) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// Splits `text` into host and port text. IPv6 hosts must be bracketed. Returns "" or the problem.
std::string split_host_port(const std::string& text, std::string* host, std::string* port,
                            bool* bracketed) {
  *bracketed = !text.empty() && text[0] == '[';
  if (*bracketed) {
    size_t close = text.find(']');
    if (close == std::string::npos) return "missing ']' after the IPv6 address";
    *host = text.substr(1, close - 1);
    if (close + 1 == text.size()) return "missing port";
    if (text[close + 1] != ':') return "expected ':' and a port after ']'";
    *port = text.substr(close + 2);
    return "";
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return "missing port";
  if (text.find(':') != colon) return "IPv6 address must be in brackets, as in [::1]:6969";
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  return "";
}

// Fills the sockaddr for a numeric host. Returns false when the host is not numeric.
bool fill_address(const std::string& host, bool bracketed, uint16_t port, ListenAddress* out) {
  out->addr = sockaddr_storage{};
  if (bracketed) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
    if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) return false;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    out->family = AF_INET6;
    out->addr_len = sizeof(sockaddr_in6);
    return true;
  }
  auto* sin = reinterpret_cast<sockaddr_in*>(&out->addr);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) return false;
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  out->family = AF_INET;
  out->addr_len = sizeof(sockaddr_in);
  return true;
}

bool fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return false;
}

}  // namespace

// Parses "1.2.3.4:6969", "[::1]:6969", "[::]:0". On success fills *out (text, family, addr with
// the port in network byte order, addr_len, port in host order) and returns true. On failure
// leaves *out untouched, sets *why (if not null) and returns false.
bool parse_listen_address(const std::string& text, ListenAddress* out, std::string* why) {
  std::string host, port_text;
  bool bracketed = false;
  std::string problem = split_host_port(text, &host, &port_text, &bracketed);
  if (!problem.empty()) return fail(why, problem);
  if (host.empty()) return fail(why, "missing host (use 0.0.0.0 or [::] for any address)");
  uint16_t port = 0;
  if (!parse_port(port_text, &port)) {
    return fail(why, "bad port \"" + port_text + "\" (must be a number from 0 to 65535)");
  }
  ListenAddress parsed;
  if (!fill_address(host, bracketed, port, &parsed)) {
    return fail(why, "not a numeric IPv4 or IPv6 address: \"" + host + "\"");
  }
  parsed.text = text;
  parsed.port = port;
  *out = std::move(parsed);
  return true;
}

}  // namespace shoal::conf
