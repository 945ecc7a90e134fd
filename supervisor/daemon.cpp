// supervisor/daemon.cpp — see daemon.hpp. Runs in the supervisor before anything is created.
#include "supervisor/daemon.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace shoal::supervisor {

bool daemonize(std::string* why) {
  pid_t pid = fork();
  if (pid < 0) return *why = std::string("fork: ") + strerror(errno), false;
  if (pid > 0) _exit(0);
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
  FILE* f = fopen(path.c_str(), "w");
  if (!f) return *why = path + ": " + strerror(errno), false;
  fprintf(f, "%d\n", int(getpid()));
  if (fclose(f) != 0) return *why = path + ": " + strerror(errno), false;
  return true;
}

}  // namespace shoal::supervisor
