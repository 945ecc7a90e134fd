// worker/http_peer.hpp — which address an HTTP announce is stored under. Normally the TCP
// connection's source address; behind a configured reverse proxy (http.trusted_proxies), the
// address the proxy writes into http.real_ip_header (docs/hardening.md A5: a client-chosen `ip` or an
// untrusted forwarding header would let anyone point a swarm at a victim). Pure functions run
// by the socket worker per request: no I/O, no allocation, no shm.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "conf/config.hpp"

namespace shoal::worker::http {

// A canonical peer address: IPv4-mapped IPv6 (::ffff:a.b.c.d) is stored as AF_INET.
struct PeerAddress {
  int family = 0;       // AF_INET or AF_INET6
  uint8_t addr[16] = {};  // 4 or 16 bytes used, network order
};

// Parses one address as proxies write them: "192.0.2.7", "2001:db8::1", "[2001:db8::1]",
// "[2001:db8::1]:443" or "192.0.2.7:443" (the port is ignored), surrounding spaces and tabs
// allowed. No names, no zone ids ("fe80::1%eth0"). Returns false for anything else.
bool parse_address_text(std::string_view text, PeerAddress* out);

// True when `a` lies in one of `blocks`.
bool is_trusted(const std::vector<conf::Cidr>& blocks, const PeerAddress& a);

enum class ForwardedResult : uint8_t {
  ok,         // *out is the peer
  missing,    // the header value holds no address at all (empty, or only commas and spaces)
  malformed,  // an element at or right of the chosen one is not an address
};

// Picks the peer from a forwarding header value "client, proxy1, proxy2" (X-Forwarded-For; a
// single address for X-Real-IP): walking from the right, the first address that is not itself in
// `trusted` (each trusted proxy appends the address it received the request from, so elements
// left of the first untrusted one are client-supplied and ignored). If every element is trusted,
// the left-most is taken.
ForwardedResult peer_from_forwarded(std::string_view value, const std::vector<conf::Cidr>& trusted,
                                    PeerAddress* out);

}  // namespace shoal::worker::http
