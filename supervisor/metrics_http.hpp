// supervisor/metrics_http.hpp — the optional Prometheus endpoint (GET /metrics, text exposition
// format 0.0.4), served by libevent's evhttp on the supervisor's loop. Values come from the
// control segment's per-worker counters and partition gauges and the supervisor's slot table;
// nothing is computed on the hot path. Labels are bounded (protocol, kind, family, role, slot):
// never per torrent or per peer (docs/hardening.md A17).
#pragma once
#include <event2/event.h>
#include <event2/http.h>

#include <string>

namespace shoal::supervisor {

class Supervisor;

class MetricsHttp {
 public:
  // Binds `listen` ("127.0.0.1:9469"). Throws std::runtime_error naming the address.
  MetricsHttp(event_base* base, Supervisor* sup, const std::string& listen);
  ~MetricsHttp();

  // The exposition text (also used by tests).
  static std::string render(const Supervisor& sup);

 private:
  static void on_request(evhttp_request* req, void* arg);
  Supervisor* sup_;
  evhttp* http_ = nullptr;
};

}  // namespace shoal::supervisor
