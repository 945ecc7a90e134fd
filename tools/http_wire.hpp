// http_wire.hpp — what http_load reads off the wire: HTTP/1.1 response framing (RFC 9112:
// status line, Content-Length, chunked or until-EOF bodies, Connection) over a buffer that
// may hold several pipelined responses, and a bencode walker (BEP 3) for the bodies.
// Header-only; no allocation except the decoded body of a chunked response.
#pragma once
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace shoal_load::http {

constexpr size_t kMaxResponse = 1 << 20;  // larger responses are invalid
constexpr size_t kMaxHead = 65536;        // a header block without its end after this: invalid

// ------------------------------------------------------------------------- bencode

/// Skips one bencoded value at p (advancing it); false if malformed or nested > depth.
inline bool bskip(const char*& p, const char* e, int depth) {
  if (p >= e || depth < 0) return false;
  if (*p == 'i') {
    ++p;
    if (p < e && *p == '-') ++p;
    const char* d = p;
    while (p < e && *p >= '0' && *p <= '9') ++p;
    if (p == d || p >= e || *p != 'e') return false;
    return ++p, true;
  }
  if (*p == 'l' || *p == 'd') {
    bool dict = *p++ == 'd';
    while (p < e && *p != 'e') {
      if (dict && (*p < '0' || *p > '9')) return false;  // dict keys are strings
      if (!bskip(p, e, depth - 1) || (dict && !bskip(p, e, depth - 1))) return false;
    }
    if (p >= e) return false;
    return ++p, true;
  }
  uint64_t n = 0;
  const char* d = p;
  while (p < e && *p >= '0' && *p <= '9' && n < kMaxResponse) n = n * 10 + uint64_t(*p++ - '0');
  if (p == d || p >= e || *p != ':' || uint64_t(e - p - 1) < n) return false;
  p += 1 + n;
  return true;
}

/// Reads a string value at p (which must be valid); returns its bytes.
inline std::string_view bstring(const char* p) {
  uint64_t n = 0;
  while (*p != ':') n = n * 10 + uint64_t(*p++ - '0');
  return {p + 1, size_t(n)};
}

/// Calls f(key, value_begin, value_end) for each entry of the valid dict at [p, e).
template <class F>
void bdict_each(const char* p, const char* e, F f) {
  ++p;  // 'd'
  while (p < e && *p != 'e') {
    std::string_view key = bstring(p);
    p = key.data() + key.size();
    const char* v = p;
    bskip(p, e, 8);
    f(key, v, p);
  }
}

/// The integer at v ("i...e"), or -1 if it is not a non-negative integer.
inline int64_t bint(const char* v) {
  if (*v != 'i' || v[1] == '-') return -1;
  int64_t n = 0;
  for (++v; *v >= '0' && *v <= '9' && n < (int64_t(1) << 56); ++v) n = n * 10 + (*v - '0');
  return n;
}

// ------------------------------------------------------------------------- HTTP framing

/// Case-insensitive: the offset just past "\r\n" + name in header block h, or npos.
inline size_t find_header(std::string_view h, std::string_view name) {
  for (size_t i = h.find("\r\n"); i != std::string_view::npos; i = h.find("\r\n", i + 2)) {
    std::string_view line = h.substr(i + 2, name.size());
    if (line.size() == name.size() &&
        std::equal(line.begin(), line.end(), name.begin(),
                   [](char a, char b) { return tolower(static_cast<unsigned char>(a)) == b; }))
      return i + 2 + name.size();
  }
  return std::string_view::npos;
}
inline bool has_header(std::string_view h, std::string_view name_value) {
  return find_header(h, name_value) != std::string_view::npos;
}

/// One response framed in a receive buffer.
struct Frame {
  std::string_view body;      // in the buffer, or in the caller's `chunked` string
  size_t next = 0;            // offset just past the response
  bool server_close = false;  // "Connection: close", HTTP/1.0 without keep-alive, or body until EOF
};

/// Frames the response that starts at `off` of `in`. Returns 1 (complete, in *f), 0 (not all
/// there yet) or -1 (malformed, not 200, or too large). A chunked body is decoded into
/// *chunked (no trailers expected); a body without length ends at EOF (`eof`).
inline int parse_response(std::string_view in, size_t off, bool eof, std::string* chunked, Frame* f) {
  size_t he = in.find("\r\n\r\n", off);
  if (he == std::string_view::npos) return in.size() - off > kMaxHead ? -1 : 0;
  std::string_view head = in.substr(off, he + 2 - off);
  bool http10 = head.starts_with("HTTP/1.0 ");
  if (!(http10 || head.starts_with("HTTP/1.1 ")) || head.substr(9, 3) != "200") return -1;
  f->server_close = has_header(head, "connection: close") || (http10 && !has_header(head, "connection: keep-alive"));
  size_t body = he + 4;
  if (has_header(head, "transfer-encoding: chunked")) {
    chunked->clear();
    for (size_t p = body;;) {
      size_t le = in.find("\r\n", p);
      if (le == std::string_view::npos) return 0;
      char* end = nullptr;
      std::string hex(in.substr(p, std::min<size_t>(le - p, 16)));
      uint64_t n = strtoull(hex.c_str(), &end, 16);
      if (end == hex.c_str() || n > kMaxResponse) return -1;
      if (in.size() < le + 2 + n + 2) return 0;
      if (n == 0) {
        f->body = *chunked, f->next = le + 4;
        return 1;
      }
      chunked->append(in.substr(le + 2, n));
      p = le + 2 + n + 2;
    }
  }
  size_t cl = find_header(head, "content-length:");
  if (cl != std::string_view::npos) {
    size_t i = cl, len = 0;
    while (i < head.size() && head[i] == ' ') ++i;
    while (i < head.size() && head[i] >= '0' && head[i] <= '9' && len <= kMaxResponse) len = len * 10 + size_t(head[i++] - '0');
    if (len > kMaxResponse) return -1;
    if (in.size() < body + len) return 0;
    f->body = in.substr(body, len), f->next = body + len;
    return 1;
  }
  if (!eof) return in.size() - body > kMaxResponse ? -1 : 0;  // body until EOF
  f->body = in.substr(body), f->next = in.size(), f->server_close = true;
  return 1;
}

}  // namespace shoal_load::http
