// worker/cluster_answer.cpp — see cluster_answer.hpp.
#include "worker/cluster_answer.hpp"

#include <unistd.h>

#include <ctime>

#include "shm/clock.hpp"
#include "shm/control_segment.hpp"
#include "shm/layout.hpp"
#include "shm/snapshot_segment.hpp"
#include "supervisor/log.hpp"
#include "supervisor/version.hpp"
#include "worker/cluster_join.hpp"

namespace shoal::worker {

JoinAnswerer::JoinAnswerer(const WorkerContext& ctx, SharedState* shared, void* snapshot_base, uint16_t node_id, std::string name)
    : cfg_(*ctx.config), ctx_(ctx), shared_(shared), snap_base_(snapshot_base), node_id_(node_id), name_(std::move(name)),
      subject_(cfg_.cluster_subject + ".snapshot") {}

JoinAnswerer::~JoinAnswerer() {
  if (sub_) natsSubscription_Destroy(sub_);
}

bool JoinAnswerer::listen(natsConnection* nc) {
  nc_ = nc;
  natsStatus s = natsConnection_QueueSubscribeSync(&sub_, nc_, subject_.c_str(), subject_.c_str());
  if (s != NATS_OK) {
    LOG_ERROR("cluster: cannot subscribe to %s: %s", subject_.c_str(), natsStatus_GetText(s));
    sub_ = nullptr;
    return false;
  }
  return true;
}

shm::SnapshotControl* JoinAnswerer::ctl(uint32_t w) const { return shm::snapshot_control(snap_base_, cfg_.swarm_workers + w); }

void JoinAnswerer::send_frame(const std::string& to, uint8_t kind, const uint8_t* p, size_t n) {
  JoinFrame f;
  f.kind = kind;
  f.node_id = node_id_;
  f.seq = ++frames_;
  f.name = name_;
  frame_.clear();
  encode_join_frame(f, p, n, &frame_);
  natsConnection_Publish(nc_, to.c_str(), frame_.data(), int(frame_.size()));
}

void JoinAnswerer::poll_requests() {
  if (!sub_ || answering_) return;
  drop_stale_chunks();
  for (int i = 0; i < 16; i++) {
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub_, 0) != NATS_OK) break;
    const char* reply = natsMsg_GetReply(m);
    uint16_t who = decode_join_request(reinterpret_cast<const uint8_t*>(natsMsg_GetData(m)), size_t(natsMsg_GetDataLength(m)));
    std::string to = reply ? reply : "";
    natsMsg_Destroy(m);
    if (!who || to.empty()) continue;
    bool idle = !answering_;
    for (uint32_t w = 0; idle && w < cfg_.swarm_workers; w++) idle = shm::load_u32(ctl(w)->request_seq) == shm::load_u32(ctl(w)->response_seq);
    if (!idle) {
      uint32_t keep = frames_;
      frames_ = 0;
      static const char kBusy[] = "answering another node";
      send_frame(to, kJoinBusy, reinterpret_cast<const uint8_t*>(kBusy), sizeof kBusy - 1);
      frames_ = keep;
      continue;
    }
    start(to, who);
  }
}

void JoinAnswerer::start(const std::string& to, uint16_t who) {
  answering_ = true;
  reply_ = to;
  frames_ = chunks_ = 0;
  totals_ = {};
  started_ns_ = shm::monotonic_ns();
  uint32_t t0 = shm::seconds_since(shared_->control->header.clock_base_ns);
  seq_.assign(cfg_.swarm_workers, 0);
  done_.assign(cfg_.swarm_workers, false);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  shm::SnapshotInfo info{uint64_t(time(nullptr)), host, std::string("shoald ") + kShoalVersion, shm::kLayoutVersion};
  std::vector<uint8_t> head = shm::encode_snapshot_start(info);
  send_frame(reply_, kJoinData, head.data(), head.size());
  for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
    shm::SnapshotControl* c = ctl(w);
    c->t0 = t0;
    seq_[w] = shm::load_u32(c->request_seq) + 1;
    shm::store_u32(c->request_seq, seq_[w]);
    wake(ctx_.swarm_eventfds[w]);
  }
  LOG_INFO("cluster: node %u asks for a snapshot: answering", who);
}

void JoinAnswerer::step() {
  if (!answering_) return;
  bool all = true;
  for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
    if (done_[w]) continue;
    shm::SnapshotControl* c = ctl(w);
    uint32_t answered = shm::load_u32(c->response_seq);  // before the ring: its chunks are all published
    shm::SpscRing<shm::SnapshotChunkSlot> r(shm::snapshot_ring_at(snap_base_, cfg_.swarm_workers + w));
    for (uint64_t n = r.available(); n > 0; n--) {
      const shm::SnapshotChunkSlot* s = r.peek(0);
      if (s->len <= sizeof s->bytes) send_frame(reply_, kJoinData, s->bytes, s->len), chunks_++;
      r.retire(1);
    }
    if (answered != seq_[w]) {
      all = false;
      continue;
    }
    if (c->status != shm::kSnapshotOk) {
      static const char kWhy[] = "a swarm worker was restarted during the snapshot";
      send_frame(reply_, kJoinFailed, reinterpret_cast<const uint8_t*>(kWhy), sizeof kWhy - 1);
      LOG_WARN("cluster: snapshot answer cut short: %s", kWhy);
      answering_ = false;
      return;
    }
    totals_.torrents += c->torrents;
    totals_.peers += c->peers;
    done_[w] = true;
  }
  if (!all) return;
  totals_.data_chunks = chunks_;
  std::vector<uint8_t> end = shm::encode_snapshot_end(totals_);
  send_frame(reply_, kJoinData, end.data(), end.size());
  answering_ = false;
  LOG_INFO("cluster: snapshot sent: %llu torrents, %llu peers in %u frames, %.1f ms", (unsigned long long)totals_.torrents,
           (unsigned long long)totals_.peers, frames_, double(shm::monotonic_ns() - started_ns_) / 1e6);
}

// Chunks of an answer that was cut short: taken and dropped so the channels get idle.
void JoinAnswerer::drop_stale_chunks() {
  for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
    shm::SpscRing<shm::SnapshotChunkSlot> r(shm::snapshot_ring_at(snap_base_, cfg_.swarm_workers + w));
    if (uint64_t n = r.available()) r.retire(n);
  }
}

}  // namespace shoal::worker
