"""`make bench` section "cluster" (issue 14): replication's cost on shoald's UDP hot path.

Three rows, same run, rounds alternating (bench.py's throughput: udp_load defaults, tracker on the
tracker CPU): (a) shoald, cluster off; (b) shoald-cluster: node 1 publishing every change to a
nats-server on loopback (trackers.nats_url); (c) shoald-cluster-3n: as (b) while tools/cluster_load
(on the generator CPU) publishes the deltas of nodes 2 and 3 at twice (b)'s own rate: a node of a
three-node cluster where every node takes the same load (three loaded nodes cannot share a 2-CPU
machine fairly, so the other two are simulated by their deltas). Below the table: (c) / (a)
against the 80 % target, the remote deltas applied, and the tracker CPU per applied remote delta
against a local UDP announce. Python 3 stdlib only.
"""
import statistics
import subprocess

import trackers as T


def fmt(x):
    return "{:,.0f}".format(x)


def sec_cluster(b, log):
    """Runs the three rows (module docstring) and appends their table and summary to b.md;
    (c)'s side load rate: 2 x the median of the (b) runs so far (cluster_deltas_sent / s)."""
    names = ["shoald", "shoald-cluster", "shoald-cluster-3n"]

    def own_rate():
        rs = [r["ring"].get("cluster_deltas_sent", 0) / r["wall"] for r in b.live_runs.get("shoald-cluster", [])
              if r.get("ring") and r.get("wall")]
        return statistics.median(rs) if rs else 0.0

    def other_nodes(tr):
        rate = 2 * own_rate()
        if rate <= 0:
            rate = 20000.0
            log("cluster: no shoald-cluster run yet, simulated nodes send %.0f deltas/s" % rate)
        argv = ["taskset", "-c", str(b.a.gen_cpu), b.tool("cluster_load"), "--target",
                "127.0.0.1:%d" % T.nats_port(), "--subject", T.cluster_subject(), "--rate", str(int(rate)),
                "--nodes", "2", "--first-node", "2", "--duration", str(b.a.duration),
                "--warmup", str(b.a.warmup), "--json"]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=None, text=True)

    b.side_load["shoald-cluster-3n"] = other_nodes
    try:
        runs = b.throughput("cluster", "udp", names)
    finally:
        del b.side_load["shoald-cluster-3n"]
    meds = b.table("UDP with cluster off (a), on (b), and on while two other nodes' deltas arrive (c)", runs, None)
    b.md.append(cluster_summary(runs, meds))
    return meds


def cluster_summary(runs, meds):
    """The cluster section's conclusions (Markdown): a node of a three-node cluster against one
    node, the remote deltas applied, and the tracker CPU per applied remote delta against a
    local UDP announce. CPU per local response (µs) = tracker CPU seconds / responses; extra CPU
    per remote delta = (CPU of run (c) - its responses x (b)'s CPU per response) / deltas applied."""
    def med(xs):
        return statistics.median(xs) if xs else 0.0

    def per_resp(r):  # tracker CPU seconds per response
        return r["tracker_cpu"] / 100 / r["responses_per_s"] if r["responses_per_s"] > 0 else 0.0
    a, b, c = (runs.get(n, []) for n in ("shoald", "shoald-cluster", "shoald-cluster-3n"))
    ma, mb, mc = (meds.get(n, 0) for n in ("shoald", "shoald-cluster", "shoald-cluster-3n"))
    if not (a and b and c and ma > 0):
        return "Cluster summary: not enough runs."
    sent_b = med([r["ring"].get("cluster_deltas_sent", 0) / r["wall"] for r in b if r.get("ring")])
    applied = [r["ring"].get("cluster_deltas_applied", 0) for r in c if r.get("ring")]
    received = [r["ring"].get("cluster_deltas_received", 0) for r in c if r.get("ring")]
    dropped = [r["ring"].get("cluster_deltas_dropped", 0) for r in c if r.get("ring")]
    dropped_b = [r["ring"].get("cluster_deltas_dropped", 0) for r in b if r.get("ring")]
    side_sent = [r.get("side", {}).get("deltas", 0) for r in c]
    side_rate = med([r.get("side", {}).get("deltas_per_s", 0) for r in c])
    t_a, t_b = med([per_resp(r) for r in a]), med([per_resp(r) for r in b])
    extra = [(r["tracker_cpu"] / 100 * r["wall"] - r["responses_per_s"] * r["wall"] * t_b) / ap
             for r in c for ap in [r.get("ring", {}).get("cluster_deltas_applied", 0)] if ap > 0]
    t_d = med(extra)
    ratio = mc / ma
    verdict = "meets" if ratio >= 0.80 else "misses"
    # Responses per tracker CPU-second: the same comparison without other jobs' share of the CPU.
    eff_a, eff_c = (med([1 / per_resp(r) for r in rs if per_resp(r) > 0]) for rs in (a, c))
    return ("Cluster (issue 14), medians of %d rounds: (b) one node publishing its changes runs at **%.2f×** "
            "(a)'s UDP announce rate and sends %s deltas/s; (c) the same node while two simulated nodes "
            "(tools/cluster_load, ids 2 and 3) send %s deltas/s (2 × (b)'s rate) runs at **%.2f× (a)** — "
            "a node of a three-node cluster against a single node, %s the 80 %% target (per tracker CPU-second: "
            "%s responses in (c) against %s in (a), **%.2f×**). Remote deltas in (c), "
            "per run (median): %s sent by cluster_load, %s received, **%s applied** (cluster_deltas_dropped, which also counts the node's own changes dropped by a "
            "full out ring or stopped-peer list: %s in (c), %s in (b)). Tracker CPU per "
            "local UDP response in (a): **%.2f µs** ((b): %.2f µs); extra tracker CPU per applied remote delta in "
            "(c) over (b): **%.2f µs**, so applying a remote delta costs **%.2f×** a full local UDP announce." % (
                min(len(a), len(b), len(c)), mb / ma, fmt(sent_b), fmt(side_rate), ratio, verdict,
                fmt(eff_c), fmt(eff_a), eff_c / eff_a if eff_a else 0, fmt(med(side_sent)), fmt(med(received)), fmt(med(applied)), fmt(med(dropped)), fmt(med(dropped_b)),
                t_a * 1e6, t_b * 1e6, t_d * 1e6, t_d / t_a if t_a else 0))
