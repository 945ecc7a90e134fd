// worker/http_peer.cpp — see http_peer.hpp. Address text parsing and the trusted-proxy walk over
// forwarding headers, run by socket workers for requests from http.trusted_proxies.
#include "worker/http_peer.hpp"

#include <arpa/inet.h>

#include <cstring>

#include "worker/connection_id.hpp"

namespace shoal::worker::http {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True for ":<1-5 digits>".
bool is_port_suffix(std::string_view s) {
  if (s.size() < 2 || s.size() > 6 || s[0] != ':') return false;
  for (char c : s.substr(1))
    if (c < '0' || c > '9') return false;
  return true;
}

bool pton(int family, std::string_view text, uint8_t* out16) {
  char buf[INET6_ADDRSTRLEN];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  return inet_pton(family, buf, out16) == 1;
}

}  // namespace

bool parse_address_text(std::string_view text, PeerAddress* out) {
  text = trim(text);
  uint8_t raw[16] = {};
  int family = 0;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return false;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && !is_port_suffix(rest)) return false;
    if (!pton(AF_INET6, text.substr(1, close - 1), raw)) return false;
    family = AF_INET6;
  } else if (pton(AF_INET6, text, raw)) {
    family = AF_INET6;
  } else {
    size_t colon = text.find(':');
    std::string_view host = text.substr(0, colon);
    if (colon != std::string_view::npos && !is_port_suffix(text.substr(colon))) return false;
    if (!pton(AF_INET, host, raw)) return false;
    family = AF_INET;
  }
  PeerAddress a;
  a.family = canonical_address(family, raw, a.addr);
  *out = a;
  return true;
}

bool is_trusted(const std::vector<conf::Cidr>& blocks, const PeerAddress& a) {
  for (const conf::Cidr& b : blocks)
    if (conf::cidr_contains(b, a.family, a.addr)) return true;
  return false;
}

ForwardedResult peer_from_forwarded(std::string_view value, const std::vector<conf::Cidr>& trusted,
                                    PeerAddress* out) {
  bool any = false;
  PeerAddress leftmost;
  while (true) {
    size_t comma = value.rfind(',');
    std::string_view element = trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
    if (!element.empty()) {
      PeerAddress a;
      if (!parse_address_text(element, &a)) return ForwardedResult::malformed;
      if (!is_trusted(trusted, a)) {
        *out = a;
        return ForwardedResult::ok;
      }
      any = true;
      leftmost = a;
    }
    if (comma == std::string_view::npos) break;
    value = value.substr(0, comma);
  }
  if (!any) return ForwardedResult::missing;
  *out = leftmost;
  return ForwardedResult::ok;
}

}  // namespace shoal::worker::http
