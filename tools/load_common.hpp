// load_common.hpp — pieces shared by the load generators in tools/ (udp_load, http_load):
// monotonic clock, splitmix64 RNG, the log-linear latency histogram, the simulated peer
// population with its Pareto (rank-size Zipf) popularity and the info hashes derived from
// --seed (so one whitelist fits udp_load and http_load), argument parsers that accept loopback
// targets only, and the options both generators take (CommonOptions). Header-only.
#pragma once
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <string>
#include <vector>

namespace shoal_load {

constexpr uint64_t kSec = 1000000000ull;

/// The parts of a generator's options that the shared code reads.
struct Population {
  uint64_t torrents = 100000, peers = 200000;
  double pareto = 1.16, seeder_ratio = 0.25;
};

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * kSec + uint64_t(ts.tv_nsec);
}

/// splitmix64 step; also derives info hashes (identical to udp_load).
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Rng {
  uint64_t s;
  uint64_t next() { s += 0x9e3779b97f4a7c15ull; return mix64(s); }
  double unit() { return double(next() >> 11) * 0x1.0p-53; }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
};

/// Log-linear latency histogram in ns, 16 sub-buckets per power of two (as udp_load).
struct Histogram {
  static constexpr int kBuckets = 32 + 59 * 16;
  uint64_t counts[kBuckets] = {};
  uint64_t total = 0;
  static int bucket(uint64_t v) {
    if (v < 32) return int(v);
    int e = 63 - __builtin_clzll(v);
    return 32 + (e - 5) * 16 + int((v >> (e - 4)) & 15);
  }
  static double value(int b) {
    if (b < 32) return b;
    int e = (b - 32) / 16 + 5, sub = (b - 32) % 16;
    double width = double(1ull << (e - 4));
    return (16 + sub) * width + width / 2;
  }
  void add(uint64_t v) { ++counts[bucket(v)]; ++total; }
  double quantile_us(double q) const {
    uint64_t rank = uint64_t(std::ceil(q * double(total))), seen = 0;
    for (int b = 0; b < kBuckets && total; ++b)
      if ((seen += counts[b]) >= std::max<uint64_t>(rank, 1)) return value(b) / 1000.0;
    return 0;
  }
};

struct Peer {
  uint32_t torrent;
  bool started = false, seeder = false;
};

/// The simulated peers and the key of their info hashes (same draws as udp_load).
struct Workload {
  std::vector<Peer> peers;
  uint64_t hash_key = 0;
  void info_hash(uint32_t t, uint8_t* out) const {
    uint64_t a = mix64(hash_key ^ t), b = mix64(a), c = mix64(b);
    memcpy(out, &a, 8); memcpy(out + 8, &b, 8); memcpy(out + 16, &c, 4);
  }
};

/// Builds peers: a floor of one peer per torrent, the rest Zipf(1/shape) (as udp_load).
inline Workload build_workload(const Population& o, Rng& rng) {
  Workload w;
  w.hash_key = rng.next();
  std::vector<double> cdf(o.torrents);
  double acc = 0;
  for (uint64_t i = 0; i < o.torrents; ++i) cdf[i] = acc += std::pow(double(i + 1), -1.0 / o.pareto);
  w.peers.resize(o.peers);
  for (uint64_t p = 0; p < o.peers; ++p) {
    Peer& pe = w.peers[p];
    if (o.peers >= o.torrents && p < o.torrents) {
      pe.torrent = uint32_t(p);
    } else {
      auto it = std::upper_bound(cdf.begin(), cdf.end(), rng.unit() * acc);
      pe.torrent = uint32_t(std::min<size_t>(it - cdf.begin(), o.torrents - 1));
    }
    pe.seeder = rng.unit() < o.seeder_ratio;
  }
  return w;
}

/// CPU time (user + system) this process has used so far, in ns.
inline uint64_t cpu_ns() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& t) { return uint64_t(t.tv_sec) * kSec + uint64_t(t.tv_usec) * 1000; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

/// Parses an unsigned integer in [lo, hi]; false on junk or out of range.
inline bool parse_u64(const char* s, uint64_t lo, uint64_t hi, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || *s == '-' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

inline bool parse_double(const char* s, double lo, double hi, double* out) {
  char* end = nullptr;
  double v = strtod(s, &end);
  if (end == s || *end || !std::isfinite(v) || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/// Parses "A.B.C.D:PORT" or "[V6]:PORT"; accepts only 127.0.0.0/8 and ::1.
inline bool parse_target(const std::string& t, sockaddr_storage* target, socklen_t* target_len, bool* v6, const char* prog) {
  std::string host, port;
  if (!t.empty() && t[0] == '[') {
    size_t e = t.find(']');
    if (e == std::string::npos || e + 1 >= t.size() || t[e + 1] != ':') return false;
    host = t.substr(1, e - 1), port = t.substr(e + 2), *v6 = true;
  } else {
    size_t c = t.rfind(':');
    if (c == std::string::npos) return false;
    host = t.substr(0, c), port = t.substr(c + 1), *v6 = false;
  }
  uint64_t pn;
  if (!parse_u64(port.c_str(), 1, 65535, &pn)) return false;
  *target = {};
  auto* a4 = reinterpret_cast<sockaddr_in*>(target);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(target);
  bool loopback;
  if (*v6) {
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) != 1) return false;
    loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    a6->sin6_family = AF_INET6, a6->sin6_port = htons(uint16_t(pn)), *target_len = sizeof *a6;
  } else {
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return false;
    loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    a4->sin_family = AF_INET, a4->sin_port = htons(uint16_t(pn)), *target_len = sizeof *a4;
  }
  if (!loopback) fprintf(stderr, "%s: refusing %s: only 127.0.0.0/8 and ::1 are allowed\n", prog, t.c_str());
  return loopback;
}

/// Options both generators take; each tool's Options derives from it and adds its own.
///   target/target_len/v6  the tracker (loopback only); target_text as given (HTTP Host header)
///   duration, warmup      seconds measured, seconds excluded before that
///   numwant..numwant_max  peers asked per announce: one value, or a range drawn uniformly per
///                         announce ("--numwant 30-200"); 0 asks for none
///   scrape_hashes, seed, max_requests (0: no limit), cpu (-1: not pinned)
struct CommonOptions : Population {
  sockaddr_storage target{};
  socklen_t target_len = 0;
  bool v6 = false, have_target = false, json = false, dump_hashes = false;
  std::string target_text;
  double duration = 10, warmup = 2;
  uint64_t numwant = 30, numwant_max = 30, scrape_hashes = 10, seed = 1, max_requests = 0;
  long cpu = -1;
  /// numwant of the next announce: numwant, or uniform in [numwant, numwant_max].
  template <class R>
  uint64_t draw_numwant(R& rng) const {
    return numwant_max > numwant ? numwant + rng.below(numwant_max - numwant + 1) : numwant;
  }
};

/// Parses "N" or "LO-HI" (0 <= LO <= HI <= 200) into o->numwant and o->numwant_max.
inline bool parse_numwant(const char* arg, CommonOptions* o) {
  std::string s(arg);
  size_t dash = s.find('-');
  if (dash == std::string::npos) return parse_u64(arg, 0, 200, &o->numwant) && (o->numwant_max = o->numwant, true);
  return parse_u64(s.substr(0, dash).c_str(), 0, 200, &o->numwant) &&
         parse_u64(s.substr(dash + 1).c_str(), o->numwant, 200, &o->numwant_max);
}

/// getopt_long table: the common options (codes t d w T P a n H r j S c M h D), then `own`
/// (which must use other codes), then the terminator.
inline std::vector<option> long_options(std::initializer_list<option> own) {
  std::vector<option> v = {
      {"target", 1, nullptr, 't'},        {"duration", 1, nullptr, 'd'},      {"warmup", 1, nullptr, 'w'},
      {"torrents", 1, nullptr, 'T'},      {"peers", 1, nullptr, 'P'},         {"pareto-shape", 1, nullptr, 'a'},
      {"numwant", 1, nullptr, 'n'},       {"scrape-hashes", 1, nullptr, 'H'}, {"seeder-ratio", 1, nullptr, 'r'},
      {"json", 0, nullptr, 'j'},          {"seed", 1, nullptr, 'S'},          {"cpu", 1, nullptr, 'c'},
      {"max-requests", 1, nullptr, 'M'},  {"help", 0, nullptr, 'h'},          {"dump-hashes", 0, nullptr, 'D'}};
  v.insert(v.end(), own);
  v.push_back({nullptr, 0, nullptr, 0});
  return v;
}

/// Applies common option `c` with argument `arg` to o. Returns false if `c` is not a common
/// option (nor 'h'); otherwise *ok says whether its value was valid.
inline bool parse_common_option(int c, const char* arg, CommonOptions* o, const char* prog, bool* ok) {
  uint64_t u = 0;
  switch (c) {
    case 't':
      *ok = o->have_target = parse_target(arg, &o->target, &o->target_len, &o->v6, prog);
      o->target_text = arg;
      return true;
    case 'd': *ok = parse_double(arg, 0.001, 86400, &o->duration); return true;
    case 'w': *ok = parse_double(arg, 0, 3600, &o->warmup); return true;
    case 'T': *ok = parse_u64(arg, 1, 50000000, &o->torrents); return true;
    case 'P': *ok = parse_u64(arg, 1, 100000000, &o->peers); return true;
    case 'a': *ok = parse_double(arg, 0.01, 100, &o->pareto); return true;
    case 'n': *ok = parse_numwant(arg, o); return true;
    case 'H': *ok = parse_u64(arg, 1, 74, &o->scrape_hashes); return true;
    case 'r': *ok = parse_double(arg, 0, 1, &o->seeder_ratio); return true;
    case 'j': o->json = true; return true;
    case 'D': o->dump_hashes = true; return true;
    case 'S': *ok = parse_u64(arg, 0, UINT64_MAX, &o->seed); return true;
    case 'c': *ok = parse_u64(arg, 0, CPU_SETSIZE - 1, &u), o->cpu = long(u); return true;
    case 'M': *ok = parse_u64(arg, 1, UINT64_MAX, &o->max_requests); return true;
    default: return false;
  }
}

/// Runs getopt_long over argv with the common options plus `own`; `own_option(c, optarg)`
/// handles the tool's codes and returns 1 (valid), 0 (bad value) or -1 (unknown code).
/// Returns -1 to go on, otherwise the exit code (0 after --help, 2 on a usage error).
template <class OwnOption>
int parse_args(int argc, char** argv, CommonOptions* o, const char* prog, const char* usage,
               std::initializer_list<option> own, OwnOption&& own_option) {
  std::vector<option> table = long_options(own);
  int c, li = 0;
  while ((c = getopt_long(argc, argv, "", table.data(), &li)) != -1) {
    if (c == 'h') return fputs(usage, stdout), 0;
    bool ok = true;
    if (!parse_common_option(c, optarg, o, prog, &ok)) {
      int r = c == '?' ? -1 : own_option(c, optarg);
      if (r < 0) return fputs(usage, stderr), 2;
      ok = r == 1;
    }
    if (!ok) {
      fprintf(stderr, "%s: bad value for --%s: '%s'%s\n", prog, table[size_t(li)].name, optarg,
              c == 't' ? " (expected 127.x.x.x:PORT or [::1]:PORT)" : "");
      return 2;
    }
  }
  if (optind < argc) return fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]), 2;
  if (!o->have_target && !o->dump_hashes) return fprintf(stderr, "%s: --target is required\n%s", prog, usage), 2;
  return -1;
}

/// What both generators do before building the load: pin to --cpu, and for --dump-hashes
/// print the torrents' info hashes (hex, one a line; the hash key is the first draw of `rng`,
/// as in build_workload). Returns -1 to go on, otherwise the exit code.
inline int start_common(const CommonOptions& o, Rng& rng, const char* prog) {
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(int(o.cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) return fprintf(stderr, "%s: sched_setaffinity: %s\n", prog, strerror(errno)), 2;
  }
  if (!o.dump_hashes) return -1;
  Workload w;
  w.hash_key = rng.next();
  uint8_t h[20];
  for (uint64_t t = 0; t < o.torrents; ++t) {
    w.info_hash(uint32_t(t), h);
    for (uint8_t ch : h) printf("%02x", ch);
    putchar('\n');
  }
  return 0;
}

}  // namespace shoal_load
