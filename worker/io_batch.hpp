// worker/io_batch.hpp — the socket sends (and receives) of one loop pass in one system call
// (io_uring, through liburing: Debian liburing-dev). A socket worker that writes to many TCP
// connections per pass (the WebSocket front-end under load: a reply, offers and answers to ~40
// connections per pass) pays the kernel's syscall entry and exit once per pass instead of once
// per connection; the TCP work of each send is the same. Each queued operation is issued by the
// kernel inline during submit(), as send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) or
// recv(fd, buf, len, MSG_DONTWAIT) would be: a full (empty) socket completes with -EAGAIN at
// once (io_uring's no-wait rule for MSG_DONTWAIT), never waits. (ws_load, the bench's
// generator, batches its receives too.)
//
// Where io_uring is missing (kernel before 5.6, kernel.io_uring_disabled, a seccomp filter) ok()
// is false and the caller sends one by one. Not thread-safe; one per socket worker, made after
// the fork (the ring belongs to the process that set it up: IORING_SETUP_SINGLE_ISSUER).
#pragma once
#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shoal::worker {

class IoBatch {
 public:
  // One operation's outcome: the caller's tag given to add(), and bytes sent or received (>= 0;
  // 0 from a receive: the peer's FIN) or -errno.
  struct Result {
    uint32_t tag;
    int res;
  };

  // entries: the most sends one submit() carries (a power of two, at most 4096); the rings take
  // about 64 bytes per entry.
  explicit IoBatch(unsigned entries = 256);
  ~IoBatch();
  IoBatch(const IoBatch&) = delete;
  IoBatch& operator=(const IoBatch&) = delete;

  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }  // why ok() is false (io_uring_queue_init's error)

  size_t queued() const { return tags_.size(); }
  bool full() const { return tags_.size() >= entries_; }

  // Queues send(fd, data, len) tagged `tag`; data must stay valid (and unchanged) until submit()
  // returns. Requires ok() and !full().
  void add(int fd, const void* data, size_t len, uint32_t tag);
  // Queues recv(fd, buf, len, MSG_DONTWAIT) tagged `tag`; buf must stay valid until submit()
  // returns. Requires ok() and !full().
  void add_recv(int fd, void* buf, size_t len, uint32_t tag);

  // Issues every queued operation in one io_uring_enter and collects one result per send into `out`
  // (cleared first; completion order, which for inline sends is the order of add()). A send
  // the kernel refused (a bad fd, a reset connection) has its -errno as send() would give it.
  // res == kNotIssued: the ring could not take the send at all (out of memory for requests);
  // the caller sends it the plain way, and ok() is false from then on.
  void submit(std::vector<Result>& out);
  static constexpr int kNotIssued = -ECANCELED;

 private:
  io_uring ring_{};
  unsigned entries_ = 0;
  std::vector<uint32_t> tags_;  // of the queued sends, in add() order
  bool inited_ = false;  // ring_ is set up (and torn down by the destructor)
  bool ok_ = false;
  std::string why_;
};

}  // namespace shoal::worker
