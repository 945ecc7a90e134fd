// tests/unit/snapshot_codec_test.cpp — the snapshot format (shm/snapshot_codec.hpp) and the
// partition's snapshot pass and restore (shm/partition_snapshot.cpp): a round trip of torrents
// and peers through chunks, the stream fed in pieces of every size, truncation at every chunk
// boundary and inside chunks, a wrong magic or version, a flipped byte (checksum), an end chunk
// whose totals disagree, and a partition written in slices and restored into a fresh one.
#include "shm/snapshot_codec.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "shm/messages.hpp"
#include "shm/partition.hpp"
#include "shm/partition_layout.hpp"
#include "tests/unit/partition_segment.hpp"

namespace shoal::shm {
namespace {

// Records a decoder delivers, as comparable tuples.
struct Collect : SnapshotSink {
  std::vector<std::string> torrents;  // hex-ish key + completed
  std::vector<std::tuple<std::string, int, std::string, uint16_t, uint32_t, int, uint16_t, uint16_t>> peers;
  bool ended = false;
  SnapshotInfo info;
  bool on_header(const SnapshotInfo& i) override {
    info = i;
    return true;
  }
  bool on_torrent(const SnapTorrent& t) override {
    if (!(t.flags & kSnapTorrentContinued)) torrents.push_back(std::string(reinterpret_cast<const char*>(t.info_hash), 20) + "/" + std::to_string(t.completed));
    return true;
  }
  bool on_peer(const SnapTorrent& t, const SnapPeer& p) override {
    peers.emplace_back(std::string(reinterpret_cast<const char*>(t.info_hash), 20), p.family,
                       std::string(reinterpret_cast<const char*>(p.addr), p.family == 6 ? 16 : 4), p.port_be, p.age_s,
                       p.flags, p.topology_group, p.progress);
    return true;
  }
  bool on_end(const SnapshotTotals&) override { return ended = true; }
};

SnapTorrent torrent(uint32_t n, uint32_t completed) {
  SnapTorrent t{};
  for (int i = 0; i < 20; i++) t.info_hash[i] = uint8_t(n * 7 + i);
  std::memcpy(t.info_hash, &n, 4);
  t.completed = completed;
  return t;
}

SnapPeer peer(uint32_t n) {
  SnapPeer p;
  p.family = n % 3 == 0 ? 6 : 4;
  for (int i = 0; i < 16; i++) p.addr[i] = uint8_t(n >> (i % 4 * 8)) ^ uint8_t(i);
  p.port_be = htons(uint16_t(1000 + n));
  p.age_s = n % 600;
  p.flags = uint8_t(n % 2 ? kSnapPeerSeeder : (n % 4 == 0 ? kSnapPeerRepresentative : 0));
  if (n % 5 == 0) p.flags |= kSnapPeerCompletedCounted;
  if (n % 7 == 0) {
    p.flags |= kSnapPeerHasPeerId;
    std::memset(p.peer_id, int('A' + n % 26), 20);
  }
  p.topology_group = uint16_t(n % 9);
  p.progress = uint16_t(n % 4 == 0 ? 0xffff : n % 1001);
  return p;
}

// A stream of `torrents` torrents with `peers_each` peers each; *chunk_ends gets the offset
// after each chunk.
std::vector<uint8_t> build(uint32_t torrents, uint32_t peers_each, std::vector<size_t>* chunk_ends = nullptr) {
  SnapshotInfo info{1765000000, "node-a", "shoald test", 42};
  std::vector<uint8_t> out = encode_snapshot_start(info);
  if (chunk_ends) chunk_ends->push_back(out.size());
  std::vector<uint8_t> buf(kChunkBytes);
  DataChunkWriter w;
  w.begin(buf.data());
  SnapshotTotals tot;
  auto flush = [&] {
    size_t n = w.seal();
    if (n == 0) return;
    out.insert(out.end(), buf.begin(), buf.begin() + long(n));
    if (chunk_ends) chunk_ends->push_back(out.size());
    tot.data_chunks++;
    w.begin(buf.data());
  };
  for (uint32_t t = 0; t < torrents; t++) {
    if (!w.add_torrent(torrent(t, t * 3))) {
      flush();
      EXPECT_TRUE(w.add_torrent(torrent(t, t * 3)));
    }
    for (uint32_t p = 0; p < peers_each; p++) {
      if (w.add_peer(peer(t * 1000 + p))) continue;
      flush();
      EXPECT_TRUE(w.add_peer(peer(t * 1000 + p)));
    }
  }
  flush();
  tot.torrents = w.torrents();
  tot.peers = w.peers();
  std::vector<uint8_t> end = encode_snapshot_end(tot);
  out.insert(out.end(), end.begin(), end.end());
  if (chunk_ends) chunk_ends->push_back(out.size());
  return out;
}

bool decode(const std::vector<uint8_t>& s, Collect* c, std::string* err, size_t piece = SIZE_MAX) {
  SnapshotDecoder d(c);
  for (size_t i = 0; i < s.size(); i += piece) {
    size_t n = std::min(piece, s.size() - i);
    if (!d.feed(s.data() + i, n)) return *err = d.error(), false;
  }
  if (!d.finish()) return *err = d.error(), false;
  return true;
}

TEST(SnapshotCodec, RoundTripAcrossChunksInAnyPieces) {
  std::vector<size_t> ends;
  std::vector<uint8_t> s = build(40, 700, &ends);  // 28,000 peers: many 16 KiB chunks
  ASSERT_GT(ends.size(), 20u);
  Collect whole;
  std::string err;
  ASSERT_TRUE(decode(s, &whole, &err)) << err;
  EXPECT_TRUE(whole.ended);
  EXPECT_EQ(whole.info.node, "node-a");
  EXPECT_EQ(whole.info.created_unix, 1765000000u);
  EXPECT_EQ(whole.info.layout_version, 42u);
  ASSERT_EQ(whole.torrents.size(), 40u);
  ASSERT_EQ(whole.peers.size(), 28000u);
  // The peers come back as written, each under its own torrent, although torrents span chunks.
  for (uint32_t t = 0; t < 40; t++) {
    for (uint32_t p = 0; p < 700; p += 97) {
      const auto& got = whole.peers[t * 700 + p];
      SnapTorrent tt = torrent(t, 0);
      SnapPeer pp = peer(t * 1000 + p);
      EXPECT_EQ(std::get<0>(got), std::string(reinterpret_cast<const char*>(tt.info_hash), 20));
      EXPECT_EQ(std::get<1>(got), pp.family);
      EXPECT_EQ(std::get<3>(got), pp.port_be);
      EXPECT_EQ(std::get<4>(got), pp.age_s);
      EXPECT_EQ(std::get<5>(got), pp.flags);
      EXPECT_EQ(std::get<7>(got), pp.progress);
    }
  }
  for (size_t piece : {1u, 7u, 4096u, 16397u}) {
    Collect c;
    ASSERT_TRUE(decode(s, &c, &err, piece)) << piece << ": " << err;
    EXPECT_EQ(c.peers, whole.peers);
    EXPECT_EQ(c.torrents, whole.torrents);
  }
}

TEST(SnapshotCodec, TruncationAnywhereIsRefusedWithItsOffset) {
  std::vector<size_t> ends;
  std::vector<uint8_t> s = build(5, 1500, &ends);
  ASSERT_GT(ends.size(), 4u);
  for (size_t i = 0; i + 1 < ends.size(); i++) {  // every chunk boundary before the end chunk
    std::vector<uint8_t> cut(s.begin(), s.begin() + long(ends[i]));
    Collect c;
    std::string err;
    EXPECT_FALSE(decode(cut, &c, &err)) << "cut at " << ends[i];
    EXPECT_EQ(err, "offset " + std::to_string(ends[i]) + ": truncated: the stream ends without its end chunk");
    EXPECT_FALSE(c.ended);
  }
  for (size_t i = 1; i < ends.size(); i++) {  // inside each chunk
    size_t at = (ends[i - 1] + ends[i]) / 2;
    std::vector<uint8_t> cut(s.begin(), s.begin() + long(at));
    Collect c;
    std::string err;
    EXPECT_FALSE(decode(cut, &c, &err));
    EXPECT_EQ(err.rfind("offset " + std::to_string(ends[i - 1]) + ": truncated: the stream ends inside a chunk", 0), 0u) << err;
  }
  Collect c;
  std::string err;
  EXPECT_FALSE(decode({}, &c, &err));
  EXPECT_EQ(err, "offset 0: empty file");
  EXPECT_FALSE(decode(std::vector<uint8_t>(s.begin(), s.begin() + 9), &c, &err));
  EXPECT_EQ(err, "offset 0: truncated: the stream ends inside a preamble (9 bytes of it)");
}

TEST(SnapshotCodec, WrongMagicOrVersionIsRefused) {
  std::vector<uint8_t> s = build(2, 3);
  std::string err;
  Collect c;
  std::vector<uint8_t> bad = s;
  bad[0] = 'X';
  EXPECT_FALSE(decode(bad, &c, &err));
  EXPECT_EQ(err, "offset 0: not a shoal snapshot (bad magic)");
  bad = s;
  bad[9] = 3;  // version 3
  EXPECT_FALSE(decode(bad, &c, &err));
  EXPECT_EQ(err, "offset 8: snapshot format version 3 is not supported (this shoald reads versions 1 to 2)");
  EXPECT_TRUE(c.torrents.empty());
}

// A stream of one WebTorrent torrent (kind 1) with `peers` WebTorrent peer records, in version
// `version`'s preamble.
std::vector<uint8_t> build_ws(uint32_t peers, uint16_t version = kSnapshotVersion) {
  std::vector<uint8_t> out = encode_snapshot_start(SnapshotInfo{1765000000, "node-a", "shoald test", 42});
  out[9] = uint8_t(version);  // the preamble is not checksummed
  std::vector<uint8_t> buf(kChunkBytes);
  DataChunkWriter w;
  w.begin(buf.data());
  SnapTorrent t = torrent(1, 4);
  t.kind = 1;
  EXPECT_TRUE(w.add_torrent(t));
  for (uint32_t n = 0; n < peers; n++) {
    SnapWsPeer p;
    p.flags = n % 2 ? kSnapPeerSeeder | kSnapPeerCompletedCounted : 0;
    for (int i = 0; i < 16; i++) p.key[i] = uint8_t(n * 5 + i);
    p.node = uint16_t(1 + n);
    p.slot = uint8_t(n % 3);
    p.generation = uint16_t(0xfff0 + n);
    p.token = 0x01020304u * (n + 1);
    p.age_s = 60 * n;
    EXPECT_TRUE(w.add_ws_peer(p));
  }
  size_t n = w.seal();
  out.insert(out.end(), buf.begin(), buf.begin() + long(n));
  std::vector<uint8_t> end = encode_snapshot_end(SnapshotTotals{w.torrents(), w.peers(), 1});
  out.insert(out.end(), end.begin(), end.end());
  return out;
}

TEST(SnapshotCodec, WebTorrentPeerRecordsRoundTripInVersion2Only) {
  struct WsCollect : Collect {
    std::vector<SnapWsPeer> ws;
    std::vector<int> kinds;
    bool on_torrent(const SnapTorrent& t) override { return kinds.push_back(t.kind), true; }
    bool on_ws_peer(const SnapTorrent&, const SnapWsPeer& p) override { return ws.push_back(p), true; }
  } c;
  std::string err;
  ASSERT_TRUE(decode(build_ws(3), &c, &err, 7)) << err;
  ASSERT_EQ(c.ws.size(), 3u);
  EXPECT_EQ(c.kinds, std::vector<int>{1});
  for (uint32_t n = 0; n < 3; n++) {
    const SnapWsPeer& p = c.ws[n];
    EXPECT_EQ(p.flags, n % 2 ? kSnapPeerSeeder | kSnapPeerCompletedCounted : 0);
    for (int i = 0; i < 16; i++) EXPECT_EQ(p.key[i], uint8_t(n * 5 + i));
    EXPECT_EQ(p.node, 1 + n);
    EXPECT_EQ(p.slot, n % 3);
    EXPECT_EQ(p.generation, 0xfff0 + n);
    EXPECT_EQ(p.token, 0x01020304u * (n + 1));
    EXPECT_EQ(p.age_s, 60 * n);
  }
  // 31 bytes each, after the 27-byte torrent record of the one data chunk.
  EXPECT_EQ(build_ws(3).size() - build_ws(0).size(), 3u * 31);
  // A version 1 stream has no such record.
  WsCollect old;
  EXPECT_FALSE(decode(build_ws(1, 1), &old, &err));
  EXPECT_NE(err.find("unknown record tag 87"), std::string::npos) << err;
  // A version 1 file (BitTorrent records only) still loads.
  std::vector<uint8_t> v1 = build(2, 3);
  v1[9] = 1;
  Collect c1;
  EXPECT_TRUE(decode(v1, &c1, &err)) << err;
  EXPECT_EQ(c1.peers.size(), 6u);
  // The writer puts one only under a WebTorrent torrent.
  std::vector<uint8_t> buf(kChunkBytes);
  DataChunkWriter w;
  w.begin(buf.data());
  ASSERT_TRUE(w.add_torrent(torrent(2, 0)));
  EXPECT_FALSE(w.add_ws_peer(SnapWsPeer{}));
}

TEST(SnapshotCodec, AnyFlippedByteAfterThePreambleFailsItsChunkChecksum) {
  std::vector<size_t> ends;
  std::vector<uint8_t> s = build(3, 2000, &ends);
  for (size_t i = 0; i + 1 < ends.size(); i++) {
    for (size_t at : {ends[i] + 1, ends[i] + 5, ends[i] + 9, (ends[i] + ends[i + 1]) / 2, ends[i + 1] - 1}) {
      std::vector<uint8_t> bad = s;
      bad[at] ^= 0x10;
      Collect c;
      std::string err;
      EXPECT_FALSE(decode(bad, &c, &err)) << at;
      EXPECT_EQ(err.rfind("offset " + std::to_string(ends[i]) + ": ", 0), 0u) << at << " " << err;
      EXPECT_FALSE(c.ended);
    }
  }
  std::vector<uint8_t> bad = s;
  bad[ends[1] + 20] ^= 1;  // a data chunk's payload
  Collect c;
  std::string err;
  EXPECT_FALSE(decode(bad, &c, &err));
  EXPECT_EQ(err, "offset " + std::to_string(ends[1]) + ": data chunk checksum mismatch");
}

TEST(SnapshotCodec, EndChunkTotalsMustMatchAndNothingMayFollow) {
  std::vector<size_t> ends;
  std::vector<uint8_t> s = build(3, 10, &ends);
  // A data chunk left out: the end chunk's count of chunks and peers disagrees.
  std::vector<uint8_t> gap(s.begin(), s.begin() + long(ends[0]));
  gap.insert(gap.end(), s.begin() + long(ends[1]), s.end());
  Collect c;
  std::string err;
  ASSERT_EQ(ends.size(), 3u);  // one data chunk only: drop it
  EXPECT_FALSE(decode(gap, &c, &err));
  EXPECT_NE(err.find("end chunk says 3 torrents, 30 peers in 1 chunks; the stream held 0, 0 in 0"), std::string::npos) << err;
  std::vector<uint8_t> extra = s;
  extra.push_back(0);
  EXPECT_FALSE(decode(extra, &c, &err));
  EXPECT_EQ(err, "offset " + std::to_string(s.size()) + ": bytes after the end chunk");
}

TEST(SnapshotCodec, OversizedChunkLengthIsRefusedBeforeBuffering) {
  std::vector<uint8_t> s = build(1, 1);
  std::vector<uint8_t> bad(s.begin(), s.begin() + long(kSnapshotPreambleBytes));
  bad.insert(bad.end(), {1, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0});
  Collect c;
  std::string err;
  EXPECT_FALSE(decode(bad, &c, &err));
  EXPECT_EQ(err, "offset 16: header chunk length 2147483647 is over the limit of 1048576 bytes");
}

// ---- partition ↔ snapshot ----------------------------------------------------------------

using test_support::Seg;

uint8_t announce(Partition& part, uint32_t t, uint32_t n, uint8_t family, bool seeder, uint8_t event, uint32_t now) {
  SnapTorrent tt = torrent(t, 0);
  AnnounceInput in{};
  in.info_hash = tt.info_hash;
  in.family = family;
  SnapPeer p = peer(n);
  std::memcpy(in.addr, p.addr, 16);
  in.port = p.port_be;
  in.event = event;
  in.seeder = seeder;
  in.topology_group = uint16_t(n % 5);
  in.progress = uint16_t(n % 1000);
  in.now = now;
  return part.announce(in, nullptr).status;
}

// Key → (seeder, topology, progress, last_seen) of every peer of a partition's torrents.
std::map<std::string, std::tuple<bool, uint16_t, uint16_t>> contents(const Partition& part, uint32_t torrents) {
  std::map<std::string, std::tuple<bool, uint16_t, uint16_t>> m;
  for (uint32_t t = 0; t < torrents; t++) {
    SnapTorrent tt = torrent(t, 0);
    part.for_each_peer(tt.info_hash, [&](const PeerInfo& p) {
      std::string k = std::to_string(t) + "/" + std::to_string(p.family) + "/" +
                      std::string(reinterpret_cast<const char*>(p.addr16), p.family == 6 ? 16 : 4) + "/" + std::to_string(p.port_be);
      m[k] = {p.seeder, p.topology_group, p.progress};
    });
  }
  return m;
}

struct Restorer : SnapshotSink {
  Partition* part;
  uint32_t t_load;   // seconds since the clock base now
  uint32_t elapsed;  // seconds since the snapshot was taken
  uint32_t ttl;
  uint32_t restored = 0, skipped = 0;
  bool on_peer(const SnapTorrent& t, const SnapPeer& p) override {
    if (uint64_t(p.age_s) + elapsed > ttl) return ++skipped, true;
    RestoreInput in{};
    in.info_hash = t.info_hash;
    in.completed = t.completed;
    in.family = p.family;
    std::memcpy(in.addr, p.addr, 16);
    in.port_be = p.port_be;
    in.flags = uint8_t((p.flags & kSnapPeerSeeder ? kPeerSeeder : 0) | (p.flags & kSnapPeerCompletedCounted ? kPeerCompletedCounted : 0));
    in.last_seen = t_load - elapsed - p.age_s;
    in.topology_group = p.topology_group;
    in.progress = p.progress;
    EXPECT_EQ(part->restore_peer(in), uint8_t(ResponseStatus::ok));
    restored++;
    return true;
  }
};

TEST(PartitionSnapshot, SlicedPassRestoresEveryPeerCountAndCompletion) {
  PartitionCapacity cap{2000, 40000};
  Seg a(cap);
  Partition pa(a.base, a.size);
  uint32_t peers = 0;
  for (uint32_t t = 0; t < 300; t++) {
    uint32_t n = t == 7 ? 5000 : t % 20;  // one big swarm (written over several slices)
    for (uint32_t i = 0; i < n; i++, peers++) {
      uint8_t fam = i % 3 == 0 ? 6 : 4;
      bool seeder = i % 4 == 0;
      ASSERT_EQ(announce(pa, t, t * 10000 + i, fam, seeder, seeder ? uint8_t(Event::completed) : 0, 1000 + i % 50),
                uint8_t(ResponseStatus::ok));
    }
  }
  PartitionTotals before = pa.totals();
  ASSERT_EQ(before.seeders + before.leechers, peers);
  // The pass, 64 peers a slice, chunks sealed as they fill.
  std::vector<uint8_t> s = encode_snapshot_start({1765000000, "n", "t", 1});
  std::vector<uint8_t> buf(kChunkBytes);
  DataChunkWriter w;
  w.begin(buf.data());
  SnapshotCursor c;
  SnapshotTotals tot;
  int slices = 0;
  while (!c.done) {
    slices++;
    uint32_t n = pa.snapshot_step(c, w, 1100, 64);
    if (n == 0 || (!c.done && n < 64)) {  // the chunk is full (or nothing fitted)
      size_t len = w.seal();
      ASSERT_GT(len, 0u);
      s.insert(s.end(), buf.begin(), buf.begin() + long(len));
      tot.data_chunks++;
      w.begin(buf.data());
    }
  }
  if (size_t len = w.seal()) s.insert(s.end(), buf.begin(), buf.begin() + long(len)), tot.data_chunks++;
  tot.torrents = w.torrents();
  tot.peers = w.peers();
  EXPECT_EQ(tot.peers, peers);
  EXPECT_GT(slices, 5000 / 64);
  std::vector<uint8_t> end = encode_snapshot_end(tot);
  s.insert(s.end(), end.begin(), end.end());

  Seg b(cap);
  Partition pb(b.base, b.size);
  Restorer r;
  r.part = &pb;
  r.t_load = 50;  // a new clock base: the new segment set's clock started 50 s ago
  r.elapsed = 10;
  r.ttl = 1800;
  SnapshotDecoder d(&r);
  ASSERT_TRUE(d.feed(s.data(), s.size())) << d.error();
  ASSERT_TRUE(d.finish()) << d.error();
  EXPECT_EQ(r.restored, peers);
  PartitionTotals after = pb.totals();
  EXPECT_EQ(after.torrents, before.torrents);
  EXPECT_EQ(after.seeders, before.seeders);
  EXPECT_EQ(after.leechers, before.leechers);
  EXPECT_EQ(after.peers_v6, before.peers_v6);
  EXPECT_EQ(after.completed, before.completed);
  EXPECT_EQ(contents(pb, 300), contents(pa, 300));
  EXPECT_EQ(pb.validate(), "");
  // A completed peer restored as such does not count its completion twice.
  uint32_t id = 7 * 10000;  // i = 0: a seeder that completed
  ASSERT_EQ(announce(pb, 7, id, 6, true, uint8_t(Event::completed), 60), uint8_t(ResponseStatus::ok));
  EXPECT_EQ(pb.totals().completed, before.completed);
  // Loading the same snapshot twice (a worker killed while loading redoes it) changes nothing.
  Restorer again = r;
  again.restored = 0;
  SnapshotDecoder d2(&again);
  ASSERT_TRUE(d2.feed(s.data(), s.size()) && d2.finish()) << d2.error();
  EXPECT_EQ(pb.totals().seeders + pb.totals().leechers, peers);
  EXPECT_EQ(pb.totals().completed, before.completed);
  EXPECT_EQ(pb.validate(), "");
}

TEST(PartitionSnapshot, ExpiredPeersAreSkippedAndAFullPartitionRefuses) {
  PartitionCapacity cap{16, 64};
  Seg a(cap);
  Partition pa(a.base, a.size);
  for (uint32_t i = 0; i < 40; i++) ASSERT_EQ(announce(pa, 1, i, 4, false, 0, i < 20 ? 100 : 1000), uint8_t(ResponseStatus::ok));
  std::vector<uint8_t> s = encode_snapshot_start({1, "n", "t", 1});
  std::vector<uint8_t> buf(kChunkBytes);
  DataChunkWriter w;
  w.begin(buf.data());
  SnapshotCursor c;
  pa.snapshot_step(c, w, 1000, 1000);
  ASSERT_TRUE(c.done);
  size_t len = w.seal();
  s.insert(s.end(), buf.begin(), buf.begin() + long(len));
  std::vector<uint8_t> end = encode_snapshot_end({w.torrents(), w.peers(), 1});
  s.insert(s.end(), end.begin(), end.end());
  Seg b(PartitionCapacity{16, 8});
  Partition pb(b.base, b.size);
  // 100 s after the snapshot, peer_ttl 500: the 20 peers last seen 900 s before it are past it.
  struct Count : SnapshotSink {
    Partition* part;
    uint32_t ok = 0, full = 0, skipped = 0;
    bool on_peer(const SnapTorrent& t, const SnapPeer& p) override {
      if (p.age_s + 100 > 500) return ++skipped, true;
      RestoreInput in{};
      in.info_hash = t.info_hash;
      in.family = p.family;
      std::memcpy(in.addr, p.addr, 16);
      in.port_be = p.port_be;
      in.last_seen = 1000;
      (part->restore_peer(in) == uint8_t(ResponseStatus::ok) ? ok : full)++;
      return true;
    }
  } k;
  k.part = &pb;
  SnapshotDecoder d(&k);
  ASSERT_TRUE(d.feed(s.data(), s.size()) && d.finish()) << d.error();
  EXPECT_EQ(k.skipped, 20u);
  EXPECT_EQ(k.ok, 8u);  // the capacity
  EXPECT_EQ(k.full, 12u);
  EXPECT_EQ(pb.totals().leechers, 8u);
  EXPECT_EQ(pb.validate(), "");
}

}  // namespace
}  // namespace shoal::shm
