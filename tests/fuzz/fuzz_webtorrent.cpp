// libFuzzer target: the WebTorrent message parser (worker/webtorrent_codec.cpp, jansson) and the
// WebSocket opening handshake (worker/ws_handshake.cpp): text from browsers and strangers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "worker/webtorrent_codec.hpp"
#include "worker/ws_handshake.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  shoal::worker::webtorrent::parse_message(text);
  shoal::worker::ws::parse_handshake(text);
  return 0;
}
