// worker/cluster_relay.cpp — see cluster_relay.hpp. Runs in the sync worker only.
#include "worker/cluster_relay.hpp"

#include <cstring>

#include "supervisor/log.hpp"
#include "worker/cluster_ws_codec.hpp"
#include "worker/worker_common.hpp"
#include "worker/ws_relay.hpp"

namespace shoal::worker {

namespace {
constexpr int kMaxInPerStep = 4096;  // relay messages taken from NATS per step
}  // namespace

ClusterRelay::ClusterRelay(const conf::Config& cfg, void* relay_base, shm::RelayGeometry g, uint16_t node_id,
                           const shm::ControlSegment* control, std::vector<int> socket_eventfds, shm::CounterBlock* counters)
    : base_(relay_base), g_(g), node_id_(node_id), control_(control), wake_fds_(std::move(socket_eventfds)),
      counters_(counters), subject_prefix_(cfg.cluster_subject + ".relay.") {
  for (uint32_t s = 0; s < g_.workers; s++)
    for (uint32_t k = 0; k < g_.kSets; k++) {
      from_socket_.push_back(shm::relay_ring(base_, g_, s, k, g_.workers, 0));
      to_socket_.push_back(shm::relay_ring(base_, g_, g_.workers, 0, s, k));
    }
  dirty_.assign(to_socket_.size(), 0);
}

ClusterRelay::~ClusterRelay() {
  if (sub_) natsSubscription_Destroy(sub_);
}

bool ClusterRelay::listen(natsConnection* nc) {
  nc_ = nc;
  std::string subject = subject_prefix_ + std::to_string(node_id_);
  natsStatus s = natsConnection_SubscribeSync(&sub_, nc_, subject.c_str());
  if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub_, 65536, 64 << 20);
  if (s != NATS_OK) {
    LOG_ERROR("cluster: cannot subscribe to %s: %s", subject.c_str(), natsStatus_GetText(s));
    return false;
  }
  LOG_INFO("cluster: WebTorrent offers for this node's connections arrive on %s", subject.c_str());
  return true;
}

bool ClusterRelay::step() {
  bool out = send_out();
  bool in = take_in();
  return out || in;
}

// Socket workers → other nodes.
bool ClusterRelay::send_out() {
  bool any = false;
  for (shm::RelayRing& ring : from_socket_) {
    while (const shm::RelayRecord* r = ring.next()) {
      any = true;
      RelayHead head;
      bool ok = r->length >= sizeof head && (r->kind == shm::kRelayOffer || r->kind == shm::kRelayAnswer);
      if (ok) {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(r + 1);
        std::memcpy(&head, p, sizeof head);
        ok = head.node != 0 && head.node != node_id_;
        RelayMessage m;
        m.kind = uint8_t(r->kind);
        m.from_node = node_id_;
        m.to_node = head.node;
        m.target_slot = uint8_t(r->target_slot);
        m.target_generation = r->target_generation;
        m.target_token = r->target_token;
        if (r->kind == shm::kRelayOffer) {
          m.from_slot = head.from_slot;
          m.from_generation = head.from_generation;
          m.from_token = head.from_token;
        }
        std::memcpy(m.info_hash, head.info_hash, 20);
        std::memcpy(m.peer_id, head.peer_id, 20);
        std::memcpy(m.offer_id, head.offer_id, 20);
        m.sdp_json = std::string_view(reinterpret_cast<const char*>(p + sizeof head), r->length - sizeof head);
        if (ok) {
          buf_.clear();
          encode_relay_message(m, &buf_);
          std::string subject = subject_prefix_ + std::to_string(head.node);
          ok = natsConnection_Publish(nc_, subject.c_str(), buf_.data(), int(buf_.size())) == NATS_OK;
        }
      }
      shm::count(counters_, !ok                            ? shm::Counter::cluster_ws_relay_dropped
                            : r->kind == shm::kRelayOffer ? shm::Counter::cluster_ws_offers_sent
                                                          : shm::Counter::cluster_ws_answers_sent);
      ring.consume(r);
    }
    ring.release();
  }
  return any;
}

// Other nodes → the socket process holding the target connection.
bool ClusterRelay::take_in() {
  if (!sub_) return false;
  bool any = false;
  for (int i = 0; i < kMaxInPerStep; i++) {
    natsMsg* msg = nullptr;
    if (natsSubscription_NextMsg(&msg, sub_, 0) != NATS_OK) break;
    any = true;
    RelayMessage m;
    std::string why;
    bool ok = decode_relay_message(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)), size_t(natsMsg_GetDataLength(msg)), &m, &why);
    if (ok && m.to_node != node_id_) ok = false, why = "for node " + std::to_string(m.to_node);
    if (!ok && bad_logged_++ < 10) LOG_WARN("cluster: WebTorrent relay message refused: %s", why.c_str());
    uint32_t gen = 0, set = 0;
    if (ok && m.target_slot < g_.workers) {
      gen = shm::load_u32(control_->socket_sets[m.target_slot].active_generation);
      set = shm::load_u32(control_->socket_sets[m.target_slot].active_set) & 1;
    }
    // The connection's process must still be the slot's live one (low 16 bits: what the
    // replicated peer carries); else its connections are gone.
    ok = ok && gen != 0 && (gen & 0xffff) == (m.target_generation & 0xffff);
    size_t i_ring = size_t(m.target_slot) * g_.kSets + set;
    uint8_t* at = nullptr;
    RelayHead head{};
    uint32_t payload = uint32_t(sizeof head + m.sdp_json.size());
    if (ok) at = to_socket_[i_ring].reserve(payload);
    if (at) {
      std::memcpy(head.info_hash, m.info_hash, 20);
      std::memcpy(head.peer_id, m.peer_id, 20);
      std::memcpy(head.offer_id, m.offer_id, 20);
      head.from_slot = m.from_slot;
      head.node = m.from_node;
      head.from_generation = m.from_generation;
      head.from_token = m.from_token;
      shm::RelayRecord rec{payload, m.kind, 0, gen, m.target_token};
      std::memcpy(at, &rec, sizeof rec);
      std::memcpy(at + sizeof rec, &head, sizeof head);
      std::memcpy(at + sizeof rec + sizeof head, m.sdp_json.data(), m.sdp_json.size());
      to_socket_[i_ring].commit();
      dirty_[i_ring] = 1;
    }
    shm::count(counters_, !at                           ? shm::Counter::cluster_ws_relay_dropped
                          : m.kind == shm::kRelayOffer ? shm::Counter::cluster_ws_offers_received
                                                       : shm::Counter::cluster_ws_answers_received);
    natsMsg_Destroy(msg);
  }
  for (size_t i = 0; i < to_socket_.size(); i++) {
    if (!dirty_[i]) continue;
    dirty_[i] = 0;
    if (to_socket_[i].publish() && i < wake_fds_.size()) wake(wake_fds_[i]);
  }
  return any;
}

}  // namespace shoal::worker
