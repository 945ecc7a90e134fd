// shm/snapshot_codec.hpp — the swarm snapshot format (issue 14): a versioned byte stream of
// torrents and peers, independent of the shared-memory layout, written by `shoalctl snapshot
// save FILE` and read at start (tracker.snapshot_load); later sent over NATS to a joining node.
// Full description with field sizes: docs/snapshot-format.md. Every integer is big-endian
// (network byte order); addresses and ports are in network order as on the wire.
//
//   preamble   16 B: "SHOALSNP", format version u16, flags u16 (0), reserved u32 (0)
//   chunks     each: type u8, reserved u8[3], payload length u32, crc32 u32 (zlib crc32 of
//              the 8 header bytes before it, then of the payload), payload
//              type 1 header (once, first), 2 data (any number), 3 end (once, last)
//
// Streamable with bounded memory: the encoder holds one chunk (kChunkBytes), the decoder one
// chunk of at most kMaxChunkPayload bytes plus the bytes fed but not yet consumed. Pure code:
// no I/O, no allocation beyond its buffers; used by the swarm worker (data chunks), the
// supervisor (header and end chunks, checks) and the unit and fuzz tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shoal::shm {

inline constexpr char kSnapshotMagic[8] = {'S', 'H', 'O', 'A', 'L', 'S', 'N', 'P'};
// Version 2 added the WebTorrent peer record ('W'); a reader takes versions 1 and 2.
inline constexpr uint16_t kSnapshotVersion = 2;
inline constexpr uint16_t kSnapshotOldestVersion = 1;
inline constexpr size_t kSnapshotPreambleBytes = 16;
inline constexpr size_t kChunkHeaderBytes = 12;
// A data chunk the encoder writes: header + payload, at most this many bytes (16 KiB).
inline constexpr size_t kChunkBytes = 16384;
// The largest payload a decoder accepts (a later encoder may use bigger chunks, up to this).
inline constexpr uint32_t kMaxChunkPayload = 1u << 20;

enum class ChunkType : uint8_t { header = 1, data = 2, end = 3 };

// Record tags inside a data chunk's payload.
inline constexpr uint8_t kRecordTorrent = 'T';
inline constexpr uint8_t kRecordPeer = 'P';
inline constexpr uint8_t kRecordWsPeer = 'W';  // version 2: a WebTorrent peer (cluster join answers)

// Torrent record flags.
inline constexpr uint8_t kSnapTorrentContinued = 1;  // repeats the torrent of the previous chunk
// Peer record flags.
inline constexpr uint8_t kSnapPeerSeeder = 1;
inline constexpr uint8_t kSnapPeerCompletedCounted = 2;  // its completion was counted already
inline constexpr uint8_t kSnapPeerRepresentative = 4;    // elected by peer_selection.policy tiered
inline constexpr uint8_t kSnapPeerHasPeerId = 0x80;      // a 20-byte peer_id follows
inline constexpr uint8_t kSnapPeerKnownFlags = 0x87;

// The header chunk: who wrote the snapshot and when.
//   created_unix   wall-clock seconds (UTC) when the snapshot was taken; peer ages count from it
//   node           the writer's host name (≤ 255 bytes)
//   software       "shoald 0.x" (≤ 255 bytes), informational
//   layout_version the shm layout of the writer (informational: the format does not depend on it)
struct SnapshotInfo {
  uint64_t created_unix = 0;
  std::string node;
  std::string software;
  uint32_t layout_version = 0;
};

// One torrent record. kind: 0 BitTorrent (UDP/HTTP peers); 1 WebTorrent: written only in a
// cluster join answer (worker/cluster_join.hpp), with WebTorrent peer records; a file saved by
// `shoalctl snapshot save` has none (WebTorrent peers are live connections, which a restart
// closes).
struct SnapTorrent {
  uint8_t info_hash[20];
  uint8_t kind = 0;
  uint8_t flags = 0;  // kSnapTorrentContinued
  uint32_t completed = 0;
};

// One peer record, belonging to the last torrent record before it in the same chunk.
//   family 4 or 6; addr: 4 or 16 bytes, network order; port_be: network order
//   age_s  seconds between its last announce and SnapshotInfo::created_unix
//   progress  permille of a registered transfer, 0xffff unknown
struct SnapPeer {
  uint8_t family = 4;
  uint8_t flags = 0;  // kSnapPeer*
  uint8_t addr[16] = {};
  uint16_t port_be = 0;
  uint32_t age_s = 0;
  uint16_t topology_group = 0;
  uint16_t progress = 0xffff;
  uint8_t peer_id[20] = {};  // valid with kSnapPeerHasPeerId
};

// One WebTorrent peer record (version 2), belonging to the last torrent record before it in the
// same chunk, which must be of kind 1. A WebTorrent peer is a WebSocket connection on some node
// of a cluster (docs/cluster.md "WebTorrent across nodes"):
//   flags       kSnapPeerSeeder | kSnapPeerCompletedCounted (other bits refused)
//   key         the partition's 16-byte key of the peer_id: peer_key() with the cluster's
//               WebTorrent key seed (shm/partition_layout.hpp; the peer_id itself is not kept)
//   node        cluster node id holding the connection (1-65535)
//   slot, generation, token   the connection there: socket slot, that socket process's
//               generation (low 16 bits), the connection's token
//   age_s       as SnapPeer::age_s
struct SnapWsPeer {
  uint8_t flags = 0;
  uint8_t key[16] = {};
  uint16_t node = 0;
  uint8_t slot = 0;
  uint16_t generation = 0;
  uint32_t token = 0;
  uint32_t age_s = 0;
};

// Totals carried by the end chunk; a decoder checks them against what it read.
struct SnapshotTotals {
  uint64_t torrents = 0;     // torrent records, not counting continuations
  uint64_t peers = 0;  // peer records of both tags
  uint32_t data_chunks = 0;
};

// zlib's crc32 of `n` bytes, continuing from `crc` (0 to start).
uint32_t snapshot_crc(uint32_t crc, const uint8_t* p, size_t n);

// The preamble and the header chunk, as bytes to write first.
std::vector<uint8_t> encode_snapshot_start(const SnapshotInfo& info);
// The end chunk, as bytes to write last.
std::vector<uint8_t> encode_snapshot_end(const SnapshotTotals& totals);

// Builds data chunks in a caller-owned buffer of kChunkBytes (e.g. a slot in shared memory).
// add_torrent() then add_peer() for each of its peers; when a record does not fit, the
// caller seals the chunk (seal()), hands the bytes on, and starts the next chunk with
// begin(): begin() re-states the current torrent (flag continued) so every chunk stands alone.
class DataChunkWriter {
 public:
  // Starts a chunk in buf[0..kChunkBytes). If a torrent is open, writes its continuation record.
  void begin(uint8_t* buf);
  // False (nothing written) when the record does not fit in this chunk.
  bool add_torrent(const SnapTorrent& t);
  bool add_peer(const SnapPeer& p);
  // A WebTorrent peer record; false also when the current torrent is not of kind 1.
  bool add_ws_peer(const SnapWsPeer& p);
  // Writes the chunk header; returns the chunk's size in bytes (0 if it holds no record).
  size_t seal();
  bool empty() const { return used_ == kChunkHeaderBytes; }
  // Records written since construction (torrents without continuations, peers).
  uint64_t torrents() const { return torrents_; }
  uint64_t peers() const { return peers_; }

 private:
  bool put_torrent(const SnapTorrent& t);
  uint8_t* buf_ = nullptr;
  size_t used_ = 0;
  bool open_ = false;  // a torrent is current (continue it in the next chunk)
  SnapTorrent current_{};
  uint64_t torrents_ = 0, peers_ = 0;
};

// What a decoder hands its consumer. Return false from a callback to stop decoding (then
// feed() returns false with error "stopped").
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  virtual bool on_header(const SnapshotInfo&) { return true; }
  virtual bool on_torrent(const SnapTorrent&) { return true; }
  virtual bool on_peer(const SnapTorrent& /*torrent*/, const SnapPeer&) { return true; }
  virtual bool on_ws_peer(const SnapTorrent& /*torrent*/, const SnapWsPeer&) { return true; }
  virtual bool on_end(const SnapshotTotals&) { return true; }
};

// Streaming decoder: feed() the bytes in any pieces, then finish(). A chunk's records reach the
// sink only after its checksum was verified, so a corrupt chunk delivers nothing; records of
// earlier chunks were delivered (a loader that must be all-or-nothing checks the file first).
// Errors name the byte offset in the stream where the bad chunk (or preamble) starts:
// "offset 4096: data chunk checksum mismatch".
class SnapshotDecoder {
 public:
  explicit SnapshotDecoder(SnapshotSink* sink) : sink_(sink) {}
  // False on the first error (error() says which); further calls return false.
  bool feed(const uint8_t* p, size_t n);
  // Call at the end of the stream: false if it ended before the end chunk (truncated) or inside
  // a chunk.
  bool finish();
  const std::string& error() const { return error_; }
  uint64_t offset() const { return offset_; }  // bytes consumed
  const SnapshotInfo& info() const { return info_; }
  const SnapshotTotals& totals() const { return seen_; }

 private:
  bool fail(uint64_t at, const std::string& why);
  bool take_preamble();
  bool take_chunk(uint8_t type, const uint8_t* payload, uint32_t len, uint64_t at);
  bool take_data(const uint8_t* p, uint32_t len, uint64_t at);
  SnapshotSink* sink_;
  std::vector<uint8_t> pending_;  // bytes of an incomplete preamble or chunk
  uint64_t offset_ = 0;           // stream offset of pending_[0]
  int stage_ = 0;                 // 0 preamble, 1 header chunk, 2 data/end, 3 after end
  std::string error_;
  uint16_t version_ = 0;  // of the stream, from its preamble
  SnapshotInfo info_;
  SnapshotTotals seen_;
};

}  // namespace shoal::shm
