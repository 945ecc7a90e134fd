// worker/sync_worker.cpp — the sync worker process (issue 14): the only process that uses the
// NATS client. Every cluster.batch_delay ms it
//   1. looks at the connection: on each (re)connection it sends a hello (a heartbeat while it
//      joins: worker/cluster_join.hpp) and asks every swarm
//      worker to queue this node's own peers again (resync), so nodes converge after an outage;
//      after a second without a message it sends a heartbeat (liveness for `show cluster`);
//   2. takes the changes the swarm workers queued (out rings, shm/cluster_segment.hpp), encodes
//      them (worker/cluster_codec.hpp) in messages of at most 1,000 and publishes them on
//      <subject>.deltas (the NATS client buffers them while it reconnects);
//   3. takes the messages other nodes sent (a synchronous subscription polled without waiting),
//      hands each change to the swarm worker that owns its info_hash here (in rings; a full ring
//      drops and counts) and wakes it; a hello from another node asks for a resync (it needs
//      this node's peers).
// WebTorrent (worker/cluster_relay.hpp): offers and answers for connections on other nodes,
// between the socket workers' relay rings and per-node subjects, every 5 ms.
// Joining (worker/cluster_join.hpp): a node with fresh partitions asks a live node for a snapshot
// before it reports ready; a live node answers such requests (<subject>.snapshot, one queue
// group) with its swarm workers' sliced snapshot passes. Both run from a 2 ms timer while active.
// The NATS client runs its own threads (socket reader, flusher, reconnect); this process's loop
// only calls functions that return at once, so a NATS outage stalls nothing here, and nothing
// anywhere else: swarm workers never wait for this process. If it dies, the supervisor restarts
// it; the rings keep their unsent changes, the changes inside the dead client are lost.
#include <event2/event.h>
#include <nats/nats.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <algorithm>
#include <string>
#include <vector>

#include "shm/clock.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/cluster_ws.hpp"
#include "shm/control_segment.hpp"
#include "shm/relay_ring.hpp"
#include "shm/snapshot_segment.hpp"
#include "supervisor/log.hpp"
#include "worker/cluster_answer.hpp"
#include "worker/cluster_codec.hpp"
#include "worker/cluster_join.hpp"
#include "worker/cluster_relay.hpp"
#include "worker/cluster_stopped.hpp"
#include "worker/cluster_transfers.hpp"
#include "worker/worker_common.hpp"

namespace shoal::worker {
namespace {

using shm::wall_ms;

shm::BusState bus_state_of(natsConnStatus s) {
  switch (s) {
    case NATS_CONN_STATUS_CONNECTED: return shm::BusState::connected;
    case NATS_CONN_STATUS_RECONNECTING: return shm::BusState::reconnecting;
    case NATS_CONN_STATUS_CLOSED: return shm::BusState::closed;
    default: return shm::BusState::connecting;
  }
}

class SyncWorker : private JoinEntrySink {
 public:
  SyncWorker(const WorkerContext& ctx, SharedState* shared, void* cluster_base, void* snapshot_base, WorkerLoop* loop,
             ClusterRelay* relay)
      : cfg_(*ctx.config), ctx_(ctx), shared_(shared), base_(cluster_base), snap_base_(snapshot_base), loop_(loop),
        g_{cfg_.swarm_workers, cfg_.cluster_ring_slots}, status_(shm::cluster_status(cluster_base, g_)) {
    event_base* base = loop->base();
    relay_ = relay;
    if (relay_) {
      relay_tick_ = event_new(base, -1, EV_PERSIST, &on_relay_tick, this);
      timeval every{0, kRelayPollMs * 1000};
      event_add(relay_tick_, &every);
    }
    header_.node_id = uint16_t(cfg_.cluster_node_id);
    char host[256] = {};
    header_.name = cfg_.cluster_node_name;
    if (header_.name.empty() && gethostname(host, sizeof host - 1) == 0) header_.name = host;
    if (header_.name.size() > kClusterMaxName) header_.name.resize(kClusterMaxName);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&header_.session), sizeof header_.session) != 1)
      header_.session = wall_ms() ^ uint64_t(getpid()) << 32;
    subject_ = cfg_.cluster_subject + ".deltas";
    snapshot_subject_ = cfg_.cluster_subject + ".snapshot";
    shm::ClusterJoin join = status_->join;  // the join outlives a restart of this process
    std::memset(status_, 0, sizeof *status_);
    status_->join = join;
    status_->session = header_.session;
    joining_ = join.wanted && cfg_.cluster_join_timeout > 0 &&
               (join.state == uint32_t(shm::JoinState::none) || join.state == uint32_t(shm::JoinState::waiting) ||
                join.state == uint32_t(shm::JoinState::loading));
    pump_ = event_new(base, -1, EV_PERSIST, &on_pump, this);
    answerer_ = std::make_unique<JoinAnswerer>(ctx, shared, snapshot_base, header_.node_id, header_.name);
    set_bus(shm::BusState::starting);
    tick_ = event_new(base, -1, EV_PERSIST, &on_tick, this);
    timeval every{long(cfg_.cluster_batch_delay_ms / 1000), long(cfg_.cluster_batch_delay_ms % 1000) * 1000};
    event_add(tick_, &every);
  }
  ~SyncWorker() {
    if (relay_tick_) event_free(relay_tick_);
    delete relay_;  // its subscription before the connection
    event_free(tick_);
    event_free(pump_);
    delete receiver_;
    transfers_.reset();  // its subscription before the connection
    if (inbox_sub_) natsSubscription_Destroy(inbox_sub_);
    answerer_.reset();  // its subscription before the connection
    if (sub_) natsSubscription_Destroy(sub_);
    if (nc_) natsConnection_Destroy(nc_);
    if (opts_) natsOptions_Destroy(opts_);
    nats_Close();
  }

  // Sets up the client and starts connecting (in the background: retry_on_failed_connect).
  // False with the reason logged for a setting the client refuses (a fatal setup error).
  bool connect() {
    std::vector<const char*> urls;
    for (const std::string& u : cfg_.cluster_servers) urls.push_back(u.c_str());
    natsStatus s = natsOptions_Create(&opts_);
    auto step = [&](natsStatus st, const char* what) {
      if (s == NATS_OK && st != NATS_OK) {
        LOG_ERROR("cluster: %s: %s (%s)", what, natsStatus_GetText(st), nats_GetLastError(nullptr));
        s = st;
      }
    };
    step(natsOptions_SetServers(opts_, urls.data(), int(urls.size())), "cluster.servers");
    step(natsOptions_SetName(opts_, ("shoald " + header_.name).c_str()), "client name");
    step(natsOptions_SetNoEcho(opts_, true), "no echo");  // never our own messages back
    // With a callback the first connect does not block: unreachable servers at start leave the
    // node serving and connecting in the background (the tick notices the connection).
    step(natsOptions_SetRetryOnFailedConnect(opts_, true, &on_connected, nullptr), "retry on failed connect");
    step(natsOptions_SetMaxReconnect(opts_, -1), "reconnect forever");
    step(natsOptions_SetReconnectWait(opts_, 500), "reconnect wait");
    // A stopped server (kill -STOP, a hung machine) is noticed within about 3 s.
    step(natsOptions_SetPingInterval(opts_, 1000), "ping interval");
    step(natsOptions_SetMaxPingsOut(opts_, 2), "max pings out");
    step(natsOptions_SetTimeout(opts_, 2000), "connect timeout");
    step(natsOptions_SetWriteDeadline(opts_, 2000), "write deadline");
    step(natsOptions_SetReconnectBufSize(opts_, 32 << 20), "reconnect buffer");
    if (!cfg_.cluster_credentials.empty())
      step(natsOptions_SetUserCredentialsFromFiles(opts_, cfg_.cluster_credentials.c_str(), nullptr), "cluster.credentials");
    if (cfg_.cluster_tls) step(natsOptions_SetSecure(opts_, true), "cluster.tls");
    if (!cfg_.cluster_tls_ca.empty()) step(natsOptions_LoadCATrustedCertificates(opts_, cfg_.cluster_tls_ca.c_str()), "cluster.tls_ca");
    if (!cfg_.cluster_tls_certificate.empty())
      step(natsOptions_LoadCertificatesChain(opts_, cfg_.cluster_tls_certificate.c_str(), cfg_.cluster_tls_private_key.c_str()),
           "cluster.tls_certificate");
    if (s != NATS_OK) return false;
    natsStatus c = natsConnection_Connect(&nc_, opts_);
    if (c != NATS_OK && c != NATS_NOT_YET_CONNECTED) {
      LOG_ERROR("cluster: cannot connect to NATS: %s (%s)", natsStatus_GetText(c), nats_GetLastError(nullptr));
      return false;
    }
    c = natsConnection_SubscribeSync(&sub_, nc_, subject_.c_str());
    if (c == NATS_OK) c = natsSubscription_SetPendingLimits(sub_, 1 << 20, 256 << 20);
    if (c != NATS_OK) {
      LOG_ERROR("cluster: cannot subscribe to %s: %s", subject_.c_str(), natsStatus_GetText(c));
      return false;
    }
    if (!cfg_.transfers_state_dir.empty()) {  // deploy transfers on every node (worker/cluster_transfers.hpp)
      transfers_ = std::make_unique<TransferSync>(cfg_, base_, header_.node_id, shared_->counters);
      if (!transfers_->subscribe(nc_)) return false;
    }
    LOG_INFO("cluster: node %u (%s), %zu NATS servers, subject %s, batch delay %u ms", cfg_.cluster_node_id,
             header_.name.c_str(), urls.size(), subject_.c_str(), cfg_.cluster_batch_delay_ms);
    if (relay_ && !relay_->listen(nc_)) return false;
    if (!joining_) return answerer_->listen(nc_);
    if (!start_join()) return false;
    update_pump();
    return true;
  }

  // True while this node has not finished joining: not ready yet (the join's end reports ready).
  bool joining() const { return joining_; }

 private:
  static void on_connected(natsConnection*, void*) {}  // runs on a NATS thread: watch_bus sees it
  static void on_tick(evutil_socket_t, short, void* arg) { static_cast<SyncWorker*>(arg)->tick(); }
  static void on_pump(evutil_socket_t, short, void* arg) { static_cast<SyncWorker*>(arg)->pump(); }
  static void on_relay_tick(evutil_socket_t, short, void* arg) { static_cast<SyncWorker*>(arg)->relay_->step(); }
  // WebTorrent offers wait at most this long here in each direction (signalling, not data).
  static constexpr long kRelayPollMs = 5;

  void tick() {
    watch_bus();
    watch_socket_processes();
    send_changes();
    // Liveness for the other nodes' `show cluster` (and their first sight of a node that
    // connected before them): a heartbeat after a second without any other message.
    if (nats_connected() && wall_ms() - shm::acquire_load(status_->last_publish_ms) >= 1000)
      send_message(kClusterHeartbeat, nullptr, 0);
    receive();
    if (nats_connected()) stopped_.prune(wall_ms()), ws_stopped_.prune(wall_ms());
    if (stopped_wanted_ && nats_connected()) resend_stopped();
    if (transfers_) transfers_->step(nats_connected());
    if (resync_wanted_) request_resync();
    if (answerer_->listening()) {
      answerer_->poll_requests();
      update_pump();
    }
  }

  bool nats_connected() const { return shm::acquire_load(status_->bus_state) == uint32_t(shm::BusState::connected); }

  void set_bus(shm::BusState st) {
    shm::release_store(status_->bus_state, uint32_t(st));
    shm::release_store(status_->bus_since_ms, wall_ms());
  }

  void watch_bus() {
    shm::BusState st = bus_state_of(natsConnection_Status(nc_));
    if (uint32_t(st) == shm::acquire_load(status_->bus_state)) return;
    set_bus(st);
    if (st == shm::BusState::connected) {
      char url[192] = {};
      natsConnection_GetConnectedUrl(nc_, url, sizeof url);
      std::memcpy(status_->connected_url, url, sizeof url);
      if (ever_connected_) {
        shm::release_store(status_->reconnects, status_->reconnects + 1);
        shm::count(shared_->counters, shm::Counter::cluster_bus_reconnects);
        LOG_INFO("cluster: NATS connection back (%s); sending this node's peers again", url);
        resend_stopped();
      } else {
        LOG_INFO("cluster: connected to NATS at %s", url);
      }
      ever_connected_ = true;
      // A joining node gets everything from the snapshot: a heartbeat says it is there without
      // making every node resend its peers (a resync into in rings that the snapshot entries
      // fill would be dropped there). If the join ends without a snapshot, the hello follows.
      send_message(joining_ ? kClusterHeartbeat : kClusterHello, nullptr, 0);
      resync_wanted_ = true;  // what the other nodes missed of ours while we were away
      if (transfers_) transfers_->on_connected();
    } else {
      std::memset(status_->connected_url, 0, sizeof status_->connected_url);
      LOG_WARN("cluster: NATS connection %s; every node keeps serving the swarms it has, changes are buffered "
               "and this node's peers are sent again on reconnection", shm::bus_state_name(uint32_t(st)));
    }
  }

  // Publishes one message; false (counted by the caller) when the client refused it.
  bool send_message(uint8_t kind, const shm::Delta* d, size_t n) {
    header_.kind = kind;
    header_.seq = ++seq_;
    header_.sent_ms = wall_ms();
    buf_.clear();
    encode_cluster_message(header_, d, n, &buf_);
    natsStatus s = natsConnection_Publish(nc_, subject_.c_str(), buf_.data(), int(buf_.size()));
    if (s != NATS_OK) {
      if (!publish_failing_) LOG_WARN("cluster: NATS refused a message: %s (changes are dropped and counted until it takes them)", natsStatus_GetText(s));
      publish_failing_ = true;
      return false;
    }
    publish_failing_ = false;
    shm::release_store(status_->last_publish_ms, header_.sent_ms);
    return true;
  }

  // send_message, counting the n deltas as sent or dropped.
  void send_counted(uint8_t kind, const shm::Delta* d, size_t n) {
    shm::count(shared_->counters, send_message(kind, d, n) ? shm::Counter::cluster_deltas_sent
                                                           : shm::Counter::cluster_deltas_dropped, n);
  }

  // This node's changes of one kind (kClusterDeltas or kClusterWsDeltas): the removals among them
  // are kept for the resend after an outage (those pushed out of that memory count as dropped),
  // then they are published and counted.
  void publish_deltas(uint8_t kind, const shm::Delta* d, size_t n) {
    size_t pushed_out = kind == kClusterWsDeltas ? ws_stopped_.note(d, n, wall_ms(), kWsRemovals)
                                                 : stopped_.note(d, n, wall_ms());
    shm::count(shared_->counters, shm::Counter::cluster_deltas_dropped, pushed_out);
    send_counted(kind, d, n);
  }

  // After a reconnection: the stopped deltas the outage may have swallowed (worker/cluster_stopped.hpp).
  void resend_stopped() {
    stopped_wanted_ = false;
    std::vector<shm::Delta> again = stopped_.all();
    std::vector<shm::Delta> ws = ws_stopped_.all();  // WebTorrent peers that left, processes gone
    for (size_t at = 0; at < again.size(); at += kMaxDeltasPerMessage)
      send_counted(kClusterDeltas, again.data() + at, std::min<size_t>(again.size() - at, kMaxDeltasPerMessage));
    for (size_t at = 0; at < ws.size(); at += kMaxDeltasPerMessage)
      send_counted(kClusterWsDeltas, ws.data() + at, std::min<size_t>(ws.size() - at, kMaxDeltasPerMessage));
    if (!again.empty() || !ws.empty())
      LOG_INFO("cluster: sent %zu stopped peers of the last outage again (%zu WebTorrent removals)", again.size() + ws.size(),
               ws.size());
  }

  void send_changes() {
    for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
      shm::SpscRing<shm::Delta> out = shm::cluster_out_ring(base_, g_, w);
      uint64_t avail = out.available();
      while (avail > 0) {
        size_t n = size_t(std::min<uint64_t>(avail, kMaxDeltasPerMessage));
        batch_.clear();
        ws_batch_.clear();  // WebTorrent deltas go in messages of their own kind
        for (size_t k = 0; k < n; k++) (shm::is_ws_delta(*out.peek(k)) ? ws_batch_ : batch_).push_back(*out.peek(k));
        out.retire(n);
        avail -= n;
        if (!batch_.empty()) publish_deltas(kClusterDeltas, batch_.data(), batch_.size());
        if (!ws_batch_.empty()) publish_deltas(kClusterWsDeltas, ws_batch_.data(), ws_batch_.size());
      }
    }
  }

  void receive() {
    std::vector<uint64_t> queued(cfg_.swarm_workers, 0);
    for (int i = 0; i < 100000; i++) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, sub_, 0) != NATS_OK) break;
      handle(reinterpret_cast<const uint8_t*>(natsMsg_GetData(m)), size_t(natsMsg_GetDataLength(m)), queued);
      natsMsg_Destroy(m);
    }
    for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
      if (!queued[w]) continue;
      shm::cluster_in_ring(base_, g_, w).publish(queued[w]);
      wake(ctx_.swarm_eventfds[w]);
    }
  }

  void handle(const uint8_t* data, size_t len, std::vector<uint64_t>& queued) {
    ClusterHeader h;
    std::string why;
    if (!decode_cluster_message(data, len, &h, &deltas_, &why)) {
      shm::count(shared_->counters, shm::Counter::cluster_bad_messages);
      if (bad_logged_++ < 10) LOG_WARN("cluster: message refused: %s", why.c_str());
      return;
    }
    if (h.node_id == header_.node_id) {  // no echo: another node uses our id
      shm::count(shared_->counters, shm::Counter::cluster_bad_messages);
      if (bad_logged_++ < 10)
        LOG_ERROR("cluster: node \"%s\" sends with this node's cluster.node_id %u: its changes are ignored (node ids must differ)",
                  h.name.c_str(), h.node_id);
      return;
    }
    note_node(h, deltas_.size());
    if (h.kind == kClusterHello) {
      resync_wanted_ = true;
      stopped_wanted_ = true;  // it may have come back after our own reconnection's resend
      return;
    }
    shm::count(shared_->counters, shm::Counter::cluster_deltas_received, deltas_.size());
    uint64_t key = shared_->control->control.partition_key;
    auto route = [&](const shm::Delta& d, uint32_t w) {
      shm::SpscRing<shm::Delta> in = shm::cluster_in_ring(base_, g_, w);
      if (in.free_slots() <= queued[w]) return shm::count(shared_->counters, shm::Counter::cluster_deltas_dropped);
      *in.slot_for_write(queued[w]++) = d;
    };
    for (const shm::Delta& d : deltas_) {
      if (shm::is_ws_gone(d)) {  // a socket process of that node: every partition may hold its peers
        for (uint32_t w = 0; w < cfg_.swarm_workers; w++) route(d, w);
        continue;
      }
      route(d, partition_of(d.info_hash, cfg_.swarm_workers, key));
    }
  }

  // The row of h.node_id in the status table (a new one for a node not seen yet).
  void note_node(const ClusterHeader& h, size_t deltas) {
    uint32_t n = shm::acquire_load(status_->node_count), i = 0;
    while (i < n && status_->nodes[i].node_id != h.node_id) i++;
    if (i == n) {
      if (n == shm::kClusterMaxNodes) return;
      status_->nodes[i] = shm::ClusterNode{};
      status_->nodes[i].node_id = h.node_id;
      shm::release_store(status_->node_count, n + 1);
    }
    shm::ClusterNode& row = status_->nodes[i];
    uint64_t now = wall_ms();
    if (row.session != h.session) {
      LOG_INFO("cluster: node %u (%s) %s", h.node_id, h.name.c_str(), row.session ? "restarted (a new session)" : "seen");
      row.session = h.session;
    } else if (h.seq > row.last_seq + 1) {
      row.gaps += h.seq - row.last_seq - 1;
    }
    row.last_seq = h.seq;
    row.last_message_ms = now;
    row.last_sent_ms = h.sent_ms;
    row.lag_ms = int64_t(now) - int64_t(h.sent_ms);
    row.messages++;
    row.deltas += deltas;
    std::memset(row.name, 0, sizeof row.name);
    std::memcpy(row.name, h.name.data(), std::min(h.name.size(), sizeof row.name - 1));
  }

  // WebTorrent (relay_ set): when a socket slot's active process changes, the old one's
  // connections are gone; the other nodes hear it (kDeltaWsGone) and drop the WebTorrent peers
  // they hold of it instead of offering them until they expire.
  void watch_socket_processes() {
    if (!relay_) return;
    uint32_t n = shared_->geometry.socket_workers;
    bool first = seen_socket_gen_.empty();
    seen_socket_gen_.resize(n, 0);
    gone_batch_.clear();
    for (uint32_t s = 0; s < n; s++) {
      uint32_t g = shm::load_u32(shared_->control->socket_sets[s].active_generation);
      if (g == seen_socket_gen_[s]) continue;
      if (!first && seen_socket_gen_[s] != 0) {
        shm::WsDelta w{};
        w.flags = shm::kDeltaWsGone;
        w.slot = uint8_t(s);
        w.generation = uint16_t(seen_socket_gen_[s]);
        gone_batch_.emplace_back();
        shm::pack_ws_delta(w, &gone_batch_.back());
      }
      seen_socket_gen_[s] = g;
    }
    if (gone_batch_.empty()) return;
    publish_deltas(kClusterWsDeltas, gone_batch_.data(), gone_batch_.size());
  }

  // Asks every swarm worker to queue this node's own peers again.
  void request_resync() {
    resync_wanted_ = false;
    for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
      shm::ClusterChannelControl* c = shm::cluster_control(base_, g_, w);
      shm::store_u32(c->resync_request, shm::load_u32(c->resync_request) + 1);
      wake(ctx_.swarm_eventfds[w]);
    }
    shm::release_store(status_->resyncs, status_->resyncs + 1);
  }

  // ---- joining (worker/cluster_join.hpp) -------------------------------------------------------

  bool start_join() {
    shm::ClusterJoin& j = status_->join;
    j.state = uint32_t(shm::JoinState::waiting);
    j.started_ms = wall_ms();
    join_deadline_ms_ = j.started_ms + uint64_t(cfg_.cluster_join_timeout) * 1000;
    natsInbox* inbox = nullptr;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
      snprintf(inbox_, sizeof inbox_, "%s", inbox);
      natsInbox_Destroy(inbox);
      s = natsConnection_SubscribeSync(&inbox_sub_, nc_, inbox_);
    }
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(inbox_sub_, 1 << 20, 512 << 20);
    if (s != NATS_OK) {
      LOG_ERROR("cluster: cannot subscribe to a reply inbox: %s", natsStatus_GetText(s));
      return false;
    }
    join_queued_.assign(cfg_.swarm_workers, 0);
    receiver_ = new JoinReceiver(this, wall_ms() / 1000);
    receiver_->skip_node(header_.node_id);  // WebTorrent peers of this node's previous life
    LOG_INFO("cluster: new partitions: asking a live node for a snapshot on %s (not ready until loaded; alone after %u s)",
             snapshot_subject_.c_str(), cfg_.cluster_join_timeout);
    return true;
  }

  // JoinEntrySink: an entry for the in ring of the worker that owns its info_hash.
  void put(const shm::Delta& d) override {
    uint32_t w = partition_of(d.info_hash, cfg_.swarm_workers, shared_->control->control.partition_key);
    shm::SpscRing<shm::Delta> in = shm::cluster_in_ring(base_, g_, w);
    if (in.free_slots() <= join_queued_[w]) return shm::count(shared_->counters, shm::Counter::cluster_deltas_dropped);
    *in.slot_for_write(join_queued_[w]++) = d;
  }

  void publish_join_entries() {
    for (uint32_t w = 0; w < cfg_.swarm_workers; w++) {
      if (!join_queued_[w]) continue;
      shm::cluster_in_ring(base_, g_, w).publish(join_queued_[w]);
      join_queued_[w] = 0;
      wake(ctx_.swarm_eventfds[w]);
    }
  }

  // Room for one more frame's entries in every in ring (a 16 KiB chunk holds < 1,000 records).
  bool room_for_frame() const {
    uint64_t need = std::min<uint64_t>(1024, cfg_.cluster_ring_slots / 2);
    for (uint32_t w = 0; w < cfg_.swarm_workers; w++)
      if (shm::cluster_in_ring(base_, g_, w).free_slots() < need) return false;
    return true;
  }

  void join_step() {
    uint64_t now = wall_ms();
    shm::ClusterJoin& j = status_->join;
    if (draining_) {  // every entry queued: ready once the swarm workers applied them all
      for (uint32_t w = 0; w < cfg_.swarm_workers; w++)
        if (shm::cluster_in_ring(base_, g_, w).retired() < join_marks_[w]) return;
      return end_join(shm::JoinState::joined, "");
    }
    if (!receiver_->started()) {
      if (now >= join_deadline_ms_)
        return end_join(shm::JoinState::alone, "no node answered within cluster.join_timeout (" +
                                                   std::to_string(cfg_.cluster_join_timeout) + " s)");
      if (nats_connected() && now >= next_ask_ms_) {
        std::vector<uint8_t> req = encode_join_request(header_.node_id);
        natsConnection_PublishRequest(nc_, snapshot_subject_.c_str(), inbox_, req.data(), int(req.size()));
        next_ask_ms_ = now + 1000;
      }
    }
    for (int i = 0; i < 64 && room_for_frame(); i++) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, inbox_sub_, 0) != NATS_OK) break;
      const uint8_t* p = reinterpret_cast<const uint8_t*>(natsMsg_GetData(m));
      size_t n = size_t(natsMsg_GetDataLength(m));
      // An empty message is the server's "no responders" status: nobody serves yet; ask again.
      JoinReceiver::Result r = n == 0 && !receiver_->started() ? JoinReceiver::busy : receiver_->take(p, n);
      natsMsg_Destroy(m);
      publish_join_entries();
      if (r == JoinReceiver::busy) {
        next_ask_ms_ = now + 250;
        continue;
      }
      if (r == JoinReceiver::failed) return end_join(shm::JoinState::failed, receiver_->error());
      last_frame_ms_ = now;
      if (j.state != uint32_t(shm::JoinState::loading)) {
        shm::release_store(j.state, uint32_t(shm::JoinState::loading));
        j.from_node_id = receiver_->from_id();
        std::snprintf(j.from_name, sizeof j.from_name, "%s", receiver_->from_name().c_str());
        LOG_INFO("cluster: node %u (%s) answers with its snapshot", j.from_node_id, j.from_name);
      }
      j.torrents = receiver_->torrents();
      j.peers = receiver_->peers();
      if (r == JoinReceiver::done) {
        join_marks_.resize(cfg_.swarm_workers);
        for (uint32_t w = 0; w < cfg_.swarm_workers; w++) join_marks_[w] = shm::cluster_in_ring(base_, g_, w).write_position();
        draining_ = true;
        return;
      }
    }
    if (receiver_->started() && now - last_frame_ms_ > uint64_t(cfg_.cluster_join_timeout) * 1000 && room_for_frame())
      end_join(shm::JoinState::failed, "the answer stopped: no frame for " + std::to_string(cfg_.cluster_join_timeout) + " s");
  }

  void end_join(shm::JoinState st, const std::string& note) {
    shm::ClusterJoin& j = status_->join;
    j.finished_ms = wall_ms();
    std::snprintf(j.note, sizeof j.note, "%s", note.c_str());
    shm::release_store(j.state, uint32_t(st));
    double s = double(j.finished_ms - j.started_ms) / 1000.0;
    if (st == shm::JoinState::joined)
      LOG_INFO("cluster: joined: loaded the snapshot of node %u (%s): %llu torrents, %llu peers in %.2f s; ready", j.from_node_id,
               j.from_name, (unsigned long long)j.torrents, (unsigned long long)j.peers, s);
    else if (st == shm::JoinState::alone)
      LOG_WARN("cluster: %s: starting with what this node has (the first node of a cluster); ready", note.c_str());
    else
      LOG_ERROR("cluster: loading a snapshot failed after %llu peers (%s); starting with what was received, the other "
                "nodes' resync fills the rest; ready", (unsigned long long)j.peers, note.c_str());
    joining_ = draining_ = false;
    delete receiver_;
    receiver_ = nullptr;
    natsSubscription_Unsubscribe(inbox_sub_);
    natsSubscription_Destroy(inbox_sub_);
    inbox_sub_ = nullptr;
    if (st != shm::JoinState::joined && nats_connected()) send_message(kClusterHello, nullptr, 0);  // the resync instead
    loop_->set_ready(ctx_.generation);
    answerer_->listen(nc_);  // a node answers others once it is complete itself
  }

  void pump() {
    if (joining_) join_step();
    answerer_->step();
    update_pump();
  }

  // The 2 ms timer runs only while a join or an answer is going on.
  void update_pump() {
    bool want = joining_ || answerer_->answering();
    if (want == pump_on_) return;
    pump_on_ = want;
    if (!want) {
      event_del(pump_);
      return;
    }
    timeval two_ms{0, 2000};
    event_add(pump_, &two_ms);
  }

  const conf::Config& cfg_;
  const WorkerContext& ctx_;
  SharedState* shared_;
  void* base_;
  void* snap_base_;
  WorkerLoop* loop_;
  shm::ClusterGeometry g_;
  shm::ClusterStatus* status_;
  ClusterHeader header_;
  std::string subject_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  event* tick_ = nullptr;
  uint64_t seq_ = 0;
  bool ever_connected_ = false;
  bool resync_wanted_ = false;
  bool publish_failing_ = false;
  uint32_t bad_logged_ = 0;
  std::vector<uint8_t> buf_;
  std::vector<shm::Delta> batch_, ws_batch_, gone_batch_, deltas_;
  std::vector<uint32_t> seen_socket_gen_;  // per socket slot: the active generation last seen
  // WebTorrent offers and answers across nodes (ws or wss on), polled every kRelayPollMs
  ClusterRelay* relay_ = nullptr;
  event* relay_tick_ = nullptr;
  std::unique_ptr<TransferSync> transfers_;  // with transfers.state_dir
  StoppedMemory stopped_;     // BitTorrent stopped deltas
  StoppedMemory ws_stopped_;  // WebTorrent stopped deltas and process-gone records
  static constexpr uint8_t kWsRemovals = shm::kDeltaStopped | shm::kDeltaWsGone;
  bool stopped_wanted_ = false;  // a hello came: send the kept stopped deltas again
  // join and serve
  std::string snapshot_subject_;
  event* pump_ = nullptr;
  bool pump_on_ = false;
  bool joining_ = false, draining_ = false;
  natsSubscription* inbox_sub_ = nullptr;
  std::unique_ptr<JoinAnswerer> answerer_;
  char inbox_[128] = {};
  JoinReceiver* receiver_ = nullptr;
  uint64_t join_deadline_ms_ = 0, next_ask_ms_ = 0, last_frame_ms_ = 0;
  std::vector<uint64_t> join_queued_, join_marks_;
};

}  // namespace

int run_sync_worker(const WorkerContext& ctx) {
  SharedState shared;
  shm::Segment cluster_seg, snapshot_seg, relay_seg;
  const conf::Config& cfg = *ctx.config;
  shm::RelayGeometry rg{cfg.socket_workers, shm::relay_ring_bytes(cfg.ws_relay_ring_bytes), 1};
  try {
    shared = attach_shared(ctx);
    if (cfg.ws_enabled || cfg.wss_enabled) {  // WebTorrent offers across nodes
      relay_seg = shm::Segment::attach(shm::relay_segment_name(cfg.shm_name), shm::SegmentKind::relay);
      if (relay_seg.size() < rg.segment_bytes()) throw std::runtime_error("relay segment smaller than its geometry");
    }
    snapshot_seg = shm::Segment::attach(shm::snapshot_segment_name(ctx.config->shm_name), shm::SegmentKind::snapshot);
    if (snapshot_seg.size() < shm::snapshot_segment_bytes(2 * ctx.config->swarm_workers))
      throw std::runtime_error("snapshot segment too small");
    cluster_seg = attach_cluster_segment(*ctx.config);
  } catch (const std::exception& e) {
    LOG_ERROR("cannot attach shared memory: %s", e.what());
    return 1;
  }
  std::optional<WorkerLoop> loop;
  std::optional<SyncWorker> worker;
  try {
    loop.emplace(&shared);
    ClusterRelay* relay = relay_seg.base() ? new ClusterRelay(cfg, relay_seg.base(), rg, uint16_t(cfg.cluster_node_id), shared.control,
                                                              ctx.socket_eventfds, shared.counters)
                                           : nullptr;
    worker.emplace(ctx, &shared, cluster_seg.base(), snapshot_seg.base(), &*loop, relay);
  } catch (const std::exception& e) {
    LOG_ERROR("fatal: sync worker cannot start: %s", e.what());
    return 1;
  }
  if (!worker->connect()) return 1;
  if (!worker->joining()) loop->set_ready(ctx.generation);  // else when the join ends
  return loop->run();
}

}  // namespace shoal::worker
