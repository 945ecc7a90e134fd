// worker/http_request.hpp — HTTP/1.x request framing for the tracker's HTTP/HTTPS front-end, over
// the http_parser library (Debian libhttp-parser-dev 2.9, nodejs/http-parser; RFC 7230). Finds
// the next complete request at the start of a byte buffer and reports the few things the
// tracker needs: the request target, the HTTP version, whether the connection stays open after
// the reply (RFC 7230 §6.3: HTTP/1.1 unless "Connection: close", HTTP/1.0 only with
// "Connection: keep-alive"), and the value of one configured header (the trusted proxy's
// real-IP header). Pure and allocation-free: no I/O, no shm; every view points into the caller's
// buffer. Fuzzed by tests/fuzz/fuzz_http_request.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace shoal::worker::http {

// What scan_request found at the start of the buffer.
enum class Scan : uint8_t {
  complete,        // a whole GET request: *out is filled, *consumed is its length in bytes
  incomplete,      // a valid prefix of a request; wait for more bytes (nothing consumed)
  bad_request,     // not HTTP/1.x, or the request line and headers exceed max_head_bytes: 400, close
  body_too_large,  // a request with a body (Content-Length > 0 or chunked): 413, close
  not_implemented, // a complete request with a method other than GET: 501, close
};

// The parts of one request the tracker reads.
struct HttpRequest {
  std::string_view target;    // request-target as sent ("/announce?info_hash=..."), not decoded
  std::string_view header;    // value of the LAST `header_name` header (see scan_request)
  bool has_header = false;    // that header was present
  uint8_t minor = 1;          // HTTP/1.<minor>
  bool keep_alive = true;     // the connection may carry another request after this one's reply
};

// Parses the request at the start of data[0..len). max_head_bytes bounds the request line plus
// headers (http.max_header_bytes): a request whose head is larger, or an incomplete prefix
// already longer than that, is a bad_request. `header_name` is matched case-insensitively
// (empty: no header is looked for). *consumed is set only for complete (the request's bytes,
// so the next request starts at data + *consumed) and is 0 otherwise.
Scan scan_request(const char* data, size_t len, size_t max_head_bytes, std::string_view header_name,
                  HttpRequest* out, size_t* consumed);

}  // namespace shoal::worker::http
