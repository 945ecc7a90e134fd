// worker/udp_io.cpp — see udp_io.hpp. Runs in socket workers.
#include "worker/udp_io.hpp"

#include <cerrno>
#include <cstring>

namespace shoal::worker {

RecvBatch::RecvBatch() {
  for (size_t i = 0; i < kUdpBatch; i++) {
    iovs_[i] = {bufs_[i], kUdpBufferBytes};
    std::memset(&msgs_[i], 0, sizeof msgs_[i]);
  }
}

size_t RecvBatch::receive(int fd) {
  for (size_t i = 0; i < kUdpBatch; i++) {
    msghdr& h = msgs_[i].msg_hdr;
    h.msg_name = &addrs_[i];
    h.msg_namelen = sizeof addrs_[i];
    h.msg_iov = &iovs_[i];
    h.msg_iovlen = 1;
    h.msg_control = nullptr;
    h.msg_controllen = 0;
    h.msg_flags = 0;
  }
  int n = recvmmsg(fd, msgs_, kUdpBatch, MSG_DONTWAIT, nullptr);
  return n > 0 ? size_t(n) : 0;
}

SendQueue::SendQueue(int fd) : fd_(fd) {
  for (size_t i = 0; i < kUdpBatch; i++) {
    iovs_[i] = {bufs_[i], 0};
    std::memset(&msgs_[i], 0, sizeof msgs_[i]);
  }
}

uint8_t* SendQueue::next() {
  if (n_ == kUdpBatch) {
    size_t sent = 0;
    dropped_ += flush(&sent);
    sent_ += sent;
  }
  return bufs_[n_];
}

void SendQueue::push(size_t len, const sockaddr* to, socklen_t to_len) {
  std::memcpy(&addrs_[n_], to, to_len);
  iovs_[n_].iov_len = len;
  msghdr& h = msgs_[n_].msg_hdr;
  h.msg_name = &addrs_[n_];
  h.msg_namelen = to_len;
  h.msg_iov = &iovs_[n_];
  h.msg_iovlen = 1;
  n_++;
}

size_t SendQueue::flush(size_t* sent) {
  size_t off = 0, failed = dropped_;
  *sent = sent_;
  dropped_ = sent_ = 0;
  while (off < n_) {
    int r = sendmmsg(fd_, msgs_ + off, unsigned(n_ - off), MSG_DONTWAIT);
    if (r > 0) {
      off += size_t(r);
      *sent += size_t(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    // EAGAIN (socket buffer full) or a per-destination error: drop this datagram, go on.
    off++;
    failed++;
  }
  n_ = 0;
  return failed;
}

}  // namespace shoal::worker
