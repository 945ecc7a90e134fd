// shm/partition.hpp — one swarm partition: the torrents and peers of a slice of the info_hash
// space, in one shared-memory segment written by exactly one swarm worker.
//
// Public API only is fixed here; the record layout is documented in shm/partition_layout.hpp.
// Crash safety: every mutation is a transaction whose writes go through an undo journal in the
// segment (old bytes saved and published before each write, journal cleared at commit). A
// process killed at any instruction leaves either the state before or after the transaction;
// Partition::recover() (run by the replacement worker before it serves) rolls back a half-done
// transaction, validates the tables, and rebuilds derived structures if validation fails.
// No locks, no general-purpose allocator, no pointers in shm (u32 indices only).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "shm/messages.hpp"  // kProgressUnknown
#include "shm/peer_view.hpp"

namespace shoal::shm {

struct PartitionLayout;  // shm/partition_layout.hpp

// Capacities fixed when the segment is created.
//   max_torrents  torrents this partition can hold
//   max_peers     peers (IPv4 + IPv6) this partition can hold
struct PartitionCapacity {
  uint32_t max_torrents;
  uint32_t max_peers;
};

// Bytes a partition segment needs for `cap` (including the SegmentHeader).
size_t partition_segment_bytes(const PartitionCapacity& cap);

// Formats a freshly created, zero-filled segment (the SegmentHeader is already written by
// Segment::create). Supervisor only, before any worker attaches.
void partition_format(void* segment_base, size_t segment_size, const PartitionCapacity& cap);

// Decides whether an announce may create a torrent (a per-source quota, issue 12); asked only
// when the announce's torrent does not exist yet. family 4/6, addr (4 or 16 bytes, network
// order): the announcing peer's address.
class TorrentGate {
 public:
  virtual ~TorrentGate() = default;
  virtual bool allow_new_torrent(uint8_t family, const uint8_t* addr) = 0;
};

// Input of one announce (BEP 15 / BEP 3). Addresses and ports in network byte order.
//   family 4 or 6 (IPv4 uses addr[0..3]); event as shm::Event (0 none, 1 completed, 2 started,
//   3 stopped); seeder = left == 0; numwant already capped by the caller; now = seconds since
//   the clock base; topology_group 0 = unknown; progress = permille of a registered transfer the
//   peer has (0..1000, from its `left`), kProgressUnknown otherwise.
struct AnnounceInput {
  const uint8_t* info_hash;  // 20 bytes
  uint8_t family;
  uint8_t addr[16];
  uint16_t port;
  uint8_t event;
  bool seeder;
  uint16_t numwant;
  uint16_t topology_group;
  uint32_t now;
  uint16_t progress = kProgressUnknown;
  TorrentGate* gate = nullptr;  // asked before a new torrent is created; nullptr = always allowed
};

// One stored peer, as for_each_peer shows it. addr16: 4 (family 4) or 16 bytes, network order.
struct PeerInfo {
  uint8_t family;
  const uint8_t* addr16;
  uint16_t port_be;
  bool seeder;
  bool representative;  // kPeerRepresentative (policy tiered)
  uint16_t topology_group;
  uint16_t progress;    // AnnounceInput::progress of its last announce
};

// Result of one announce.
//   status     ResponseStatus: ok, tracker_full (no room for the torrent or the peer; nothing
//              changed), source_quota (a new torrent the gate refused; nothing changed)
//   seeders/leechers/completed  counts of the torrent after the announce, both families
//   peer_count peers written to the caller's buffer: compact entries of the asker's family
//              (6 bytes IPv4+port or 18 bytes IPv6+port, network order), never the asker,
//              no seeders when the asker is a seeder, none for event=stopped
//   change     what the announce changed, for replication (issue 14): kChange* bits
//   prev_last_seen  the peer's last_seen before this announce (0 for a new peer; now minus its
//              age, which is exact below 71.7 hours: PeerTail::state)
struct AnnounceResult {
  uint8_t status;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t completed;
  uint16_t peer_count;
  uint8_t change = 0;
  uint32_t prev_last_seen = 0;
};
// AnnounceResult::change bits.
inline constexpr uint8_t kChangeNew = 1;        // the peer was not stored before
inline constexpr uint8_t kChangeSeeder = 2;     // it became a seeder or a leecher again
inline constexpr uint8_t kChangeCompleted = 4;  // its completion was counted now
inline constexpr uint8_t kChangeCounted = 8;    // its completion is counted (now or before)
inline constexpr uint8_t kChangeRemoved = 16;   // event=stopped removed it
inline constexpr uint8_t kChangeWasRemote = 32; // it was stored from another node's delta

// Counts for a scrape (BEP 15 / BEP 48); all zero for an unknown torrent.
struct ScrapeResult {
  uint32_t seeders;
  uint32_t leechers;
  uint32_t completed;
};

// Outcome of an expiry step.
struct ExpireResult {
  uint32_t peers_removed;
  uint32_t torrents_removed;
  bool wrapped;  // the sweep cursor passed the end of the torrent table in this step
};

// Outcome of recover().
struct RecoverReport {
  bool was_dirty;            // a transaction was in flight when the last owner died
  uint32_t undone_writes;    // journal entries rolled back
  bool rebuilt;              // validation failed and derived tables were rebuilt from records
  std::string problem;       // what validation found ("" if clean)
  uint32_t torrents;         // after recovery
  uint32_t peers;            // after recovery
};

// Totals, maintained on every mutation (O(1) to read).
struct PartitionTotals {
  uint32_t torrents;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t peers_v4;
  uint32_t peers_v6;
  uint64_t completed;
  uint32_t seeders_v6;  // of `seeders`, those with an IPv6 address
  uint32_t peers_ws;    // WebTorrent peers (not in peers_v4/peers_v6; in seeders/leechers)
  uint32_t seeders_ws;  // of `seeders`, WebTorrent ones
};

// ---- WebTorrent (issue 10) ----------------------------------------------------------------
// A WebTorrent peer is a WebSocket connection of a socket worker, keyed by its peer_id in the
// WebTorrent record of its info_hash (kept apart from the UDP/HTTP peers of that info_hash).

// Whether the socket-worker process behind a WebTorrent peer still lives. The swarm worker
// answers from the control segment (the slot's active process and its ring set).
class WsLiveness {
 public:
  virtual ~WsLiveness() = default;
  // The ring set (0 or 1) of socket slot `slot`'s process of `generation` if that process is
  // the slot's live one, else -1 (it died or was replaced: its connections are gone).
  virtual int ring_set(uint8_t slot, uint32_t generation) const = 0;
  // Cluster (issue 14): true when node `node` said that its socket process (slot, generation's
  // low 16 bits) is gone, so another node's WebTorrent peers held there are dead too.
  virtual bool remote_gone(uint16_t node, uint8_t slot, uint16_t generation) const {
    (void)node, (void)slot, (void)generation;
    return false;
  }
};

// One WebTorrent announce (action "announce" over WS/WSS). event as shm::Event; seeder = left
// == 0; offers = targets wanted (already capped by the socket worker: min(offers sent,
// numwant, ws.max_offers), 0 for stopped); now = seconds since the clock base.
struct WsAnnounceInput {
  const uint8_t* info_hash;  // 20 bytes
  const uint8_t* peer_id;    // 20 bytes
  uint8_t slot;              // the asking connection: socket slot, process generation, token
  uint32_t generation;
  uint32_t token;
  uint8_t event;
  bool seeder;
  uint16_t offers;
  uint32_t now;
  uint8_t family = 4;            // the connection's address, for the gate
  const uint8_t* addr = nullptr;
  TorrentGate* gate = nullptr;   // as AnnounceInput::gate
};

// Result of a WebTorrent announce.
//   status        ResponseStatus: ok, tracker_full or source_quota (nothing changed), peer_id_taken (the peer_id
//                 is bound to another live connection in this swarm: nothing changed)
//   seeders/leechers/completed  counts of the torrent's WebTorrent peers after the announce
//   target_count  WsTarget entries written: distinct live peers of the swarm, never the asker,
//                 no seeders when the asker is a seeder, none for stopped
//   change, prev_last_seen  as AnnounceResult's, for replication (issue 14): kChangeNew also
//                 when the peer_id moved to this connection from another one or another node
struct WsAnnounceResult {
  uint8_t status;
  uint32_t seeders;
  uint32_t leechers;
  uint32_t completed;
  uint16_t target_count;
  uint8_t change = 0;
  uint32_t prev_last_seen = 0;
};

// Another node's change to one of its WebTorrent peers (issue 14, a WebTorrent delta). The
// peer is stored as a remote WebTorrent peer (kPeerRemote): its PeerWs holds the connection's
// coordinates on that node (slot, token, and in `generation` the node id in the high 16 bits
// and the socket process's generation there in the low 16 bits, ws_remote_generation); it is
// offered as an offer target through that node (WsTarget::node), never as a local connection,
// and expires by last_seen like a BitTorrent peer. flags kDelta* (seeder, stopped, completed
// now, counted); now = seconds since the clock base.
struct WsRemoteInput {
  const uint8_t* info_hash;  // 20 bytes
  const uint8_t* peer_id;    // 20 bytes
  uint16_t node;             // node holding the connection, 1-65535
  uint8_t slot;              // there: socket slot, process generation (low 16 bits), token
  uint16_t generation;
  uint32_t token;
  uint8_t flags;
  uint32_t now;
};
inline uint32_t ws_remote_generation(uint16_t node, uint16_t generation) { return uint32_t(node) << 16 | generation; }

// ---- snapshots (issue 14; shm/partition_snapshot.cpp, format: shm/snapshot_codec.hpp) --------

class DataChunkWriter;  // shm/snapshot_codec.hpp

// Where a snapshot pass over a partition stands between slices. Start from {}; done once the
// pass went past the last torrent. A pass runs while the partition keeps changing: a torrent
// is written from one look at its record, a swarm visited over several slices may miss a peer
// that moved between them (it comes back with its next announce) or show one twice (a loader
// keys peers by address and port, so the second copy replaces the first).
struct SnapshotCursor {
  uint32_t torrent = 0;  // pool index of the next torrent
  bool inside = false;   // its torrent record was written; peers go on from (list, pos)
  uint32_t list = 0, pos = 0;
  uint8_t info_hash[20] = {};  // of the torrent being written (to notice it was replaced)
  bool done = false;
};

// One peer to restore from a snapshot. info_hash 20 bytes; completed: the torrent's count;
// family 4/6, addr/port_be network order; flags kPeerSeeder | kPeerCompletedCounted |
// kPeerRepresentative (a seeder is never a representative); last_seen: seconds since the
// clock base (shm/clock.hpp), at most 71.7 hours before the partition's present (it is kept
// modulo 2^18 s: PeerTail::state); topology_group, progress as in AnnounceInput.
// join (a cluster node loading another node's snapshot, worker/cluster_join.hpp): a peer this
// partition has already is left as it is (it came from a delta, newer than the snapshot), and
// the completed count is only raised; family 0 then sets only the torrent's completed count.
struct RestoreInput {
  const uint8_t* info_hash;
  uint32_t completed;
  uint8_t family;
  uint8_t addr[16];
  uint16_t port_be;
  uint8_t flags;
  uint32_t last_seen;
  uint16_t topology_group;
  uint16_t progress;
  bool join = false;
  uint8_t kind = 0;  // family 0 with join: the torrent's kind (kTorrentWebTorrent: its WebTorrent record)
};

// A WebTorrent peer of a joining node's snapshot (issue 14, SnapWsPeer of a cluster join
// answer): stored as a remote WebTorrent peer (as apply_remote_webtorrent stores one) only where
// the swarm has no peer of that key (one a delta stored first is newer). key: peer_key() of the
// peer_id with the cluster's seed (set_ws_key_seed); node 1-65535, slot, generation (low 16
// bits) and token: the connection on that node; flags kPeerSeeder | kPeerCompletedCounted;
// last_seen: seconds since the clock base.
struct WsRestoreInput {
  const uint8_t* info_hash;  // 20 bytes
  uint8_t key[16];
  uint16_t node;
  uint8_t slot;
  uint16_t generation;
  uint32_t token;
  uint8_t flags;
  uint32_t last_seen;
};

// What a snapshot pass writes of the WebTorrent swarms (a cluster join answer; without it only
// BitTorrent swarms are written): every live peer, each with the node holding its connection
// (`node` for this node's own connections, whose process `live` says is still the slot's; the
// node in a remote peer's generation, unless `live` says that node's process is gone).
struct SnapshotWs {
  const WsLiveness* live;
  uint16_t node;
};

// ---- replication (issue 14; apply_remote in shm/partition.cpp, replicate_step in
// shm/partition_snapshot.cpp) --------------------------------------

// Another node's change to one peer (shm::Delta as the sync worker handed it over), applied
// without a reply. family 4/6; addr/port_be network order; flags kDelta* (shm/cluster_segment.hpp:
// seeder, stopped, completed now, completion counted); now: seconds since the clock base.
struct RemoteInput {
  const uint8_t* info_hash;
  uint8_t family;
  uint8_t addr[16];
  uint16_t port_be;
  uint8_t flags;
  uint16_t topology_group;
  uint16_t progress;
  uint32_t now;
};

// A peer announced to this node, as replicate_step hands it out (flags as RemoteInput::flags,
// without stopped or completed-now). family kFamilyWebTorrent ('w'): a WebTorrent peer of a live
// connection here, addr its 16-byte key, slot/generation/token the connection.
struct OwnPeer {
  const uint8_t* info_hash;
  uint8_t family;
  const uint8_t* addr;  // 4 or 16 bytes
  uint16_t port_be;
  uint8_t flags;
  uint16_t topology_group;
  uint16_t progress;
  uint8_t slot = 0;
  uint32_t generation = 0;
  uint32_t token = 0;
};
// Takes one OwnPeer; false when it has no room (the pass stops before that peer).
class OwnPeerSink {
 public:
  virtual ~OwnPeerSink() = default;
  virtual bool put(const OwnPeer& p) = 0;
};

// A view over a mapped partition segment. Not thread-safe; the owning swarm worker is the only
// writer. Readers in other processes must not use it (they would see in-flight updates).
class Partition {
 public:
  // `segment_base` is the mapped segment (starting with its SegmentHeader). Throws
  // std::runtime_error if the partition header is not formatted or sizes disagree.
  Partition(void* segment_base, size_t segment_size);

  // Rolls back an interrupted transaction, validates, rebuilds if needed. Idempotent; call
  // once after attaching and before the first mutation.
  RecoverReport recover();

  // The fast start of a replacement worker (issue 12, recovery time): rolls back an interrupted
  // transaction and checks the header's bounds (O(1)), then validates only if that check fails
  // (and rebuilds as recover() does). The partition is consistent after the rollback when the
  // code is right; the full check, which guards against bugs and takes ~0.2-0.5 s at 1,000,000
  // peers, then runs in slices while the worker serves (check_step).
  RecoverReport recover_fast();

  // The full check in slices (shm/partition_check.cpp), for a worker that serves meanwhile:
  // call between transactions with the same `st` (start from {}) until st.phase == 3; each
  // call looks at about `budget` records and index slots. Checks every torrent and peer against
  // both indexes and every index slot against its record; the sums of validate() are not
  // checked (they change between slices). "" while consistent, else the first problem found.
  struct IncrementalCheck {
    uint32_t phase = 0;  // 0 torrent records, 1 torrent index, 2 peer index, 3 done
    uint32_t next = 0;   // next torrent or slot of the phase
    uint32_t inside = 0;  // phase 0: 1 while the peers of torrent next - 1 are being checked,
    uint32_t list = 0;    //   from this list and position on (a swarm of 50,000 peers is
    uint32_t pos = 0;     //   checked over several slices)
    uint64_t items = 0;  // records and slots looked at so far
  };
  std::string check_step(IncrementalCheck& st, uint32_t budget) const;

  // Headroom for existing swarms (issue 12): a new torrent is refused (tracker full) once the
  // partition holds `peers` peers or more, while torrents already stored may still add peers up
  // to the capacity, so a flood of made-up info_hashes cannot lock every swarm out. Default: the
  // capacity (no headroom). Not stored in the segment: the owner sets it after attaching.
  void set_new_torrent_peer_limit(uint32_t peers) { new_torrent_peer_limit_ = peers; }

  // Applies one announce, then has `policy` choose peers for the reply into `peers_out` (room
  // for numwant entries of the asker's family: 6 or 18 bytes each) from the torrent's
  // candidates (shm/peer_view.hpp: never the asker, no seeders for a seeder). Idempotent for a
  // repeated identical request: a peer is keyed by (info_hash, family, addr, port); completed is
  // counted once per peer. BEP 15 / BEP 3 semantics.
  AnnounceResult announce(const AnnounceInput& in, uint8_t* peers_out,
                          const PeerPolicy& policy = default_peer_policy());

  // Writes BitTorrent torrents and their peers as snapshot records into `w` (which the caller
  // began) from cursor `c` on, until the chunk is full, `budget` peers were written, or the pass
  // is done (c.done). Returns the records written. Read-only. Without `ws` (a file) WebTorrent
  // torrents are skipped: their peers are live connections that a restart closes; with `ws` (a
  // cluster join answer) they are written with their live peers (SnapshotWs). `t0`: seconds since
  // the clock base at which the snapshot counts peer ages (age = t0 - last_seen, 0 if later;
  // peer_age in shm/partition_layout.hpp: exact below 71.7 hours).
  uint32_t snapshot_step(SnapshotCursor& c, DataChunkWriter& w, uint32_t t0, uint32_t budget,
                         const SnapshotWs* ws = nullptr) const;

  // Stores one peer of a snapshot (one transaction): creates its torrent if needed (no gate, no
  // headroom), sets the torrent's completed count, stores or replaces the peer with the given
  // flags and last_seen. ResponseStatus ok, or tracker_full (nothing changed) when the torrent
  // or the peer does not fit; bad_request for a family other than 4/6 (0 with join). With
  // in.join: see RestoreInput (ok also when the present peer was kept).
  uint8_t restore_peer(const RestoreInput& in);

  // Applies another node's change (one transaction): stopped removes the peer; otherwise the
  // peer is stored or refreshed (last_seen = in.now) with the seeder flag and marked remote, its
  // torrent created if needed (refused, like a new torrent of an announce, past the headroom
  // limit). A completion is counted when the delta says it was counted now at its origin and
  // this node has not counted it for this peer, so `completed` counts once per peer across the
  // cluster. ResponseStatus ok, tracker_full (nothing changed) or bad_request (family).
  uint8_t apply_remote(const RemoteInput& in);

  // The resync after a bus outage or a new node: visits this node's own peers (not kPeerRemote)
  // of BitTorrent swarms from cursor `c` on (start from {}; c.done at the end) and hands each to
  // `sink` until it refuses one or `budget` peers were handed. Read-only; returns peers handed.
  // With `ws_live`, the WebTorrent peers of this node's live connections too (family 'w').
  uint32_t replicate_step(SnapshotCursor& c, OwnPeerSink& sink, uint32_t budget, const WsLiveness* ws_live = nullptr) const;

  // Counts for one info_hash (20 bytes). Read-only.
  ScrapeResult scrape(const uint8_t* info_hash) const;

  // WebTorrent announce (shm/partition_ws.cpp): binds peer_id to the asking connection in the
  // swarm (a peer_id held by another live connection is refused: peer_id_taken; one held by a
  // dead connection is taken over), stores or refreshes the peer, counts completed once per
  // peer with left = 0, and writes up to in.offers offer targets to `targets_out` (room for
  // in.offers WsTargets). A stopped announce removes the peer if it belongs to the asking
  // connection. Dead peers met while choosing targets are removed.
  WsAnnounceResult announce_webtorrent(const WsAnnounceInput& in, WsTarget* targets_out, const WsLiveness& live);

  // Applies another node's WebTorrent delta (WsRemoteInput) without a reply: stores, refreshes
  // or (stopped) removes that node's peer. A peer_id bound to a live connection of this node
  // keeps it (the delta is ignored); one of a dead connection here is taken over. ResponseStatus
  // ok, or tracker_full (nothing changed).
  uint8_t apply_remote_webtorrent(const WsRemoteInput& in, const WsLiveness& live);

  // Stores a WebTorrent peer of a joining node's snapshot (WsRestoreInput): only where absent,
  // marked remote. ResponseStatus ok (also when a present peer was kept), tracker_full (nothing
  // changed), bad_request (node 0).
  uint8_t restore_webtorrent(const WsRestoreInput& in);

  // The seed of the WebTorrent peer keys (peer_key(), shm/partition_layout.hpp). Default: the
  // partition's own random hash_seed (one node). A cluster node sets the cluster's seed
  // (cluster_ws_key_seed, worker/cluster_link.hpp) before the first WebTorrent announce, so every
  // node keys a peer_id alike and a join answer can carry keys instead of peer_ids. Not stored
  // in the segment: the owner sets it after attaching.
  void set_ws_key_seed(uint64_t seed) {
    ws_seed_ = seed;
    ws_seed_set_ = true;
  }

  // WebTorrent counts of one info_hash (its WebTorrent peers only). Read-only.
  ScrapeResult scrape_webtorrent(const uint8_t* info_hash) const;

  // Prefetch hints for a batch of requests: no effect on the partition's state, safe for any
  // input. A swarm worker calls prefetch_torrent a few requests ahead of announce()/scrape()
  // (it prefetches the torrent index slot of the 20-byte info_hash), then prefetch_peer one or
  // two requests ahead (it reads that slot and, when it holds the torrent, prefetches the
  // torrent record and the peer index slot of (family 4/6, addr, port_be network order);
  // family 0 skips the peer). Hides the cache misses that dominate a lone announce.
  void prefetch_torrent(const uint8_t* info_hash) const;
  void prefetch_peer(const uint8_t* info_hash, uint8_t family, const uint8_t* addr, uint16_t port_be) const;

  // Removes up to `budget` peers whose last announce is older than `now - peer_ttl` seconds,
  // and torrents left with no peers, continuing from a cursor kept in the segment (so a
  // restarted worker resumes the sweep).
  // With `live`, WebTorrent peers whose socket-worker process is gone are removed as well.
  // webtorrent_only (the purge after a socket worker died): only WebTorrent swarms are
  // visited, and only their dead peers (and then empty WebTorrent torrents) are removed.
  ExpireResult expire_step(uint32_t now, uint32_t peer_ttl, uint32_t budget, const WsLiveness* live = nullptr,
                           bool webtorrent_only = false);

  // Full consistency check (index ↔ records, counts, free lists). "" when consistent, else
  // a description of the first problem. O(capacity).
  std::string validate() const;

  PartitionTotals totals() const;

  // Visits every peer of a torrent (for tests and stats): fn(const PeerInfo&).
  template <class Fn>
  void for_each_peer(const uint8_t* info_hash, Fn&& fn) const;

  // Removes the torrent and every peer of it (an operator's `transfer remove`), in journaled
  // steps like the expiry sweep. Returns the peers removed (0 for an unknown torrent).
  uint32_t drop_torrent(const uint8_t* info_hash);

  // Test hook: when set, called before every journaled write of a transaction with the
  // running write number (1, 2, ...); a test can throw from it to simulate a kill at that
  // point. Costs one predictable branch per write in production.
  using CrashHook = void (*)(uint32_t write_number);
  static void set_crash_hook_for_test(CrashHook hook);

 private:
  PartitionLayout* p_;
  uint32_t new_torrent_peer_limit_ = 0xffffffffu;
  uint64_t ws_seed_ = 0;
  bool ws_seed_set_ = false;
  uint64_t ws_seed() const;
  // Implementation helpers are free functions in partition.cpp.
  friend struct PartitionAccess;
  struct PeerVisitor {
    virtual void visit(const PeerInfo& peer) = 0;
    virtual ~PeerVisitor() = default;
  };
  void visit_peers(const uint8_t* info_hash, PeerVisitor& v) const;
};

template <class Fn>
void Partition::for_each_peer(const uint8_t* info_hash, Fn&& fn) const {
  struct V : PeerVisitor {
    Fn& f;
    explicit V(Fn& f_) : f(f_) {}
    void visit(const PeerInfo& peer) override { f(peer); }
  } v(fn);
  visit_peers(info_hash, v);
}

}  // namespace shoal::shm
