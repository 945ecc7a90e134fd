// supervisor/main.cpp — shoald's entry point: parses the command line, loads the
// configuration, and either prints/tests it or starts the supervisor. Nothing else.
#include <getopt.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "conf/access_list.hpp"
#include "conf/config.hpp"
#include "shm/layout.hpp"
#include "supervisor/daemon.hpp"
#include "supervisor/listeners.hpp"
#include "supervisor/log.hpp"
#include "supervisor/proctitle.hpp"
#include "supervisor/segments.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/version.hpp"
#include "worker/tls.hpp"

namespace {

using shoal::kShoalVersion;

struct Options {
  std::string config_path;  // empty: embedded default
  bool test = false, print = false, daemon = false;
};

void usage(FILE* out) {
  fprintf(out,
          "usage: shoald [-c FILE] [-t] [-p] [-d] [-h] [-V]\n"
          "  -c FILE  configuration file (default: the embedded configuration, see -p)\n"
          "  -t       test the configuration and exit (0 valid, 1 invalid)\n"
          "  -p       print the default configuration and exit\n"
          "  -d       daemonize: detach, log to syslog, write the pid file\n"
          "  -V       print version and shared-memory layout version\n"
          "  -h       this help\n");
}

// Returns -1 to go on, or an exit code.
int parse_args(int argc, char** argv, Options* o) {
  static const option longopts[] = {{"help", no_argument, nullptr, 'h'}, {"version", no_argument, nullptr, 'V'}, {}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:tpdhV", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': o->config_path = optarg; break;
      case 't': o->test = true; break;
      case 'p': o->print = true; break;
      case 'd': o->daemon = true; break;
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

int start(const shoal::conf::Config& cfg, const Options& o) {
  using namespace shoal;
  shoal::LogLevel level = LogLevel::info;
  parse_log_level(cfg.log_level, &level);
  log_init(level, false);
  std::string why = worker::tls_check_config(cfg);  // before detaching, so the error is seen
  if (!why.empty()) return LOG_ERROR("cannot start: %s", why.c_str()), 1;
  if (o.daemon) {
    if (!supervisor::daemonize(&why)) return LOG_ERROR("cannot daemonize: %s", why.c_str()), 1;
    log_init(level, true);
    if (!supervisor::write_pid_file(cfg.pid_file, &why)) return LOG_ERROR("cannot write pid file %s", why.c_str()), 1;
  }
  signal(SIGPIPE, SIG_IGN);
  std::string title = "shoald: supervisor " + cfg.source;
  proctitle_set(title.c_str());
  try {
    supervisor::SegmentSet segs = supervisor::create_segments(cfg);
    auto udp = supervisor::open_udp_listeners(cfg);
    for (const auto& s : udp.empty() ? std::vector<worker::UdpSocket>{} : udp[0])
      LOG_INFO("udp listening on %s (%u sockets, SO_REUSEPORT)", supervisor::bound_address(s.fd).c_str(), cfg.socket_workers);
    auto tcp = supervisor::open_tcp_listeners(cfg);
    for (const auto& l : tcp.empty() ? std::vector<worker::TcpListener>{} : tcp[0])
      LOG_INFO("%s listening on %s (%u sockets, SO_REUSEPORT)", l.tls ? "https" : "http",
               supervisor::bound_address(l.fd).c_str(), cfg.socket_workers);
    LOG_INFO("shoald %s starting: config %s, shm \"%s\", layout %u", kShoalVersion, cfg.source.c_str(), cfg.shm_name.c_str(),
             shm::kLayoutVersion);
    supervisor::Supervisor sup(cfg, std::move(segs), std::move(udp), std::move(tcp));
    int rc = sup.run();
    supervisor::unlink_segments(cfg);
    LOG_INFO("stopped; shared memory removed (swarm state is not kept across a clean stop in this version)");
    if (o.daemon) unlink(cfg.pid_file.c_str());
    return rc;
  } catch (const std::exception& e) {
    LOG_ERROR("cannot start: %s", e.what());
    supervisor::unlink_segments(cfg);
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
  }
  if (!r.ok()) {
    if (o.test) fprintf(stderr, "shoald: configuration %s test failed\n", r.config.source.c_str());
    return 1;
  }
  if (o.test) {
    printf("shoald: configuration %s syntax is ok\nshoald: configuration %s test is successful\n", r.config.source.c_str(),
           r.config.source.c_str());
    return 0;
  }
  return start(r.config, o);
}
