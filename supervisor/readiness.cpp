// supervisor/readiness.cpp — see readiness.hpp. The sd_notify protocol is one datagram of
// "KEY=value" lines on a Unix socket; it is written here rather than linking libsystemd
// (not one of shoal's dependencies) for the three messages shoald sends.
#include "supervisor/readiness.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace shoal::supervisor {
namespace {

int g_parent_pipe = -1;  // write end of the `-d` pipe, until the first word is sent
bool g_ready = false;

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += size_t(n);
  }
}

void tell_parent(const std::string& word) {
  if (g_parent_pipe < 0) return;
  write_all(g_parent_pipe, word);
  close(g_parent_pipe);
  g_parent_pipe = -1;
}

// One line: newlines would end the message on the pipe and split a STATUS= line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

// Sends one sd_notify message (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET if it is set
// (a path, or '@' for an abstract socket). Best effort: systemd gives up on a unit that never
// says READY=1, which is the signal a lost message leaves.
void sd_notify_send(const std::string& message) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  size_t len = strlen(path);
  sockaddr_un a{};
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof a.sun_path) return;
  a.sun_family = AF_UNIX;
  memcpy(a.sun_path, path, len);
  if (path[0] == '@') a.sun_path[0] = '\0';  // abstract namespace
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  socklen_t alen = socklen_t(offsetof(sockaddr_un, sun_path) + len);
  sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a), alen);
  close(fd);
}

}  // namespace

void readiness_set_parent_pipe(int fd) { g_parent_pipe = fd; }

void readiness_ready(const std::string& status) {
  if (g_ready) return;
  g_ready = true;
  tell_parent(std::string(1, kReadyByte));
  sd_notify_send("READY=1\nSTATUS=" + one_line(status));
}

void readiness_failed(const std::string& reason) {
  if (g_ready) return;
  tell_parent(std::string(1, kFailedByte) + one_line(reason) + "\n");
  sd_notify_send("STATUS=cannot start: " + one_line(reason));
}

void readiness_stopping() { sd_notify_send("STOPPING=1"); }

void readiness_status(const std::string& status) { sd_notify_send("STATUS=" + one_line(status)); }

void readiness_forget() {
  if (g_parent_pipe >= 0) close(g_parent_pipe);
  g_parent_pipe = -1;
  g_ready = true;  // a worker never reports
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace shoal::supervisor
