// supervisor/torrent_file.cpp — see torrent_file.hpp. Built with libtorrent-rasterbar's
// compile flags (the Makefile adds `pkg-config --cflags libtorrent-rasterbar` for this file
// only: its ABI depends on them).
#include "supervisor/torrent_file.hpp"

#include <libtorrent/error_code.hpp>
#include <libtorrent/torrent_info.hpp>

#include <cstring>

namespace shoal::supervisor {

std::string info_hash_hex(const uint8_t info_hash[20]) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(40, '0');
  for (int i = 0; i < 20; i++) {
    out[2 * i] = kHex[info_hash[i] >> 4];
    out[2 * i + 1] = kHex[info_hash[i] & 15];
  }
  return out;
}

bool parse_info_hash_hex(std::string_view hex, uint8_t out[20]) {
  if (hex.size() != 40) return false;
  for (size_t i = 0; i < 40; i++) {
    char c = hex[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return false;
    out[i / 2] = uint8_t(i % 2 ? (out[i / 2] | v) : v << 4);
  }
  return true;
}

bool decode_torrent(const std::string& bytes, TorrentMeta* out, std::string* why) {
  if (bytes.size() > kMaxTorrentFileBytes) {
    *why = "larger than " + std::to_string(kMaxTorrentFileBytes >> 20) + " MiB";
    return false;
  }
  if (bytes.empty()) {
    *why = "empty file";
    return false;
  }
  lt::error_code ec;
  lt::torrent_info ti(lt::span<char const>(bytes.data(), std::ptrdiff_t(bytes.size())), ec, lt::from_span);
  if (ec) {
    *why = "not a valid .torrent (BEP 3 metainfo): " + ec.message();
    return false;
  }
  if (!ti.info_hashes().has_v1()) {
    *why = "v2-only torrent (BEP 52): no SHA-1 info_hash to announce with";
    return false;
  }
  TorrentMeta m;
  std::memcpy(m.info_hash, ti.info_hashes().v1.data(), 20);
  m.name = ti.name();
  m.total_length = uint64_t(ti.total_size());
  m.piece_length = uint32_t(ti.piece_length());
  const lt::file_storage& fs = ti.files();
  for (lt::file_index_t i : fs.file_range()) {
    if (fs.pad_file_at(i)) continue;
    m.files.push_back({fs.file_path(i), uint64_t(fs.file_size(i))});
  }
  if (!ti.trackers().empty()) m.announce = ti.trackers().front().url;
  m.is_private = ti.priv();
  *out = std::move(m);
  return true;
}

}  // namespace shoal::supervisor
