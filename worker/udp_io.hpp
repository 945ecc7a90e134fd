// worker/udp_io.hpp — batched UDP I/O for socket workers: recvmmsg into a fixed array of
// buffers, and a send queue flushed with sendmmsg. No allocation after construction.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shoal::worker {

inline constexpr size_t kUdpBatch = 64;           // datagrams per recvmmsg/sendmmsg call
inline constexpr size_t kUdpBufferBytes = 2048;  // per datagram (BEP 15 requests/replies are smaller)

// Receives up to kUdpBatch datagrams per call.
class RecvBatch {
 public:
  RecvBatch();
  // recvmmsg(MSG_DONTWAIT) on fd; returns datagrams received (0 when none, or on error).
  size_t receive(int fd);
  const uint8_t* data(size_t i) const { return bufs_[i]; }
  size_t length(size_t i) const { return msgs_[i].msg_len; }
  const sockaddr_storage& source(size_t i) const { return addrs_[i]; }
  bool truncated(size_t i) const { return msgs_[i].msg_hdr.msg_flags & MSG_TRUNC; }

 private:
  alignas(64) uint8_t bufs_[kUdpBatch][kUdpBufferBytes];
  sockaddr_storage addrs_[kUdpBatch];
  iovec iovs_[kUdpBatch];
  mmsghdr msgs_[kUdpBatch];
};

// Queue of outgoing datagrams for one socket; flushes itself when full.
class SendQueue {
 public:
  explicit SendQueue(int fd = -1);
  // Space for the next datagram (kUdpBufferBytes); call push() after writing it. Flushes first
  // if the queue is full.
  uint8_t* next();
  // Queues the datagram written at next(): `len` bytes to `to` (addr_len bytes).
  void push(size_t len, const sockaddr* to, socklen_t to_len);
  // Sends everything queued. Returns datagrams that could not be sent (counted by the caller).
  size_t flush(size_t* sent);
  size_t pending() const { return n_; }
  int fd() const { return fd_; }

 private:
  int fd_;
  size_t n_ = 0;
  size_t dropped_ = 0;
  size_t sent_ = 0;
  alignas(64) uint8_t bufs_[kUdpBatch][kUdpBufferBytes];
  sockaddr_storage addrs_[kUdpBatch];
  iovec iovs_[kUdpBatch];
  mmsghdr msgs_[kUdpBatch];
  friend class SendQueueAccess;
};

}  // namespace shoal::worker
