// shm/snapshot_codec.cpp — see snapshot_codec.hpp and docs/snapshot-format.md.
#include "shm/snapshot_codec.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "shm/byte_order.hpp"

namespace shoal::shm {
namespace {

constexpr size_t kTorrentRecordBytes = 1 + 20 + 1 + 1 + 4;  // tag, info_hash, kind, flags, completed
// tag, family, flags, addr, port, age, topology_group, progress [, peer_id]
constexpr size_t peer_record_bytes(uint8_t family, uint8_t flags) {
  return 1 + 1 + 1 + (family == 6 ? 16 : 4) + 2 + 4 + 2 + 2 + ((flags & kSnapPeerHasPeerId) ? 20 : 0);
}

// tag, flags, key, node, slot, generation, token, age
constexpr size_t kWsPeerRecordBytes = 1 + 1 + 16 + 2 + 1 + 2 + 4 + 4;
constexpr uint8_t kSnapWsKnownFlags = kSnapPeerSeeder | kSnapPeerCompletedCounted;

using namespace be;  // get16/32/64, put16/32/64: shm/byte_order.hpp

// Writes a chunk header for `len` payload bytes already at h + kChunkHeaderBytes.
void seal_chunk(uint8_t* h, ChunkType type, uint32_t len) {
  h[0] = uint8_t(type);
  h[1] = h[2] = h[3] = 0;
  put32(h + 4, len);
  uint32_t crc = snapshot_crc(0, h, 8);
  put32(h + 8, snapshot_crc(crc, h + kChunkHeaderBytes, len));
}

std::vector<uint8_t> chunk(ChunkType type, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(kChunkHeaderBytes + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + kChunkHeaderBytes);
  seal_chunk(out.data(), type, uint32_t(payload.size()));
  return out;
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  size_t n = std::min<size_t>(s.size(), 255);
  out.push_back(uint8_t(n));
  out.insert(out.end(), s.begin(), s.begin() + long(n));
}

const char* type_name(uint8_t t) {
  switch (ChunkType(t)) {
    case ChunkType::header: return "header";
    case ChunkType::data: return "data";
    case ChunkType::end: return "end";
  }
  return "unknown";
}

}  // namespace

uint32_t snapshot_crc(uint32_t crc, const uint8_t* p, size_t n) {
  return uint32_t(crc32_z(crc, p, n));
}

std::vector<uint8_t> encode_snapshot_start(const SnapshotInfo& info) {
  std::vector<uint8_t> out(kSnapshotPreambleBytes, 0);
  std::memcpy(out.data(), kSnapshotMagic, 8);
  put16(out.data() + 8, kSnapshotVersion);
  std::vector<uint8_t> h(8 + 4);
  put64(h.data(), info.created_unix);
  put32(h.data() + 8, info.layout_version);
  put_string(h, info.node);
  put_string(h, info.software);
  std::vector<uint8_t> c = chunk(ChunkType::header, h);
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

std::vector<uint8_t> encode_snapshot_end(const SnapshotTotals& t) {
  std::vector<uint8_t> p(8 + 8 + 4);
  put64(p.data(), t.torrents);
  put64(p.data() + 8, t.peers);
  put32(p.data() + 16, t.data_chunks);
  return chunk(ChunkType::end, p);
}

// ---- DataChunkWriter ---------------------------------------------------------------------

void DataChunkWriter::begin(uint8_t* buf) {
  buf_ = buf;
  used_ = kChunkHeaderBytes;
  if (open_) {
    SnapTorrent c = current_;
    c.flags |= kSnapTorrentContinued;
    put_torrent(c);
  }
}

bool DataChunkWriter::put_torrent(const SnapTorrent& t) {
  if (used_ + kTorrentRecordBytes > kChunkBytes) return false;
  uint8_t* p = buf_ + used_;
  p[0] = kRecordTorrent;
  std::memcpy(p + 1, t.info_hash, 20);
  p[21] = t.kind;
  p[22] = t.flags;
  put32(p + 23, t.completed);
  used_ += kTorrentRecordBytes;
  return true;
}

bool DataChunkWriter::add_torrent(const SnapTorrent& t) {
  SnapTorrent c = t;
  c.flags &= uint8_t(~kSnapTorrentContinued);
  if (!put_torrent(c)) return false;
  current_ = c;
  open_ = true;
  torrents_++;
  return true;
}

bool DataChunkWriter::add_peer(const SnapPeer& peer) {
  uint8_t flags = peer.flags & kSnapPeerKnownFlags;
  size_t need = peer_record_bytes(peer.family, flags);
  if (!open_ || used_ + need > kChunkBytes) return false;
  uint8_t* p = buf_ + used_;
  size_t alen = peer.family == 6 ? 16 : 4;
  p[0] = kRecordPeer;
  p[1] = peer.family == 6 ? 6 : 4;
  p[2] = flags;
  std::memcpy(p + 3, peer.addr, alen);
  p += 3 + alen;
  std::memcpy(p, &peer.port_be, 2);  // already network order
  put32(p + 2, peer.age_s);
  put16(p + 6, peer.topology_group);
  put16(p + 8, peer.progress);
  if (flags & kSnapPeerHasPeerId) std::memcpy(p + 10, peer.peer_id, 20);
  used_ += need;
  peers_++;
  return true;
}

bool DataChunkWriter::add_ws_peer(const SnapWsPeer& peer) {
  if (!open_ || current_.kind != 1 || used_ + kWsPeerRecordBytes > kChunkBytes) return false;
  uint8_t* p = buf_ + used_;
  p[0] = kRecordWsPeer;
  p[1] = peer.flags & kSnapWsKnownFlags;
  std::memcpy(p + 2, peer.key, 16);
  put16(p + 18, peer.node);
  p[20] = peer.slot;
  put16(p + 21, peer.generation);
  put32(p + 23, peer.token);
  put32(p + 27, peer.age_s);
  used_ += kWsPeerRecordBytes;
  peers_++;
  return true;
}

size_t DataChunkWriter::seal() {
  if (used_ <= kChunkHeaderBytes) return 0;
  seal_chunk(buf_, ChunkType::data, uint32_t(used_ - kChunkHeaderBytes));
  return used_;
}

// ---- SnapshotDecoder ---------------------------------------------------------------------

bool SnapshotDecoder::fail(uint64_t at, const std::string& why) {
  if (error_.empty()) error_ = "offset " + std::to_string(at) + ": " + why;
  stage_ = 4;
  return false;
}

bool SnapshotDecoder::take_preamble() {
  const uint8_t* p = pending_.data();
  if (std::memcmp(p, kSnapshotMagic, 8) != 0) return fail(0, "not a shoal snapshot (bad magic)");
  uint16_t v = get16(p + 8);
  if (v < kSnapshotOldestVersion || v > kSnapshotVersion)
    return fail(8, "snapshot format version " + std::to_string(v) + " is not supported (this shoald reads versions " +
                       std::to_string(kSnapshotOldestVersion) + " to " + std::to_string(kSnapshotVersion) + ")");
  version_ = v;
  if (get16(p + 10) != 0) return fail(10, "unknown preamble flags");
  return true;
}

bool SnapshotDecoder::feed(const uint8_t* p, size_t n) {
  size_t i = 0;
  for (;;) {
    if (stage_ == 4) return false;
    if (stage_ == 3) return i == n || fail(offset_, "bytes after the end chunk");
    // Bytes pending_ must hold for the next step: the preamble, a chunk header, a whole chunk.
    size_t want = stage_ == 0 ? kSnapshotPreambleBytes : kChunkHeaderBytes;
    if (stage_ > 0 && pending_.size() >= kChunkHeaderBytes) {
      uint32_t len = get32(pending_.data() + 4);
      if (len > kMaxChunkPayload)
        return fail(offset_, std::string(type_name(pending_[0])) + " chunk length " + std::to_string(len) +
                                 " is over the limit of " + std::to_string(kMaxChunkPayload) + " bytes");
      want += len;
    }
    if (pending_.size() < want) {
      if (i == n) return true;  // wait for more bytes
      size_t take = std::min(want - pending_.size(), n - i);
      pending_.insert(pending_.end(), p + i, p + i + take);
      i += take;
      continue;
    }
    if (stage_ == 0) {
      if (!take_preamble()) return false;
      stage_ = 1;
    } else {
      const uint8_t* h = pending_.data();
      uint32_t len = get32(h + 4);
      uint32_t crc = snapshot_crc(snapshot_crc(0, h, 8), h + kChunkHeaderBytes, len);
      if (crc != get32(h + 8)) return fail(offset_, std::string(type_name(h[0])) + " chunk checksum mismatch");
      if (!take_chunk(h[0], h + kChunkHeaderBytes, len, offset_)) return false;
    }
    offset_ += pending_.size();
    pending_.clear();
  }
}

bool SnapshotDecoder::take_chunk(uint8_t type, const uint8_t* p, uint32_t len, uint64_t at) {
  if (stage_ == 1) {
    if (type != uint8_t(ChunkType::header)) return fail(at, std::string("expected the header chunk, found a ") + type_name(type) + " chunk");
    if (len < 14) return fail(at, "header chunk too short");
    info_.created_unix = get64(p);
    info_.layout_version = get32(p + 8);
    uint32_t off = 12;
    for (std::string* s : {&info_.node, &info_.software}) {
      if (off >= len || off + 1 + p[off] > len) return fail(at, "header chunk: string runs past the chunk");
      s->assign(reinterpret_cast<const char*>(p + off + 1), p[off]);
      off += 1 + p[off];
    }
    stage_ = 2;
    if (!sink_->on_header(info_)) return fail(at, "stopped");
    return true;
  }
  if (type == uint8_t(ChunkType::data)) return take_data(p, len, at);
  if (type != uint8_t(ChunkType::end)) return fail(at, std::string("unexpected ") + type_name(type) + " chunk (type " + std::to_string(type) + ")");
  if (len < 20) return fail(at, "end chunk too short");
  SnapshotTotals t{get64(p), get64(p + 8), get32(p + 16)};
  if (t.torrents != seen_.torrents || t.peers != seen_.peers || t.data_chunks != seen_.data_chunks)
    return fail(at, "end chunk says " + std::to_string(t.torrents) + " torrents, " + std::to_string(t.peers) + " peers in " +
                        std::to_string(t.data_chunks) + " chunks; the stream held " + std::to_string(seen_.torrents) + ", " +
                        std::to_string(seen_.peers) + " in " + std::to_string(seen_.data_chunks));
  stage_ = 3;
  if (!sink_->on_end(t)) return fail(at, "stopped");
  return true;
}

// The checksum vouches for the bytes; a malformed record inside a good chunk (a writer's bug)
// stops the decoder with the record's offset, after the chunk's earlier records were delivered.
bool SnapshotDecoder::take_data(const uint8_t* p, uint32_t len, uint64_t at) {
  seen_.data_chunks++;
  bool have = false;
  SnapTorrent t{};
  uint32_t i = 0;
  while (i < len) {
    uint64_t rec_at = at + kChunkHeaderBytes + i;
    if (p[i] == kRecordTorrent) {
      if (len - i < kTorrentRecordBytes) return fail(rec_at, "torrent record runs past the chunk");
      std::memcpy(t.info_hash, p + i + 1, 20);
      t.kind = p[i + 21];
      t.flags = p[i + 22];
      t.completed = get32(p + i + 23);
      if (t.kind > 1 || (t.flags & ~kSnapTorrentContinued)) return fail(rec_at, "torrent record with unknown kind or flags");
      have = true;
      i += kTorrentRecordBytes;
      if (!(t.flags & kSnapTorrentContinued)) seen_.torrents++;
      if (!sink_->on_torrent(t)) return fail(rec_at, "stopped");
    } else if (p[i] == kRecordPeer) {
      if (!have) return fail(rec_at, "peer record before any torrent record of its chunk");
      if (len - i < 3) return fail(rec_at, "peer record runs past the chunk");
      SnapPeer peer;
      peer.family = p[i + 1];
      peer.flags = p[i + 2];
      if ((peer.family != 4 && peer.family != 6) || (peer.flags & ~kSnapPeerKnownFlags))
        return fail(rec_at, "peer record with unknown family or flags");
      size_t need = peer_record_bytes(peer.family, peer.flags);
      if (len - i < need) return fail(rec_at, "peer record runs past the chunk");
      size_t alen = peer.family == 6 ? 16 : 4;
      const uint8_t* q = p + i + 3;
      std::memcpy(peer.addr, q, alen);
      q += alen;
      std::memcpy(&peer.port_be, q, 2);
      peer.age_s = get32(q + 2);
      peer.topology_group = get16(q + 6);
      peer.progress = get16(q + 8);
      if (peer.flags & kSnapPeerHasPeerId) std::memcpy(peer.peer_id, q + 10, 20);
      i += uint32_t(need);
      seen_.peers++;
      if (!sink_->on_peer(t, peer)) return fail(rec_at, "stopped");
    } else if (p[i] == kRecordWsPeer && version_ >= 2) {
      if (!have || t.kind != 1) return fail(rec_at, "WebTorrent peer record not after a WebTorrent torrent record of its chunk");
      if (len - i < kWsPeerRecordBytes) return fail(rec_at, "WebTorrent peer record runs past the chunk");
      const uint8_t* q = p + i;
      SnapWsPeer w;
      w.flags = q[1];
      std::memcpy(w.key, q + 2, 16);
      w.node = get16(q + 18);
      w.slot = q[20];
      w.generation = get16(q + 21);
      w.token = get32(q + 23);
      w.age_s = get32(q + 27);
      if ((w.flags & ~kSnapWsKnownFlags) || w.node == 0) return fail(rec_at, "WebTorrent peer record with unknown flags or node 0");
      i += uint32_t(kWsPeerRecordBytes);
      seen_.peers++;
      if (!sink_->on_ws_peer(t, w)) return fail(rec_at, "stopped");
    } else {
      return fail(rec_at, "unknown record tag " + std::to_string(p[i]));
    }
  }
  return true;
}

bool SnapshotDecoder::finish() {
  if (stage_ == 4) return false;
  if (stage_ == 3) return true;
  uint64_t at = offset_ + pending_.size();
  if (stage_ == 0 && pending_.empty()) return fail(0, "empty file");
  if (!pending_.empty()) return fail(offset_, "truncated: the stream ends inside a " + std::string(stage_ == 0 ? "preamble" : "chunk") +
                                                  " (" + std::to_string(pending_.size()) + " bytes of it)");
  return fail(at, "truncated: the stream ends without its end chunk");
}

}  // namespace shoal::shm
