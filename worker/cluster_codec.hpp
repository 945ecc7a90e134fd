// worker/cluster_codec.hpp — the messages shoald nodes exchange over NATS (issue 14): batches of
// peer deltas and a hello. Pure functions, no I/O; used by the sync worker
// (worker/sync_worker.cpp). Integers big-endian. Format (docs/cluster.md has the same table):
//
//   offset size  field
//   0      4     magic "SHCL"
//   4      1     version (1)
//   5      1     kind: 1 deltas, 2 hello (count 0: "I (re)connected, send me your peers"),
//                3 heartbeat (count 0: "I am here", sent after a second without another message),
//                4 WebTorrent deltas (records of 48 bytes: worker/cluster_ws_codec.hpp)
//   6      2     node_id of the sender (1-65535)
//   8      8     session: random, drawn when the sender's sync worker started
//   16     8     seq: message number within the session, from 1 (gaps = messages lost)
//   24     8     sent_ms: the sender's wall clock, ms since 1970 (lag = arrival - sent_ms)
//   32     2     count: deltas that follow (at most kMaxDeltasPerMessage)
//   34     1     name_len (0-55), then name_len bytes of the sender's node name
//   35+n   44 × count  deltas:
//                 0  20  info_hash
//                 20  1  family (4 or 6)
//                 21  1  flags (shm::kDelta*: 1 seeder, 2 stopped, 4 completed now, 8 counted)
//                 22  2  port
//                 24 16  address (IPv4 in the first 4 bytes, the rest 0)
//                 40  2  topology_group
//                 42  2  progress (permille, 0xffff unknown)
// A message is refused whole when anything is off: bad magic, another version, an unknown
// kind, a length other than the header's count implies, a family other than 4/6, unknown flag
// bits, a name with a NUL. The receiver counts it (cluster_bad_messages) and goes on.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shm/cluster_segment.hpp"

namespace shoal::worker {

inline constexpr uint8_t kClusterVersion = 1;
inline constexpr uint8_t kClusterDeltas = 1;
inline constexpr uint8_t kClusterHello = 2;
inline constexpr uint8_t kClusterHeartbeat = 3;
// count records of 48 bytes: WebTorrent deltas (worker/cluster_ws_codec.hpp), in shm::Delta
// packed as shm/cluster_ws.hpp says
inline constexpr uint8_t kClusterWsDeltas = 4;
inline constexpr size_t kClusterHeaderBytes = 35;
inline constexpr size_t kClusterDeltaBytes = 44;
inline constexpr size_t kClusterMaxName = 55;
// 1,000 deltas: about 44 KB a message, well under NATS's default max_payload of 1 MB.
inline constexpr uint32_t kMaxDeltasPerMessage = 1000;

struct ClusterHeader {
  uint8_t kind = kClusterDeltas;
  uint16_t node_id = 0;
  uint64_t session = 0;
  uint64_t seq = 0;
  uint64_t sent_ms = 0;
  std::string name;  // at most kClusterMaxName bytes (longer is cut)
};

// Appends one message with `h` and deltas[0..n) (n ≤ kMaxDeltasPerMessage; Delta::origin is
// not sent, the header names the node) to *out. Kind kClusterWsDeltas: the deltas are
// WebTorrent deltas (shm/cluster_ws.hpp), sent as 48-byte records.
void encode_cluster_message(const ClusterHeader& h, const shm::Delta* deltas, size_t n, std::vector<uint8_t>* out);

// Decodes a whole message: true with *h and *deltas (origin = h->node_id), or false with *why.
bool decode_cluster_message(const uint8_t* data, size_t len, ClusterHeader* h, std::vector<shm::Delta>* deltas,
                            std::string* why);

}  // namespace shoal::worker
