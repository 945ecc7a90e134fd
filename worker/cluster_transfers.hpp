// worker/cluster_transfers.hpp — deploy transfers (issue 11: `shoalctl transfer add|remove`, the
// admin API) registered on one node are registered on every node of a cluster (issue 14). The
// sync worker's part (the supervisor's: supervisor/cluster_transfers.hpp); docs/cluster.md
// "Deploy transfers on every node".
//
//   supervisor ──transfer out ring (add/remove + info_hash)──▶ sync worker ──<subject>.transfers──▶
//   other nodes' sync workers ──<state_dir>/.cluster-in/<hex>.torrent + transfer in ring──▶ their
//   supervisors, which register it (TransferStore::add: validated, stored durably) or remove it.
//
// Message on <subject>.transfers (integers big-endian):
//   offset size  field
//   0      4     magic "SHTF"
//   4      1     version (1)
//   5      1     op: 1 add (the whole .torrent follows), 2 remove, 3 ask (info_hash zero: "send me
//                every transfer you have", sent on every (re)connection; every node answers with
//                an add per registered transfer)
//   6      2     node_id of the sender (1-65535)
//   8      20    info_hash
//   28     n     add: the .torrent file, 1 to kMaxTorrentFileBytes bytes; else nothing
// A node applies an add only when the .torrent's info_hash is the message's (the supervisor
// decodes it) and a remove only of a registered transfer. Removals are not remembered: a node cut
// off from NATS while a transfer was removed elsewhere sends it again on reconnection (known gap).
#pragma once
#include <nats/nats.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/counters.hpp"

namespace shoal::worker {

inline constexpr uint8_t kTransferMsgVersion = 1;
inline constexpr uint8_t kTransferMsgAdd = 1;
inline constexpr uint8_t kTransferMsgRemove = 2;
inline constexpr uint8_t kTransferMsgAsk = 3;
inline constexpr size_t kTransferMsgHeaderBytes = 28;

// A decoded message; torrent points into the decoded buffer (add only, else empty).
struct TransferMessage {
  uint8_t op = 0;
  uint16_t node_id = 0;
  uint8_t info_hash[20] = {};
  const uint8_t* torrent = nullptr;
  size_t torrent_len = 0;
};

// One message: op, node_id, the 20-byte info_hash (nullptr: zeros), torrent bytes (add only).
std::vector<uint8_t> encode_transfer_message(uint8_t op, uint16_t node_id, const uint8_t* info_hash,
                                             const std::string& torrent);
// True with *m, or false with *why: bad magic or version, unknown op, node_id 0, an add without
// or over kMaxTorrentFileBytes of .torrent, a remove or ask with bytes after the header.
bool decode_transfer_message(const uint8_t* data, size_t len, TransferMessage* m, std::string* why);

// The sync worker's side. Created only when transfers.state_dir is set.
class TransferSync {
 public:
  TransferSync(const conf::Config& cfg, void* cluster_base, uint16_t node_id, shm::CounterBlock* counters);
  ~TransferSync();
  // Subscribes to <cluster.subject>.transfers on `nc`; false with the reason logged.
  bool subscribe(natsConnection* nc);
  // After each (re)connection: asks every node for its transfers and sends this node's.
  void on_connected();
  // Every tick: publishes the supervisor's notices (when connected; they wait in the ring
  // otherwise) and hands received registrations and removals to the supervisor.
  void step(bool connected);

 private:
  void publish_add(const uint8_t* info_hash);
  void publish_all();
  void handle(const uint8_t* data, size_t len);
  void to_supervisor(const uint8_t* info_hash, uint8_t op);
  bool publish(const std::vector<uint8_t>& msg);

  const conf::Config& cfg_;
  uint16_t node_id_;
  shm::CounterBlock* counters_;
  shm::SpscRing<shm::TransferNotice> out_, in_;
  std::string subject_, state_dir_, spool_;
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  uint32_t logged_ = 0;
};

}  // namespace shoal::worker
