// worker/udp_io.hpp — batched UDP I/O for socket workers: recvmmsg into a fixed array of
// buffers, and a send queue flushed with sendmmsg, replies of one length to one address sharing
// a message as UDP GSO (UDP_SEGMENT, Linux ≥ 4.18). No allocation after construction.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace shoal::worker {

inline constexpr size_t kUdpBatch = 64;           // datagrams per recvmmsg call
inline constexpr size_t kUdpBufferBytes = 2048;  // per received datagram (BEP 15 requests are smaller)
inline constexpr size_t kUdpSendBatch = 256;      // datagrams queued per socket before a flush
// Bytes of one queued reply: the largest BEP 15 reply is an IPv6 announce with 67 peers
// (20 + 67 × 18 = 1,226 bytes); IPv4 200 peers is 1,220, a 74-hash scrape 896.
inline constexpr size_t kUdpSendBytes = 1280;
inline constexpr size_t kUdpGsoSegments = 64;  // the kernel's UDP_MAX_SEGMENTS

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

// Queue of outgoing datagrams for one socket; flushes itself when full. flush() groups the
// queued datagrams by (destination, length): a group of 2..64 goes out as one sendmmsg message
// with UDP_SEGMENT set to that length, so the kernel builds, routes and hands over one buffer
// for the group and cuts it into datagrams at the receiving socket (a receiver without UDP_GRO
// still reads one datagram per reply, in queue order within the group). If the kernel refuses
// GSO the queue sends one datagram per message from then on.
class SendQueue {
 public:
  explicit SendQueue(int fd = -1, bool gso = true);
  // Space for the next datagram (kUdpSendBytes); call push() after writing it. Flushes first
  // if the queue is full.
  uint8_t* next();
  // Queues the datagram written at next(): `len` bytes (≤ kUdpSendBytes) to `to` (addr_len bytes),
  // followed by `tail_len` bytes at `tail` that are sent from where they are, not copied (an
  // announce reply's peers in its response ring slot): they must stay unchanged until the next
  // flush() (or the automatic one of next()) has returned. len + tail_len ≤ kUdpSendBytes.
  void push(size_t len, const sockaddr* to, socklen_t to_len, const uint8_t* tail = nullptr, size_t tail_len = 0);
  // Sends everything queued. Returns datagrams that could not be sent (counted by the caller);
  // *sent: datagrams handed to the kernel (also those of automatic flushes since the last call).
  size_t flush(size_t* sent);
  size_t pending() const { return n_; }
  int fd() const { return fd_; }
  bool gso() const { return gso_; }
  // sendmmsg messages of the last flush (for tests and counters).
  size_t last_messages() const { return last_messages_; }

 private:
  size_t build_messages();
  size_t iovs_of(size_t i, iovec* out) const;  // datagram i's iovecs (1 or 2) written to out
  void send_singly(size_t group, size_t* sent, size_t* failed);

  int fd_;
  bool gso_;
  size_t n_ = 0;
  size_t dropped_ = 0;
  size_t sent_ = 0;
  size_t last_messages_ = 0;
  uint32_t epoch_ = 0;  // stamp of the current flush in slot_epoch_ (no clearing per flush)
  alignas(64) uint8_t bufs_[kUdpSendBatch][kUdpSendBytes];
  sockaddr_storage addrs_[kUdpSendBatch];
  socklen_t addr_lens_[kUdpSendBatch];
  uint16_t lens_[kUdpSendBatch];       // whole datagram
  uint16_t tail_lens_[kUdpSendBatch];  // of that, bytes at tails_ (0: all in bufs_)
  const uint8_t* tails_[kUdpSendBatch];
  // Grouping (build_messages): group of each datagram, each group's first datagram, size and
  // place in iovs_, and an open-addressing table (destination, length) -> newest group.
  uint16_t group_of_[kUdpSendBatch], group_rep_[kUdpSendBatch], group_count_[kUdpSendBatch], group_at_[kUdpSendBatch],
      group_iovs_[kUdpSendBatch];
  static constexpr size_t kSlots = 2 * kUdpSendBatch;
  uint16_t slot_group_[kSlots];
  uint32_t slot_epoch_[kSlots] = {};
  iovec iovs_[2 * kUdpSendBatch];
  mmsghdr msgs_[kUdpSendBatch];
  alignas(cmsghdr) uint8_t cmsgs_[kUdpSendBatch][CMSG_SPACE(sizeof(uint16_t))];
};

}  // namespace shoal::worker
