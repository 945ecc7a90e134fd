// supervisor/http_listen.cpp — see http_listen.hpp. Runs in the supervisor.
#include "supervisor/http_listen.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>

#include "conf/config.hpp"

namespace shoal::supervisor {

evhttp* http_listen(event_base* base, const std::string& listen, const char* setting, uint16_t* port) {
  conf::ListenAddress la;
  std::string why;
  if (!conf::parse_listen_address(listen, &la, &why)) throw std::runtime_error(std::string(setting) + " " + listen + ": " + why);
  evhttp* http = evhttp_new(base);
  if (!http) throw std::runtime_error("evhttp_new failed");
  std::string host = la.family == AF_INET6 ? listen.substr(1, listen.rfind(']') - 1) : listen.substr(0, listen.rfind(':'));
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http, host.c_str(), la.port);
  if (!bound) {
    evhttp_free(http);
    throw std::runtime_error(std::string(setting) + " " + listen + ": cannot bind");
  }
  if (port) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len);
    *port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return http;
}

}  // namespace shoal::supervisor
