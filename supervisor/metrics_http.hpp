// supervisor/metrics_http.hpp — the optional Prometheus endpoint (GET /metrics, text exposition
// format 0.0.4), served by libevent's evhttp on the supervisor's loop. Values come from the
// control segment's per-worker counters and partition gauges and the supervisor's slot table;
// nothing is computed on the hot path. Labels are bounded (protocol, kind, family, role, slot):
// never per torrent or per peer (docs/hardening.md A17). Requests are bounded in size (A11),
// connections in number and time (A12): at most kMaxConnections open (a new one closes the
// oldest), each closed when it has not sent a complete request within kRequestDeadlineMs of
// connecting or of its previous request, however slowly it trickles bytes.
#pragma once
#include <event2/event.h>
#include <event2/http.h>

#include <cstdint>
#include <string>
#include <vector>

namespace shoal::supervisor {

class Supervisor;

class MetricsHttp {
 public:
  static constexpr size_t kMaxConnections = 16;
  static constexpr uint64_t kRequestDeadlineMs = 5000;

  // Binds `listen` ("127.0.0.1:9469"). Throws std::runtime_error naming the address.
  MetricsHttp(event_base* base, Supervisor* sup, const std::string& listen);
  ~MetricsHttp();

  // The exposition text (also used by tests).
  static std::string render(const Supervisor& sup);

 private:
  struct Conn {
    evhttp_connection* evcon;
    uint64_t deadline_ms;  // monotonic; closed then unless a complete request came
  };
  static void on_request(evhttp_request* req, void* arg);
  static bufferevent* on_bev(event_base* base, void* arg);
  static void on_fresh(evutil_socket_t, short, void* arg);
  static void on_sweep(evutil_socket_t, short, void* arg);
  static void on_close(evhttp_connection* evcon, void* arg);
  void adopt(bufferevent* bev);
  void close_conn(size_t i);

  Supervisor* sup_;
  evhttp* http_ = nullptr;
  event* fresh_ev_ = nullptr;
  event* sweep_ev_ = nullptr;
  std::vector<bufferevent*> fresh_;  // accepted, connection not adopted yet
  std::vector<Conn> conns_;          // open connections, oldest first
};

}  // namespace shoal::supervisor
