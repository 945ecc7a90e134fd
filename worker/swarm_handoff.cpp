// worker/swarm_handoff.cpp — see swarm_handoff.hpp.
#include "worker/swarm_handoff.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"

namespace shoal::worker {

namespace {

constexpr size_t kSliceBytes = size_t(512) << 10;  // prefault per slice (~0.1 ms of work)
constexpr timeval kSlicePause{0, 200};           // between slices: the old process serves
constexpr timeval kPoll{0, 10000};               // a look at `released` without a wake-up

// The wait of a successor: prefault slices, then `released`, from the loop's callbacks.
class Wait {
 public:
  Wait(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop, const shm::Segment& partition)
      : ctx_(ctx), shared_(shared), loop_(loop), base_(static_cast<char*>(partition.base())), size_(partition.size()) {
    slice_ = evtimer_new(loop->base(), &on_slice, this);
    wake_ = event_new(loop->base(), ctx.handoff_eventfd, EV_READ | EV_PERSIST, &on_wake, this);
    poll_ = event_new(loop->base(), -1, EV_PERSIST, &on_poll, this);
    if (!slice_ || !wake_ || !poll_) throw std::runtime_error("cannot create the handoff events");
    event_add(wake_, nullptr);
    started_ns_ = shm::monotonic_ns();
    on_slice(-1, 0, this);
  }
  ~Wait() {
    event_free(slice_);
    event_free(wake_);
    event_free(poll_);
  }
  Wait(const Wait&) = delete;
  Wait& operator=(const Wait&) = delete;
  bool taken() const { return taken_; }

 private:
  static void on_slice(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Wait*>(arg);
    size_t n = std::min(kSliceBytes, self->size_ - self->done_);
    self->pages_ += prefault_resident(self->base_ + self->done_, n);
    self->done_ += n;
    if (self->done_ < self->size_) {
      evtimer_add(self->slice_, &kSlicePause);
      return;
    }
    // Ready to take over: say so (the supervisor then asks the old process to release).
    shm::store_u32(self->shared_->slot->standby, self->ctx_.generation);
    LOG_INFO("waiting for generation %u to release partition %u (%zu pages mapped ahead in %.1f ms)", self->ctx_.handoff_from,
             self->ctx_.index, self->pages_, double(shm::monotonic_ns() - self->started_ns_) / 1e6);
    event_add(self->poll_, &kPoll);
    self->look();
  }
  static void on_wake(evutil_socket_t fd, short, void* arg) {
    drain_eventfd(fd);
    static_cast<Wait*>(arg)->look();
  }
  static void on_poll(evutil_socket_t, short, void* arg) { static_cast<Wait*>(arg)->look(); }
  void look() {
    if (taken_ || shm::load_u32(shared_->slot->released) < ctx_.handoff_from) return;
    taken_ = true;  // (acquire: the predecessor's writes are all visible from here on)
    event_base_loopbreak(loop_->base());
  }

  const WorkerContext& ctx_;
  SharedState* shared_;
  WorkerLoop* loop_;
  char* base_;
  size_t size_, done_ = 0, pages_ = 0;
  uint64_t started_ns_ = 0;
  event* slice_ = nullptr;
  event* wake_ = nullptr;
  event* poll_ = nullptr;
  bool taken_ = false;
};

}  // namespace

size_t prefault_resident(void* base, size_t bytes) {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  char* p = static_cast<char*>(base);
  size_t pages = (bytes + page - 1) / page, mapped = 0;
  std::vector<unsigned char> in(pages);
  if (pages == 0 || mincore(p, bytes, in.data()) != 0) return 0;
  static bool populate = true;  // false once the kernel refused MADV_POPULATE_READ (before 5.14)
  for (size_t i = 0; i < pages;) {
    if (!(in[i] & 1)) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < pages && (in[j] & 1)) j++;
    if (populate && madvise(p + i * page, (j - i) * page, MADV_POPULATE_READ) != 0) populate = false;
    if (!populate)
      for (size_t k = i; k < j; k++) (void)*static_cast<volatile char*>(p + k * page);
    mapped += j - i;
    i = j;
  }
  return mapped;
}

bool await_partition(const WorkerContext& ctx, SharedState* shared, WorkerLoop* loop, const shm::Segment& partition) {
  uint64_t t0 = shm::monotonic_ns();
  Wait wait(ctx, shared, loop, partition);
  while (!wait.taken() && !loop->stop_requested()) loop->run();
  if (loop->stop_requested()) return false;
  LOG_INFO("generation %u released partition %u: taking it (waited %.1f ms)", ctx.handoff_from, ctx.index,
           double(shm::monotonic_ns() - t0) / 1e6);
  return true;
}

void release_partition(const WorkerContext& ctx, SharedState* shared) {
  shm::raise_u32(shared->slot->released, ctx.generation);
  // What is left is the exit, mostly the kernel unmapping the partition (~6 ms at 1,000,000
  // peers). With a successor, at idle priority, before the wake-up: the successor then runs
  // at once, and this exit never holds the CPU it and the socket workers need. (Without one,
  // shoald stops: no reason to make its exit wait for CPU.)
  if (shm::load_u32(shared->slot->standby) > ctx.generation) exit_at_idle_priority();
  if (ctx.handoff_eventfd >= 0) wake(ctx.handoff_eventfd);
}

}  // namespace shoal::worker
