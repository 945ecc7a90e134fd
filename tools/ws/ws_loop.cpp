// tools/ws/ws_loop.cpp — the epoll loop of ws_load's client connections (ws_client.hpp):
// each pass, the receives of every readable connection in one io_uring_enter (else one recv()
// loop each), then every connection's queued output in another (else one send() each).
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "tools/ws/ws_client.hpp"

namespace shoal_load::ws {

namespace {
constexpr size_t kSlot = 16 * 1024;  // a batched receive's room per connection
constexpr unsigned kBatch = 256;     // operations per io_uring submit
}  // namespace

Loop::Loop() : ep_(epoll_create1(EPOLL_CLOEXEC)) {
  if (ep_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + strerror(errno));
  if (getenv("WS_LOAD_NO_IO_URING") == nullptr) {
    batch_ = std::make_unique<shoal::worker::IoBatch>(kBatch);
    if (!batch_->ok()) batch_.reset();
    else slots_.resize(size_t(kBatch) * kSlot);
  }
}

Loop::~Loop() { ::close(ep_); }

void Loop::want_flush(Client* c) {
  if (c->dirty_) return;
  c->dirty_ = true;
  dirty_.push_back(c);
}

void Loop::flush_all() {
  // A flush may end a connection, whose handler may queue output elsewhere: taken in rounds.
  for (int round = 0; round < 4 && !dirty_.empty(); ++round) {
    std::vector<Client*> list;
    list.swap(dirty_);
    for (Client* c : list) {
      c->dirty_ = false;
      if (c->state_ == Client::State::idle) continue;
      if (!batch_) {
        c->flush();
        continue;
      }
      std::string_view out;
      if (!c->next_output(&out) || out.empty()) continue;
      if (batch_->full()) send_batch();
      batch_->add(c->fd_, out.data(), out.size(), uint32_t(ops_.size()));
      ops_.push_back({c, c->gen_, out.size()});
    }
    if (batch_) send_batch();
  }
}

void Loop::send_batch() {
  batch_->submit(results_);
  for (const auto& r : results_) {
    const Op& op = ops_[r.tag];
    Client* c = op.client;
    if (c->gen_ != op.gen || c->state_ == Client::State::idle) continue;  // closed meanwhile
    if (r.res == shoal::worker::IoBatch::kNotIssued) {
      c->flush();
      continue;
    }
    if (c->took_sent(r.res < 0 ? -1 : ssize_t(r.res), r.res < 0 ? -r.res : 0, op.len) == Client::Sent::all &&
        c->pending_output() != 0)
      c->flush();  // frames queued while ciphertext waited
  }
  ops_.clear();
}

void Loop::recv_batch() {
  batch_->submit(results_);
  for (const auto& r : results_) {
    const Op& op = ops_[r.tag];
    Client* c = op.client;
    if (c->gen_ != op.gen || c->state_ == Client::State::idle) continue;
    if (r.res == shoal::worker::IoBatch::kNotIssued || r.res == -EINTR ||
        c->took_recv(slots_.data() + size_t(r.tag) * kSlot, r.res < 0 ? -1 : ssize_t(r.res), r.res < 0 ? -r.res : 0, kSlot))
      c->read_all();  // not read, or the slot was full: the socket may hold more
  }
  ops_.clear();
}

void Loop::run(uint64_t tick_ns, const std::function<void()>& tick) {
  epoll_event ev[512];
  timespec ts;
  auto now = [&ts] {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
  };
  uint64_t next = now() + tick_ns;
  stop_ = false;
  while (!stop_) {
    uint64_t t = now();
    int timeout = t >= next ? 0 : int((next - t + 999999) / 1000000);
    int n = epoll_wait(ep_, ev, 512, timeout);
    // Every readable connection's recv() in one system call (io_uring), then each one's bytes.
    for (int i = 0; i < n; ++i) {
      Client* c = static_cast<Client*>(ev[i].data.ptr);
      if (!c->on_events(ev[i].events)) continue;
      if (!batch_) {
        c->read_all();
        continue;
      }
      if (batch_->full()) recv_batch();
      batch_->add_recv(c->fd_, slots_.data() + ops_.size() * kSlot, kSlot, uint32_t(ops_.size()));
      ops_.push_back({c, c->gen_, kSlot});
    }
    if (batch_) recv_batch();
    flush_all();
    if ((t = now()) >= next) {
      tick();
      flush_all();
      next = t + tick_ns;
    }
  }
}

}  // namespace shoal_load::ws
