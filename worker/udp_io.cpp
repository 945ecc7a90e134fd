// worker/udp_io.cpp — see udp_io.hpp. Runs in socket workers.
#include "worker/udp_io.hpp"

#include <netinet/udp.h>

#include <algorithm>
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

SendQueue::SendQueue(int fd, bool gso) : fd_(fd), gso_(gso) {
  std::memset(msgs_, 0, sizeof msgs_);
}

uint8_t* SendQueue::next() {
  if (n_ == kUdpSendBatch) {
    size_t sent = 0;
    dropped_ += flush(&sent);
    sent_ += sent;
  }
  return bufs_[n_];
}

void SendQueue::push(size_t len, const sockaddr* to, socklen_t to_len, const uint8_t* tail, size_t tail_len) {
  std::memcpy(&addrs_[n_], to, to_len);
  addr_lens_[n_] = to_len;
  len = std::min(len, kUdpSendBytes);
  tail_len = tail ? std::min(tail_len, kUdpSendBytes - len) : 0;
  lens_[n_] = uint16_t(len + tail_len);
  tail_lens_[n_] = uint16_t(tail_len);
  tails_[n_] = tail;
  n_++;
}

size_t SendQueue::iovs_of(size_t i, iovec* out) const {
  out[0] = {const_cast<uint8_t*>(bufs_[i]), size_t(lens_[i] - tail_lens_[i])};
  if (tail_lens_[i] == 0) return 1;
  out[1] = {const_cast<uint8_t*>(tails_[i]), tail_lens_[i]};
  return 2;
}

namespace {

// Hash of a destination and a length, for the grouping table (FNV-1a over the address bytes).
size_t group_hash(const sockaddr_storage& a, socklen_t alen, uint16_t len) {
  const auto* p = reinterpret_cast<const uint8_t*>(&a);
  uint32_t h = 2166136261u ^ len;
  for (socklen_t i = 0; i < alen; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

}  // namespace

// Fills msgs_ with one message per group of datagrams of one length to one destination (at most
// kUdpGsoSegments and 60,000 bytes each; every datagram its own message without GSO); returns
// the number of messages. iovs_ holds each group's datagrams in queue order.
size_t SendQueue::build_messages() {
  size_t groups = 0;
  if (++epoch_ == 0) {  // wrapped: stamps of 4 billion flushes ago could look current
    std::memset(slot_epoch_, 0, sizeof slot_epoch_);
    epoch_ = 1;
  }
  for (size_t i = 0; i < n_; i++) {
    size_t g = groups;
    if (gso_ && lens_[i] > 0) {
      size_t cap = std::min<size_t>(kUdpGsoSegments, 60000 / lens_[i]);
      for (size_t s = group_hash(addrs_[i], addr_lens_[i], lens_[i]) % kSlots;; s = (s + 1) % kSlots) {
        if (slot_epoch_[s] != epoch_) {  // free: this (destination, length) opens a group here
          slot_epoch_[s] = epoch_;
          slot_group_[s] = uint16_t(groups);
          break;
        }
        size_t r = group_rep_[slot_group_[s]];
        if (lens_[r] == lens_[i] && addr_lens_[r] == addr_lens_[i] &&
            std::memcmp(&addrs_[r], &addrs_[i], addr_lens_[i]) == 0) {
          if (group_count_[slot_group_[s]] < cap) g = slot_group_[s];
          else slot_group_[s] = uint16_t(groups);  // full: the new group takes its place
          break;
        }
      }
    }
    if (g == groups) {
      group_rep_[groups] = uint16_t(i);
      group_count_[groups] = 0;
      group_iovs_[groups++] = 0;
    }
    group_of_[i] = uint16_t(g);
    group_count_[g]++;
    group_iovs_[g] = uint16_t(group_iovs_[g] + (tail_lens_[i] ? 2 : 1));
  }
  uint16_t fill[kUdpSendBatch];
  for (size_t g = 0, at = 0; g < groups; at += group_iovs_[g++]) {
    group_at_[g] = uint16_t(at);
    fill[g] = 0;
  }
  for (size_t i = 0; i < n_; i++) {
    size_t g = group_of_[i];
    fill[g] = uint16_t(fill[g] + iovs_of(i, &iovs_[group_at_[g] + fill[g]]));
  }
  for (size_t g = 0; g < groups; g++) {
    size_t r = group_rep_[g];
    msghdr& h = msgs_[g].msg_hdr;
    h = {};
    h.msg_name = &addrs_[r];
    h.msg_namelen = addr_lens_[r];
    h.msg_iov = &iovs_[group_at_[g]];
    h.msg_iovlen = group_iovs_[g];
    if (group_count_[g] > 1) {  // UDP GSO: group_count_ datagrams of lens_[r] bytes each
      h.msg_control = cmsgs_[g];
      h.msg_controllen = sizeof cmsgs_[g];
      cmsghdr* cm = CMSG_FIRSTHDR(&h);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = lens_[r];
      std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
  }
  return groups;
}

// A GSO message the kernel refused: the datagrams of its group one by one.
void SendQueue::send_singly(size_t group, size_t* sent, size_t* failed) {
  const msghdr& h = msgs_[group].msg_hdr;
  for (size_t i = 0; i < n_; i++) {
    if (group_of_[i] != group) continue;
    iovec iov[2];
    msghdr one{};
    one.msg_name = h.msg_name;
    one.msg_namelen = h.msg_namelen;
    one.msg_iov = iov;
    one.msg_iovlen = iovs_of(i, iov);
    ssize_t r;
    do r = sendmsg(fd_, &one, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r >= 0) ++*sent;
    else ++*failed;
  }
}

size_t SendQueue::flush(size_t* sent) {
  size_t failed = dropped_;
  *sent = sent_;
  dropped_ = sent_ = 0;
  size_t m = build_messages(), off = 0;
  last_messages_ = m;
  while (off < m) {
    int r = sendmmsg(fd_, msgs_ + off, unsigned(m - off), MSG_DONTWAIT);
    if (r > 0) {
      for (size_t k = off; k < off + size_t(r); k++) *sent += group_count_[k];
      off += size_t(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && group_count_[off] > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
      gso_ = false;  // no UDP GSO here (old kernel, or a device without it): singly from now on
      send_singly(off, sent, &failed);
    } else {
      // EAGAIN (socket buffer full) or a per-destination error: drop this message, go on.
      failed += group_count_[off];
    }
    off++;
  }
  n_ = 0;
  return failed;
}

}  // namespace shoal::worker
