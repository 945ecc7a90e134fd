// worker/http_codec.cpp — HTTP tracker query parsing (BEP 3/7/23/48) and bencoded replies.
// Runs in the socket worker for every HTTP request; touches only the caller's buffers (no shm,
// no allocation, no exceptions). Params are matched by their %-decoded names (a short fixed
// buffer), and every value is decoded into a fixed-size buffer before use, so an oversized
// value simply fails to decode.
#include "worker/http_codec.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <climits>
#include <cstring>

#include "worker/bencode.hpp"

namespace shoal::worker::http {
namespace {

enum class Decode : uint8_t { ok, bad_escape, full };

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes into out[0..cap) and stops at the first malformed escape or the first byte that
// does not fit; *n = bytes written.
Decode decode(std::string_view in, uint8_t* out, size_t cap, size_t* n) {
  size_t w = 0;
  Decode result = Decode::ok;
  for (size_t i = 0; i < in.size(); ++i) {
    uint8_t b = uint8_t(in[i]);
    if (b == '%') {
      if (in.size() - i < 3) {
        result = Decode::bad_escape;
        break;
      }
      int h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
      if (h < 0 || l < 0) {
        result = Decode::bad_escape;
        break;
      }
      b = uint8_t(h << 4 | l);
      i += 2;
    } else if (b == '+') {
      b = ' ';
    }
    if (w == cap) {
      result = Decode::full;
      break;
    }
    out[w++] = b;
  }
  *n = w;
  return result;
}

// Decodes a short text value into buf; false when malformed or longer than cap.
bool decode_text(std::string_view in, char* buf, size_t cap, std::string_view* out) {
  size_t n = 0;
  bool ok = decode(in, reinterpret_cast<uint8_t*>(buf), cap, &n) == Decode::ok;
  *out = std::string_view(buf, n);
  return ok;
}

// Decodes a binary param that must be exactly `want` bytes long.
bool decode_exact(std::string_view in, uint8_t* out, size_t want) {
  uint8_t tmp[32];
  size_t n = 0;
  static_assert(sizeof(tmp) > kInfoHashBytes && sizeof(tmp) > kPeerIdBytes);
  if (decode(in, tmp, sizeof(tmp), &n) != Decode::ok || n != want) return false;
  std::memcpy(out, tmp, n);
  return true;
}

constexpr size_t kMaxNumberText = 32;  // decoded digits accepted for a number param

// ASCII decimal, 1..kMaxNumberText digits, no sign; saturates at UINT64_MAX.
bool parse_u64(std::string_view raw, uint64_t* out) {
  char buf[kMaxNumberText];
  std::string_view s;
  if (!decode_text(raw, buf, sizeof(buf), &s) || s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = uint64_t(c - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v;
  return true;
}

// Optional '-' then ASCII decimal; clamped to [INT_MIN, INT_MAX].
bool parse_int(std::string_view raw, int* out) {
  char buf[kMaxNumberText];
  std::string_view s;
  if (!decode_text(raw, buf, sizeof(buf), &s)) return false;
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  if (s.empty()) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (v <= int64_t(INT_MAX) + 1) v = v * 10 + (c - '0');
  }
  if (neg) v = -v;
  *out = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : int(v);
  return true;
}

enum class Field : uint8_t {
  unknown, info_hash, peer_id, port, uploaded, downloaded, left, event, numwant, compact,
  no_peer_id, key,
};

struct FieldName {
  std::string_view name;
  Field field;
};

// ip, ipv4 and ipv6 are deliberately absent: they are unknown, hence ignored (A5).
constexpr FieldName kFields[] = {
    {"info_hash", Field::info_hash}, {"peer_id", Field::peer_id},   {"port", Field::port},
    {"uploaded", Field::uploaded},   {"downloaded", Field::downloaded}, {"left", Field::left},
    {"event", Field::event},         {"numwant", Field::numwant},   {"compact", Field::compact},
    {"no_peer_id", Field::no_peer_id}, {"key", Field::key},
};

Field field_of(std::string_view raw_key) {
  char buf[16];  // longer than any known name
  std::string_view k;
  if (!decode_text(raw_key, buf, sizeof(buf), &k)) return Field::unknown;
  for (const FieldName& f : kFields) {
    if (f.name == k) return f.field;
  }
  return Field::unknown;
}

bool parse_event(std::string_view raw, shm::Event* out) {
  char buf[16];
  std::string_view s;
  if (!decode_text(raw, buf, sizeof(buf), &s)) return false;
  if (s.empty() || s == "paused") {  // BEP 21 "paused": a regular announce for shoal
    *out = shm::Event::none;
  } else if (s == "started") {
    *out = shm::Event::started;
  } else if (s == "completed") {
    *out = shm::Event::completed;
  } else if (s == "stopped") {
    *out = shm::Event::stopped;
  } else {
    return false;
  }
  return true;
}

// A BEP 23 flag such as compact=1 or no_peer_id=1: false only for a value that decodes to
// "0" (so "%30" is "0" too, as every other parameter is compared after percent-decoding).
bool parse_flag(std::string_view raw) {
  char buf[8];
  std::string_view s;
  return !(decode_text(raw, buf, sizeof(buf), &s) && s == "0");
}

void init_announce(AnnounceParams* a) {
  std::memset(a, 0, sizeof(*a));
  a->left = UINT64_MAX;
  a->has_left = false;
  a->event = shm::Event::none;
  a->numwant = -1;
  a->compact = true;
}

// Applies one announce param; returns its error or none.
ParseError apply_param(Field f, const QueryParam& p, AnnounceParams* a, bool* seen_hash, bool* seen_peer,
                       bool* seen_port) {
  uint64_t u = 0;
  switch (f) {
    case Field::info_hash:
      if (*seen_hash) return ParseError::repeated_info_hash;
      *seen_hash = true;
      return decode_exact(p.value, a->info_hash, kInfoHashBytes) ? ParseError::none
                                                                 : ParseError::invalid_info_hash;
    case Field::peer_id:
      *seen_peer = true;
      return decode_exact(p.value, a->peer_id, kPeerIdBytes) ? ParseError::none : ParseError::invalid_peer_id;
    case Field::port:
      *seen_port = true;
      if (!parse_u64(p.value, &u) || u == 0 || u > 65535) return ParseError::invalid_port;
      a->port = uint16_t(u);
      return ParseError::none;
    case Field::uploaded:
      return parse_u64(p.value, &a->uploaded) ? ParseError::none : ParseError::invalid_uploaded;
    case Field::downloaded:
      return parse_u64(p.value, &a->downloaded) ? ParseError::none : ParseError::invalid_downloaded;
    case Field::left:
      a->has_left = parse_u64(p.value, &a->left);
      return a->has_left ? ParseError::none : ParseError::invalid_left;
    case Field::event:
      return parse_event(p.value, &a->event) ? ParseError::none : ParseError::invalid_event;
    case Field::numwant:
      return parse_int(p.value, &a->numwant) ? ParseError::none : ParseError::invalid_numwant;
    case Field::compact:
      a->compact = parse_flag(p.value);
      return ParseError::none;
    case Field::no_peer_id:
      a->no_peer_id = parse_flag(p.value);
      return ParseError::none;
    case Field::key: {
      // Kept for logging/future use only; a malformed key is dropped rather than failing the
      // announce, and a long one is truncated to kMaxKeyBytes.
      size_t n = 0;
      a->key_len = decode(p.value, a->key, kMaxKeyBytes, &n) == Decode::bad_escape ? 0 : uint8_t(n);
      return ParseError::none;
    }
    case Field::unknown:
      return ParseError::none;
  }
  return ParseError::none;
}

// "1.2.3.4" / "2001:db8::1" for a compact entry's address (network order); writes ≤ 46 bytes.
std::string_view address_text(const uint8_t* addr, bool v6, char* buf, size_t cap) {
  const char* s = inet_ntop(v6 ? AF_INET6 : AF_INET, addr, buf, socklen_t(cap));
  return s ? std::string_view(s) : std::string_view();
}

void write_dict_peers(BencodeWriter& w, const uint8_t* peers, size_t n, bool v6) {
  const size_t stride = v6 ? kPeerBytesV6 : kPeerBytesV4;
  const size_t addr_len = stride - 2;
  char text[64];
  for (size_t i = 0; i < n && !w.overflow(); ++i) {
    const uint8_t* p = peers + i * stride;
    w.dict_begin();
    w.key("ip");
    w.string(address_text(p, v6, text, sizeof(text)));
    w.key("port");
    w.integer(int64_t(p[addr_len]) << 8 | p[addr_len + 1]);
    w.dict_end();
  }
}

}  // namespace

const char* error_message(ParseError e) {
  switch (e) {
    case ParseError::none: return "ok";
    case ParseError::missing_info_hash: return "missing info_hash";
    case ParseError::invalid_info_hash: return "info_hash must be 20 bytes";
    case ParseError::repeated_info_hash: return "info_hash given more than once";
    case ParseError::missing_peer_id: return "missing peer_id";
    case ParseError::invalid_peer_id: return "peer_id must be 20 bytes";
    case ParseError::missing_port: return "missing port";
    case ParseError::invalid_port: return "port must be a number from 1 to 65535";
    case ParseError::invalid_uploaded: return "uploaded must be a non-negative number";
    case ParseError::invalid_downloaded: return "downloaded must be a non-negative number";
    case ParseError::invalid_left: return "left must be a non-negative number";
    case ParseError::invalid_numwant: return "numwant must be a number";
    case ParseError::invalid_event: return "event must be started, completed, stopped or empty";
    case ParseError::full_scrape: return "full scrape is not allowed";
  }
  return "unknown error";
}

bool percent_decode(std::string_view in, uint8_t* out, size_t cap, size_t* out_len) {
  return decode(in, out, cap, out_len) == Decode::ok;
}

bool QueryIterator::next(QueryParam* out) {
  while (!rest_.empty()) {
    size_t amp = rest_.find('&');
    std::string_view pair = rest_.substr(0, amp);
    rest_ = amp == std::string_view::npos ? std::string_view() : rest_.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    out->key = pair.substr(0, eq);
    out->has_value = eq != std::string_view::npos;
    out->value = out->has_value ? pair.substr(eq + 1) : std::string_view();
    return true;
  }
  return false;
}

void split_target(std::string_view target, std::string_view* path, std::string_view* query) {
  target = target.substr(0, target.find('#'));
  size_t q = target.find('?');
  *path = target.substr(0, q);
  *query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

Route route_of(std::string_view path) {
  path = path.substr(0, path.find('?'));
  size_t slash = path.rfind('/');
  std::string_view last = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (last.starts_with("announce")) return Route::announce;
  if (last.starts_with("scrape")) return Route::scrape;
  return Route::unknown;
}

ParseError parse_announce(std::string_view query, AnnounceParams* out) {
  init_announce(out);
  bool seen_hash = false, seen_peer = false, seen_port = false;
  QueryIterator it(query);
  QueryParam p;
  while (it.next(&p)) {
    ParseError e = apply_param(field_of(p.key), p, out, &seen_hash, &seen_peer, &seen_port);
    if (e != ParseError::none) return e;
  }
  if (!seen_hash) return ParseError::missing_info_hash;
  if (!seen_peer) return ParseError::missing_peer_id;
  if (!seen_port) return ParseError::missing_port;
  return ParseError::none;
}

ParseError parse_scrape(std::string_view query, uint8_t (*hashes)[kInfoHashBytes], size_t max_hashes,
                        size_t* count) {
  *count = 0;
  QueryIterator it(query);
  QueryParam p;
  while (it.next(&p)) {
    if (field_of(p.key) != Field::info_hash) continue;
    uint8_t tmp[kInfoHashBytes];
    uint8_t* dst = *count < max_hashes ? hashes[*count] : tmp;
    if (!decode_exact(p.value, dst, kInfoHashBytes)) return ParseError::invalid_info_hash;
    if (dst != tmp) ++*count;
  }
  return *count > 0 ? ParseError::none : ParseError::full_scrape;
}

size_t encode_announce(char* buf, size_t cap, const AnnounceReply& r) {
  BencodeWriter w(buf, cap);
  w.dict_begin();
  w.key("complete");
  w.integer(r.complete);
  w.key("downloaded");
  w.integer(r.downloaded);
  w.key("incomplete");
  w.integer(r.incomplete);
  w.key("interval");
  w.integer(r.interval);
  w.key("min interval");
  w.integer(r.min_interval);
  w.key("peers");
  if (r.compact) {
    w.string(r.peers4, r.n4 * kPeerBytesV4);
    if (r.n6 > 0) {
      w.key("peers6");
      w.string(r.peers6, r.n6 * kPeerBytesV6);
    }
  } else {
    w.list_begin();
    write_dict_peers(w, r.peers4, r.n4, false);
    write_dict_peers(w, r.peers6, r.n6, true);
    w.list_end();
  }
  if (r.warning) {
    w.key("warning message");
    w.string(std::string_view(r.warning));
  }
  w.dict_end();
  return w.finish();
}

size_t encode_scrape(char* buf, size_t cap, const ScrapeEntry* entries, size_t n) {
  if (n > kMaxScrapeEntries) return 0;
  // Stable insertion sort of indices by hash: n ≤ 256, and the first of equal hashes stays
  // first, so duplicates keep their first entry's counts.
  uint16_t order[kMaxScrapeEntries];
  for (size_t i = 0; i < n; ++i) {
    size_t j = i;
    while (j > 0 && std::memcmp(entries[order[j - 1]].info_hash, entries[i].info_hash, kInfoHashBytes) > 0) {
      order[j] = order[j - 1];
      --j;
    }
    order[j] = uint16_t(i);
  }
  BencodeWriter w(buf, cap);
  w.dict_begin();
  w.key("files");
  w.dict_begin();
  for (size_t k = 0; k < n; ++k) {
    const ScrapeEntry& e = entries[order[k]];
    if (k > 0 && std::memcmp(entries[order[k - 1]].info_hash, e.info_hash, kInfoHashBytes) == 0) continue;
    w.key(std::string_view(reinterpret_cast<const char*>(e.info_hash), kInfoHashBytes));
    w.dict_begin();
    w.key("complete");
    w.integer(e.complete);
    w.key("downloaded");
    w.integer(e.downloaded);
    w.key("incomplete");
    w.integer(e.incomplete);
    w.dict_end();
  }
  w.dict_end();
  w.dict_end();
  return w.finish();
}

size_t encode_failure(char* buf, size_t cap, const char* reason) {
  BencodeWriter w(buf, cap);
  w.dict_begin();
  w.key("failure reason");
  w.string(std::string_view(reason ? reason : ""));
  w.dict_end();
  return w.finish();
}

}  // namespace shoal::worker::http
