// supervisor/stats_socket.cpp — see stats_socket.hpp. Runs in the supervisor's event loop.
// Each connection is a bufferevent; lines are read with evbuffer_readln, answered in order.
// A command that completes later ("show torrent") holds the connection's further input until
// it is answered or times out (1 s; for "snapshot save", 1 s without progress).
#include "supervisor/stats_socket.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "supervisor/log.hpp"
#include "supervisor/stats_commands.hpp"

namespace shoal::supervisor {
namespace {

constexpr size_t kMaxLine = 1024;
// Input kept per connection: libevent stops reading the socket above it (the client then
// blocks on its own send buffer), so a client that floods while its command is pending cannot
// grow the supervisor (issue 12).
constexpr size_t kMaxInput = 64 * 1024;
constexpr int kPollMs = 2;
constexpr int kPollLimit = 500;    // 1 s for the answer once the request is sent
constexpr int kQueueLimit = 2500;  // 5 s waiting for a turn at a busy mailbox
constexpr int kBacklog = 128;      // pending connections (listen backlog)

struct Conn {
  Supervisor* sup;
  bufferevent* bev;
  event* poll_timer = nullptr;
  CommandResult pending;
  bool pending_json = false;
  int polls = 0;         // polls since the command's request was sent
  int queued_polls = 0;  // polls while it waited for its turn (CommandResult::waiting_turn)
};

void close_conn(Conn* c) {
  if (c->poll_timer) event_free(c->poll_timer);
  if (c->pending.result) json_decref(c->pending.result);
  bufferevent_free(c->bev);
  delete c;
}

void write_result(Conn* c, CommandResult& r, bool json) {
  evbuffer* out = bufferevent_get_output(c->bev);
  if (!r.error.empty()) {
    evbuffer_add_printf(out, "error: %s\n\n", r.error.c_str());
    return;
  }
  if (json) {
    char* s = json_dumps(r.result, JSON_INDENT(2));
    evbuffer_add_printf(out, "%s\n\n", s ? s : "{}");
    free(s);
  } else {
    std::string text = render_text(r.result);
    evbuffer_add(out, text.data(), text.size());
    evbuffer_add(out, "\n", 1);
  }
  json_decref(r.result);
  r.result = nullptr;
}

void process_lines(Conn* c);

void on_poll(evutil_socket_t, short, void* arg) {
  Conn* c = static_cast<Conn*>(arg);
  if (!c->pending.poll(&c->pending)) {
    if (c->pending.progressed) c->polls = 0;  // "snapshot save": 1 s without progress, not in all
    c->pending.progressed = false;
    bool waiting = c->pending.waiting_turn;
    if (waiting ? ++c->queued_polls < kQueueLimit : ++c->polls < kPollLimit) {
      timeval tv{0, kPollMs * 1000};
      evtimer_add(c->poll_timer, &tv);
      return;
    }
    c->pending.error = waiting ? "too many show torrent queries waiting for this swarm worker; try again"
                               : "no answer from the swarm worker within 1 s";
  }
  c->pending.poll = nullptr;
  write_result(c, c->pending, c->pending_json);
  process_lines(c);
}

void process_lines(Conn* c) {
  evbuffer* in = bufferevent_get_input(c->bev);
  while (!c->pending.poll) {
    size_t len = 0;
    char* line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
    if (!line) {
      if (evbuffer_get_length(in) > kMaxLine) {
        evbuffer_add_printf(bufferevent_get_output(c->bev), "error: line too long\n\n");
        evbuffer_drain(in, evbuffer_get_length(in));
      }
      return;
    }
    std::string cmd(line, len);
    free(line);
    bool json = false;
    CommandResult r = run_command(*c->sup, cmd, &json);
    if (r.poll) {
      c->pending = std::move(r);
      c->pending_json = json;
      c->polls = 0;
      c->queued_polls = 0;
      if (!c->poll_timer) c->poll_timer = evtimer_new(bufferevent_get_base(c->bev), &on_poll, c);
      timeval tv{0, kPollMs * 1000};
      evtimer_add(c->poll_timer, &tv);
      return;
    }
    write_result(c, r, json);
  }
}

void on_read(bufferevent*, void* arg) { process_lines(static_cast<Conn*>(arg)); }

void on_event(bufferevent*, short what, void* arg) {
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) close_conn(static_cast<Conn*>(arg));
}

// Whether a process accepts connections on the Unix socket at `path` (another shoald's stats
// socket): only a stale file, whose connect() is refused, may be replaced.
bool socket_in_use(const sockaddr_un& sun) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0 || errno == EAGAIN;
  close(fd);
  return live;
}

}  // namespace

StatsSocket::StatsSocket(event_base* base, Supervisor* sup, const std::string& path, unsigned mode)
    : base_(base), sup_(sup), path_(path) {
  sockaddr_un sun{};
  if (path.size() >= sizeof sun.sun_path) throw std::runtime_error("stats socket path too long: " + path);
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  if (socket_in_use(sun))
    throw std::runtime_error("stats socket " + path + " is in use by another process (another shoald?); "
                             "stats.socket must differ between daemons");
  unlink(path.c_str());
  mode_t old = umask(0777 & ~mode);
  // A backlog of 128: a burst of monitoring scripts connecting at once while the supervisor is
  // busy must queue, not fail (a non-blocking connect to a full AF_UNIX backlog gets EAGAIN).
  listener_ = evconnlistener_new_bind(base, &StatsSocket::on_accept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, kBacklog,
                                      reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  int e = errno;
  umask(old);
  if (!listener_) throw std::runtime_error("stats socket " + path + ": " + strerror(e));
  chmod(path.c_str(), mode);
  struct stat st;
  if (stat(path.c_str(), &st) == 0) inode_ = st.st_ino;
}

StatsSocket::~StatsSocket() {
  if (listener_) evconnlistener_free(listener_);
  struct stat st;  // only our own socket file: never one that replaced it since
  if (inode_ != 0 && stat(path_.c_str(), &st) == 0 && st.st_ino == inode_ && S_ISSOCK(st.st_mode)) unlink(path_.c_str());
}

void StatsSocket::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<StatsSocket*>(arg);
  bufferevent* bev = bufferevent_socket_new(self->base_, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) {
    close(fd);
    return;
  }
  Conn* c = new Conn();
  c->sup = self->sup_;
  c->bev = bev;
  bufferevent_setcb(bev, &on_read, nullptr, &on_event, c);
  bufferevent_setwatermark(bev, EV_READ, 0, kMaxInput);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

}  // namespace shoal::supervisor
