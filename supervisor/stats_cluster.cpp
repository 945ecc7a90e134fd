// supervisor/stats_cluster.cpp — see stats_cluster.hpp.
#include "supervisor/stats_cluster.hpp"

#include <jansson.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "shm/clock.hpp"
#include "shm/cluster_segment.hpp"
#include "shm/control_segment.hpp"
#include "supervisor/readiness.hpp"
#include "supervisor/segments.hpp"
#include "supervisor/supervisor.hpp"

namespace shoal::supervisor {
namespace {

using shm::wall_ms;

// Milliseconds since `ms` (wall clock), -1 for never (0).
int64_t age_ms(uint64_t now, uint64_t ms) { return ms == 0 ? -1 : int64_t(now) - int64_t(ms); }

struct View {
  shm::ClusterGeometry g;
  void* base;
  const shm::ClusterStatus* st;
};

bool view_of(const Supervisor& sup, View* v) {
  const conf::Config& c = sup.config();
  if (!c.cluster_enabled || !sup.segments().cluster.base()) return false;
  v->g = shm::ClusterGeometry{c.swarm_workers, c.cluster_ring_slots};
  v->base = sup.segments().cluster.base();
  v->st = shm::cluster_status(v->base, v->g);
  return true;
}

// Deltas waiting in the out rings (towards NATS) and the in rings (towards the swarm workers).
void ring_depths(const View& v, uint32_t workers, uint64_t* out, uint64_t* in) {
  *out = *in = 0;
  for (uint32_t w = 0; w < workers; w++) {
    *out += shm::cluster_out_ring(v.base, v.g, w).depth();
    *in += shm::cluster_in_ring(v.base, v.g, w).depth();
  }
}

json_t* join_json(const View& v) {
  const shm::ClusterJoin& j = v.st->join;
  uint32_t st = shm::acquire_load(j.state);
  json_t* o = json_object();
  json_object_set_new(o, "state", json_string(shm::join_state_name(st)));
  json_object_set_new(o, "from_node_id", json_integer(j.from_node_id));
  json_object_set_new(o, "from_name", json_string(std::string(j.from_name, strnlen(j.from_name, sizeof j.from_name)).c_str()));
  json_object_set_new(o, "torrents", json_integer(json_int_t(j.torrents)));
  json_object_set_new(o, "peers", json_integer(json_int_t(j.peers)));
  uint64_t end = j.finished_ms ? j.finished_ms : (j.started_ms ? wall_ms() : 0);
  json_object_set_new(o, "seconds", json_real(j.started_ms ? double(end - j.started_ms) / 1000.0 : 0.0));
  json_object_set_new(o, "note", json_string(std::string(j.note, strnlen(j.note, sizeof j.note)).c_str()));
  return o;
}

// 1 once the join is over (or there was none).
bool join_over(uint32_t st) {
  return st != uint32_t(shm::JoinState::waiting) && st != uint32_t(shm::JoinState::loading);
}

}  // namespace

void prepare_cluster_join(const conf::Config& c, const SegmentSet& segs) {
  if (!c.cluster_enabled || !segs.cluster.base() || c.cluster_join_timeout == 0) return;
  shm::ClusterStatus* st = shm::cluster_status(segs.cluster.base(), shm::ClusterGeometry{c.swarm_workers, c.cluster_ring_slots});
  st->join.wanted = 1;
  st->join.state = uint32_t(shm::JoinState::waiting);
  readiness_status("joining the cluster: loading a live node's snapshot");
}

json_t* cluster_join_json(const Supervisor& sup) {
  View v;
  return view_of(sup, &v) ? join_json(v) : nullptr;
}

CommandResult show_cluster(Supervisor& sup, const std::string&) {
  CommandResult r;
  View v;
  if (!view_of(sup, &v)) return r.error = "cluster is off: set cluster.enabled in the configuration", r;
  const conf::Config& c = sup.config();
  const shm::ControlSegment* ctl = sup.control();
  uint64_t now = wall_ms();
  json_t* o = json_object();
  json_object_set_new(o, "node_id", json_integer(c.cluster_node_id));
  json_object_set_new(o, "node_name", json_string(c.cluster_node_name.c_str()));
  json_object_set_new(o, "subject", json_string((c.cluster_subject + ".deltas").c_str()));
  json_t* bus = json_object();
  json_object_set_new(bus, "state", json_string(shm::bus_state_name(shm::acquire_load(v.st->bus_state))));
  json_object_set_new(bus, "state_age_ms", json_integer(age_ms(now, shm::acquire_load(v.st->bus_since_ms))));
  json_object_set_new(bus, "server", json_string(std::string(v.st->connected_url, strnlen(v.st->connected_url, sizeof v.st->connected_url)).c_str()));
  json_object_set_new(bus, "reconnects", json_integer(json_int_t(shm::acquire_load(v.st->reconnects))));
  json_object_set_new(bus, "resyncs", json_integer(json_int_t(shm::acquire_load(v.st->resyncs))));
  json_object_set_new(bus, "last_publish_age_ms", json_integer(age_ms(now, shm::acquire_load(v.st->last_publish_ms))));
  json_object_set_new(o, "bus", bus);
  json_object_set_new(o, "join", join_json(v));
  uint64_t out = 0, in = 0;
  ring_depths(v, c.swarm_workers, &out, &in);
  json_t* d = json_object();
  json_object_set_new(d, "waiting_to_send", json_integer(json_int_t(out)));
  json_object_set_new(d, "waiting_to_apply", json_integer(json_int_t(in)));
  const shm::Counter kShown[] = {shm::Counter::cluster_deltas_queued,  shm::Counter::cluster_deltas_suppressed,
                                 shm::Counter::cluster_deltas_sent,    shm::Counter::cluster_deltas_received,
                                 shm::Counter::cluster_deltas_applied, shm::Counter::cluster_deltas_dropped,
                                 shm::Counter::cluster_bad_messages,   shm::Counter::cluster_resync_peers};
  for (shm::Counter k : kShown)
    json_object_set_new(d, shm::kCounterInfo[uint32_t(k)].name + 8, json_integer(json_int_t(shm::sum_counter(ctl, k))));
  json_object_set_new(o, "deltas", d);
  // WebTorrent offers and answers across nodes: "webtorrent": {offers_sent, ..., relay_dropped}
  const shm::Counter kWs[] = {shm::Counter::cluster_ws_offers_sent, shm::Counter::cluster_ws_answers_sent,
                              shm::Counter::cluster_ws_offers_received, shm::Counter::cluster_ws_answers_received,
                              shm::Counter::cluster_ws_relay_dropped};
  json_t* w = json_object();
  for (shm::Counter k : kWs)
    json_object_set_new(w, shm::kCounterInfo[uint32_t(k)].name + 11, json_integer(json_int_t(shm::sum_counter(ctl, k))));
  json_object_set_new(o, "webtorrent", w);
  json_t* nodes = json_array();
  uint32_t n = std::min(shm::acquire_load(v.st->node_count), shm::kClusterMaxNodes);
  for (uint32_t i = 0; i < n; i++) {
    const shm::ClusterNode& x = v.st->nodes[i];
    json_t* row = json_object();
    json_object_set_new(row, "node_id", json_integer(x.node_id));
    json_object_set_new(row, "name", json_string(std::string(x.name, strnlen(x.name, sizeof x.name)).c_str()));
    json_object_set_new(row, "last_message_age_ms", json_integer(age_ms(now, x.last_message_ms)));
    json_object_set_new(row, "lag_ms", json_integer(x.lag_ms));
    json_object_set_new(row, "messages", json_integer(json_int_t(x.messages)));
    json_object_set_new(row, "deltas", json_integer(json_int_t(x.deltas)));
    json_object_set_new(row, "messages_lost", json_integer(json_int_t(x.gaps)));
    json_array_append_new(nodes, row);
  }
  json_object_set_new(o, "nodes_seen", json_integer(n));
  json_object_set_new(o, "nodes", nodes);
  r.result = o;
  return r;
}

void render_cluster_metrics(std::string* out, const Supervisor& sup) {
  View v;
  if (!view_of(sup, &v)) return;
  auto line = [out](const std::string& s) { *out += s + "\n"; };
  uint32_t state = shm::acquire_load(v.st->bus_state);
  line("# HELP shoal_cluster_bus_up 1 while the sync worker is connected to a NATS server.");
  line("# TYPE shoal_cluster_bus_up gauge");
  line("shoal_cluster_bus_up " + std::to_string(state == uint32_t(shm::BusState::connected) ? 1 : 0));
  uint32_t js = shm::acquire_load(v.st->join.state);
  line("# HELP shoal_cluster_ready 0 while a node with new swarms is loading another node's snapshot (not ready), 1 after.");
  line("# TYPE shoal_cluster_ready gauge");
  line("shoal_cluster_ready " + std::to_string(join_over(js) ? 1 : 0));
  line("# HELP shoal_cluster_join_state How this node joined: 0 none (kept its swarms), 1 waiting, 2 loading, 3 joined, 4 alone, 5 failed.");
  line("# TYPE shoal_cluster_join_state gauge");
  line("shoal_cluster_join_state " + std::to_string(js));
  line("# HELP shoal_cluster_join_peers Peers received in the snapshot this node joined from.");
  line("# TYPE shoal_cluster_join_peers gauge");
  line("shoal_cluster_join_peers " + std::to_string(v.st->join.peers));
  uint64_t o = 0, i = 0;
  ring_depths(v, sup.config().swarm_workers, &o, &i);
  line("# HELP shoal_cluster_deltas_waiting Peer changes in the rings: to send (direction=\"out\") or to apply (\"in\").");
  line("# TYPE shoal_cluster_deltas_waiting gauge");
  line("shoal_cluster_deltas_waiting{direction=\"out\"} " + std::to_string(o));
  line("shoal_cluster_deltas_waiting{direction=\"in\"} " + std::to_string(i));
  uint32_t n = std::min(shm::acquire_load(v.st->node_count), shm::kClusterMaxNodes);
  line("# HELP shoal_cluster_nodes_seen Other nodes this node has received messages from.");
  line("# TYPE shoal_cluster_nodes_seen gauge");
  line("shoal_cluster_nodes_seen " + std::to_string(n));
  line("# HELP shoal_cluster_lag_seconds Replication lag: arrival minus send time of a node's last message (wall clocks).");
  line("# TYPE shoal_cluster_lag_seconds gauge");
  for (uint32_t k = 0; k < n; k++) {
    const shm::ClusterNode& x = v.st->nodes[k];
    char buf[64];
    snprintf(buf, sizeof buf, "%.3f", double(x.lag_ms) / 1000.0);
    line("shoal_cluster_lag_seconds{node=\"" + std::to_string(x.node_id) + "\"} " + buf);
  }
  uint64_t now = wall_ms();
  line("# HELP shoal_cluster_last_message_age_seconds Seconds since a node's last message arrived.");
  line("# TYPE shoal_cluster_last_message_age_seconds gauge");
  for (uint32_t k = 0; k < n; k++) {
    const shm::ClusterNode& x = v.st->nodes[k];
    line("shoal_cluster_last_message_age_seconds{node=\"" + std::to_string(x.node_id) + "\"} " +
         std::to_string(age_ms(now, x.last_message_ms) / 1000));
  }
}

}  // namespace shoal::supervisor
