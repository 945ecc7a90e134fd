// supervisor/torrent_file.hpp — reads a .torrent metainfo file (BEP 3 "metainfo files") for the
// deploy transfers of the location-aware tracker: the info_hash the swarm is keyed by, the name,
// the total length (for progress from the peers' `left`) and the files. Decoding is done by
// libtorrent-rasterbar (Debian libtorrent-rasterbar-dev), not by hand. Runs in the supervisor
// and in tools; never on a worker's hot path.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::supervisor {

// One file of a torrent: path inside the torrent (components joined by '/'), length in bytes.
struct TorrentFileEntry {
  std::string path;
  uint64_t length = 0;
};

// What shoald keeps of a .torrent.
//   info_hash     SHA-1 of the bencoded "info" dictionary (BEP 3), 20 raw bytes; for a hybrid
//                 v1+v2 torrent (BEP 52) the v1 hash, which is what clients announce with
//   name          the info dictionary's "name"
//   total_length  sum of the files' lengths, bytes
//   piece_length  bytes per piece
//   files         one entry for a single-file torrent, several for a multi-file one (BEP 3);
//                 BEP 47 padding files are left out
//   announce      the "announce" URL, "" when absent (BEP 12 lists are not needed here)
//   is_private    the info dictionary's "private" flag (BEP 27)
struct TorrentMeta {
  uint8_t info_hash[20] = {};
  std::string name;
  uint64_t total_length = 0;
  uint32_t piece_length = 0;
  std::vector<TorrentFileEntry> files;
  std::string announce;
  bool is_private = false;
};

// Largest .torrent accepted, bytes (a deploy artifact's metainfo is kilobytes to a few MiB).
inline constexpr size_t kMaxTorrentFileBytes = 16u << 20;

// Decodes `bytes` (a whole .torrent file). Returns false with *why set to one sentence for the
// operator ("not a bencoded dictionary: …", "v2-only torrent (BEP 52): no SHA-1 info_hash to
// announce with", "larger than 16 MiB", …); *out is then unchanged.
bool decode_torrent(const std::string& bytes, TorrentMeta* out, std::string* why);

// 40 lowercase hex digits of a 20-byte info_hash.
std::string info_hash_hex(const uint8_t info_hash[20]);

// The 20 bytes of an info_hash written as exactly 40 hex digits (either case); false for
// anything else (*out may then be partly written).
bool parse_info_hash_hex(std::string_view hex, uint8_t out[20]);

}  // namespace shoal::supervisor
