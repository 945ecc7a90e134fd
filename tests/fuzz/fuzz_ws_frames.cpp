// libFuzzer target: the WebSocket session (worker/ws_session.cpp: RFC 6455 framing over
// libwslay's frame API): arbitrary bytes after a handshake, fed in three pieces cut where the
// first byte says (so libwslay's partial-header and partial-payload states are reached), with a
// release_if_idle between pieces (the receive context freed and made again); replies and closes
// must be produced, never a crash or a leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "worker/ws_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  shoal::worker::ws::Session s(4096);
  if (!s.ok() || size == 0) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t a = bytes.size() * (data[0] & 0x0f) / 16, b = a + (bytes.size() - a) / 2;
  s.feed(bytes.substr(0, a));
  for (const auto& m : s.take_messages()) s.send_text(m);
  s.take_output();
  s.release_if_idle();
  s.feed(bytes.substr(a, b - a));
  if (data[0] & 0x10) s.release_if_idle();
  s.feed(bytes.substr(b));
  s.take_messages();
  s.take_output();
  return 0;
}
