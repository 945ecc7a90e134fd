// worker/fd_io.hpp — writing a whole buffer to a blocking file descriptor (state files,
// snapshots, received .torrent files). Used by the supervisor and the sync worker.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <unistd.h>

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

}  // namespace shoal::worker
