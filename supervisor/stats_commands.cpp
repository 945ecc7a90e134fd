// supervisor/stats_commands.cpp — see stats_commands.hpp. Runs in the supervisor. Handlers read
// the control segment (slots, counters, gauges) and ring heads/tails with atomic loads only;
// "show torrent" goes through a swarm worker's mailbox because the supervisor never reads
// partition data.
#include "supervisor/mailbox.hpp"
#include "supervisor/stats_commands.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "shm/clock.hpp"
#include "shm/rings_layout.hpp"
#include "supervisor/conn_id_keys.hpp"
#include "supervisor/snapshot_file.hpp"
#include "supervisor/stats_cluster.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/torrent_file.hpp"
#include "supervisor/version.hpp"
#include "worker/worker_context.hpp"

namespace shoal::supervisor {
namespace {

using shm::load_u32;

CommandResult ok(json_t* obj) {
  CommandResult r;
  r.result = obj;
  return r;
}

CommandResult fail(const std::string& why) {
  CommandResult r;
  r.error = why;
  return r;
}

// show info's connection_ids: where the keys in force come from, their fingerprints (compare
// them across the nodes of a cluster), and the SIGHUP re-reads of the key file.
json_t* connection_ids_json(Supervisor& sup) {
  const conf::Config& c = sup.config();
  const shm::ConnIdKeys& k = sup.control()->conn_id_keys;
  json_t* o = json_object();
  json_object_set_new(o, "key_file", json_string(c.udp_connection_id_key_file.c_str()));
  json_object_set_new(o, "keys", json_integer(load_u32(k.count)));
  json_object_set_new(o, "fingerprints", json_string(conn_id_key_fingerprints(sup.control()).c_str()));
  json_object_set_new(o, "clock", json_string(c.udp_connection_id_key_file.empty() ? "monotonic" : "wall"));
  json_object_set_new(o, "skew_seconds", json_integer(c.udp_connection_id_key_file.empty() ? 0 : c.udp_connection_id_skew));
  json_object_set_new(o, "reloads", json_integer(load_u32(k.reloads)));
  json_object_set_new(o, "reload_errors", json_integer(load_u32(k.reload_errors)));
  return o;
}

CommandResult show_info(Supervisor& sup, const std::string&) {
  const conf::Config& c = sup.config();
  json_t* o = json_object();
  json_object_set_new(o, "version", json_string(kShoalVersion));
  json_object_set_new(o, "layout_version", json_integer(shm::kLayoutVersion));
  json_object_set_new(o, "pid", json_integer(sup.pid()));
  json_object_set_new(o, "uptime_seconds", json_integer(int64_t(time(nullptr)) - int64_t(sup.start_unix())));
  json_object_set_new(o, "start_time_unix", json_integer(int64_t(sup.start_unix())));
  json_object_set_new(o, "config", json_string(c.source.c_str()));
  json_object_set_new(o, "shm_name", json_string(c.shm_name.c_str()));
  json_object_set_new(o, "socket_workers", json_integer(c.socket_workers));
  json_object_set_new(o, "swarm_workers", json_integer(c.swarm_workers));
  json_t* pids = json_array();
  for (const Slot& s : sup.slots()) json_array_append_new(pids, json_integer(s.pid));
  json_object_set_new(o, "worker_pids", pids);
  json_object_set_new(o, "snapshot", snapshot_info_json(sup));
  if (json_t* j = cluster_join_json(sup)) json_object_set_new(o, "cluster_join", j);
  json_object_set_new(o, "connection_ids", connection_ids_json(sup));
  return ok(o);
}

// Requests waiting in the rings into (socket worker) or out of (swarm worker) a slot.
uint64_t queue_depth(Supervisor& sup, const Slot& s) {
  const conf::Config& c = sup.config();
  shm::RingsGeometry g{c.socket_workers, c.swarm_workers, c.ring_slots};
  uint64_t d = 0;
  if (s.role == shm::WorkerRole::sync) return 0;  // its rings: show cluster
  for (uint32_t i = 0; i < (s.role == shm::WorkerRole::socket ? c.swarm_workers : c.socket_workers); i++) {
    uint32_t sock = s.role == shm::WorkerRole::socket ? s.index : i;
    uint32_t swarm = s.role == shm::WorkerRole::socket ? i : s.index;
    for (uint32_t k = 0; k < shm::RingsGeometry::kSets; k++) {
      if (s.role == shm::WorkerRole::socket)
        d += shm::response_ring(sup.rings_base(), g, sock, swarm, k).depth();
      else
        d += shm::request_ring(sup.rings_base(), g, sock, swarm, k).depth();
    }
  }
  return d;
}

const char* state_name(SlotState st) {
  switch (st) {
    case SlotState::running: return "running";
    case SlotState::backoff: return "backoff";
    case SlotState::disabled: return "disabled";
    default: return "empty";
  }
}

CommandResult show_workers(Supervisor& sup, const std::string&) {
  json_t* arr = json_array();
  uint32_t now = shm::seconds_since(sup.control()->header.clock_base_ns);
  for (const Slot& s : sup.slots()) {
    const shm::WorkerSlot& ws = sup.control()->slots[slot_number(s)];
    uint32_t tick = load_u32(ws.last_tick);
    json_t* w = json_object();
    json_object_set_new(w, "slot", json_integer(slot_number(s)));
    json_object_set_new(w, "role", json_string(role_name(s.role)));
    json_object_set_new(w, "index", json_integer(s.index));
    json_object_set_new(w, "pid", json_integer(s.pid));
    json_object_set_new(w, "state", json_string(state_name(s.state)));
    json_object_set_new(w, "ready", json_boolean(s.pid != 0 && load_u32(ws.ready) == s.generation));
    json_object_set_new(w, "generation", json_integer(s.generation));
    json_object_set_new(w, "restarts", json_integer(s.restarts));
    json_object_set_new(w, "heartbeat_age_seconds", json_integer(s.pid ? int64_t(now) - int64_t(tick) : -1));
    json_object_set_new(w, "queue_depth", json_integer(int64_t(queue_depth(sup, s))));
    // The previous process of a rolling restart while it still runs (socket: drains its ring
    // set; swarm: serves until it releases its partition, then exits).
    if (s.draining_pid != 0) json_object_set_new(w, "draining_pid", json_integer(s.draining_pid));
    if (s.role == shm::WorkerRole::socket) {  // which ring set each live process of the slot owns
      json_object_set_new(w, "ring_set", json_integer(s.ring_set));
      if (s.draining_pid != 0) json_object_set_new(w, "draining_ring_set", json_integer(s.draining_set));
    }
    json_array_append_new(arr, w);
  }
  json_t* o = json_object();
  json_object_set_new(o, "workers", arr);
  return ok(o);
}

CommandResult show_stats(Supervisor& sup, const std::string&) {
  const shm::ControlSegment* c = sup.control();
  json_t* o = json_object();
  json_t* counters = json_object();
  for (uint32_t k = 0; k < shm::kCounterCount; k++)
    json_object_set_new(counters, shm::kCounterInfo[k].name, json_integer(json_int_t(shm::sum_counter(c, shm::Counter(k)))));
  shm::GaugeTotals t = shm::sum_gauges(c, sup.config().swarm_workers);
  json_object_set_new(o, "torrents", json_integer(json_int_t(t.torrents)));
  json_object_set_new(o, "seeders", json_integer(json_int_t(t.seeders)));
  json_object_set_new(o, "leechers", json_integer(json_int_t(t.leechers)));
  json_object_set_new(o, "peers_ipv4", json_integer(json_int_t(t.peers_v4)));
  json_object_set_new(o, "peers_ipv6", json_integer(json_int_t(t.peers_v6)));
  json_object_set_new(o, "peers_webtorrent", json_integer(json_int_t(t.peers_ws)));
  json_object_set_new(o, "completed", json_integer(json_int_t(t.completed)));
  json_object_set_new(o, "counters", counters);
  return ok(o);
}

json_t* torrent_json(const shm::TorrentQuery& q, const std::string& hex) {
  json_t* o = json_object();
  json_object_set_new(o, "info_hash", json_string(hex.c_str()));
  json_object_set_new(o, "found", json_boolean(q.found));
  json_object_set_new(o, "seeders", json_integer(q.seeders));
  json_object_set_new(o, "leechers", json_integer(q.leechers));
  json_object_set_new(o, "completed", json_integer(q.completed));
  json_object_set_new(o, "peer_total", json_integer(q.peer_total));
  json_t* wt = json_object();  // WebTorrent peers of the info_hash: a family of their own
  json_object_set_new(wt, "seeders", json_integer(q.ws_seeders));
  json_object_set_new(wt, "leechers", json_integer(q.ws_leechers));
  json_object_set_new(wt, "completed", json_integer(q.ws_completed));
  json_object_set_new(o, "webtorrent", wt);
  json_t* peers = json_array();
  for (uint32_t i = 0; i < std::min(q.peer_total, shm::kQueryMaxPeers); i++) {
    const shm::QueryPeer& p = q.peers[i];
    char host[INET6_ADDRSTRLEN] = "?";
    inet_ntop(p.family == 4 ? AF_INET : AF_INET6, p.addr, host, sizeof host);
    json_t* pj = json_object();
    json_object_set_new(pj, "address", json_string(host));
    json_object_set_new(pj, "port", json_integer(ntohs(p.port_be)));
    json_object_set_new(pj, "role", json_string(p.seeder ? "seeder" : "leecher"));
    json_array_append_new(peers, pj);
  }
  json_object_set_new(o, "peers", peers);
  return o;
}

CommandResult show_torrent(Supervisor& sup, const std::string& arg) {
  uint8_t hash[20];
  if (!parse_info_hash_hex(arg, hash)) return fail("show torrent needs a 40-character hex info_hash");
  uint32_t part = worker::partition_of(hash, sup.config().swarm_workers, sup.control()->control.partition_key);
  shm::TorrentQuery& q = sup.control()->queries[part];
  auto ticket = std::make_shared<Ticket>(part, mailbox_queue(part).next_ticket++);
  CommandResult r;
  std::string hex = arg;
  for (char& ch : hex) ch = char(tolower(ch));
  uint32_t seq = 0;  // request_seq of our query once sent
  Supervisor* s = &sup;
  std::array<uint8_t, 20> h;
  std::memcpy(h.data(), hash, 20);
  r.poll = [&q, seq, hex, ticket, s, h](CommandResult* out) mutable {
    out->waiting_turn = mailbox_queue(ticket->partition).serving != ticket->number;
    if (out->waiting_turn) return false;
    if (seq == 0) {
      seq = load_u32(q.request_seq) + 1;
      if (seq == 0) seq = 1;
      std::memcpy(q.info_hash, h.data(), 20);
      q.op = uint8_t(shm::QueryOp::show);
      shm::store_u32(q.request_seq, seq);
      s->wake_swarm_worker(ticket->partition);
      return false;
    }
    if (load_u32(q.response_seq) != seq) return false;
    out->result = torrent_json(q, hex);
    return true;
  };
  r.poll(&r);  // an idle mailbox: send at once
  return r;
}

CommandResult reload(Supervisor& sup, const std::string&) {
  std::string msg;
  bool okay = sup.reload_access_list(&msg);
  if (!okay) return fail(msg);
  json_t* o = json_object();
  json_object_set_new(o, "reload", json_string(msg.c_str()));
  return ok(o);
}

CommandResult restart_workers(Supervisor& sup, const std::string&) {
  std::string msg;
  if (!sup.start_rolling_restart(&msg)) return fail(msg);
  json_t* o = json_object();
  json_object_set_new(o, "restart", json_string(msg.c_str()));
  return ok(o);
}

CommandResult help(Supervisor&, const std::string&) {
  json_t* o = json_object();
  for (const Command& c : stats_commands()) json_object_set_new(o, c.usage, json_string(c.help));
  return ok(o);
}

}  // namespace

const std::vector<Command>& stats_commands() {
  static const std::vector<Command> table = {
      {"show info", "show info [json]", "version, uptime, pids, config path", false, &show_info},
      {"show workers", "show workers [json]", "slot, role, pid, state, restarts, heartbeat age, queue depth", false, &show_workers},
      {"show stats", "show stats [json]", "counters summed over workers, torrents, seeders, leechers, peers by family, completed", false, &show_stats},
      {"show torrent", "show torrent <hex info_hash> [json]", "counts and up to 100 peers of one torrent", true, &show_torrent},
      {"reload", "reload", "re-read the access list (as SIGUSR1 does)", false, &reload},
      {"restart workers", "restart workers", "rolling restart of every worker, one slot at a time", false, &restart_workers},
      {"transfer list", "transfer list [json]", "registered deploy transfers: info_hash, name, length", false, &transfer_list},
      {"transfer show", "transfer show <name|hex info_hash> [json]", "one transfer and its files", true, &transfer_show},
      {"transfer add", "transfer add <path of a .torrent>", "register a deploy transfer (kept in transfers.state_dir)", true, &transfer_add},
      {"transfer remove", "transfer remove <name|hex info_hash>", "unregister a transfer, delete its .torrent and drop its swarm", true, &transfer_remove},
      {"snapshot save", "snapshot save <absolute path>",
       "write every swarm (BitTorrent peers) to a snapshot file (atomically: a temporary file renamed); "
       "tracker.snapshot_load reads it at start", true, &snapshot_save},
      {"show cluster", "show cluster [json]",
       "this node, the NATS bus (state, server, reconnects), replication counters and the other nodes seen "
       "(last message age, lag)", false, &show_cluster},
      {"help", "help", "this list", false, &help},
  };
  return table;
}

CommandResult run_command(Supervisor& sup, const std::string& line, bool* json) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) i++;
    size_t j = i;
    while (j < line.size() && !isspace(static_cast<unsigned char>(line[j]))) j++;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  *json = !words.empty() && words.back() == "json";
  if (*json) words.pop_back();
  for (const Command& c : stats_commands()) {
    std::string w = c.words;
    size_t n = w.find(' ') == std::string::npos ? 1 : 2;
    if (words.size() != n + (c.takes_arg ? 1 : 0)) {
      if (words.size() >= n && (n == 1 ? words[0] == w : words[0] + " " + words[1] == w))
        return fail(std::string("usage: ") + c.usage);
      continue;
    }
    std::string got = n == 1 ? words[0] : words[0] + " " + words[1];
    if (got == w) return c.run(sup, c.takes_arg ? words[n] : std::string());
  }
  return fail(words.empty() ? "empty command; try help" : "unknown command '" + line + "'; try help");
}

namespace {
void render_value(std::string* out, const std::string& key, const json_t* v) {
  if (json_is_object(v)) {
    const char* k;
    json_t* sub;
    json_object_foreach(const_cast<json_t*>(v), k, sub) render_value(out, key.empty() ? k : key + "." + k, sub);
    return;
  }
  if (json_is_array(v)) {
    size_t idx;
    json_t* el;
    json_array_foreach(v, idx, el) {
      if (!json_is_object(el)) {
        render_value(out, key + "[" + std::to_string(idx) + "]", el);
        continue;
      }
      std::string line = key + ":";
      const char* k;
      json_t* sub;
      json_object_foreach(el, k, sub) {
        char* s = json_dumps(sub, JSON_ENCODE_ANY);
        std::string val = s ? s : "";
        free(s);
        if (json_is_string(sub)) val = json_string_value(sub);
        line += " " + std::string(k) + "=" + val;
      }
      *out += line + "\n";
    }
    return;
  }
  std::string val;
  if (json_is_string(v)) {
    val = json_string_value(v);
  } else {
    char* s = json_dumps(v, JSON_ENCODE_ANY);
    val = s ? s : "";
    free(s);
  }
  *out += key + ": " + val + "\n";
}
}  // namespace

std::string render_text(const json_t* obj) {
  std::string out;
  render_value(&out, "", obj);
  return out;
}

}  // namespace shoal::supervisor
