// supervisor/stats_socket.hpp — the operator's Unix stats socket, served by the supervisor's
// event loop (in the spirit of haproxy's runtime API). Protocol: the client sends one command
// per line; the reply is zero or more lines ended by one empty line, so a client knows where a
// reply stops and may send the next command on the same connection. `json` after a show
// command gives one JSON document instead of text. Commands and their help come from one
// table (supervisor/stats_commands.cpp). Reading counters never writes to shared memory.
#pragma once
#include <event2/event.h>
#include <event2/listener.h>
#include <sys/types.h>

#include <string>

namespace shoal::supervisor {

class Supervisor;

class StatsSocket {
 public:
  // Listens on `path` with file mode `mode` (e.g. 0600). A stale socket file there is replaced;
  // one that still accepts connections (another daemon's) is left alone and this throws.
  // Throws std::runtime_error naming the path and errno. The destructor removes the file if it is
  // still the one this object created.
  StatsSocket(event_base* base, Supervisor* sup, const std::string& path, unsigned mode);
  ~StatsSocket();
  const std::string& path() const { return path_; }

 private:
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  event_base* base_;
  Supervisor* sup_;
  std::string path_;
  evconnlistener* listener_ = nullptr;
  ino_t inode_ = 0;  // of the socket file we bound
};

}  // namespace shoal::supervisor
