// libFuzzer target: the WebTorrent relay message decoder (worker/cluster_ws_codec.hpp), which
// reads every offer or answer another node, or anything that can publish on this node's relay
// subject, sends over NATS. Any input is decoded or refused without reading past it; a decoded
// message encodes back to the very same bytes (every field is kept, the offer/answer text as is).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/cluster_ws_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker;
  std::vector<uint8_t> copy(data, data + size);  // exact-size heap buffer: ASan sees overreads
  RelayMessage m;
  std::string why;
  if (!decode_relay_message(copy.data(), copy.size(), &m, &why)) {
    if (why.empty()) __builtin_trap();
    return 0;
  }
  std::vector<uint8_t> again;
  encode_relay_message(m, &again);
  if (again != copy) __builtin_trap();
  return 0;
}
