// worker/cluster_join.cpp — see cluster_join.hpp.
#include "worker/cluster_join.hpp"

#include <cstring>

#include "shm/byte_order.hpp"
#include "shm/messages.hpp"

namespace shoal::worker {
namespace {

constexpr uint8_t kFrameMagic[4] = {'S', 'H', 'J', 'N'};
constexpr uint8_t kRequestMagic[4] = {'S', 'H', 'J', 'Q'};
constexpr size_t kMaxName = 55;

using namespace be;  // get16/32/64, put16/32/64: shm/byte_order.hpp

// A snapshot peer's seeder/counted flags as the flags of its join entry.
uint8_t join_flags(uint8_t snap_flags) {
  return uint8_t(shm::kDeltaJoin | ((snap_flags & shm::kSnapPeerSeeder) ? shm::kDeltaSeeder : 0) |
                 ((snap_flags & shm::kSnapPeerCompletedCounted) ? shm::kDeltaCounted : 0));
}

}  // namespace

void encode_join_frame(const JoinFrame& f, const uint8_t* payload, size_t n, std::vector<uint8_t>* out) {
  size_t name_len = std::min(f.name.size(), kMaxName);
  size_t at = out->size();
  out->resize(at + kJoinFrameHeader + name_len + n);
  uint8_t* p = out->data() + at;
  std::memcpy(p, kFrameMagic, 4);
  p[4] = f.kind;
  p[5] = uint8_t(name_len);
  put16(p + 6, f.node_id);
  put32(p + 8, f.seq);
  put32(p + 12, 0);
  std::memcpy(p + kJoinFrameHeader, f.name.data(), name_len);
  if (n) std::memcpy(p + kJoinFrameHeader + name_len, payload, n);
}

bool decode_join_frame(const uint8_t* p, size_t n, JoinFrame* f, std::string* why) {
  if (n < kJoinFrameHeader || std::memcmp(p, kFrameMagic, 4) != 0) return *why = "not a snapshot frame", false;
  if (p[4] < kJoinData || p[4] > kJoinFailed) return *why = "unknown frame kind " + std::to_string(p[4]), false;
  size_t name_len = p[5];
  if (name_len > kMaxName || n < kJoinFrameHeader + name_len) return *why = "bad name length", false;
  f->kind = p[4];
  f->node_id = get16(p + 6);
  f->seq = get32(p + 8);
  f->name.assign(reinterpret_cast<const char*>(p + kJoinFrameHeader), name_len);
  f->payload = p + kJoinFrameHeader + name_len;
  f->payload_len = n - kJoinFrameHeader - name_len;
  if (f->node_id == 0) return *why = "node_id 0", false;
  return true;
}

std::vector<uint8_t> encode_join_request(uint16_t node_id) {
  std::vector<uint8_t> v(6);
  std::memcpy(v.data(), kRequestMagic, 4);
  put16(v.data() + 4, node_id);
  return v;
}

uint16_t decode_join_request(const uint8_t* p, size_t n) {
  if (n != 6 || std::memcmp(p, kRequestMagic, 4) != 0) return 0;
  return get16(p + 4);
}

JoinReceiver::Result JoinReceiver::take(const uint8_t* msg, size_t n) {
  if (!error_.empty()) return failed;
  JoinFrame f;
  std::string why;
  if (!decode_join_frame(msg, n, &f, &why)) return fail("bad frame: " + why);
  if (from_id_ != 0 && f.node_id != from_id_) return more;  // another node's late answer
  if (f.kind == kJoinBusy) {
    if (from_id_ != 0) return fail("node " + std::to_string(f.node_id) + " said busy in the middle of its answer");
    return busy;
  }
  if (f.kind == kJoinFailed)
    return fail("node " + std::to_string(f.node_id) + " (" + f.name + ") gave up: " +
                std::string(reinterpret_cast<const char*>(f.payload), f.payload_len));
  if (f.seq != seq_ + 1)
    return fail("frame " + std::to_string(seq_ + 1) + " of node " + std::to_string(f.node_id) + " lost (got frame " +
                std::to_string(f.seq) + ")");
  if (from_id_ == 0) from_id_ = f.node_id, from_name_ = f.name;
  seq_ = f.seq;
  if (!dec_.feed(f.payload, f.payload_len)) return fail("snapshot stream: " + dec_.error());
  if (!ended_) return more;
  if (!dec_.finish()) return fail("snapshot stream: " + dec_.error());
  return done;
}

bool JoinReceiver::on_header(const shm::SnapshotInfo& info) {
  elapsed_ = now_unix_ > info.created_unix ? now_unix_ - info.created_unix : 0;
  return true;
}

bool JoinReceiver::on_torrent(const shm::SnapTorrent& t) {
  if (t.flags & shm::kSnapTorrentContinued) return true;
  torrents_++;
  if (t.completed == 0) return true;  // the peers create the torrent; a count needs its entry
  shm::Delta d{};
  std::memcpy(d.info_hash, t.info_hash, 20);
  d.family = 0;
  d.flags = shm::kDeltaJoin;
  d.reserved[1] = t.kind;  // 1: the WebTorrent swarm's count
  d.join_age_s = t.completed;
  out_->put(d);
  return true;
}

bool JoinReceiver::on_peer(const shm::SnapTorrent& t, const shm::SnapPeer& p) {
  if (t.kind != 0) return true;
  shm::Delta d{};
  std::memcpy(d.info_hash, t.info_hash, 20);
  std::memcpy(d.addr, p.addr, 16);
  d.port_be = p.port_be;
  d.family = p.family;
  d.flags = join_flags(p.flags);
  d.topology_group = p.topology_group;
  d.progress = p.progress;
  d.join_age_s = age_now(p.age_s);
  peers_++;
  out_->put(d);
  return true;
}

bool JoinReceiver::on_ws_peer(const shm::SnapTorrent& t, const shm::SnapWsPeer& p) {
  if (p.node == skip_node_) return true;
  peers_++;
  shm::Delta d{};
  std::memcpy(d.info_hash, t.info_hash, 20);
  std::memcpy(d.addr, p.key, 16);
  d.port_be = p.generation;
  d.family = shm::kFamilyWebTorrent;
  d.flags = join_flags(p.flags);
  std::memcpy(&d.topology_group, &p.token, 4);  // topology_group and progress: the token
  d.origin = p.node;
  d.reserved[0] = p.slot;
  d.join_age_s = age_now(p.age_s);
  out_->put(d);
  return true;
}

}  // namespace shoal::worker
