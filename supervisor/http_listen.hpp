// supervisor/http_listen.hpp — an evhttp server bound to one configured "host:port" address
// (IPv4 or "[v6]:port"), shared by the supervisor's HTTP endpoints (metrics, admin API).
#pragma once
#include <event2/event.h>
#include <event2/http.h>

#include <cstdint>
#include <string>

namespace shoal::supervisor {

// evhttp_new on `base`, bound to `listen` (numeric host). *port (optional) receives the port
// bound, in host order (useful with port 0). Throws std::runtime_error("<setting> <listen>:
// <reason>") when the address does not parse or cannot be bound; frees what it made.
evhttp* http_listen(event_base* base, const std::string& listen, const char* setting, uint16_t* port = nullptr);

}  // namespace shoal::supervisor
