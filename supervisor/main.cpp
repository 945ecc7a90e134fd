// supervisor/main.cpp — shoald's entry point: parses the command line, loads the
// configuration, and either prints/tests it or starts the supervisor. Nothing else.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "conf/access_list.hpp"
#include "conf/conn_id_key_file.hpp"
#include "conf/topology_map.hpp"
#include "conf/config.hpp"
#include "shm/layout.hpp"
#include "supervisor/conn_id_keys.hpp"
#include "supervisor/daemon.hpp"
#include "supervisor/instance_lock.hpp"
#include "supervisor/listeners.hpp"
#include "supervisor/log.hpp"
#include "supervisor/privileges.hpp"
#include "supervisor/proctitle.hpp"
#include "supervisor/readiness.hpp"
#include "supervisor/segments.hpp"
#include "supervisor/snapshot_file.hpp"
#include "supervisor/stats_cluster.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/version.hpp"
#include "worker/tls.hpp"

namespace {

using shoal::kShoalVersion;

struct Options {
  std::string config_path;  // empty: embedded default
  bool test = false, print = false, daemon = false;
  bool fresh = false;  // --fresh: discard the shared memory a previous shoald left
  bool remove_shm = false;  // --remove-shm: delete a stopped shoald's segments and exit
};

void usage(FILE* out) {
  fprintf(out,
          "usage: shoald [-c FILE] [-t] [-p] [-d] [--fresh] [--remove-shm] [-h] [-V]\n"
          "  -c FILE  configuration file (default: the embedded configuration, see -p)\n"
          "  -t       test the configuration and exit (0 valid, 1 invalid)\n"
          "  -p       print the default configuration and exit\n"
          "  -d       daemonize: detach, log to syslog, write the pid file\n"
          "  --fresh  discard the swarms kept in shared memory by a previous shoald\n"
          "  --remove-shm  delete the shared memory (/dev/shm/SHM_NAME-*) a stopped shoald left, and exit\n"
          "  -V       print version and shared-memory layout version\n"
          "  -h       this help\n");
}

// Returns -1 to go on, or an exit code.
int parse_args(int argc, char** argv, Options* o) {
  static const option longopts[] = {{"help", no_argument, nullptr, 'h'}, {"version", no_argument, nullptr, 'V'},
                                     {"fresh", no_argument, nullptr, 'F'}, {"remove-shm", no_argument, nullptr, 'R'},
                                     {}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:tpdhV", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': o->config_path = optarg; break;
      case 't': o->test = true; break;
      case 'p': o->print = true; break;
      case 'd': o->daemon = true; break;
      case 'F': o->fresh = true; break;
      case 'R': o->remove_shm = true; break;
      case 'h': usage(stdout); return 0;
      case 'V': printf("shoald %s, shm layout %u\n", kShoalVersion, shoal::shm::kLayoutVersion); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "shoald: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return 2;
  }
  return -1;
}

// Torrents and peers of every partition, from the gauges its swarm worker last published.
void swarm_totals(const shoal::shm::ControlSegment* c, const shoal::conf::Config& cfg, uint64_t* torrents, uint64_t* peers) {
  shoal::shm::GaugeTotals t = shoal::shm::sum_gauges(c, cfg.swarm_workers);
  *torrents = t.torrents;
  *peers = t.peers_v4 + t.peers_v6 + t.peers_ws;
}

// `shoald -t`: "" when tracker.snapshot_load is unset, missing (shoald then starts empty: said on
// stdout) or a good snapshot; else why it is not.
std::string check_snapshot_config(const shoal::conf::Config& cfg) {
  if (cfg.snapshot_load.empty()) return "";
  shoal::shm::SnapshotInfo info;
  shoal::shm::SnapshotTotals totals;
  bool missing = false;
  std::string why = shoal::supervisor::check_snapshot_file(cfg.snapshot_load, &info, &totals, &missing);
  if (missing) printf("shoald: snapshot %s: not found: shoald would start with empty swarms\n", cfg.snapshot_load.c_str());
  else if (why.empty())
    printf("shoald: snapshot %s is good: %llu torrents, %llu peers, taken by %s at unix time %llu\n", cfg.snapshot_load.c_str(),
           (unsigned long long)totals.torrents, (unsigned long long)totals.peers, info.node.c_str(), (unsigned long long)info.created_unix);
  return missing ? "" : why.empty() ? "" : "snapshot " + why;
}

// fn() with the identity of daemon.user (supervisor/privileges.hpp): its result, or why the
// switch failed.
template <class F>
std::string as_user(const shoal::supervisor::Identity& id, F fn) {
  try {
    shoal::supervisor::AsUser user(id);
    return fn();
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Re-attaches what a previous shoald left (same layout and geometry) unless --fresh, else
// creates new segments. *kept tells which.
shoal::supervisor::SegmentSet open_segments(const shoal::conf::Config& cfg, bool fresh, bool* kept) {
  using namespace shoal;
  supervisor::SegmentSet segs;
  *kept = false;
  bool exists = access(("/dev/shm/" + cfg.shm_name + "-control").c_str(), F_OK) == 0;
  if (exists && fresh) LOG_INFO("--fresh: discarding the shared memory a previous shoald left");
  if (exists && !fresh) {
    std::string why;
    if (supervisor::reattach_segments(cfg, &segs, &why)) {
      supervisor::create_access_segment(cfg, &segs, segs.control_view()->header.clock_base_ns);
      uint64_t torrents = 0, peers = 0;
      swarm_totals(segs.control_view(), cfg, &torrents, &peers);
      LOG_INFO("re-attached the shared memory of a previous shoald: %llu torrents, %llu peers kept",
               (unsigned long long)torrents, (unsigned long long)peers);
      *kept = true;
      return segs;
    }
    LOG_WARN("cannot re-attach the shared memory a previous shoald left (%s); starting fresh", why.c_str());
  }
  return supervisor::create_segments(cfg);
}

int start(const shoal::conf::Config& cfg, const Options& o) {
  using namespace shoal;
  shoal::LogLevel level = LogLevel::info;
  parse_log_level(cfg.log_level, &level);
  log_init(level, false);
  supervisor::Identity id;  // daemon.user: whom the workers, and the supervisor after binding, run as
  std::string why;
  if (!supervisor::resolve_identity(cfg, &id, &why)) return LOG_ERROR("cannot start: %s", why.c_str()), 1;
  why = as_user(id, [&] { return worker::tls_check_config(cfg); });  // the workers read them as daemon.user
  if (!why.empty() && id.change) why += " (read as daemon.user " + id.user + ")";
  if (!why.empty()) return LOG_ERROR("cannot start: %s", why.c_str()), 1;  // before detaching, so it is seen
  // Another user's segments can be neither re-attached nor replaced: say so once, clearly
  // (with daemon.user, once the lock is held and root's leftovers are the user's).
  if (!id.change) why = supervisor::foreign_segments_problem(cfg);
  if (!why.empty()) return LOG_ERROR("cannot start: %s", why.c_str()), 1;
  if (o.daemon) {
    if (!supervisor::daemonize(&why)) return LOG_ERROR("cannot daemonize: %s", why.c_str()), 1;
    log_init(level, true);
  }
  // One supervisor per shm_name, before anything is attached, bound, unlinked or written (the
  // pid file of the running one stays).
  if (!supervisor::acquire_instance_lock(cfg.shm_name, &why)) {
    LOG_ERROR("cannot start: %s", why.c_str());
    supervisor::readiness_failed(why);
    return 1;
  }
  if (o.daemon && !supervisor::write_pid_file(cfg.pid_file, &why)) {
    LOG_ERROR("cannot write pid file %s", why.c_str());
    supervisor::readiness_failed("cannot write pid file " + why);
    return 1;
  }
  if (id.change) {
    supervisor::hand_over_segments(cfg, id);
    why = as_user(id, [&] { return supervisor::foreign_segments_problem(cfg); });
    if (!why.empty()) {
      LOG_ERROR("cannot start: %s", why.c_str());
      supervisor::readiness_failed(why);
      return 1;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  bool created_fresh = true;
  std::string title = "shoald: supervisor " + cfg.source;
  proctitle_set(title.c_str());
  try {
    bool kept = false;
    supervisor::SegmentSet segs;
    {
      // The segments are daemon.user's: its workers attach them, and the next start re-attaches
      // them as that user, needing no capability to override file permissions.
      supervisor::AsUser user(id);
      segs = open_segments(cfg, o.fresh, &kept);
      supervisor::publish_conn_id_keys_at_start(cfg, segs.control_view());  // udp.connection_id_key_file, read as daemon.user
      if (!kept) supervisor::prepare_snapshot_load(cfg, segs);  // new partitions: fill them from tracker.snapshot_load
      if (!kept) supervisor::prepare_cluster_join(cfg, segs);   // and from a live node's snapshot
    }
    created_fresh = !kept;
    auto udp = supervisor::open_udp_listeners(cfg);
    for (const auto& s : udp.empty() ? std::vector<worker::UdpSocket>{} : udp[0])
      LOG_INFO("udp listening on %s (%u sockets, SO_REUSEPORT)", supervisor::bound_address(s.fd).c_str(), cfg.socket_workers);
    auto tcp = supervisor::open_tcp_listeners(cfg);
    for (const auto& l : tcp.empty() ? std::vector<worker::TcpListener>{} : tcp[0])
      LOG_INFO("%s listening on %s (%u sockets, SO_REUSEPORT)", l.scheme(),
               supervisor::bound_address(l.fd).c_str(), cfg.socket_workers);
    LOG_INFO("shoald %s starting: config %s, shm \"%s\", layout %u", kShoalVersion, cfg.source.c_str(), cfg.shm_name.c_str(),
             shm::kLayoutVersion);
    supervisor::Supervisor sup(cfg, std::move(segs), std::move(udp), std::move(tcp));
    // Everything is bound: from here on no process of shoald is root (daemon.user).
    if (id.change) {
      supervisor::hand_over_files(cfg, id);
      if (!supervisor::drop_privileges(id, &why)) throw std::runtime_error("cannot run as daemon.user " + id.user + ": " + why);
      why = supervisor::check_access_as_user(cfg, id);
      if (!why.empty()) throw std::runtime_error(why);
    }
    int rc = sup.run();
    // No effect once ready: these only reach a `shoald -d` still waiting for the first word.
    if (rc != 0) supervisor::readiness_failed("stopped during start (exit code " + std::to_string(rc) + "); see the log");
    else supervisor::readiness_failed("stopped by a signal before every worker was ready");
    uint64_t torrents = 0, peers = 0;
    swarm_totals(sup.control(), cfg, &torrents, &peers);
    LOG_INFO("stopped; shared memory kept (%llu torrents, %llu peers): the next shoald with this configuration "
             "re-attaches it, --fresh discards it", (unsigned long long)torrents, (unsigned long long)peers);
    if (o.daemon) unlink(cfg.pid_file.c_str());
    return rc;
  } catch (const std::exception& e) {
    LOG_ERROR("cannot start: %s", e.what());
    supervisor::readiness_failed(e.what());
    if (created_fresh) {  // never throw kept swarms away
      supervisor::unlink_segments(cfg);
      unlink(supervisor::instance_lock_path(cfg.shm_name).c_str());  // still held: nobody else uses it
    }
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  shoal::proctitle_init(argc, argv);
  Options o;
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) return rc;
  if (o.print) {
    fputs(shoal::conf::default_config_text(), stdout);
    return 0;
  }
  shoal::conf::LoadResult r = o.config_path.empty()
                                  ? shoal::conf::load_config_text(shoal::conf::default_config_text(), "<embedded default>")
                                  : shoal::conf::load_config_file(o.config_path);
  for (const auto& e : r.errors) fprintf(stderr, "shoald: %s\n", e.to_string().c_str());
  if (r.ok() && o.test) {
    std::string tls = shoal::worker::tls_check_config(r.config);
    if (!tls.empty()) {
      fprintf(stderr, "shoald: %s: %s\n", r.config.source.c_str(), tls.c_str());
      r.errors.push_back({r.config.source, 0, "", tls});
    }
    std::string acl = shoal::conf::check_access_list_config(r.config);  // "path:line: reason"
    if (!acl.empty()) {
      fprintf(stderr, "shoald: %s\n", acl.c_str());
      r.errors.push_back({r.config.source, 0, "", acl});
    }
    std::string keys = shoal::conf::check_key_file_config(r.config);  // "udp.connection_id_key_file path[:line]: reason"
    if (!keys.empty()) {
      fprintf(stderr, "shoald: %s\n", keys.c_str());
      r.errors.push_back({r.config.source, 0, "", keys});
    }
    std::string account = shoal::supervisor::check_identity_names(r.config);  // daemon.user, daemon.group
    if (!account.empty()) {
      fprintf(stderr, "shoald: %s: %s\n", r.config.source.c_str(), account.c_str());
      r.errors.push_back({r.config.source, 0, "", account});
    }
    std::string map = shoal::conf::check_topology_config(r.config);  // "path:line: reason"
    if (!map.empty()) {
      fprintf(stderr, "shoald: %s\n", map.c_str());
      r.errors.push_back({r.config.source, 0, "", map});
    }
    std::string snap = check_snapshot_config(r.config);  // "snapshot PATH: offset N: reason"
    if (!snap.empty()) {
      fprintf(stderr, "shoald: %s\n", snap.c_str());
      r.errors.push_back({r.config.source, 0, "", snap});
    }
  }
  if (!r.ok()) {
    if (o.test) fprintf(stderr, "shoald: configuration %s test failed\n", r.config.source.c_str());
    return 1;
  }
  if (o.remove_shm) return shoal::supervisor::remove_segments_command(r.config);
  if (o.test) {
    printf("shoald: configuration %s syntax is ok\nshoald: configuration %s test is successful\n", r.config.source.c_str(),
           r.config.source.c_str());
    return 0;
  }
  return start(r.config, o);
}
