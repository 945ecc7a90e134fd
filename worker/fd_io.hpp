// worker/fd_io.hpp — writing a whole buffer to a blocking file descriptor (state files,
// snapshots, received .torrent files), and replacing a small file whole. Used by the supervisor
// and the sync worker.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

namespace shoal::worker {

// Writes the n bytes at p to fd, retrying short writes and EINTR. False on any other error or
// a write of 0 bytes (errno says why); what was written before stays written.
inline bool write_all(int fd, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    b += w;
    n -= size_t(w);
  }
  return true;
}

// Replaces `path` with the n bytes at p: written to path + ".tmp" (mode 0640, a symlink there is
// refused), fsync'ed first when `sync`, then renamed over path, so a crash leaves the old file or
// the new one, never a part. False with errno set on any failure; the .tmp is removed then.
inline bool replace_file(const std::string& path, const void* p, size_t n, bool sync) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return false;
  bool ok = write_all(fd, p, n) && (!sync || fsync(fd) == 0);
  int saved = errno;
  close(fd);
  if (ok && rename(tmp.c_str(), path.c_str()) == 0) return true;
  if (ok) saved = errno;
  unlink(tmp.c_str());
  errno = saved;
  return false;
}

}  // namespace shoal::worker
