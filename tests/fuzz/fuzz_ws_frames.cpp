// libFuzzer target: the WebSocket session (worker/ws_session.cpp, RFC 6455 framing): arbitrary bytes
// after a handshake, fed in two pieces; replies and closes must be produced, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "worker/ws_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shoal::worker::ws::Session s(4096);
  if (!s.ok()) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  size_t half = size / 2;
  s.feed(bytes.substr(0, half));
  for (const auto& m : s.take_messages()) s.send_text(m);
  s.feed(bytes.substr(half));
  s.take_messages();
  s.take_output();
  return 0;
}
