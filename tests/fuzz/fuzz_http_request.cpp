// libFuzzer target: HTTP/1.x request framing of the HTTP front-end (worker/http_request over the
// http_parser library), then the tracker's handling of what it yields, as the front-end runs
// them: every request in the buffer is scanned in turn (pipelining), and each complete one's
// target goes through routing and announce/scrape parsing. Every byte comes from a stranger.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "worker/http_codec.hpp"
#include "worker/http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker::http;
  const char* p = reinterpret_cast<const char*>(data);
  size_t max_head = size > 0 ? 64 + data[0] * 16 : 4096;  // the limit varies with the input
  size_t off = 0;
  while (off < size) {
    HttpRequest r;
    size_t used = 0;
    Scan s = scan_request(p + off, size - off, max_head, "X-Forwarded-For", &r, &used);
    if (s != Scan::complete) {
      if (used != 0) __builtin_trap();
      break;
    }
    if (used == 0 || used > size - off || used > max_head) __builtin_trap();
    if (r.target.data() < p + off || r.target.data() + r.target.size() > p + off + used) __builtin_trap();
    if (r.has_header && (r.header.data() < p + off || r.header.data() + r.header.size() > p + off + used))
      __builtin_trap();
    std::string_view path, query;
    split_target(r.target, &path, &query);
    if (route_of(path) == Route::announce) {
      AnnounceParams a;
      parse_announce(query, &a);
    } else {
      uint8_t hashes[64][kInfoHashBytes];
      size_t count = 0;
      parse_scrape(query, hashes, 64, &count);
    }
    off += used;
  }
  return 0;
}
