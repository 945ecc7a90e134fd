// supervisor/daemon.cpp — see daemon.hpp. Runs in the supervisor before anything is created.
#include "supervisor/daemon.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "supervisor/readiness.hpp"

namespace shoal::supervisor {
namespace {

// The original process of `shoald -d`: waits for the daemon's first word on `fd` and turns it
// into an exit status. Never returns.
[[noreturn]] void wait_for_daemon(int fd, pid_t child) {
  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, size_t(n));
    if (msg[0] == kReadyByte || msg.find('\n') != std::string::npos) break;
  }
  waitpid(child, nullptr, 0);  // the intermediate process (it exits at once)
  if (!msg.empty() && msg[0] == kReadyByte) _exit(0);
  if (!msg.empty() && msg[0] == kFailedByte) {
    size_t end = msg.find('\n');
    fprintf(stderr, "shoald: cannot start: %s\n", msg.substr(1, end == std::string::npos ? std::string::npos : end - 1).c_str());
  } else {
    fprintf(stderr, "shoald: the daemon exited during start; the reason is in syslog\n");
  }
  _exit(1);
}

}  // namespace

bool daemonize(std::string* why) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return *why = std::string("pipe: ") + strerror(errno), false;
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return *why = std::string("fork: ") + strerror(errno), false;
  if (pid > 0) {
    close(p[1]);
    wait_for_daemon(p[0], pid);
  }
  close(p[0]);
  readiness_set_parent_pipe(p[1]);
  if (setsid() < 0) return *why = std::string("setsid: ") + strerror(errno), false;
  pid = fork();
  if (pid < 0) return *why = std::string("fork: ") + strerror(errno), false;
  if (pid > 0) _exit(0);
  umask(022);
  if (chdir("/") != 0) return *why = std::string("chdir /: ") + strerror(errno), false;
  int fd = open("/dev/null", O_RDWR);
  if (fd < 0) return *why = std::string("/dev/null: ") + strerror(errno), false;
  dup2(fd, STDIN_FILENO);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  if (fd > STDERR_FILENO) close(fd);
  return true;
}

bool write_pid_file(const std::string& path, std::string* why) {
  // O_NOFOLLOW: a symlink planted at the path (e.g. in a world-writable directory) must not
  // make a root shoald truncate the file it points to (open(2)).
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    *why = path + ": " + strerror(errno);
    if (errno == ELOOP) *why += " (it is a symbolic link; shoald does not follow one)";
    return false;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  bool ok = write(fd, pid.data(), pid.size()) == ssize_t(pid.size());
  int e = errno;
  if (close(fd) != 0 && ok) e = errno, ok = false;
  if (!ok) *why = path + ": " + strerror(e);
  return ok;
}

}  // namespace shoal::supervisor
