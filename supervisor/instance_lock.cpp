// supervisor/instance_lock.cpp — see instance_lock.hpp.
#include "supervisor/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace shoal::supervisor {
namespace {

int g_lock_fd = -1;

pid_t read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? pid_t(strtol(buf, nullptr, 10)) : 0;
}

int open_lock(const std::string& shm_name, int flags) {
  return open(instance_lock_path(shm_name).c_str(), flags | O_CLOEXEC | O_NOFOLLOW, 0600);
}

}  // namespace

std::string instance_lock_path(const std::string& shm_name) { return "/dev/shm/" + shm_name + "-lock"; }

bool acquire_instance_lock(const std::string& shm_name, std::string* why) {
  int fd = open_lock(shm_name, O_RDWR | O_CREAT);
  if (fd < 0) return *why = instance_lock_path(shm_name) + ": " + strerror(errno), false;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    pid_t holder = read_pid(fd);
    close(fd);
    if (e != EWOULDBLOCK) return *why = instance_lock_path(shm_name) + ": flock: " + strerror(e), false;
    *why = "another shoald (pid " + std::to_string(holder) + ") is running on shm_name \"" + shm_name +
           "\": stop it first, or give this one another shm_name";
    return false;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    *why = instance_lock_path(shm_name) + ": " + strerror(errno);
    close(fd);
    return false;
  }
  if (g_lock_fd >= 0) close(g_lock_fd);
  g_lock_fd = fd;
  return true;
}

void instance_lock_forget() {
  if (g_lock_fd >= 0) close(g_lock_fd);
  g_lock_fd = -1;
}

pid_t instance_lock_holder(const std::string& shm_name) {
  int fd = open_lock(shm_name, O_RDONLY);
  if (fd < 0) return 0;
  pid_t holder = 0;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) holder = read_pid(fd);
  else flock(fd, LOCK_UN);
  close(fd);
  return holder;
}

}  // namespace shoal::supervisor
