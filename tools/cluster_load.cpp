// cluster_load.cpp — plays other shoald nodes of a cluster (issue 14) for `make bench`: connects
// to a nats-server on loopback and publishes peer deltas on <subject>.deltas exactly as the sync
// workers of nodes 2, 3, ... would (worker/cluster_codec.hpp's encoder: one session each, seq
// from 1, a message every --batch-ms per node, at most kMaxDeltasPerMessage deltas a message).
// The receiving shoald applies them as remote changes (cluster_deltas_received / _applied).
//
// The peers: each simulated node has its own --peers IPv4 peers over the same torrents as
// udp_load (same --seed/--torrents/--peers/--pareto-shape draws, load_common.hpp, so they land in
// the swarms udp_load announces to); peer i of node n is 10.n.(i>>8&255).(i&255), port 6881 +
// (i>>16). Each delta is a random peer's announce: seeder flag as drawn, 0.5 % stopped.
// No hello is sent (a hello makes the receiver send all its own peers again: not steady state).
//
//   cluster_load --target 127.0.0.1:NATS_PORT --subject S --rate DELTAS_PER_S [--nodes 2]
//                [--first-node 2] [--batch-ms 100] [--duration 10] [--warmup 2] [--json]
// --rate is the total over all simulated nodes; the run lasts warmup + duration seconds. Prints
// what it sent (with --json one JSON line: deltas, messages, seconds, deltas_per_s, publish_errors).
// Exit 0, 1 if NATS is unreachable, 2 on a usage error.
#include <nats/nats.h>
#include <openssl/rand.h>

#include <cinttypes>
#include <ctime>

#include "shm/clock.hpp"
#include "tools/load_common.hpp"
#include "worker/cluster_codec.hpp"

using namespace shoal_load;
namespace sw = shoal::worker;

namespace {

const char* kUsage =
    "usage: cluster_load --target 127.0.0.1:NATS_PORT --subject S --rate N [options]\n"
    "  --subject S          cluster.subject of the receiving node (publishes on S.deltas)\n"
    "  --rate N             deltas per second, all simulated nodes together\n"
    "  --nodes N            simulated nodes (default 2)\n"
    "  --first-node ID      node id of the first one (default 2; the next ones follow)\n"
    "  --batch-ms MS        one message per node every MS ms (default 100: cluster.batch_delay)\n"
    "  --duration S, --warmup S   the run lasts warmup + duration seconds (defaults 10, 2)\n"
    "  --torrents N, --peers N, --pareto-shape X, --seeder-ratio X, --seed N   as udp_load\n"
    "  --json               one JSON line of results\n";

void sleep_until(uint64_t t_ns) {
  timespec ts{time_t(t_ns / kSec), long(t_ns % kSec)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

struct SimNode {
  sw::ClusterHeader header;
  Rng rng{0};
  double owed = 0;  // deltas due but not sent yet (fractions carried between batches)
};

// The delta of peer `i` of node `node` announcing (shm::Delta as the swarm workers queue it).
void make_delta(const Workload& w, uint64_t i, uint16_t node, Rng& rng, shoal::shm::Delta* d) {
  *d = shoal::shm::Delta{};
  w.info_hash(w.peers[i].torrent, d->info_hash);
  d->family = 4;
  d->addr[0] = 10, d->addr[1] = uint8_t(node), d->addr[2] = uint8_t(i >> 8), d->addr[3] = uint8_t(i);
  d->port_be = htons(uint16_t(6881 + (i >> 16)));
  d->flags = rng.unit() < 0.005 ? shoal::shm::kDeltaStopped : (w.peers[i].seeder ? shoal::shm::kDeltaSeeder : 0);
  d->progress = w.peers[i].seeder ? 1000 : 0xffff;
}

}  // namespace

int main(int argc, char** argv) {
  CommonOptions o;
  std::string subject;
  uint64_t rate = 0, nodes = 2, first_node = 2, batch_ms = 100;
  bool have_rate = false;
  int rc = parse_args(argc, argv, &o, "cluster_load", kUsage,
                      {{"subject", 1, nullptr, 's'}, {"rate", 1, nullptr, 'R'}, {"nodes", 1, nullptr, 'N'},
                       {"first-node", 1, nullptr, 'F'}, {"batch-ms", 1, nullptr, 'B'}},
                      [&](int c, const char* arg) -> int {
                        switch (c) {
                          case 's': subject = arg; return !subject.empty();
                          case 'R': return have_rate = parse_u64(arg, 1, 100000000, &rate);
                          case 'N': return parse_u64(arg, 1, 64, &nodes);
                          case 'F': return parse_u64(arg, 1, 65535, &first_node);
                          case 'B': return parse_u64(arg, 1, 10000, &batch_ms);
                          default: return -1;
                        }
                      });
  if (rc >= 0) return rc;
  if (o.dump_hashes) return fputs("cluster_load: --dump-hashes is udp_load's\n", stderr), 2;
  if (subject.empty() || !have_rate) return fprintf(stderr, "cluster_load: --subject and --rate are required\n%s", kUsage), 2;
  if (first_node + nodes - 1 > 65535) return fputs("cluster_load: node ids past 65535\n", stderr), 2;

  Rng rng{o.seed};
  Workload w = build_workload(o, rng);  // the same torrents and popularity as udp_load

  std::string url = "nats://" + o.target_text;
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, url.c_str());
  if (s != NATS_OK) return fprintf(stderr, "cluster_load: cannot connect to %s: %s\n", url.c_str(), natsStatus_GetText(s)), 1;
  std::string deltas_subject = subject + ".deltas";

  std::vector<SimNode> sim(nodes);
  for (uint64_t k = 0; k < nodes; k++) {
    SimNode& n = sim[k];
    n.header.kind = sw::kClusterDeltas;
    n.header.node_id = uint16_t(first_node + k);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&n.header.session), sizeof n.header.session) != 1)
      n.header.session = now_ns() + k;
    n.header.name = "cluster_load-" + std::to_string(n.header.node_id);
    n.rng.s = o.seed * 1000003 + n.header.node_id;
  }

  const double per_batch = double(rate) / double(nodes) * double(batch_ms) / 1000.0;
  const uint64_t step = batch_ms * 1000000ull, t0 = now_ns(), end = t0 + uint64_t((o.warmup + o.duration) * 1e9);
  std::vector<shoal::shm::Delta> batch;
  std::vector<uint8_t> buf;
  uint64_t sent = 0, messages = 0, errors = 0;
  for (uint64_t next = t0; next < end; next += step) {
    sleep_until(next);
    for (SimNode& n : sim) {
      n.owed += per_batch;
      auto count = uint64_t(n.owed);
      n.owed -= double(count);
      while (count > 0) {
        size_t m = size_t(std::min<uint64_t>(count, sw::kMaxDeltasPerMessage));
        batch.resize(m);
        for (size_t j = 0; j < m; j++) make_delta(w, n.rng.below(w.peers.size()), n.header.node_id, n.rng, &batch[j]);
        n.header.seq++;
        n.header.sent_ms = shoal::shm::wall_ms();
        buf.clear();
        sw::encode_cluster_message(n.header, batch.data(), m, &buf);
        if (natsConnection_Publish(nc, deltas_subject.c_str(), buf.data(), int(buf.size())) == NATS_OK)
          sent += m, messages++;
        else
          errors++;
        count -= m;
      }
    }
  }
  if (natsConnection_FlushTimeout(nc, 5000) != NATS_OK) errors++;
  double secs = double(now_ns() - t0) / 1e9;
  natsConnection_Destroy(nc);
  nats_Close();
  if (o.json)
    printf("{\"deltas\": %" PRIu64 ", \"messages\": %" PRIu64 ", \"nodes\": %" PRIu64 ", \"seconds\": %.3f, "
           "\"deltas_per_s\": %.1f, \"publish_errors\": %" PRIu64 "}\n",
           sent, messages, nodes, secs, double(sent) / secs, errors);
  else
    printf("cluster_load: %" PRIu64 " deltas in %" PRIu64 " messages from %" PRIu64 " nodes (ids %" PRIu64 "-%" PRIu64
           ") in %.1f s = %.0f deltas/s, %" PRIu64 " publish errors\n",
           sent, messages, nodes, first_node, first_node + nodes - 1, secs, double(sent) / secs, errors);
  return 0;
}
