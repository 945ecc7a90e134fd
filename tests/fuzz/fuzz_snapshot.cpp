// libFuzzer target: the snapshot decoder (shm/snapshot_codec.cpp) and the restore path a loader
// runs on what it delivers (Partition::restore_peer, and restore_webtorrent for the WebTorrent
// peer records of version 2, into a small partition). The input is fed in
// two pieces split where its first byte says (a stream arrives in pieces from a file or NATS).
// Checks: an error always names an offset within the input; the partition validates after every
// restore; a stream that decodes has end totals equal to what the sink saw. Seeds
// (corpus/fuzz_snapshot) are valid streams made by tools/make_snapshot_seeds.py, so the fuzzer
// starts past the checksums.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "shm/layout.hpp"
#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "shm/snapshot_codec.hpp"

namespace {

struct Part {
  size_t size;
  std::unique_ptr<uint8_t[]> raw;
  uint8_t* base;
  Part() {
    shoal::shm::PartitionCapacity cap{8, 32};
    size = shoal::shm::partition_segment_bytes(cap);
    raw.reset(new uint8_t[size + 64]());
    base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw.get()) + 63) & ~uintptr_t(63));
    shoal::shm::SegmentHeader h{};
    h.magic = shoal::shm::kMagic;
    h.layout_version = shoal::shm::kLayoutVersion;
    h.kind = uint32_t(shoal::shm::SegmentKind::partition);
    h.header_size = sizeof h;
    h.segment_size = size;
    std::memcpy(base, &h, sizeof h);
    shoal::shm::partition_format(base, size, cap);
  }
};

struct Sink final : shoal::shm::SnapshotSink {
  shoal::shm::Partition* part;
  uint64_t torrents = 0, peers = 0;
  bool on_torrent(const shoal::shm::SnapTorrent& t) override {
    if (!(t.flags & shoal::shm::kSnapTorrentContinued)) torrents++;
    return true;
  }
  bool on_peer(const shoal::shm::SnapTorrent& t, const shoal::shm::SnapPeer& p) override {
    peers++;
    shoal::shm::RestoreInput in{};
    in.info_hash = t.info_hash;
    in.completed = t.completed;
    in.family = p.family;
    std::memcpy(in.addr, p.addr, 16);
    in.port_be = p.port_be;
    in.flags = uint8_t(p.flags & 7);
    in.last_seen = p.age_s;
    in.topology_group = p.topology_group;
    in.progress = p.progress;
    part->restore_peer(in);
    if (!part->validate().empty()) __builtin_trap();
    return true;
  }
  // Version 2: a WebTorrent peer of a cluster join answer, restored as the joiner does.
  bool on_ws_peer(const shoal::shm::SnapTorrent& t, const shoal::shm::SnapWsPeer& p) override {
    peers++;
    shoal::shm::WsRestoreInput in{};
    in.info_hash = t.info_hash;
    std::memcpy(in.key, p.key, 16);
    in.node = p.node;
    in.slot = p.slot;
    in.generation = p.generation;
    in.token = p.token;
    in.flags = uint8_t(p.flags & 3);
    in.last_seen = p.age_s;
    part->restore_webtorrent(in);
    if (!part->validate().empty()) __builtin_trap();
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t* stream = data + 1;
  size_t n = size - 1, k = data[0] % (n + 1);
  Part seg;
  shoal::shm::Partition part(seg.base, seg.size);
  Sink sink;
  sink.part = &part;
  shoal::shm::SnapshotDecoder dec(&sink);
  bool ok = dec.feed(stream, k) && dec.feed(stream + k, n - k);
  if (ok) ok = dec.finish();
  if (!ok) {
    const std::string& e = dec.error();
    if (e.compare(0, 7, "offset ") != 0) __builtin_trap();
    if (std::stoull(e.substr(7)) > size) __builtin_trap();
  } else if (dec.totals().torrents != sink.torrents || dec.totals().peers != sink.peers) {
    __builtin_trap();
  }
  return 0;
}
