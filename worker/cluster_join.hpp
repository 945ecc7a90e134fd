// worker/cluster_join.hpp — a node with fresh partitions joins the cluster (issue 14): it asks a
// live node for a snapshot of its swarms over NATS request/reply, loads it, and reports ready
// only then. Runs in the sync worker (worker/sync_worker.cpp), both sides:
//
//   joiner:  publishes a request on <subject>.snapshot with a reply inbox. The live nodes
//            subscribe there in one queue group, so one of them answers. Its answer is the
//            snapshot byte stream (docs/snapshot-format.md), one NATS message ("frame") per
//            snapshot chunk, in order. JoinReceiver checks each frame (sequence, the chunk CRCs
//            through shm::SnapshotDecoder) and turns each record into a kDeltaJoin entry for the
//            in ring of the swarm worker that owns the info_hash: there it is stored only where
//            the partition has no such peer, so a delta that arrived during the load (newer)
//            is never overwritten by the snapshot (shm::Partition::restore_peer with join;
//            WebTorrent peers, keyed by the cluster's peer key: restore_webtorrent).
//   server:  the swarm workers write their partitions into their second snapshot channel
//            (channel swarm_workers + w of the snapshot segment) with the same sliced pass as
//            `shoalctl snapshot save` (worker/snapshot_pass.hpp), so they keep serving; the sync
//            worker publishes each chunk as a frame as it comes and the end chunk last.
//
// Frame (every integer big-endian):
//   0  4  magic "SHJN"
//   4  1  kind: 1 data (payload: snapshot stream bytes, frame 1 the preamble and header chunk,
//         then one chunk a frame), 2 busy (payload: reason; ask again), 3 failed (payload: reason)
//   5  1  name_len (0-55), the sender's node name follows the 16-byte header
//   6  2  node_id of the sender
//   8  4  seq: frame number in this answer, from 1
//   12 4  reserved, 0
// Request (on <subject>.snapshot): magic "SHJQ", node_id u16 of the joiner.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shm/cluster_segment.hpp"
#include "shm/snapshot_codec.hpp"

namespace shoal::worker {

inline constexpr uint8_t kJoinData = 1, kJoinBusy = 2, kJoinFailed = 3;
inline constexpr size_t kJoinFrameHeader = 16;

// A frame's header fields.
struct JoinFrame {
  uint8_t kind = kJoinData;
  uint16_t node_id = 0;
  uint32_t seq = 0;
  std::string name;
  const uint8_t* payload = nullptr;  // decode: points into the decoded message
  size_t payload_len = 0;
};

// Appends the frame (header, name, then `n` payload bytes) to `out`.
void encode_join_frame(const JoinFrame& f, const uint8_t* payload, size_t n, std::vector<uint8_t>* out);
// False (with `why`) for a message that is not a frame.
bool decode_join_frame(const uint8_t* p, size_t n, JoinFrame* f, std::string* why);
// The request body of node `node_id`.
std::vector<uint8_t> encode_join_request(uint16_t node_id);
// 0 when the message is not a request.
uint16_t decode_join_request(const uint8_t* p, size_t n);

// Where JoinReceiver hands its entries (the sync worker: the in ring of the owning worker).
class JoinEntrySink {
 public:
  virtual ~JoinEntrySink() = default;
  virtual void put(const shm::Delta& d) = 0;
};

// The joiner's side of one answer: feed it the frames in arrival order.
class JoinReceiver final : private shm::SnapshotSink {
 public:
  enum Result { more, done, busy, failed };
  // `now_unix`: wall clock seconds, to age the peers by the time since the snapshot was taken.
  JoinReceiver(JoinEntrySink* out, uint64_t now_unix) : out_(out), now_unix_(now_unix), dec_(this) {}
  // One frame. more: go on; done: the end chunk checked; busy: the node cannot answer now (ask
  // again; nothing was delivered); failed: error() says why (entries of earlier frames were
  // delivered: they are correct peers, the caller decides what to do).
  // Frames from another node than the first one's are ignored (more).
  Result take(const uint8_t* msg, size_t n);
  const std::string& error() const { return error_; }
  bool started() const { return from_id_ != 0; }
  uint16_t from_id() const { return from_id_; }
  const std::string& from_name() const { return from_name_; }
  // WebTorrent peers held by node `node` are left out (the joiner's own node id: connections of
  // its previous life are gone, and its own connections it knows itself).
  void skip_node(uint16_t node) { skip_node_ = node; }
  uint64_t torrents() const { return torrents_; }
  uint64_t peers() const { return peers_; }
  // Frames taken (data frames of the answering node).
  uint32_t frames() const { return seq_; }

 private:
  bool on_header(const shm::SnapshotInfo& info) override;
  bool on_torrent(const shm::SnapTorrent& t) override;
  bool on_peer(const shm::SnapTorrent& t, const shm::SnapPeer& p) override;
  bool on_ws_peer(const shm::SnapTorrent& t, const shm::SnapWsPeer& p) override;
  bool on_end(const shm::SnapshotTotals&) override { return ended_ = true; }
  // A peer's age in the snapshot plus the snapshot's own age (seconds, capped at 2^32 - 1).
  uint32_t age_now(uint32_t age_s) const {
    uint64_t age = uint64_t(age_s) + elapsed_;
    return age > 0xffffffffu ? 0xffffffffu : uint32_t(age);
  }
  Result fail(std::string why) { return error_ = std::move(why), failed; }
  JoinEntrySink* out_;
  uint64_t now_unix_;
  shm::SnapshotDecoder dec_;
  uint64_t elapsed_ = 0;
  uint16_t from_id_ = 0;
  uint16_t skip_node_ = 0;
  std::string from_name_;
  uint32_t seq_ = 0;
  bool ended_ = false;
  uint64_t torrents_ = 0, peers_ = 0;
  std::string error_;
};

}  // namespace shoal::worker
