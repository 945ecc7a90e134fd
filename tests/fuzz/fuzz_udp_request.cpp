// libFuzzer target: the BEP 15 request parser and the BEP 41 option reader (worker/udp_codec),
// which see every datagram from the network. Any input must be parsed without reading past it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "worker/udp_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker::udp;
  std::vector<uint8_t> copy(data, data + size);  // exact-size heap buffer: ASan sees overreads
  parse_request(copy.data(), copy.size(), kMaxUdpScrapeHashes);
  char url[512];
  size_t n = 0;
  parse_bep41_url_data(copy.data(), copy.size(), url, sizeof url, &n);
  if (n > sizeof url) __builtin_trap();
  return 0;
}
