// supervisor/supervisor.cpp — see supervisor.hpp. The supervisor's event loop handles, in
// order of arrival, signals (TERM/INT stop, CHLD reap, HUP: connection-id key file re-read and
// forwarded to socket workers for the TLS certificate, USR1 access-list reload, USR2 rolling restart), the timers of the worker
// cycle (supervisor/worker_cycle.hpp: restarts, rolling restart, stop deadline) and the stats,
// metrics and admin sockets. Workers are forked from timer/signal callbacks (through
// SystemProcessOps); the child drops the parent's loop (never touches it) and builds its own.
#include "supervisor/supervisor.hpp"

#include "shm/rings_layout.hpp"

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
#include "supervisor/cluster_transfers.hpp"
#include "supervisor/conn_id_keys.hpp"
#include "supervisor/log.hpp"
#include "supervisor/admin_http.hpp"
#include "supervisor/instance_lock.hpp"
#include "supervisor/metrics_http.hpp"
#include "supervisor/process_ops.hpp"
#include "supervisor/proctitle.hpp"
#include "supervisor/readiness.hpp"
#include "supervisor/reload.hpp"
#include "supervisor/transfer_progress.hpp"
#include "supervisor/stats_socket.hpp"

namespace shoal::supervisor {

namespace {
constexpr int kHandledSignals[] = {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2};

// In a new worker: closes every descriptor except stdio and those in `ctx` (the supervisor's
// loop, signalfd, stats/metrics sockets and their clients are none of the worker's business).
void close_inherited_fds(const worker::WorkerContext& ctx) {
  std::vector<int> keep = ctx.socket_eventfds;
  keep.insert(keep.end(), ctx.swarm_eventfds.begin(), ctx.swarm_eventfds.end());
  if (ctx.handoff_eventfd >= 0) keep.push_back(ctx.handoff_eventfd);
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
  // One eventfd per socket slot and ring set: during a rolling restart the old and the new
  // process of a slot wait on their own, so a wake-up for one is never eaten by the other.
  for (uint32_t i = 0; i < cfg.socket_workers * shm::RingsGeometry::kSets; i++) socket_eventfds_.push_back(make_eventfd());
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) swarm_eventfds_.push_back(make_eventfd());
  // One per swarm slot: the partition handoff of a rolling restart (worker/swarm_handoff.hpp).
  for (uint32_t i = 0; i < cfg.swarm_workers; i++) handoff_eventfds_.push_back(make_eventfd());
  base_ = event_base_new();
  if (!base_) throw std::runtime_error("event_base_new failed");
  // The worker cycle forks through ops_, whose timers call back into it on this loop.
  ops_ = std::make_unique<SystemProcessOps>(base_, size_t(cfg.swarm_workers + cfg.socket_workers),
                                            [this](const Slot& s) { become_worker(s); }, handoff_eventfds_);
  cycle_ = std::make_unique<WorkerCycle>(cfg_, segments_.control_view(), ops_.get());
  ops_->set_cycle(cycle_.get());
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
      if (cluster_transfers_) cluster_transfers_->local_change(info_hash, added);
    });
    if (cfg.cluster_enabled)  // registrations and removals reach every node (docs/cluster.md)
      cluster_transfers_ = std::make_unique<ClusterTransferLink>(
          transfers_.get(), base_, segments_.cluster.base(), shm::ClusterGeometry{cfg.swarm_workers, cfg.cluster_ring_slots});
  }
  if (!cfg.admin_listen.empty()) {
    admin_ = std::make_unique<AdminHttp>(base_, transfers_.get(), cfg.admin_listen, progress_.get());
    LOG_INFO("admin API on http://%s/transfers", cfg.admin_listen.c_str());
  }
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
  cluster_transfers_.reset();
  progress_.reset();
  stats_.reset();
  metrics_.reset();
  admin_.reset();
  event_free(signal_event_);
  close(signal_fd_);
  event_free(ready_check_);
  event_free(watchdog_);
  cycle_.reset();
  ops_.reset();
  event_base_free(base_);
}

int Supervisor::run() {
  cycle_->start_all();
  timeval tick{0, 50000};
  event_add(ready_check_, &tick);
  timeval second{1, 0};
  if (cfg_.heartbeat_timeout_s) event_add(watchdog_, &second);
  event_base_dispatch(base_);
  return cycle_->exit_code();
}

void Supervisor::become_worker(const Slot& slot) {
  // Die with the supervisor, and not start at all if it is already gone.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != self_pid_) _exit(0);
  close(signal_fd_);
  readiness_forget();
  instance_lock_forget();
  for (int sig : kHandledSignals) signal(sig, SIG_DFL);
  // A forwarded SIGHUP must never kill a socket worker that has not installed its handler yet.
  if (slot.role == shm::WorkerRole::socket) signal(SIGHUP, SIG_IGN);
  if (slot.role != shm::WorkerRole::socket) signal(SIGUSR2, SIG_IGN);  // drain is for socket workers
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
  if (slot.role == shm::WorkerRole::swarm) {
    ctx.handoff_eventfd = handoff_eventfds_[slot.index];
    ctx.handoff_from = slot.handoff_from;
  }
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
  log_set_role(std::string(role_name(slot.role)) + "/" + std::to_string(slot.index));
  int rc = slot.role == shm::WorkerRole::socket  ? worker::run_socket_worker(ctx)
           : slot.role == shm::WorkerRole::swarm ? worker::run_swarm_worker(ctx)
                                                 : worker::run_sync_worker(ctx);
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

void Supervisor::check_ready() {
  if (announced_ready_) return;
  if (!cycle_->all_ready()) return;
  announced_ready_ = true;
  LOG_INFO("ready: %u socket workers, %u swarm workers", cfg_.socket_workers, cfg_.swarm_workers);
  readiness_ready("serving: " + std::to_string(cfg_.socket_workers) + " socket workers, " +
                  std::to_string(cfg_.swarm_workers) + " swarm workers");
}

// SIGHUP: the connection-id key file, which the supervisor re-reads and publishes (a bad file
// keeps the keys in force), and the TLS certificate, which each socket worker re-reads itself
// (so a worker that cannot read it keeps its old one and says so).
void Supervisor::forward_reload() {
  if (!cfg_.udp_connection_id_key_file.empty()) reload_conn_id_keys(cfg_, segments_.control_view());
  if (!cfg_.https_enabled && !cfg_.wss_enabled) {
    if (cfg_.udp_connection_id_key_file.empty())
      LOG_INFO("SIGHUP received: nothing to reload (no udp.connection_id_key_file; https and wss are off)");
    return;
  }
  size_t n = 0;
  for (const Slot& s : cycle_->slots()) {
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
      case SIGTERM: self->cycle_->begin_stop("SIGTERM", 0); break;
      case SIGINT: self->cycle_->begin_stop("SIGINT", 0); break;
      case SIGCHLD: self->cycle_->reap(); break;
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

void Supervisor::on_watchdog(evutil_socket_t, short, void* arg) { static_cast<Supervisor*>(arg)->cycle_->check_heartbeats(); }

bool Supervisor::start_rolling_restart(std::string* msg) { return cycle_->start_rolling_restart(msg); }

void Supervisor::on_ready_check(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Supervisor*>(arg);
  self->check_ready();
  if (self->announced_ready_) event_del(self->ready_check_);
}

}  // namespace shoal::supervisor
