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
//   4      1     version (2; version 1 had no time field and is still read: see below)
//   5      1     op: 1 add (the whole .torrent follows), 2 remove, 3 ask (info_hash zero: "send me
//                every transfer you have", sent on every (re)connection; every node answers with
//                an add per registered transfer and a remove per remembered removal)
//   6      2     node_id of the sender (1-65535)
//   8      20    info_hash
//   28     8     time, ms since the Unix epoch: add: when the sender registered the transfer (its
//                state_dir file's modification time); remove: when it was removed; ask: 0
//   36     n     add: the .torrent file, 1 to kMaxTorrentFileBytes bytes; else nothing
// A node applies an add only when the .torrent's info_hash is the message's (the supervisor
// decodes it) and a remove only of a registered transfer.
//
// Removals are remembered (tombstones), so a removal made while some node was cut off from NATS
// (or lost with a dying server) is not undone when that node reconnects and sends its list: each
// node keeps `<state_dir>/.cluster-removed/<hex>` (the removal time) for kTombstoneKeepMs, sends
// its tombstones with its registrations on every (re)connection and ask, and orders the two by
// time: every node stores a transfer with the time of its first registration (its file's mtime
// is set to the add's time), an add at or before a remembered removal is refused; a remove applies to a registration
// made at or before it; an add after the removal (registered again on purpose) is applied and
// clears the tombstone. Wall clocks of the nodes must agree within a second or so (as for
// connection ids: udp.connection_id_skew). Version 1 messages: an add has time 0 (before any
// removal), a remove the receiver's clock.
#pragma once
#include <nats/nats.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "conf/config.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/counters.hpp"

namespace shoal::worker {

inline constexpr uint8_t kTransferMsgVersion = 2;
inline constexpr uint8_t kTransferMsgAdd = 1;
inline constexpr uint8_t kTransferMsgRemove = 2;
inline constexpr uint8_t kTransferMsgAsk = 3;
inline constexpr size_t kTransferMsgHeaderBytes = 36;  // version 1: 28 (no time)
inline constexpr uint64_t kTombstoneKeepMs = 7ull * 24 * 3600 * 1000;  // a removal is remembered 7 days

// A decoded message; torrent points into the decoded buffer (add only, else empty).
struct TransferMessage {
  uint8_t op = 0;
  uint16_t node_id = 0;
  uint8_t info_hash[20] = {};
  uint64_t time_ms = 0;  // see the format above; 0 in a version 1 message
  const uint8_t* torrent = nullptr;
  size_t torrent_len = 0;
};

// One message: op, node_id, the 20-byte info_hash (nullptr: zeros), time (ms since the epoch),
// torrent bytes (add only).
std::vector<uint8_t> encode_transfer_message(uint8_t op, uint16_t node_id, const uint8_t* info_hash,
                                             uint64_t time_ms, const std::string& torrent);
// True with *m (version 1 or 2), or false with *why: bad magic or version, unknown op, node_id 0, an add without
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
  // <state_dir>/<hex>.torrent: where the supervisor stores a registered transfer.
  std::string torrent_path(const std::string& hex) const;
  // When this node registered the transfer (its state_dir file's mtime, ms), 0 if it has none.
  uint64_t registered_ms(const std::string& hex) const;
  // Tombstones: remember (durably, the latest time wins), forget, and drop the expired ones.
  void remember_removal(const std::string& hex, uint64_t ms);
  void forget_removal(const std::string& hex);
  void load_tombstones();
  // Forgets (and deletes) the tombstones older than kTombstoneKeepMs.
  void prune_tombstones(uint64_t now_ms);
  // Registrations handed to the supervisor, until its file exists: then the file's mtime is set
  // to the registration's time at its origin (so every node orders it the same way against a
  // removal), and a removal that arrived meanwhile is applied.
  void settle_pending();
  void handle(const uint8_t* data, size_t len);
  void to_supervisor(const uint8_t* info_hash, uint8_t op);
  bool publish(const std::vector<uint8_t>& msg);

  const conf::Config& cfg_;
  uint16_t node_id_;
  shm::CounterBlock* counters_;
  shm::SpscRing<shm::TransferNotice> out_, in_;
  std::string subject_, state_dir_, spool_, removed_dir_;
  std::map<std::string, uint64_t> removed_;  // info_hash hex -> removal time (ms since the epoch)
  struct Pending {
    uint64_t origin_ms;  // the add message's time
    uint64_t since_ms;   // when it was handed to the supervisor (dropped after 10 s)
  };
  std::map<std::string, Pending> pending_;
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  uint32_t logged_ = 0;
};

}  // namespace shoal::worker
