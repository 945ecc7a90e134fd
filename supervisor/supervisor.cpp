// supervisor/supervisor.cpp — see supervisor.hpp. The supervisor's event loop handles, in
// order of arrival, signals (TERM/INT stop, CHLD reap, HUP forwarded to socket workers for the
// TLS certificate, USR1 access-list reload, USR2 logged), restart timers and the stop deadline.
// Workers are forked from timer/signal callbacks; the child drops the parent's loop (never
// touches it) and builds its own.
#include "supervisor/supervisor.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <stdexcept>

#include "shm/clock.hpp"
#include "supervisor/log.hpp"
#include "supervisor/admin_http.hpp"
#include "supervisor/instance_lock.hpp"
#include "supervisor/metrics_http.hpp"
#include "supervisor/proctitle.hpp"
#include "supervisor/readiness.hpp"
#include "supervisor/reload.hpp"
#include "supervisor/transfer_progress.hpp"
#include "supervisor/stats_socket.hpp"

namespace shoal::supervisor {

std::string Slot::name() const {
  return std::string(role == shm::WorkerRole::socket ? "socket" : "swarm") + " worker " + std::to_string(index);
}

namespace {
constexpr int kHandledSignals[] = {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2};
constexpr int kStopGraceSeconds = 5;

// In a new worker: closes every descriptor except stdio and those in `ctx` (the supervisor's
// loop, signalfd, stats/metrics sockets and their clients are none of the worker's business).
void close_inherited_fds(const worker::WorkerContext& ctx) {
  std::vector<int> keep = ctx.socket_eventfds;
  keep.insert(keep.end(), ctx.swarm_eventfds.begin(), ctx.swarm_eventfds.end());
  for (const auto& u : ctx.udp_sockets) keep.push_back(u.fd);
  for (const auto& t : ctx.tcp_listeners) keep.push_back(t.fd);
  std::vector<int> doomed;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      int fd = atoi(e->d_name);
      if (fd > STDERR_FILENO && fd != dirfd(d) && std::find(keep.begin(), keep.end(), fd) == keep.end()) doomed.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : doomed) close(fd);
}

int make_eventfd() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("eventfd: ") + strerror(errno));
  return fd;
}
}  // namespace

Supervisor::Supervisor(const conf::Config& cfg, SegmentSet segments, std::vector<std::vector<worker::UdpSocket>> udp,
                       std::vector<std::vector<worker::TcpListener>> tcp)
    : cfg_(cfg), segments_(std::move(segments)), udp_(std::move(udp)), tcp_(std::move(tcp)), self_pid_(getpid()) {
  for (uint32_t i = 0; i < cfg.socket_workers; i++) socket_eventfds_.push_back(make_eventfd());
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) swarm_eventfds_.push_back(make_eventfd());
  // Swarm workers first, so the partitions are being served when socket workers start routing.
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) slots_.push_back(Slot{shm::WorkerRole::swarm, i});
  for (uint32_t i = 0; i < cfg.socket_workers; i++) slots_.push_back(Slot{shm::WorkerRole::socket, i});
  base_ = event_base_new();
  if (!base_) throw std::runtime_error("event_base_new failed");
  // Signals arrive through a signalfd read by the loop (not libevent's evsignal, whose global
  // state would be inherited by the workers' own event bases after fork).
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kHandledSignals) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + strerror(errno));
  signal_event_ = event_new(base_, signal_fd_, EV_READ | EV_PERSIST, &Supervisor::on_signal, this);
  event_add(signal_event_, nullptr);
  for (Slot& s : slots_) {
    s.owner = this;
    s.restart_timer = evtimer_new(base_, &Supervisor::on_restart_timer, &s);
    // Generations go on from the shared memory a previous shoald left (0 in fresh segments),
    // so a reply token or ring-set owner of a previous process can never match a new one.
    s.generation = shm::load_u32(segments_.control_view()->slots[slot_number(s)].generation);
  }
  start_unix_ = uint64_t(time(nullptr));
  if (!cfg.stats_socket.empty()) {
    stats_ = std::make_unique<StatsSocket>(base_, this, cfg.stats_socket, unsigned(std::stoul(cfg.stats_mode, nullptr, 8)));
    LOG_INFO("stats socket %s (mode %s)", cfg.stats_socket.c_str(), cfg.stats_mode.c_str());
  }
  if (!cfg.metrics_listen.empty()) {
    metrics_ = std::make_unique<MetricsHttp>(base_, this, cfg.metrics_listen);
    LOG_INFO("metrics on http://%s/metrics", cfg.metrics_listen.c_str());
  }
  if (!cfg.transfers_state_dir.empty()) {
    transfers_ = std::make_unique<TransferStore>();
    std::vector<std::string> skipped;
    std::string why;
    if (!transfers_->open(cfg.transfers_state_dir, &skipped, &why)) throw std::runtime_error("transfers.state_dir: " + why);
    for (const std::string& s : skipped) LOG_WARN("transfer file skipped: %s", s.c_str());
    LOG_INFO("transfers: %zu registered in %s", transfers_->size(), cfg.transfers_state_dir.c_str());
    if (transfers_->size() > cfg.transfers_max)
      LOG_WARN("transfers: %zu registered but transfers.max_transfers is %u: only the first %u are served as registered",
               transfers_->size(), cfg.transfers_max, cfg.transfers_max);
    transfers_->set_capacity(cfg.transfers_max);
    publish_transfers(segments_.transfers, transfer_entries());  // no worker runs yet
    progress_ = std::make_unique<TransferProgressPoller>(this, base_);
    transfers_->set_on_change([this](const uint8_t* info_hash, bool added) {
      request_transfers_publish(base_, cfg_, segments_, transfer_entries());
      if (!added) progress_->drop_swarm(info_hash);  // "transfer remove also drops its swarm"
    });
  }
  if (!cfg.admin_listen.empty()) {
    admin_ = std::make_unique<AdminHttp>(base_, transfers_.get(), cfg.admin_listen, progress_.get());
    LOG_INFO("admin API on http://%s/transfers", cfg.admin_listen.c_str());
  }
  stop_deadline_ = evtimer_new(base_, &Supervisor::on_stop_deadline, this);
  ready_check_ = event_new(base_, -1, EV_PERSIST, &Supervisor::on_ready_check, this);
  watchdog_ = event_new(base_, -1, EV_PERSIST, &Supervisor::on_watchdog, this);
}

std::vector<shm::TransferEntry> Supervisor::transfer_entries() {
  uint32_t cap = shm::transfers_header(segments_.transfers.base())->capacity;
  std::vector<bool> used(cap, false);
  std::map<std::string, uint32_t> slots;
  std::vector<shm::TransferEntry> out;
  for (const Transfer* t : transfers_->list()) {  // by info_hash: the order workers search in
    if (out.size() >= cap) break;
    shm::TransferEntry e{};
    std::memcpy(e.info_hash, t->meta.info_hash, 20);
    e.length = t->meta.total_length;
    std::string key(reinterpret_cast<const char*>(e.info_hash), 20);
    auto it = transfer_slots_.find(key);
    e.slot = it == transfer_slots_.end() ? cap : it->second;
    if (e.slot < cap) used[e.slot] = true;
    out.push_back(e);
  }
  shm::TransferStats* stats = shm::transfers_stats(segments_.transfers.base(), cap);
  for (shm::TransferEntry& e : out) {
    if (e.slot >= cap) {  // new: the next free slot in rotation, zeroed
      while (used[next_slot_ % cap]) ++next_slot_;
      e.slot = next_slot_++ % cap;
      used[e.slot] = true;
      stats[e.slot] = shm::TransferStats{};
    }
    slots[std::string(reinterpret_cast<const char*>(e.info_hash), 20)] = e.slot;
  }
  transfer_slots_ = std::move(slots);
  return out;
}

Supervisor::~Supervisor() {
  progress_.reset();
  stats_.reset();
  metrics_.reset();
  admin_.reset();
  if (roll_timer_) event_free(roll_timer_);
  event_free(signal_event_);
  close(signal_fd_);
  for (Slot& s : slots_) event_free(s.restart_timer);
  event_free(stop_deadline_);
  event_free(ready_check_);
  event_free(watchdog_);
  event_base_free(base_);
}

int Supervisor::run() {
  for (Slot& s : slots_) spawn(s);
  timeval tick{0, 50000};
  event_add(ready_check_, &tick);
  timeval second{1, 0};
  if (cfg_.heartbeat_timeout_s) event_add(watchdog_, &second);
  event_base_dispatch(base_);
  return exit_code_;
}

void Supervisor::spawn(Slot& slot) {
  slot.generation++;
  shm::ControlSegment* c = segments_.control_view();
  shm::WorkerSlot& ws = c->slots[slot.role == shm::WorkerRole::socket ? shm::socket_slot(slot.index) : shm::swarm_slot(slot.index)];
  shm::store_u32(ws.ready, 0);
  shm::store_u32(ws.generation, slot.generation);
  if (slot.role == shm::WorkerRole::socket) {
    // The ring set: while a predecessor drains, the one it does not use (whatever happened to
    // earlier successors); otherwise the slot's own (its previous process is gone).
    if (slot.draining_pid != 0) slot.ring_set = 1 - slot.draining_set;
    shm::store_u32(c->socket_sets[slot.index].active_set, slot.ring_set);
    shm::store_u32(c->socket_sets[slot.index].active_generation, slot.generation);
  }
  shm::store_u32(ws.restarts, slot.restarts);
  slot.killed_hung = false;
  pid_t pid = fork();
  if (pid < 0) {
    LOG_ERROR("cannot fork %s: %s; retrying", slot.name().c_str(), strerror(errno));
    schedule_restart(slot);
    return;
  }
  if (pid == 0) become_worker(slot);
  slot.pid = pid;
  slot.started_ns = shm::monotonic_ns();
  slot.state = SlotState::running;
  shm::store_u32(ws.pid, uint32_t(pid));
  LOG_INFO("started %s (pid %d, generation %u)", slot.name().c_str(), int(pid), slot.generation);
}

void Supervisor::become_worker(Slot& slot) {
  // Die with the supervisor, and not start at all if it is already gone.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != self_pid_) _exit(0);
  close(signal_fd_);
  readiness_forget();
  instance_lock_forget();
  for (int sig : kHandledSignals) signal(sig, SIG_DFL);
  // A forwarded SIGHUP must never kill a socket worker that has not installed its handler yet.
  if (slot.role == shm::WorkerRole::socket) signal(SIGHUP, SIG_IGN);
  if (slot.role == shm::WorkerRole::swarm) signal(SIGUSR2, SIG_IGN);  // drain is for socket workers
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  worker::WorkerContext ctx;
  ctx.config = &cfg_;
  ctx.role = slot.role;
  ctx.index = slot.index;
  ctx.generation = slot.generation;
  ctx.ring_set = slot.ring_set;
  ctx.supervisor_pid = self_pid_;
  ctx.socket_eventfds = socket_eventfds_;
  ctx.swarm_eventfds = swarm_eventfds_;
  for (size_t s = 0; s < udp_.size(); s++) {
    for (const worker::UdpSocket& u : udp_[s]) {
      if (slot.role == shm::WorkerRole::socket && s == slot.index)
        ctx.udp_sockets.push_back(u);
      else
        close(u.fd);  // other slots' sockets: never read them here
    }
  }
  for (size_t s = 0; s < tcp_.size(); s++) {
    for (const worker::TcpListener& l : tcp_[s]) {
      if (slot.role == shm::WorkerRole::socket && s == slot.index)
        ctx.tcp_listeners.push_back(l);
      else
        close(l.fd);
    }
  }
  close_inherited_fds(ctx);
  std::string title = "shoald: " + slot.name();
  proctitle_set(title.c_str());
  log_set_role((slot.role == shm::WorkerRole::socket ? "socket/" : "swarm/") + std::to_string(slot.index));
  int rc = slot.role == shm::WorkerRole::socket ? worker::run_socket_worker(ctx) : worker::run_swarm_worker(ctx);
  _exit(rc);
}

// shoalctl reload: the same as SIGUSR1 (supervisor/reload.hpp), with a one-line summary.
bool Supervisor::reload_access_list(std::string* msg) {
  return request_access_list_reload(base_, cfg_, segments_, msg);
}

void Supervisor::wake_swarm_worker(uint32_t j) const {
  uint64_t one = 1;
  ssize_t r = write(swarm_eventfds_[j], &one, sizeof one);
  (void)r;
}

Slot* Supervisor::slot_by_pid(pid_t pid) {
  for (Slot& s : slots_)
    if (s.pid == pid || (s.draining_pid != 0 && s.draining_pid == pid)) return &s;
  return nullptr;
}

size_t Supervisor::live_children() const {
  return size_t(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.pid != 0 || s.draining_pid != 0; }));
}

void Supervisor::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    Slot* slot = slot_by_pid(pid);
    if (slot && pid == slot->draining_pid)
      on_drained_exit(*slot, status);
    else if (slot)
      on_worker_exit(*slot, status);
  }
  if (stopping_ && live_children() == 0) event_base_loopbreak(base_);
}

void Supervisor::on_worker_exit(Slot& slot, int status) {
  pid_t pid = slot.pid;
  slot.pid = 0;
  shm::ControlSegment* c = segments_.control_view();
  shm::WorkerSlot& ws = c->slots[slot.role == shm::WorkerRole::socket ? shm::socket_slot(slot.index) : shm::swarm_slot(slot.index)];
  shm::store_u32(ws.pid, 0);
  shm::store_u32(ws.ready, 0);
  if (slot.role == shm::WorkerRole::socket)  // its ring set is orphaned until the restart
    shm::store_u32(c->socket_sets[slot.index].active_generation, 0);
  bool planned = slot.state == SlotState::draining;  // stopped by a rolling restart
  char cause[128];
  if (slot.killed_hung)
    snprintf(cause, sizeof cause, "was killed by the watchdog (its heartbeat had stopped)");
  else if (WIFSIGNALED(status))
    snprintf(cause, sizeof cause, "was terminated by signal %d: %s%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
             WCOREDUMP(status) ? " (core dumped)" : "");
  else
    snprintf(cause, sizeof cause, "exited with code %d", WEXITSTATUS(status));
  if (stopping_ || planned) {
    slot.state = SlotState::empty;
    LOG_INFO("%s (pid %d) %s%s", slot.name().c_str(), int(pid), cause, planned ? " (rolling restart)" : "");
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
    slot.state = SlotState::disabled;
    LOG_ERROR("%s (pid %d) %s: fatal setup error, not restarting; stopping shoald", slot.name().c_str(), int(pid), cause);
    readiness_failed(slot.name() + " could not start (" + cause + "); its error is in the log");
    begin_stop("a worker could not start", 1);
    return;
  }
  if (crash_loop_tripped(slot, status, cause)) return;
  uint64_t ran_ns = shm::monotonic_ns() - slot.started_ns;
  if (ran_ns >= uint64_t(cfg_.restart_healthy_after_s) * 1000000000ull) slot.crash_streak = 0;
  slot.restarts++;
  uint64_t delay = schedule_restart(slot);
  LOG_WARN("%s (pid %d) %s; restarting in %llu ms (restart %u)", slot.name().c_str(), int(pid), cause,
           (unsigned long long)delay, slot.restarts);
}

// The crash-loop breaker (as init systems have: systemd's StartLimitBurst): a slot whose worker
// crashed crash_loop_limit times within crash_loop_window is not restarted again, so a worker
// that dies on every start, or on a request it is handed again after each restart, stops
// burning CPU and flooding the log. SIGKILL comes from outside (an operator, the OOM killer, a
// kill -9 test) and is not counted. The rest of shoald keeps serving; the slot shows
// "disabled" in show workers and shoal_worker_disabled, and systemd's status says so. A
// rolling restart (shoalctl restart workers, SIGUSR2) starts it again.
bool Supervisor::crash_loop_tripped(Slot& slot, int status, const char* cause) {
  // A hang the watchdog ended counts: a request that hangs every worker it reaches is a loop too.
  if (cfg_.crash_loop_limit == 0 || (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !slot.killed_hung)) return false;
  uint64_t now = shm::monotonic_ns(), window = uint64_t(cfg_.crash_loop_window_s) * 1000000000ull;
  std::vector<uint64_t>& t = slot.crash_times_ns;
  t.push_back(now);
  t.erase(std::remove_if(t.begin(), t.end(), [&](uint64_t x) { return now - x > window; }), t.end());
  if (t.size() < cfg_.crash_loop_limit) return false;
  slot.state = SlotState::disabled;
  slot.crash_looping = true;
  slot.restarts++;
  LOG_ERROR("%s %s: it crashed %zu times within %u s, a crash loop: not restarting it (the other workers keep "
            "serving). Fix the cause in the log above, then shoalctl restart workers (or SIGUSR2) starts it again",
            slot.name().c_str(), cause, t.size(), cfg_.crash_loop_window_s);
  readiness_status("degraded: " + slot.name() + " stopped after a crash loop; see the log");
  return true;
}

// Back-off: restart_backoff_min doubled for each crash in a row, capped at restart_backoff_max.
uint64_t Supervisor::schedule_restart(Slot& slot) {
  slot.crash_streak++;
  uint64_t delay = cfg_.restart_backoff_min_ms;
  for (uint32_t i = 1; i < slot.crash_streak && delay < cfg_.restart_backoff_max_ms; i++) delay *= 2;
  delay = std::min<uint64_t>(delay, cfg_.restart_backoff_max_ms);
  slot.state = SlotState::backoff;
  timeval tv{long(delay / 1000), long((delay % 1000) * 1000)};
  evtimer_add(slot.restart_timer, &tv);
  return delay;
}

void Supervisor::begin_stop(const char* why, int exit_code) {
  if (stopping_) return;
  stopping_ = true;
  exit_code_ = exit_code;
  readiness_stopping();
  LOG_INFO("stopping (%s): signalling %zu workers", why, live_children());
  for (Slot& s : slots_) {
    evtimer_del(s.restart_timer);
    if (s.pid) kill(s.pid, SIGTERM);
    if (s.draining_pid) kill(s.draining_pid, SIGTERM);
  }
  timeval grace{kStopGraceSeconds, 0};
  evtimer_add(stop_deadline_, &grace);
  if (live_children() == 0) event_base_loopbreak(base_);
}

void Supervisor::check_ready() {
  if (announced_ready_) return;
  shm::ControlSegment* c = segments_.control_view();
  for (const Slot& s : slots_) {
    const shm::WorkerSlot& ws = c->slots[s.role == shm::WorkerRole::socket ? shm::socket_slot(s.index) : shm::swarm_slot(s.index)];
    if (shm::load_u32(ws.ready) != s.generation) return;
  }
  announced_ready_ = true;
  LOG_INFO("ready: %u socket workers, %u swarm workers", cfg_.socket_workers, cfg_.swarm_workers);
  readiness_ready("serving: " + std::to_string(cfg_.socket_workers) + " socket workers, " +
                  std::to_string(cfg_.swarm_workers) + " swarm workers");
}

// SIGHUP: the only reloadable state so far is the TLS certificate, which each socket worker
// re-reads itself (so a worker that cannot read it keeps its old one and says so).
void Supervisor::forward_reload() {
  if (!cfg_.https_enabled && !cfg_.wss_enabled) {
    LOG_INFO("SIGHUP received: nothing to reload (https and wss are off)");
    return;
  }
  size_t n = 0;
  for (const Slot& s : slots_) {
    if (s.role != shm::WorkerRole::socket || s.pid == 0) continue;
    if (kill(s.pid, SIGHUP) == 0) n++;
  }
  LOG_INFO("SIGHUP received: asked %zu socket workers to reload the TLS certificate", n);
}

void Supervisor::on_signal(evutil_socket_t fd, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  signalfd_siginfo si;
  while (read(fd, &si, sizeof si) == ssize_t(sizeof si)) {
    int sig = int(si.ssi_signo);
    switch (sig) {
      case SIGTERM: self->begin_stop("SIGTERM", 0); break;
      case SIGINT: self->begin_stop("SIGINT", 0); break;
      case SIGCHLD: self->reap(); break;
      case SIGHUP: self->forward_reload(); break;
      case SIGUSR2: {
        std::string msg;
        self->start_rolling_restart(&msg);
        LOG_INFO("SIGUSR2: %s", msg.c_str());
        break;
      }
      case SIGUSR1: request_access_list_reload(self->base_, self->cfg_, self->segments_); break;
      default: LOG_INFO("signal %d (%s) received: nothing to reload in this version", sig, strsignal(sig));
    }
  }
}

void Supervisor::on_restart_timer(evutil_socket_t, short, void* arg) {
  Slot* slot = static_cast<Slot*>(arg);
  if (!slot->owner->stopping_) slot->owner->spawn(*slot);
}

void Supervisor::on_stop_deadline(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  for (Slot& s : self->slots_) {
    for (pid_t pid : {s.pid, s.draining_pid}) {
      if (!pid) continue;
      LOG_WARN("%s (pid %d) did not stop within %d s: sending SIGKILL", s.name().c_str(), int(pid), kStopGraceSeconds);
      kill(pid, SIGKILL);
    }
  }
}

void Supervisor::on_watchdog(evutil_socket_t, short, void* arg) { static_cast<Supervisor*>(arg)->check_heartbeats(); }

void Supervisor::check_heartbeats() {
  if (stopping_) return;
  uint32_t now = shm::seconds_since(segments_.control_view()->header.clock_base_ns);
  for (Slot& s : slots_) {
    if (s.pid == 0 || s.state != SlotState::running || s.killed_hung) continue;
    const shm::WorkerSlot& ws = segments_.control_view()->slots[slot_number(s)];
    if (shm::load_u32(ws.ready) != s.generation) continue;  // still starting: no heartbeat yet
    uint32_t tick = shm::load_u32(ws.last_tick);
    if (now < tick || now - tick < cfg_.heartbeat_timeout_s) continue;
    LOG_ERROR("%s (pid %d) is hung: no heartbeat for %u s (supervisor.heartbeat_timeout %u s); killing it to restart it",
              s.name().c_str(), int(s.pid), now - tick, cfg_.heartbeat_timeout_s);
    s.killed_hung = true;
    kill(s.pid, SIGKILL);
  }
}

void Supervisor::on_ready_check(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  self->check_ready();
  if (self->announced_ready_) event_del(self->ready_check_);
}

}  // namespace shoal::supervisor
