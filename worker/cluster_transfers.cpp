// worker/cluster_transfers.cpp — see cluster_transfers.hpp.
#include "worker/cluster_transfers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "shm/byte_order.hpp"
#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "supervisor/torrent_file.hpp"
#include "supervisor/transfer_store.hpp"
#include "worker/fd_io.hpp"

namespace shoal::worker {

namespace {

constexpr char kMagic[4] = {'S', 'H', 'T', 'F'};

}  // namespace

std::vector<uint8_t> encode_transfer_message(uint8_t op, uint16_t node_id, const uint8_t* info_hash,
                                             uint64_t time_ms, const std::string& torrent) {
  std::vector<uint8_t> m(kTransferMsgHeaderBytes + torrent.size(), 0);
  std::memcpy(m.data(), kMagic, 4);
  m[4] = kTransferMsgVersion;
  m[5] = op;
  be::put16(m.data() + 6, node_id);
  if (info_hash) std::memcpy(m.data() + 8, info_hash, 20);
  be::put64(m.data() + 28, time_ms);
  if (!torrent.empty()) std::memcpy(m.data() + kTransferMsgHeaderBytes, torrent.data(), torrent.size());
  return m;
}

bool decode_transfer_message(const uint8_t* data, size_t len, TransferMessage* m, std::string* why) {
  constexpr size_t kV1HeaderBytes = 28;
  if (len < kV1HeaderBytes) return *why = "shorter than the 28-byte header", false;
  if (std::memcmp(data, kMagic, 4) != 0) return *why = "bad magic", false;
  if (data[4] != 1 && data[4] != kTransferMsgVersion)
    return *why = "version " + std::to_string(data[4]) + " is not supported", false;
  size_t header = data[4] == 1 ? kV1HeaderBytes : kTransferMsgHeaderBytes;
  if (len < header) return *why = "shorter than the 36-byte header", false;
  m->op = data[5];
  m->node_id = be::get16(data + 6);
  std::memcpy(m->info_hash, data + 8, 20);
  m->time_ms = header == kTransferMsgHeaderBytes ? be::get64(data + 28) : 0;
  size_t rest = len - header;
  if (m->node_id == 0) return *why = "node_id 0", false;
  if (m->op == kTransferMsgAdd) {
    if (rest == 0) return *why = "an add without a .torrent", false;
    if (rest > supervisor::kMaxTorrentFileBytes) return *why = "a .torrent over 16 MiB", false;
    m->torrent = data + header;
    m->torrent_len = rest;
    return true;
  }
  if (m->op != kTransferMsgRemove && m->op != kTransferMsgAsk) return *why = "unknown op " + std::to_string(m->op), false;
  if (rest != 0) return *why = "bytes after the header of a remove or ask", false;
  m->torrent = nullptr;
  m->torrent_len = 0;
  return true;
}

TransferSync::TransferSync(const conf::Config& cfg, void* cluster_base, uint16_t node_id, shm::CounterBlock* counters)
    : cfg_(cfg), node_id_(node_id), counters_(counters) {
  shm::ClusterGeometry g{cfg.swarm_workers, cfg.cluster_ring_slots};
  out_ = shm::cluster_transfer_out_ring(cluster_base, g);
  in_ = shm::cluster_transfer_in_ring(cluster_base, g);
  subject_ = cfg.cluster_subject + ".transfers";
  state_dir_ = cfg.transfers_state_dir;
  spool_ = state_dir_ + "/.cluster-in";
  removed_dir_ = state_dir_ + "/.cluster-removed";
  if (mkdir(spool_.c_str(), 0750) != 0 && errno != EEXIST)
    LOG_ERROR("cluster: cannot create %s: %s (other nodes' transfers cannot be registered here)", spool_.c_str(),
              strerror(errno));
  if (mkdir(removed_dir_.c_str(), 0750) != 0 && errno != EEXIST)
    LOG_ERROR("cluster: cannot create %s: %s (removals are remembered only until this process ends)",
              removed_dir_.c_str(), strerror(errno));
  load_tombstones();
}

std::string TransferSync::torrent_path(const std::string& hex) const { return state_dir_ + "/" + hex + ".torrent"; }

uint64_t TransferSync::registered_ms(const std::string& hex) const {
  struct stat st;
  if (stat(torrent_path(hex).c_str(), &st) != 0) return 0;
  return uint64_t(st.st_mtim.tv_sec) * 1000 + uint64_t(st.st_mtim.tv_nsec) / 1000000;
}

void TransferSync::remember_removal(const std::string& hex, uint64_t ms) {
  uint64_t& t = removed_[hex];
  if (ms <= t) return;
  t = ms;
  std::string text = std::to_string(ms) + "\n";
  if (!replace_file(removed_dir_ + "/" + hex, text.data(), text.size(), false))
    LOG_WARN("cluster: cannot store the removal of transfer %s in %s: %s (remembered until this process ends)",
             hex.c_str(), removed_dir_.c_str(), strerror(errno));
}

void TransferSync::forget_removal(const std::string& hex) {
  if (removed_.erase(hex)) unlink((removed_dir_ + "/" + hex).c_str());
}

void TransferSync::load_tombstones() {
  DIR* d = opendir(removed_dir_.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    uint8_t hash[20];
    if (!supervisor::parse_info_hash_hex(name, hash)) continue;
    char buf[32] = {};
    int fd = open((removed_dir_ + "/" + name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    removed_[name] = n > 0 ? std::strtoull(buf, nullptr, 10) : 0;  // unreadable: 0, pruned below
  }
  closedir(d);
  prune_tombstones(shm::wall_ms());
}

void TransferSync::prune_tombstones(uint64_t now_ms) {
  for (auto it = removed_.begin(); it != removed_.end();) {
    if (it->second + kTombstoneKeepMs >= now_ms) {
      ++it;
      continue;
    }
    unlink((removed_dir_ + "/" + it->first).c_str());
    it = removed_.erase(it);
  }
}

TransferSync::~TransferSync() {
  if (sub_) natsSubscription_Destroy(sub_);
}

bool TransferSync::subscribe(natsConnection* nc) {
  nc_ = nc;
  natsStatus s = natsConnection_SubscribeSync(&sub_, nc_, subject_.c_str());
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub_, 4096, 256 << 20);
  if (s != NATS_OK) {
    LOG_ERROR("cluster: cannot subscribe to %s: %s", subject_.c_str(), natsStatus_GetText(s));
    return false;
  }
  return true;
}

bool TransferSync::publish(const std::vector<uint8_t>& msg) {
  int64_t max = natsConnection_GetMaxPayload(nc_);
  if (max > 0 && int64_t(msg.size()) > max) {
    LOG_WARN("cluster: a transfer message of %zu bytes exceeds the NATS server's max_payload (%lld): not sent "
             "(raise max_payload in nats-server's configuration)", msg.size(), (long long)max);
    return false;
  }
  natsStatus s = natsConnection_Publish(nc_, subject_.c_str(), msg.data(), int(msg.size()));
  if (s != NATS_OK) LOG_WARN("cluster: NATS refused a transfer message: %s", natsStatus_GetText(s));
  return s == NATS_OK;
}

void TransferSync::publish_add(const uint8_t* info_hash) {
  std::string hex = supervisor::info_hash_hex(info_hash), bytes, why;
  if (!supervisor::read_torrent_file(torrent_path(hex), false, &bytes, &why)) {
    LOG_WARN("cluster: transfer not sent to the other nodes: cannot read %s", why.c_str());
    return;
  }
  publish(encode_transfer_message(kTransferMsgAdd, node_id_, info_hash, registered_ms(hex), bytes));
}

void TransferSync::publish_all() {
  DIR* d = opendir(state_dir_.c_str());
  if (!d) return;
  uint32_t n = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    uint8_t hash[20];
    if (name.size() != 48 || name.compare(40, 8, ".torrent") != 0 || !supervisor::parse_info_hash_hex(name.substr(0, 40), hash))
      continue;
    publish_add(hash);
    n++;
  }
  closedir(d);
  // The removals this node remembers, so a node that still has one of them drops it.
  prune_tombstones(shm::wall_ms());
  uint32_t r = 0;
  for (const auto& [hex, ms] : removed_) {
    uint8_t hash[20];
    if (supervisor::parse_info_hash_hex(hex, hash) && publish(encode_transfer_message(kTransferMsgRemove, node_id_, hash, ms, "")))
      r++;
  }
  if (n || r)
    LOG_INFO("cluster: sent this node's %u registered transfers and %u remembered removals to the other nodes", n, r);
}

void TransferSync::on_connected() {
  publish(encode_transfer_message(kTransferMsgAsk, node_id_, nullptr, 0, ""));
  publish_all();
}

void TransferSync::to_supervisor(const uint8_t* info_hash, uint8_t op) {
  if (in_.free_slots() == 0) {
    LOG_WARN("cluster: the supervisor does not take transfer changes (ring full): %s dropped",
             supervisor::info_hash_hex(info_hash).c_str());
    return;
  }
  shm::TransferNotice* n = in_.slot_for_write(0);
  *n = shm::TransferNotice{};
  std::memcpy(n->info_hash, info_hash, 20);
  n->op = op;
  in_.publish(1);
}

void TransferSync::handle(const uint8_t* data, size_t len) {
  TransferMessage m;
  std::string why;
  if (!decode_transfer_message(data, len, &m, &why)) {
    shm::count(counters_, shm::Counter::cluster_bad_messages);
    if (logged_++ < 10) LOG_WARN("cluster: transfer message refused: %s", why.c_str());
    return;
  }
  if (m.node_id == node_id_) return;  // another node with our id: its delta messages say so
  std::string hex = supervisor::info_hash_hex(m.info_hash);
  bool registered = access(torrent_path(hex).c_str(), F_OK) == 0;
  if (m.op == kTransferMsgAsk) return publish_all();
  if (m.op == kTransferMsgRemove) {
    uint64_t at = m.time_ms ? m.time_ms : shm::wall_ms();  // version 1: no time, "now"
    remember_removal(hex, at);
    // A registration made after the removal (added again here, on purpose) stays.
    if (registered && registered_ms(hex) <= at) to_supervisor(m.info_hash, shm::kTransferNoticeRemove);
    return;
  }
  auto tomb = removed_.find(hex);
  if (tomb != removed_.end()) {
    if (m.time_ms <= tomb->second) {  // registered before a removal this node knows of: stays removed
      if (logged_++ < 10)
        LOG_INFO("cluster: transfer %s of node %u not registered: it was removed at %llu ms, after its registration",
                 hex.c_str(), m.node_id, (unsigned long long)tomb->second);
      return;
    }
    forget_removal(hex);  // added again after the removal
  }
  if (registered) return;  // an answer to someone's ask, or a repeat
  // The supervisor reads it from the spool (and deletes it): a .torrent is up to 16 MiB, more
  // than a ring slot; it validates and stores it like an upload.
  std::string path = spool_ + "/" + hex + ".torrent";
  if (!replace_file(path, m.torrent, m.torrent_len, false)) {
    LOG_ERROR("cluster: cannot write %s.tmp: %s (transfer %s of node %u not registered here)", path.c_str(), strerror(errno),
              hex.c_str(), m.node_id);
    return;
  }
  to_supervisor(m.info_hash, shm::kTransferNoticeAdd);
  if (m.time_ms) pending_[hex] = Pending{m.time_ms, shm::wall_ms()};
}

void TransferSync::settle_pending() {
  uint64_t now = shm::wall_ms();
  for (auto it = pending_.begin(); it != pending_.end();) {
    const std::string& hex = it->first;
    std::string path = torrent_path(hex);
    if (access(path.c_str(), F_OK) != 0) {
      it = now > it->second.since_ms + 10000 ? pending_.erase(it) : std::next(it);  // refused there (logged)
      continue;
    }
    uint64_t origin = it->second.origin_ms;
    timespec times[2] = {{0, UTIME_OMIT}, {time_t(origin / 1000), long(origin % 1000) * 1000000}};
    if (utimensat(AT_FDCWD, path.c_str(), times, 0) != 0)
      LOG_WARN("cluster: cannot set the registration time of %s: %s", path.c_str(), strerror(errno));
    auto tomb = removed_.find(hex);
    if (tomb != removed_.end() && origin <= tomb->second) {  // the removal overtook the registration
      uint8_t hash[20];
      if (supervisor::parse_info_hash_hex(hex, hash)) to_supervisor(hash, shm::kTransferNoticeRemove);
    }
    it = pending_.erase(it);
  }
}

void TransferSync::step(bool connected) {
  if (connected) {
    uint64_t n = out_.available();
    for (uint64_t k = 0; k < n; k++) {
      const shm::TransferNotice& t = *out_.peek(k);
      std::string hex = supervisor::info_hash_hex(t.info_hash);
      if (t.op == shm::kTransferNoticeAdd) {
        forget_removal(hex);
        publish_add(t.info_hash);
      } else {
        uint64_t now = shm::wall_ms();
        remember_removal(hex, now);
        publish(encode_transfer_message(kTransferMsgRemove, node_id_, t.info_hash, now, ""));
      }
    }
    out_.retire(n);
  }
  if (!pending_.empty()) settle_pending();
  if (!sub_) return;
  for (int i = 0; i < 256; i++) {
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub_, 0) != NATS_OK) break;
    handle(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)), size_t(natsMsg_GetDataLength(msg)));
    natsMsg_Destroy(msg);
  }
}

}  // namespace shoal::worker
