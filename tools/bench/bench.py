#!/usr/bin/python3
"""bench.py — `make bench`: shoald against opentracker, bittorrent-tracker and the machine's limit.

Runs the same load (tools/udp_load, tools/http_load with their default, realistic workload)
against each tracker on loopback, alternating trackers within each round, with the tracker
pinned to one CPU and the generator to another (taskset). Prints Markdown tables and writes
them, with the date, machine, commit and exact command, to tools/bench/RESULTS.md; the README's
Benchmarks section gets the same tables between its bench markers.

Sections: UDP (plus the socket->swarm ring hop cost read from shm_inspect), HTTP keep-alive and
no keep-alive, UDP latency at about half the maximum rate, scaling over socket workers, memory
(1,000,000 peers over 100,000 torrents, IPv4 then IPv6), the topology map, and WebTorrent over
WebSocket (bench_ws.py: ws/wss throughput, 16,000 connections, memory per idle connection), and
the cluster rows (bench_cluster.py: a node of a three-node cluster, the cost of a remote delta).

    tools/bench/bench.py --build build/bench --node-dir build/bench-node [--rounds 5] [--quick]

BENCH_QUICK=1 (or --quick): one round, shorter runs (about 2 minutes). Python 3 stdlib only.
Every process is started here, pinned, bounded in time and stopped by its PID.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trackers as T  # noqa: E402
import bench_ws  # noqa: E402

CEILING_SHARE = 0.95   # a tracker at >= 95 % of the generator's ceiling is reported as "≥ ceiling"
# The full-reply load: numwant drawn from 30..200 per announce over 10,000 torrents (swarms of
# 20 peers on average), so trackers return long peer lists; its ceiling is `limit_server --full`.
FULL_LOAD = ("--numwant", "30-200", "--torrents", "10000")
PIPELINE = 16          # HTTP requests in flight per connection in the pipelined keep-alive row


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def cpu_busy_seconds():
    """Busy CPU time of the whole machine from /proc/stat (all but idle and iowait), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def foreign_cpu():
    """{pid: (starttime, CPU seconds incl. reaped children)} of every process that is not this
    bench or one of its descendants (trackers, generators): other users' jobs. A short-lived
    job shows up in its parent's reaped-children time once it has exited."""
    tick = os.sysconf("SC_CLK_TCK")
    info = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        info[int(d)] = (int(rest[1]), int(rest[19]), sum(int(x) for x in rest[11:15]) / tick)
    me, out = os.getpid(), {}
    for pid, (ppid, start, cpu) in info.items():
        p, ours = pid, False
        for _ in range(64):  # walk up to init: is this bench an ancestor?
            if p == me:
                ours = True
                break
            if p not in info or p <= 1:
                break
            p = info[p][0]
        if not ours:
            out[pid] = (start, cpu)
    return out


def foreign_delta(before, after):
    """CPU seconds other jobs used between two foreign_cpu() snapshots."""
    total = 0.0
    for pid, (start, cpu) in after.items():
        old = before.get(pid)
        total += cpu - old[1] if old and old[0] == start else cpu
    for pid, (start, cpu) in before.items():  # exited: its parent's reaped time now holds all of
        if pid not in after or after[pid][0] != start:  # it, including what ran before the window
            total -= cpu
    return max(0.0, total)


QUIET_BUDGET = [180.0]  # seconds the whole bench may spend waiting for quiet and redoing runs


def wait_quiet(limit_pct=10.0, max_wait=20.0):
    """Waits (at most max_wait s, within QUIET_BUDGET) until the machine's busy time over 0.5 s is
    below limit_pct of one CPU, so that other users' jobs disturb the next run less."""
    start = time.monotonic()
    deadline = start + max(0.0, min(max_wait, QUIET_BUDGET[0]))
    try:
        return _wait_quiet(limit_pct, deadline)
    finally:
        QUIET_BUDGET[0] -= time.monotonic() - start


def _wait_quiet(limit_pct, deadline):
    while True:
        b0 = cpu_busy_seconds()
        time.sleep(0.5)
        busy = (cpu_busy_seconds() - b0) / 0.5 * 100
        if busy < limit_pct or time.monotonic() >= deadline:
            return busy


def run_gen(argv, timeout):
    """Runs a load generator (pinned by the caller's argv); returns (json dict, generator CPU %)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / wall * 100 if wall else 0
    line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        res = json.loads(line)
    except ValueError:
        res = {"responses_per_s": 0.0, "p50_us": 0, "p99_us": 0, "p999_us": 0, "errors": 0, "invalid": 0,
               "timeouts": 0, "error_messages": [(p.stderr or "no output").strip()[-200:]]}
    return res, cpu


def side_result(p, timeout):
    """Waits for a side load (a Popen with stdout=PIPE) and returns its last stdout line as JSON
    ({} when it printed none: its stderr goes to the bench's log)."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    lines = (out or "").strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.work = tempfile.mkdtemp(prefix="shoal-bench-")
        os.chmod(self.work, 0o755)  # opentracker drops to "nobody" and chroots here
        self.whitelist = os.path.join(self.work, "wl.txt")
        with open(self.whitelist, "w") as f:
            subprocess.run([self.tool("udp_load"), "--dump-hashes"], stdout=f, check=True, timeout=60)
        os.chmod(self.whitelist, 0o644)
        self.results = {}      # section -> data
        self.side_load = {}    # tracker name -> f(tracker): a Popen run beside the generator (cluster)
        self.md = []           # Markdown output blocks

    def tool(self, name):
        return os.path.join(self.build, name)

    def gen(self, kind, target, extra=()):
        a = self.a
        prog = "udp_load" if kind == "udp" else "http_load"
        return (["taskset", "-c", str(a.gen_cpu), self.tool(prog), "--target", target, "--json",
                 "--duration", str(a.duration), "--warmup", str(a.warmup)] + list(extra))

    def make(self, name, **kw):
        kw.setdefault("cpus", self.both_cpus if name.endswith("-2cpu") else str(self.a.tracker_cpu))
        if name.startswith("shoald-2sw"):
            kw["socket_workers"] = 2
        if name.startswith("shoald-2x2"):
            kw["socket_workers"], kw["swarm_workers"] = 2, 2
        return T.make(name, self, **kw)

    @property
    def both_cpus(self):
        return "%d,%d" % (self.a.gen_cpu, self.a.tracker_cpu)

    # ------------------------------------------------------------------ throughput sections
    def throughput(self, section, kind, names, gen_extra=()):
        """Rounds x trackers, alternating order; each run on a freshly started tracker."""
        runs = {n: [] for n in names}
        self.live_runs = runs  # the runs so far, for side loads that depend on them (cluster)
        for r in range(self.a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                best = None
                for attempt in range(self.a.retries + 1):  # a run disturbed by other jobs is redone
                    if attempt and QUIET_BUDGET[0] <= 0:
                        break
                    t_run = time.monotonic()
                    res = self.one_run(section, kind, name, r, gen_extra)
                    if attempt:
                        QUIET_BUDGET[0] -= time.monotonic() - t_run
                    if res is None:
                        break
                    if best is None or res["other_cpu"] < best["other_cpu"]:
                        best = res
                    if res["other_cpu"] <= self.a.max_other:
                        break
                if best is not None:
                    runs[name].append(best)
        self.results[section] = runs
        return runs

    def one_run(self, section, kind, name, r, gen_extra):
        """Starts tracker `name`, runs the generator once, stops it; None if it has no such mode."""
        tr = self.make(name, http=(kind == "http"))
        try:
            tr.start()
            target = tr.udp_target if kind == "udp" else tr.http_target
            if target is None:
                return None
            wait_quiet()
            c0, s0, k0 = tr.cpu_seconds(), tr.counters(), tr.ctx_switches()
            f0, t0 = foreign_cpu(), time.monotonic()
            argv = self.gen(kind, target, tuple(gen_extra) + T.EXTRA_GEN_ARGS.get(name, ()))
            if name.endswith("-2cpu"):
                argv[2] = self.both_cpus  # taskset -c CPUS
            side = self.side_load[name](tr) if name in self.side_load else None  # runs beside the generator
            res, gcpu = run_gen(argv, self.a.duration + self.a.warmup + 30)
            if side is not None:
                res["side"] = side_result(side, 30)
            wall = time.monotonic() - t0
            res["wall"] = wall
            c1, s1, k1 = tr.cpu_seconds(), tr.counters(), tr.ctx_switches()
            res["tracker_cpu"] = (c1 - c0) / wall * 100
            res["generator_cpu"] = gcpu
            # CPU used meanwhile by other users' processes: noise to read the numbers against.
            res["other_cpu"] = foreign_delta(f0, foreign_cpu()) / wall * 100
            res["ctx_per_kreq"] = (k1 - k0) / max(1.0, res.get("responses_per_s", 0) * wall) * 1000
            if s0 and s1:
                res["ring"] = {k: s1.get(k, 0) - s0.get(k, 0) for k in s1}
            log("%s %s round %d: %.0f resp/s p99 %.0f us (errors %d invalid %d timeouts %d) CPU tracker %.0f%% "
                "gen %.0f%% other %.0f%%" % (section, name, r + 1, res["responses_per_s"], res["p99_us"],
                                            res["errors"], res["invalid"], res["timeouts"], res["tracker_cpu"],
                                            gcpu, res["other_cpu"]))
            return res
        finally:
            tr.stop()

    def table(self, title, runs, ceiling_name, notes=None):
        """Markdown table: median, range, p99, problems, CPU, shoald's ratio."""
        def med(xs):
            return statistics.median(xs) if xs else 0.0
        meds = {n: med([r["responses_per_s"] for r in rs]) for n, rs in runs.items()}
        # The ceiling is the best limit-server row (spinning or sleeping: either may win).
        if ceiling_name:
            ceiling_name = max((n for n in runs if n.startswith(ceiling_name)), key=lambda n: meds[n])
        ceiling = meds.get(ceiling_name, 0)
        shoald = next((meds[n] for n in runs if n.startswith("shoald") and meds[n] > 0), 0)
        shoald_at_ceiling = ceiling and shoald >= CEILING_SHARE * ceiling
        lines = ["### " + title, "",
                 "| tracker | responses/s (median) | range | p99 µs | errors / invalid / timeouts | CPU: tracker / gen / other | tracker ctx switches per 1k resp | shoald ÷ this |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for n, rs in runs.items():
            label = T.LABELS.get(n, n) + ((" — " + notes[n]) if notes and n in notes else "")
            if not rs:
                lines.append("| %s | not available in this build | | | | | | |" % label)
                continue
            v = [r["responses_per_s"] for r in rs]
            m = meds[n]
            is_ceiling_row = n == ceiling_name
            shown = ("≥ ceiling (%s)" % fmt(m)) if (ceiling and not is_ceiling_row and m >= CEILING_SHARE * ceiling) else fmt(m)
            if is_ceiling_row:
                shown = "**%s** (ceiling)" % fmt(m)
            probs = "%d / %d / %d" % (sum(r["errors"] for r in rs), sum(r["invalid"] for r in rs), sum(r["timeouts"] for r in rs))
            if n.startswith("shoald"):
                ratio = "—"
            elif m <= 0 or not shoald:
                ratio = "n/a"
            elif shoald_at_ceiling and (is_ceiling_row or m >= CEILING_SHARE * ceiling):
                ratio = "≥ ceiling (%.2f×)" % (shoald / m)
            else:
                ratio = "%.2f×" % (shoald / m)
            lines.append("| %s | %s | %s – %s | %.0f | %s | %.0f%% / %.0f%% / %.0f%% | %.0f | %s |" % (
                label, shown, fmt(min(v)), fmt(max(v)), med([r["p99_us"] for r in rs]), probs,
                med([r["tracker_cpu"] for r in rs]), med([r["generator_cpu"] for r in rs]),
                med([r.get("other_cpu", 0) for r in rs]), med([r.get("ctx_per_kreq", 0) for r in rs]), ratio))
        msgs = sorted({m for rs in runs.values() for r in rs for m in r.get("error_messages", [])})
        if msgs:
            lines += ["", "Tracker errors seen: " + "; ".join("`%s`" % m[:80] for m in msgs[:6])]
        self.md.append("\n".join(lines))
        return meds

    # ------------------------------------------------------------------ sections
    def sec_udp(self):
        names = ["shoald", "opentracker", "bittorrent-tracker", "limit", "limit-blocking", "opentracker-if8"]
        if self.a.quick:
            names = names[:4]
        runs = self.throughput("udp", "udp", names)
        meds = self.table("UDP (BEP 15), udp_load defaults", runs, "limit")
        ring = [r["ring"] for r in runs["shoald"] if r.get("ring")]
        if ring:
            b = sum(x.get("ring_batches", 0) for x in ring)
            m = sum(x.get("ring_messages", 0) for x in ring)
            w = sum(x.get("ring_wakeups", 0) for x in ring)
            d = sum(x.get("ring_full_drops", 0) for x in ring)
            rx = sum(x.get("udp_received", 0) for x in ring)
            self.results["ring"] = dict(batches=b, messages=m, wakeups=w, drops=d, received=rx)
            self.md.append("Socket→swarm ring hop during shoald's UDP runs (shm_inspect counters, all rounds): "
                           "%s ring messages in %s batches = **%.1f messages per wake-up** (batch), %s eventfd "
                           "wake-ups (%.2f per datagram received), **%d ring-full drops**. A request and its "
                           "response are one message each way." % (fmt(m), fmt(b), m / b if b else 0, fmt(w),
                                                                     w / rx if rx else 0, d))
        return meds

    def sec_udp_full(self):
        """UDP with full peer lists (FULL_LOAD): the ceiling is limit_server --full, which answers
        every announce with numwant synthetic peers, so it includes reading the largest replies."""
        names = ["shoald", "opentracker", "limit-full"]
        runs = self.throughput("udp-full", "udp", names, FULL_LOAD)
        return self.table("UDP, numwant 30–200 over 10,000 torrents (ceiling: full replies)", runs, "limit-full")

    def sec_http(self, keep_alive, pipeline=1):
        names = ["shoald", "opentracker", "bittorrent-tracker", "limit"]
        extra = (() if keep_alive else ("--no-keep-alive",)) + (("--pipeline", str(pipeline)) if pipeline > 1 else ())
        sec = ("http-ka" if keep_alive else "http-noka") + ("-pipe%d" % pipeline if pipeline > 1 else "")
        runs = self.throughput(sec, "http", names, extra)
        notes = {"opentracker": "closes the connection after every response (Debian build)"}
        if pipeline > 1:
            title = "HTTP, keep-alive, pipelined (64 connections, %d requests in flight each, written together)" % pipeline
        elif keep_alive:
            title = "HTTP, keep-alive (64 connections, 1 request in flight each)"
        else:
            title = "HTTP, no keep-alive (a new TCP connection per request)"
        return self.table(title, runs, "limit", notes)

    def sec_http_full(self):
        """HTTP keep-alive with the full-reply load (FULL_LOAD, as udp-full): the ceiling is
        limit_server --full, whose announce body carries numwant compact peers (issue 13's
        "0.6 of the HTTP limit with numwant 30–200")."""
        names = ["shoald", "opentracker", "limit-full"]
        runs = self.throughput("http-full", "http", names, FULL_LOAD)
        notes = {"opentracker": "closes the connection after every response (Debian build)"}
        return self.table("HTTP, keep-alive, numwant 30–200 over 10,000 torrents (ceiling: full replies)",
                          runs, "limit-full", notes)

    def sec_latency(self, max_rate):
        """Closed-loop ladder of in-flight counts, each step on a fresh shoald (udp_load maps peers
        to source addresses by socket count, so reusing one tracker would add a new set of peers
        per step and fill it); reports the step closest to half of max_rate."""
        steps = []
        ladder = [(1, 1), (2, 1), (4, 1), (6, 1), (8, 1), (12, 1), (16, 1), (16, 2), (16, 4)]
        for socks, infl in ladder[2::2] if self.a.quick else ladder:
            tr = self.make("shoald")
            try:
                tr.start()
                wait_quiet()
                c0, k0 = tr.counters(), tr.ctx_switches()
                res, _ = run_gen(self.gen("udp", tr.udp_target, ("--sockets", str(socks), "--inflight", str(infl))),
                                 self.a.duration + self.a.warmup + 30)
                c1, k1 = tr.counters(), tr.ctx_switches()
            finally:
                tr.stop()
            d = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1}
            res["msgs_per_batch"] = d.get("ring_messages", 0) / max(1, d.get("ring_batches", 0))
            res["ctx_per_req"] = (k1 - k0) / max(1, d.get("udp_received", 0))
            steps.append((socks * infl, res))
            log("latency %d in flight: %.0f resp/s p50 %.0f p99 %.0f p999 %.0f" % (
                socks * infl, res["responses_per_s"], res["p50_us"], res["p99_us"], res["p999_us"]))
            if res["responses_per_s"] > 0.75 * max_rate:
                break
        half = max_rate / 2
        best = min(steps, key=lambda s: abs(s[1]["responses_per_s"] - half))
        lines = ["### UDP latency at about half of shoald's maximum rate", "",
                 "udp_load is closed-loop, so the rate is set by the number of requests in flight (each step "
                 "on a freshly started shoald). Maximum "
                 "(median of the UDP table): %s responses/s; target half: %s." % (fmt(max_rate), fmt(half)), "",
                 "| in flight | responses/s | share of max | p50 µs | p99 µs | p999 µs | ring msgs per wake-up | ctx switches per request |",
                 "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, r in steps:
            mark = " **←**" if n == best[0] else ""
            lines.append("| %d%s | %s | %.0f%% | %.0f | %.0f | %.0f | %.1f | %.2f |" % (
                n, mark, fmt(r["responses_per_s"]), r["responses_per_s"] / max_rate * 100 if max_rate else 0,
                r["p50_us"], r["p99_us"], r["p999_us"], r["msgs_per_batch"], r["ctx_per_req"]))
        lines += ["", "The ring columns show the socket→swarm hop at moderate load: with few requests in flight "
                  "each recvmmsg batch is small, and every batch costs an eventfd write and a wake-up of the "
                  "other worker (on the same CPU here, so a context switch)."]
        self.results["latency"] = {"max": max_rate, "steps": [(n, r) for n, r in steps], "chosen": best[0]}
        self.md.append("\n".join(lines))
        return best[1]

    def sec_scaling(self):
        names = ["shoald", "shoald-2sw", "shoald-2sw-2cpu", "shoald-2x2-2cpu"]
        runs = self.throughput("scaling", "udp", names)
        both = "tracker and generator share CPUs 0-1 (this machine has 2)"
        meds = self.table("Scaling: UDP at 1 and 2 socket workers, 1 and 2 swarm workers", runs, None,
                          {"shoald-2sw-2cpu": both, "shoald-2x2-2cpu": both})
        if meds.get("shoald"):
            self.md[-1] += ("\n\n2 socket workers ÷ 1, same CPU: %.2f×; on 2 CPUs shared with the generator: %.2f×; "
                            "2 socket + 2 swarm workers on 2 CPUs shared with the generator: %.2f×. "
                            "With 2 cores and the generator needing one, more workers cannot show more "
                            "throughput here; these rows show their overhead, not their scaling (what would "
                            "scale with more cores, and why: tools/bench/README.md, \"Scaling\")."
                            % (meds["shoald-2sw"] / meds["shoald"], meds["shoald-2sw-2cpu"] / meds["shoald"],
                               meds.get("shoald-2x2-2cpu", 0) / meds["shoald"]))

    def sec_topology(self):
        """The topology map's lookup (issue 11): 100,000 prefixes, range table vs a linear scan."""
        runs = []
        for r in range(max(1, self.a.rounds)):
            argv = ["taskset", "-c", str(self.a.tracker_cpu), self.tool("topology_bench"), "--json",
                    "--prefixes", "100000", "--lookups", "20000000", "--seed", str(r + 1)]
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError("topology_bench failed: %s" % out.stderr.strip())
            runs.append(json.loads(out.stdout))
            log("topology round %d: %s" % (r + 1, runs[-1]))
        med = lambda k: statistics.median(x[k] for x in runs)
        self.results["topology"] = runs
        self.md.append("\n".join([
            "### Topology map lookup (issue 11)", "",
            "`topology_bench`: a random map of 100,000 nested prefixes (80 %% IPv4), %d round(s), medians; "
            "20 M lookups of random addresses (half inside mapped blocks) per family; the linear scan over the "
            "same prefixes is the naive structure, timed on 2,000 addresses of the same run and checked to give "
            "the same answers." % len(runs), "",
            "| structure | IPv4 ns/lookup | IPv6 ns/lookup |", "| --- | ---: | ---: |",
            "| range table (binary search; what socket workers use) | %.1f | %.1f |" % (med("v4_ns"), med("v6_ns")),
            "| linear scan | %.0f | %.0f |" % (med("linear_v4_ns"), med("linear_v6_ns")), "",
            "Range table ÷ linear scan: %.0f× faster (IPv4). The map flattens to %d IPv4 and %d IPv6 ranges, "
            "built in %.0f ms (what a reload spends before it publishes)."
            % (med("linear_v4_ns") / med("v4_ns"), med("ranges_v4"), med("ranges_v6"), med("build_ms"))]))

    def sec_conn_ids(self):
        """BEP 15 connection-id checks (issue 14): own key, a cluster key file, a key rotation."""
        runs = []
        for r in range(max(1, self.a.rounds)):
            argv = ["taskset", "-c", str(self.a.tracker_cpu), self.tool("conn_id_bench"), "--json",
                    "--checks", "5000000", "--seed", str(r + 1)]
            out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError("conn_id_bench failed: %s" % out.stderr.strip())
            runs.append(json.loads(out.stdout))
            log("conn_ids round %d: %s" % (r + 1, runs[-1]))
        med = lambda row, k: statistics.median(x[row][k] for x in runs)
        self.results["conn_ids"] = runs
        rows = [("own_key", "own random key (no key file), no skew"),
                ("key_file", "`udp.connection_id_key_file`, 1 key, 10 s skew"),
                ("rotation", "key file during a rotation: 2 keys, 10 s skew")]
        lines = ["### Connection-id checks (issue 14)", "",
                 "`conn_id_bench`: ns per call of `ConnectionIds` (what a socket worker runs per UDP request), "
                 "%d round(s) of 5 M calls each, medians; 4,096 IPv4 clients round robin. A wrong id (a forged "
                 "request) tries every key and bucket." % len(runs), "",
                 "| keys | connect | fresh id | id of the previous bucket | id of the previous key | wrong id |",
                 "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for row, label in rows:
            key = "%.0f" % med(row, "previous_key_ns") if row == "rotation" else "-"
            lines.append("| %s | %.0f | %.0f | %.0f | %s | %.0f |" % (
                label, med(row, "connect_ns"), med(row, "fresh_ns"), med(row, "previous_bucket_ns"), key,
                med(row, "wrong_ns")))
        self.md.append("\n".join(lines))

    def sec_memory(self):
        """Fills 800k IPv4 then 200k IPv6 peers over 100k torrents; measures shm, RSS, peers."""
        v4, v6, torrents = self.a.mem_peers_v4, self.a.mem_peers_v6, 100000
        out = {}
        for name in ["shoald", "opentracker"]:
            tr = self.make(name, memory=True)
            rows = []
            try:
                tr.start()
                rows.append(("empty", tr.memory()))
                fill = ["--torrents", str(torrents), "--mix", "0:1:0", "--warmup", "0", "--duration", "600"]
                for fam, peers, target in [("IPv4", v4, tr.udp_target), ("IPv6", v6, tr.udp6_target)]:
                    if target is None:
                        rows.append(("+%s: not supported" % fam, None))
                        continue
                    # udp_load walks each socket's peers round-robin and stops at --max-requests;
                    # on a shared machine its sockets run at very different speeds (with 12 % extra
                    # requests only ~55 % of the peers were stored), so it sends 2.5 requests per
                    # peer (a re-announce of a stored peer is a no-op; 0.5 % of announces are
                    # `stopped`). The count reported is what a scrape finds.
                    socks = 64 if fam == "IPv4" else 16
                    argv = ["taskset", "-c", str(self.a.gen_cpu), self.tool("udp_load"), "--target", target, "--json",
                            "--peers", str(peers), "--sockets", str(socks), "--inflight", "2",
                            "--max-requests", str(int(peers * 2.5))] + fill
                    res, _ = run_gen(argv, 700)  # a shared machine may need minutes for the fill
                    time.sleep(0.5)
                    m = tr.memory()
                    m["peers_scraped"] = T.scrape_count(target, self.whitelist, torrents)
                    m["timeouts"] = res.get("timeouts", 0)
                    rows.append(("+%d %s peers" % (peers, fam), m))
                    log("memory %s after %s: %s" % (name, fam, m))
            finally:
                tr.stop()
            out[name] = rows
        self.results["memory"] = out
        self.md.append(memory_table(out))

    # ------------------------------------------------------------------ output
    def write(self, started, command, publish=True):
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, text=True).stdout.strip()
        head = ["## Latest `make bench`", "",
                "- date: %s" % started.strftime("%Y-%m-%d %H:%M UTC"),
                "- machine: %d CPUs (`nproc`), %s, Linux %s; tracker on CPU %d, generator on CPU %d (`taskset`)"
                % (os.cpu_count(), cpu, platform.release(), self.a.tracker_cpu, self.a.gen_cpu),
                "- commit: %s%s" % (commit, " + uncommitted changes in the work tree" if dirty else ""),
                "- command: `%s`" % command,
                "- runs: %d round(s), each run %g s warm-up + %g s measured on a freshly started tracker; trackers "
                "alternate within a round; medians and ranges over rounds"
                % (self.a.rounds, self.a.warmup, self.a.duration),
                "- load: `udp_load`/`http_load` defaults: 100,000 torrents, 200,000 peers, Pareto 1.16 popularity, "
                "announce:scrape 50:1 (UDP adds 1 connect), numwant 30, 16 UDP sockets × 16 in flight, 64 HTTP "
                "connections × 1 in flight (the pipelined row: × %d, written together); every response validated, "
                "each announce's peer count against its own numwant. Full-reply table: the same with numwant drawn "
                "from 30–200 per announce over 10,000 torrents" % PIPELINE,
                "- ceiling: `limit_server` answers valid empty replies (`--spin`: without ever sleeping; the other "
                "row sleeps in epoll_wait); the better of the two medians is the generator's ceiling (**bold**), "
                "and a tracker at ≥ 95 % of it is shown as \"≥ ceiling\". In the full-reply table the ceiling is "
                "`limit_server --spin --full`, which answers every announce with numwant synthetic peers",
                "- CPU columns: share of one CPU used by the tracker's processes, by the generator, and by "
                "other users' processes on this shared machine (from /proc/PID/stat, reaped children included). A run with other > %g %% is redone "
                "up to %d times and the quietest kept; each run also waits (≤ 20 s) for a quiet machine first"
                % (self.a.max_other, self.a.retries), ""]
        body = "\n".join(head) + "\n" + "\n\n".join(self.md) + "\n"
        with open(os.path.join(self.build, "bench-results.json"), "w") as f:  # every run's raw figures
            json.dump(self.results, f, indent=1, default=str)
        print(body)
        if not publish:
            print("(--only ran a subset of the sections: RESULTS.md and README.md left as they were)")
            return
        results = os.path.join(REPO, "tools", "bench", "RESULTS.md")
        with open(results) as f:
            kept = history_of(f.read())
        with open(results, "w") as f:
            f.write("# shoal benchmark results\n\nWritten by `make bench` (tools/bench/bench.py) down to the first "
                    "section after the latest run's tables; the sections after them (partial runs, A/Bs, quiet "
                    "re-measures) are kept from run to run.\n\n" + body + kept)
        readme = os.path.join(REPO, "README.md")
        with open(readme) as f:
            text = f.read()
        b, e = "<!-- bench:begin -->", "<!-- bench:end -->"
        if b in text and e in text:
            text = text[:text.index(b) + len(b)] + "\n" + body.replace("## Latest", "### Latest", 1).replace(
                "\n### ", "\n#### ") + text[text.index(e):]
            with open(readme, "w") as f:
                f.write(text)


ALL_SECTIONS = "udp,latency,udp-full,http,http-full,scaling,memory,topology,conn_ids,recovery,snapshot,ws,cluster"


def fmt(x):
    return "{:,.0f}".format(x)


def memory_table(out):
    lines = ["### Memory: 1,000,000 peers over 100,000 torrents", "",
             "Filled with `udp_load --mix 0:1:0` (2.5 announces per peer, round robin): IPv4 peers from 64 source "
             "addresses, then IPv6 peers from ::1; peers counted by scraping all 100,000 torrents. shoald: "
             "*partition* is the touched pages (`du`) of the swarm partition segment /dev/shm/NAME-part-0 (torrent "
             "and peer tables, indexes, peer lists: everything that grows with peers); *fixed shm* is the other "
             "segments (rings, control), whose size does not depend on the number of peers; *private* is RssAnon + "
             "RssFile of every shoald process. *Total* = partition + fixed shm + private: each shared page is "
             "counted once (summing VmRSS would count a segment once per process that maps it). opentracker: "
             "VmRSS of its one process (Debian's build is IPv4-only).", "",
             "| tracker | after | peers stored | partition (touched) | partition B/peer | fixed shm | private | total | total B/peer |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rows in out.items():
        for label, m in rows:
            if m is None:
                lines.append("| %s | %s | | | | | | | |" % (name, label))
                continue
            peers = m.get("peers_scraped")
            segs = m.get("segments", {})
            part = sum(t for k, (t, _) in segs.items() if k.startswith("part-"))
            fixed = sum(t for k, (t, _) in segs.items() if not k.startswith("part-"))
            pp = lambda v: "%.1f" % (v / peers) if peers else "—"  # noqa: E731
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, label, fmt(peers) if peers is not None else "—", mib(part) if segs else "—",
                pp(part) if segs else "—", mib(fixed) if segs else "—", mib(m["private"]), mib(m["total"]),
                pp(m["total"])))
    last = [m for _, m in out.get("shoald", []) if m and m.get("partition")]
    if last:
        m = last[-1]
        lines += ["", "shoald after the fill: partition counters " + ", ".join(
            "%s %s" % (k, fmt(v)) for k, v in m["partition"].items()) + "; segments (touched / size) " + ", ".join(
            "%s %s / %s" % (k, mib(t), mib(z)) for k, (t, z) in sorted(m["segments"].items()))
            + ". Capacity: 131,072 torrents and 1,048,576 peers in one partition (the fill uses ~95 %)."]
    return "\n".join(lines)


def history_of(text):
    """The part of RESULTS.md that a full run keeps: everything from the first level-2 section
    ("## ") after "## Latest `make bench`" (the hand-written partial runs and A/Bs), or ""."""
    at = text.find("\n## Latest `make bench`")
    if at < 0:
        return ""
    nxt = text.find("\n## ", at + 1)
    return "\n" + text[nxt + 1:] if nxt >= 0 else ""


def mib(b):
    return "%.1f MiB" % (b / 1048576)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build", "bench"))
    ap.add_argument("--node-dir", default=os.path.join(REPO, "build", "bench-node"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    ap.add_argument("--only", default=ALL_SECTIONS,
                    help="comma-separated sections; a subset prints its tables but does not rewrite "
                         "RESULTS.md or README.md")
    ap.add_argument("--retries", type=int, default=2, help="redo a run up to N times while other jobs disturb it")
    ap.add_argument("--max-other", type=float, default=20.0, help="%% of a CPU used by others that triggers a redo")
    ap.add_argument("--tracker-cpu", type=int, default=1)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--mem-peers-v4", type=int, default=800000)
    ap.add_argument("--mem-peers-v6", type=int, default=200000)
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
        QUIET_BUDGET[0] = 30.0
    args.node_dir = os.path.abspath(args.node_dir)
    started = datetime.datetime.now(datetime.timezone.utc)
    command = "BENCH_QUICK=1 make bench" if args.quick and os.environ.get("BENCH_QUICK") else (
        os.environ.get("BENCH_COMMAND") or " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    b = Bench(args)
    only = set(args.only.split(","))
    try:
        udp = b.sec_udp() if "udp" in only else {}
        if "latency" in only and udp.get("shoald"):
            b.sec_latency(udp["shoald"])
        if "udp-full" in only:
            b.sec_udp_full()
        if "http" in only:
            b.sec_http(True)
            b.sec_http(True, PIPELINE)
            b.sec_http(False)
        if "http-full" in only:
            b.sec_http_full()
        if "scaling" in only:
            b.sec_scaling()
        if "memory" in only:
            b.sec_memory()
        if "topology" in only:
            b.sec_topology()
        if "conn_ids" in only:
            b.sec_conn_ids()
        if "recovery" in only:
            import bench_recovery
            b.md.append(bench_recovery.run(b, log))
        if "snapshot" in only:
            import bench_snapshot
            b.md.append(bench_snapshot.run(b, log))
        if "ws" in only:
            bench_ws.sec_ws(b, sys.modules[__name__])
        if "cluster" in only:
            import bench_cluster
            bench_cluster.sec_cluster(b, log)
    finally:
        T.stop_all()
        shutil.rmtree(b.work, ignore_errors=True)
    b.write(started, command, publish=only >= set(ALL_SECTIONS.split(",")))


if __name__ == "__main__":
    main()
