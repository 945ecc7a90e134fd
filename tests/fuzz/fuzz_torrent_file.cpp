// libFuzzer target: .torrent decoding for deploy transfers (supervisor/torrent_file.cpp over
// libtorrent-rasterbar): any upload gets a TorrentMeta or a reason.
#include <cstddef>
#include <cstdint>
#include <string>

#include "supervisor/torrent_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  shoal::supervisor::TorrentMeta m;
  std::string why;
  if (!shoal::supervisor::decode_torrent(bytes, &m, &why) && why.empty()) __builtin_trap();
  return 0;
}
