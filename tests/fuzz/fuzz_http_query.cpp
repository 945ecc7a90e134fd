// libFuzzer target: the HTTP tracker's request-target handling (worker/http_codec): percent
// decoding, path routing, announce and scrape query parsing (BEP 3, 7, 23, 48). Every query
// comes from a stranger.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "worker/http_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker::http;
  std::string in(reinterpret_cast<const char*>(data), size);
  uint8_t out[256];
  size_t n = 0;
  if (percent_decode(in, out, sizeof out, &n) && n > sizeof out) __builtin_trap();
  route_of(in);
  AnnounceParams a;
  parse_announce(in, &a);
  uint8_t hashes[64][kInfoHashBytes];
  size_t count = 0;
  parse_scrape(in, hashes, 64, &count);
  if (count > 64) __builtin_trap();
  return 0;
}
