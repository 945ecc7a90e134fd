// conn_id_bench: what a BEP 15 connection-id check costs a socket worker (worker/connection_id),
// as `make bench` reports it, for the configurations shoald runs with: its own key (no skew),
// a cluster key file (one key, 10 s skew) and a key rotation (two keys, 10 s skew). For each it
// times make() (a connect) and valid() for a fresh id, an id of the previous bucket, an id of the
// previous key (rotation only) and a wrong id (the cost a flood of forged ids can cause: every
// key and bucket is tried). Ids and addresses are random (IPv4), checked round robin.
//
//   conn_id_bench [--checks 5000000] [--seed 1] [--json]
//
// Prints ns per operation; exit 2 for bad arguments, 1 if a check gives the wrong answer.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <array>
#include <random>
#include <string>
#include <vector>

#include "worker/connection_id.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using shoal::worker::ConnectionIds;

struct Args {
  size_t checks = 5000000;
  uint32_t seed = 1;
  bool json = false;
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    if (k == "--json") {
      a->json = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    unsigned long long v = strtoull(argv[++i], nullptr, 10);
    if (k == "--checks") a->checks = v;
    else if (k == "--seed") a->seed = uint32_t(v);
    else return false;
  }
  return a->checks > 0;
}

constexpr size_t kAddrs = 4096;  // distinct clients, round robin
constexpr uint32_t kNow = 1765000000 / 120 * 120 + 60;  // mid-bucket wall-clock time

struct Row {
  const char* name;
  double connect_ns, fresh_ns, previous_bucket_ns, previous_key_ns, wrong_ns;
};

// ns per call of fn(i) over n calls; `expect` is what every call must return.
template <class F>
double time_ns(size_t n, bool expect, F fn, bool* wrong) {
  auto t0 = Clock::now();
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += fn(i) != expect;
  double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(n);
  if (bad) *wrong = true;
  return ns;
}

Row measure(const char* name, const uint8_t (*keys)[16], uint32_t count, uint32_t skew, size_t n,
            const std::vector<std::array<uint8_t, 4>>& addrs, std::mt19937_64& rng, bool* wrong) {
  ConnectionIds ids(keys, count, skew);
  ConnectionIds previous_key(keys + 1, 1, skew);  // only used when count == 2
  std::vector<uint64_t> fresh(kAddrs), old_bucket(kAddrs), old_key(kAddrs), forged(kAddrs);
  for (size_t i = 0; i < kAddrs; i++) {
    fresh[i] = ids.make(AF_INET, addrs[i].data(), kNow);
    old_bucket[i] = ids.make(AF_INET, addrs[i].data(), kNow - 120);
    old_key[i] = count == 2 ? previous_key.make(AF_INET, addrs[i].data(), kNow) : fresh[i];
    forged[i] = rng();
  }
  Row r{name, 0, 0, 0, 0, 0};
  uint64_t sink = 0;
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; i++) sink += ids.make(AF_INET, addrs[i % kAddrs].data(), kNow);
  r.connect_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / double(n);
  if (sink == 0) *wrong = true;
  auto check = [&](const std::vector<uint64_t>& v) {
    return [&](size_t i) { return ids.valid(v[i % kAddrs], AF_INET, addrs[i % kAddrs].data(), kNow); };
  };
  r.fresh_ns = time_ns(n, true, check(fresh), wrong);
  r.previous_bucket_ns = time_ns(n, true, check(old_bucket), wrong);
  r.previous_key_ns = count == 2 ? time_ns(n, true, check(old_key), wrong) : 0;
  r.wrong_ns = time_ns(n, false, check(forged), wrong);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    fprintf(stderr, "usage: conn_id_bench [--checks N] [--seed N] [--json]\n");
    return 2;
  }
  std::mt19937_64 rng(a.seed);
  uint8_t keys[2][16];
  for (auto& k : keys)
    for (auto& b : k) b = uint8_t(rng());
  std::vector<std::array<uint8_t, 4>> addrs(kAddrs);
  for (auto& ad : addrs)
    for (auto& b : ad) b = uint8_t(rng());
  bool wrong = false;
  std::vector<Row> rows = {measure("own_key", keys, 1, 0, a.checks, addrs, rng, &wrong),
                           measure("key_file", keys, 1, 10, a.checks, addrs, rng, &wrong),
                           measure("rotation", keys, 2, 10, a.checks, addrs, rng, &wrong)};
  if (wrong) return fprintf(stderr, "conn_id_bench: a check gave the wrong answer\n"), 1;
  if (a.json) {
    printf("{");
    for (size_t i = 0; i < rows.size(); i++) {
      const Row& r = rows[i];
      printf("%s\"%s\": {\"connect_ns\": %.1f, \"fresh_ns\": %.1f, \"previous_bucket_ns\": %.1f, "
             "\"previous_key_ns\": %.1f, \"wrong_ns\": %.1f}",
             i ? ", " : "", r.name, r.connect_ns, r.fresh_ns, r.previous_bucket_ns, r.previous_key_ns, r.wrong_ns);
    }
    printf("}\n");
  } else {
    printf("%-9s %10s %10s %16s %14s %10s  (ns per call)\n", "keys", "connect", "fresh id", "previous bucket",
           "previous key", "wrong id");
    for (const Row& r : rows) {
      char key_ns[32] = "-";
      if (r.previous_key_ns > 0) snprintf(key_ns, sizeof key_ns, "%.1f", r.previous_key_ns);
      printf("%-9s %10.1f %10.1f %16.1f %14s %10.1f\n", r.name, r.connect_ns, r.fresh_ns, r.previous_bucket_ns, key_ns,
             r.wrong_ns);
    }
  }
  return 0;
}
