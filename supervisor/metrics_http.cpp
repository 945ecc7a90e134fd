// supervisor/metrics_http.cpp — see metrics_http.hpp. Runs in the supervisor.
#include "supervisor/metrics_http.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "shm/clock.hpp"
#include "shm/rings_layout.hpp"
#include "supervisor/http_listen.hpp"
#include "supervisor/stats_cluster.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/transfer_progress.hpp"
#include "supervisor/transfer_store.hpp"
#include "supervisor/version.hpp"

namespace shoal::supervisor {
namespace {

constexpr ev_ssize_t kMaxHeaderBytes = 8192;  // request line + headers
constexpr ev_ssize_t kMaxBodyBytes = 1024;    // GET has none
constexpr timeval kSweepEvery{0, 250000};     // deadline checks

uint64_t now_ms() { return shm::monotonic_ns() / 1000000; }

using shm::sum_counter;

// Conventional aggregate series built from individual counters: {counter, metric, labels}.
struct Series {
  shm::Counter counter;
  const char* labels;
};

const Series kRequests[] = {
    {shm::Counter::udp_connect, "protocol=\"udp\",kind=\"connect\""},
    {shm::Counter::udp_announce, "protocol=\"udp\",kind=\"announce\""},
    {shm::Counter::udp_scrape, "protocol=\"udp\",kind=\"scrape\""},
    {shm::Counter::http_announce, "protocol=\"http\",kind=\"announce\""},
    {shm::Counter::http_scrape, "protocol=\"http\",kind=\"scrape\""},
    {shm::Counter::ws_announce, "protocol=\"ws\",kind=\"announce\""},
    {shm::Counter::ws_scrape, "protocol=\"ws\",kind=\"scrape\""},
};

const Series kErrors[] = {
    {shm::Counter::udp_bad_connection_id, "cause=\"bad_connection_id\""},
    {shm::Counter::udp_malformed, "cause=\"malformed\""},
    {shm::Counter::udp_bad_request, "cause=\"bad_request\""},
    {shm::Counter::udp_source_port_zero, "cause=\"source_port_zero\""},
    {shm::Counter::udp_send_errors, "cause=\"send_error\""},
    {shm::Counter::ring_full_drops, "cause=\"ring_full\""},
    {shm::Counter::announce_tracker_full, "cause=\"tracker_full\""},
    {shm::Counter::scrape_timeouts, "cause=\"scrape_timeout\""},
    {shm::Counter::http_failure, "cause=\"http_failure\""},
    {shm::Counter::http_not_found, "cause=\"http_not_found\""},
    {shm::Counter::http_timeouts, "cause=\"http_timeout\""},
    {shm::Counter::http_connections_refused, "cause=\"http_connection_limit\""},
    {shm::Counter::tls_handshake_failures, "cause=\"tls_handshake\""},
    {shm::Counter::access_denied, "cause=\"access_denied\""},
    {shm::Counter::udp_rate_limited, "cause=\"rate_limited\""},
    {shm::Counter::ws_failure, "cause=\"ws_failure\""},
    {shm::Counter::ws_connections_refused, "cause=\"ws_connection_limit\""},
    {shm::Counter::ws_handshake_failures, "cause=\"ws_handshake\""},
    {shm::Counter::ws_answers_dropped, "cause=\"ws_answer_dropped\""},
    {shm::Counter::ws_relay_dropped, "cause=\"ws_relay_dropped\""},
    {shm::Counter::http_accept_rate_limited, "cause=\"accept_rate_limited\""},
};

void header(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string* out, const std::string& name, const std::string& labels, uint64_t v) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " " + std::to_string(v) + "\n";
}

void render_counters(std::string* out, const shm::ControlSegment* c) {
  header(out, "shoal_requests_total", "counter", "Tracker requests accepted, by protocol and kind.");
  for (const Series& s : kRequests) sample(out, "shoal_requests_total", s.labels, sum_counter(c, s.counter));
  header(out, "shoal_errors_total", "counter", "Requests refused, dropped or failed, by cause.");
  for (const Series& s : kErrors) sample(out, "shoal_errors_total", s.labels, sum_counter(c, s.counter));
  uint64_t ws_open = sum_counter(c, shm::Counter::ws_connections) - sum_counter(c, shm::Counter::ws_connections_closed);
  header(out, "shoal_ws_connections", "gauge", "WebSocket connections open (ws and wss), every socket worker.");
  sample(out, "shoal_ws_connections", "", ws_open);
  // Every worker counter also on its own, named after the counter (see shoalctl(8)).
  for (uint32_t k = 0; k < shm::kCounterCount; k++) {
    std::string name = std::string("shoal_") + shm::kCounterInfo[k].name + "_total";
    header(out, name.c_str(), "counter", shm::kCounterInfo[k].help);
    sample(out, name, "", sum_counter(c, shm::Counter(k)));
  }
}

void render_gauges(std::string* out, const Supervisor& sup) {
  const shm::ControlSegment* c = sup.control();
  shm::GaugeTotals t = shm::sum_gauges(c, sup.config().swarm_workers);
  uint64_t torrents = t.torrents, seeders = t.seeders, leechers = t.leechers, v6 = t.peers_v6;
  uint64_t completed = t.completed, seeders6 = t.seeders_v6;
  header(out, "shoal_torrents", "gauge", "Torrents stored (empty ones stay until the expiry sweep removes them).");
  sample(out, "shoal_torrents", "", torrents);
  // seeders and leechers are totals over every family; seeders_v6 and seeders_ws split them.
  uint64_t seeders_ws = t.seeders_ws, leechers_ws = t.peers_ws - t.seeders_ws;
  uint64_t seeders4 = seeders - seeders6 - seeders_ws, leechers6 = v6 - seeders6;
  uint64_t leechers4 = leechers - leechers6 - leechers_ws;
  header(out, "shoal_peers", "gauge", "Peers stored, by address family and role.");
  sample(out, "shoal_peers", "family=\"ipv4\",role=\"seeder\"", seeders4);
  sample(out, "shoal_peers", "family=\"ipv4\",role=\"leecher\"", leechers4);
  sample(out, "shoal_peers", "family=\"ipv6\",role=\"seeder\"", seeders6);
  sample(out, "shoal_peers", "family=\"ipv6\",role=\"leecher\"", leechers6);
  sample(out, "shoal_peers", "family=\"webtorrent\",role=\"seeder\"", seeders_ws);
  sample(out, "shoal_peers", "family=\"webtorrent\",role=\"leecher\"", leechers_ws);
  header(out, "shoal_completed", "gauge", "Sum of the completed (downloaded) counts of stored torrents.");
  sample(out, "shoal_completed", "", completed);
}

void render_workers(std::string* out, const Supervisor& sup) {
  const conf::Config& cfg = sup.config();
  uint64_t restarts[3] = {0, 0, 0};
  header(out, "shoal_worker_up", "gauge", "1 when the worker in the slot runs and reported ready.");
  for (const Slot& s : sup.slots()) {
    const shm::WorkerSlot& ws = sup.control()->slots[slot_number(s)];
    bool up = s.pid != 0 && shm::load_u32(ws.ready) == s.generation;
    std::string role = role_name(s.role);
    sample(out, "shoal_worker_up", "role=\"" + role + "\",slot=\"" + std::to_string(s.index) + "\"", up);
    restarts[s.role == shm::WorkerRole::socket ? 0 : s.role == shm::WorkerRole::swarm ? 1 : 2] += s.restarts;
  }
  header(out, "shoal_worker_disabled", "gauge", "1 when the slot's worker is not restarted any more (crash loop).");
  for (const Slot& s : sup.slots()) {
    std::string role = role_name(s.role);
    sample(out, "shoal_worker_disabled", "role=\"" + role + "\",slot=\"" + std::to_string(s.index) + "\"",
           s.state == SlotState::disabled);
  }
  header(out, "shoal_worker_restarts_total", "counter", "Worker restarts after a crash, by role.");
  sample(out, "shoal_worker_restarts_total", "role=\"socket\"", restarts[0]);
  sample(out, "shoal_worker_restarts_total", "role=\"swarm\"", restarts[1]);
  if (cfg.cluster_enabled) sample(out, "shoal_worker_restarts_total", "role=\"sync\"", restarts[2]);
  shm::RingsGeometry g{cfg.socket_workers, cfg.swarm_workers, cfg.ring_slots};
  header(out, "shoal_queue_depth", "gauge", "Requests waiting in the ring towards each swarm worker.");
  for (uint32_t w = 0; w < cfg.swarm_workers; w++) {
    uint64_t d = 0;
    for (uint32_t s = 0; s < cfg.socket_workers; s++)
      for (uint32_t k = 0; k < shm::RingsGeometry::kSets; k++) d += shm::request_ring(sup.rings_base(), g, s, w, k).depth();
    sample(out, "shoal_queue_depth", "slot=\"" + std::to_string(w) + "\"", d);
  }
}

// A label value in the text format: backslash, double quote and newline escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"') out += '\\', out += ch;
    else if (ch == '\n') out += "\\n";
    else out += ch;
  }
  return out;
}

// Deploy progress of the registered transfers (issue 11): per transfer and location, from the
// progress poller's last snapshot (supervisor/transfer_progress.hpp).
void render_transfers(std::string* out, const Supervisor& sup) {
  if (!sup.transfers() || !sup.progress()) return;
  std::vector<std::pair<const Transfer*, const TransferProgress*>> rows;
  for (const Transfer* t : sup.transfers()->list())
    if (const TransferProgress* p = sup.progress()->get(t->meta.info_hash)) rows.emplace_back(t, p);
  auto labels = [](const Transfer* t) {
    return "info_hash=\"" + info_hash_hex(t->meta.info_hash) + "\",name=\"" + label_value(t->meta.name) + "\"";
  };
  header(out, "shoal_transfer_complete", "gauge", "1 when every peer of a registered transfer seeds and one completed.");
  for (auto& [t, p] : rows) sample(out, "shoal_transfer_complete", labels(t), p->complete);
  header(out, "shoal_transfer_progress_permille", "gauge",
         "How much of a registered transfer its peers have, averaged over those that sent left (permille).");
  for (auto& [t, p] : rows)
    if (p->progress >= 0) sample(out, "shoal_transfer_progress_permille", labels(t), uint64_t(p->progress * 10 + 0.5));
  struct Metric {
    const char* name;
    const char* help;
    uint32_t LocationProgress::*field;
  };
  const Metric per_location[] = {
      {"shoal_transfer_location_hosts", "Hosts of a registered transfer, per location.", &LocationProgress::hosts},
      {"shoal_transfer_location_seeders", "Seeders of a registered transfer, per location.", &LocationProgress::seeders},
      {"shoal_transfer_location_representatives", "Representatives (policy tiered) of a registered transfer, per location.",
       &LocationProgress::representatives},
  };
  for (const Metric& m : per_location) {
    header(out, m.name, "gauge", m.help);
    for (auto& [t, p] : rows)
      for (const LocationProgress& l : p->locations)
        sample(out, m.name, labels(t) + ",location=\"" + label_value(l.name) + "\"", l.*m.field);
  }
}

}  // namespace

std::string MetricsHttp::render(const Supervisor& sup) {
  std::string out;
  header(&out, "shoal_build_info", "gauge", "Version of shoald and of its shared-memory layout.");
  sample(&out, "shoal_build_info", std::string("version=\"") + kShoalVersion + "\",layout=\"" + std::to_string(shm::kLayoutVersion) + "\"", 1);
  header(&out, "process_start_time_seconds", "gauge", "Start time of the supervisor since the Unix epoch, in seconds.");
  sample(&out, "process_start_time_seconds", "", sup.start_unix());
  render_counters(&out, sup.control());
  render_gauges(&out, sup);
  render_workers(&out, sup);
  render_transfers(&out, sup);
  render_cluster_metrics(&out, sup);
  return out;
}

MetricsHttp::MetricsHttp(event_base* base, Supervisor* sup, const std::string& listen) : sup_(sup) {
  http_ = http_listen(base, listen, "metrics.listen");
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET);
  // libevent's defaults accept unbounded headers and bodies: one 64 MiB header line grew the
  // supervisor by 66 MB (issue 12). A scrape request is a few hundred bytes.
  evhttp_set_max_headers_size(http_, kMaxHeaderBytes);
  evhttp_set_max_body_size(http_, kMaxBodyBytes);
  evhttp_set_timeout(http_, 10);  // a stalled read or write; the request deadline is shorter
  evhttp_set_gencb(http_, &MetricsHttp::on_request, this);
  // evhttp's timeout restarts with every byte and it has no connection limit: a client trickling
  // bytes held a connection forever. Track the connections to bound both.
  evhttp_set_bevcb(http_, &MetricsHttp::on_bev, this);
  fresh_ev_ = event_new(base, -1, 0, &MetricsHttp::on_fresh, this);
  sweep_ev_ = event_new(base, -1, EV_PERSIST, &MetricsHttp::on_sweep, this);
  if (!fresh_ev_ || !sweep_ev_) throw std::runtime_error("metrics: event_new failed");
  evtimer_add(sweep_ev_, &kSweepEvery);
}

MetricsHttp::~MetricsHttp() {
  if (http_) evhttp_free(http_);  // frees the connections; their close callbacks run now
  if (fresh_ev_) event_free(fresh_ev_);
  if (sweep_ev_) event_free(sweep_ev_);
}

// evhttp tells nobody about a new connection; it asks us for its bufferevent. The connection is
// adopted by an event activated now, which runs before any of the connection's I/O is polled.
bufferevent* MetricsHttp::on_bev(event_base* base, void* arg) {
  auto* self = static_cast<MetricsHttp*>(arg);
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (bev) {
    self->fresh_.push_back(bev);
    event_active(self->fresh_ev_, EV_TIMEOUT, 0);
  }
  return bev;
}

void MetricsHttp::on_fresh(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<MetricsHttp*>(arg);
  std::vector<bufferevent*> fresh;
  fresh.swap(self->fresh_);
  for (bufferevent* bev : fresh) self->adopt(bev);
}

// evhttp set the bufferevent's callback argument to its connection.
void MetricsHttp::adopt(bufferevent* bev) {
  void* arg = nullptr;
  bufferevent_getcb(bev, nullptr, nullptr, nullptr, &arg);
  auto* evcon = static_cast<evhttp_connection*>(arg);
  if (!evcon || evhttp_connection_get_bufferevent(evcon) != bev) return;  // libevent failed it
  if (conns_.size() >= kMaxConnections) close_conn(0);  // the oldest makes room
  conns_.push_back({evcon, now_ms() + kRequestDeadlineMs});
  evhttp_connection_set_closecb(evcon, &MetricsHttp::on_close, this);
}

// Forgets connection i first (so its close callback finds nothing), then closes it.
void MetricsHttp::close_conn(size_t i) {
  evhttp_connection* evcon = conns_[i].evcon;
  conns_.erase(conns_.begin() + ptrdiff_t(i));
  evhttp_connection_free(evcon);
}

void MetricsHttp::on_close(evhttp_connection* evcon, void* arg) {
  auto* self = static_cast<MetricsHttp*>(arg);
  for (size_t i = 0; i < self->conns_.size(); i++)
    if (self->conns_[i].evcon == evcon) {
      self->conns_.erase(self->conns_.begin() + ptrdiff_t(i));
      return;
    }
}

void MetricsHttp::on_sweep(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<MetricsHttp*>(arg);
  uint64_t now = now_ms();
  for (size_t i = 0; i < self->conns_.size();)
    if (self->conns_[i].deadline_ms <= now)
      self->close_conn(i);
    else
      i++;
}

void MetricsHttp::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<MetricsHttp*>(arg);
  // A complete request: the connection has a new deadline for its next one (keep-alive).
  evhttp_connection* evcon = evhttp_request_get_connection(req);
  for (Conn& c : self->conns_)
    if (c.evcon == evcon) c.deadline_ms = now_ms() + kRequestDeadlineMs;
  const char* uri = evhttp_request_get_uri(req);
  if (!uri || (strcmp(uri, "/metrics") != 0 && strncmp(uri, "/metrics?", 9) != 0)) {
    evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
    return;
  }
  std::string body = render(*self->sup_);
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, body.data(), body.size());
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
  evhttp_send_reply(req, HTTP_OK, "OK", buf);
  evbuffer_free(buf);
}

}  // namespace shoal::supervisor
