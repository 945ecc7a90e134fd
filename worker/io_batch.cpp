// worker/io_batch.cpp — see io_batch.hpp.
#include "worker/io_batch.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace shoal::worker {

IoBatch::IoBatch(unsigned entries) : entries_(entries) {
  io_uring_params p{};
  // SINGLE_ISSUER (Linux 6.0) and COOP_TASKRUN (5.19) spare the kernel work for other threads
  // that never come; an older kernel refuses them (EINVAL), then the plain ring.
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  int r = io_uring_queue_init_params(entries, &ring_, &p);
  if (r == -EINVAL) {
    p = io_uring_params{};
    r = io_uring_queue_init_params(entries, &ring_, &p);
  }
  if (r < 0) {
    why_ = std::string("io_uring_queue_init: ") + std::strerror(-r);
    return;
  }
  inited_ = true;
  entries_ = std::min(entries, p.sq_entries);
  tags_.reserve(entries_);
  ok_ = true;
}

IoBatch::~IoBatch() {
  if (inited_) io_uring_queue_exit(&ring_);
}

void IoBatch::add(int fd, const void* data, size_t len, uint32_t tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);  // not null: at most entries_ are queued
  io_uring_prep_send(sqe, fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag);
  tags_.push_back(tag);
}

void IoBatch::add_recv(int fd, void* buf, size_t len, uint32_t tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_recv(sqe, fd, buf, len, MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, tag);
  tags_.push_back(tag);
}

void IoBatch::submit(std::vector<Result>& out) {
  out.clear();
  size_t want = tags_.size();
  if (want == 0) return;
  // The kernel issues each send while it takes it (sockets are non-blocking and MSG_DONTWAIT
  // never waits), so its completion is posted before io_uring_enter returns; the wait covers
  // one the kernel would finish later all the same.
  int r = io_uring_submit_and_wait(&ring_, unsigned(want));
  size_t taken = want - io_uring_sq_ready(&ring_);
  while (out.size() < taken) {
    io_uring_cqe* cqe = nullptr;
    int w = io_uring_peek_cqe(&ring_, &cqe);
    if (w == -EAGAIN) w = io_uring_wait_cqe(&ring_, &cqe);
    if (w == -EINTR) continue;
    if (w < 0) break;  // a live ring does not fail here
    out.push_back({uint32_t(io_uring_cqe_get_data64(cqe)), cqe->res});
    io_uring_cqe_seen(&ring_, cqe);
  }
  if (out.size() < want) {  // sends the ring did not take (or complete): the caller sends them
    ok_ = false;
    why_ = std::string("io_uring_enter: ") + std::strerror(r < 0 ? -r : EIO);
    std::vector<uint32_t> done;
    for (const Result& x : out) done.push_back(x.tag);
    std::sort(done.begin(), done.end());
    for (uint32_t t : tags_)
      if (!std::binary_search(done.begin(), done.end(), t)) out.push_back({t, kNotIssued});
  }
  tags_.clear();
}

}  // namespace shoal::worker
