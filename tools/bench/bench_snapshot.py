"""`make bench` section "snapshot" (issue 14): with 1,000,000 IPv4 peers stored in one partition
(one socket worker, one swarm worker, pinned to the tracker CPU), how long `shoalctl snapshot
save` takes, how big the file is, and what it costs the hot path: a probe announces over UDP
every millisecond during the save, and the longest time between two replies during the save is
set against the same figure over a quiet stretch of the same length just before it. Then shoald
is stopped, its shared memory removed, and it is started again with tracker.snapshot_load:
the time from start to every worker ready, and the peers it loaded.
"""
import json
import os
import subprocess
import time

import bench_recovery as R


class SnapshotShoald(R.RecoveryShoald):
    """The recovery bench's shoald, with a stats socket and tracker.snapshot_load."""

    def __init__(self, bench, *a, **kw):
        super().__init__(bench, *a, **kw)
        self.snapshot = os.path.join(bench.work, "snapshot-%d" % self.port)
        self.sock = os.path.join(bench.work, "shoal-%d.sock" % self.port)

    def argv(self):
        argv = super().argv()
        with open(argv[-1]) as f:
            text = f.read()
        text = text.replace("peer_ttl = 3600;", 'peer_ttl = 3600;\n  snapshot_load = "%s";' % self.snapshot)
        text = text.replace('stats:\n{\n  socket = "";\n};\n', "")  # trackers.py's (off); this one has its own
        with open(argv[-1], "w") as f:
            f.write(text + 'stats:\n{\n  socket = "%s";\n};\n' % self.sock)
        return argv

    def ctl(self, *words, timeout=600):
        p = subprocess.run([self.b.tool("shoalctl"), "-s", self.sock] + list(words), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return p.returncode, p.stdout


def longest_gap(ts, a, b):
    ts = [t for t in ts if a <= t <= b]
    return max((y - x for x, y in zip(ts, ts[1:])), default=None)


def run(bench, log, rounds=None):
    """Returns the markdown table; fills bench.results["snapshot"]."""
    peers = 200000 if bench.a.quick else 1000000
    rounds = rounds or (2 if bench.a.quick else 3)
    tr = SnapshotShoald(bench, "shoald", str(bench.a.tracker_cpu), memory=True)
    res = {"peers": peers, "save_s": [], "gap_ms": [], "quiet_gap_ms": [], "bytes": None, "load_ready_s": None,
           "loaded": None}
    try:
        tr.start()
        R.fill(bench, tr, peers)
        with open(bench.whitelist) as f:
            ih = bytes.fromhex(next(f).strip())
        probe = R.Probe("127.0.0.1", tr.port, ih, bench.a.gen_cpu)
        probe.connect()
        probe.start()
        time.sleep(0.3)
        for _ in range(rounds):
            t0 = time.monotonic()
            rc, out = tr.ctl("snapshot", "save", tr.snapshot)
            t1 = time.monotonic()
            if rc != 0:
                raise RuntimeError("snapshot save failed: " + out)
            time.sleep(0.2)
            res["save_s"].append(t1 - t0)
            res["gap_ms"].append((longest_gap(probe.replies, t0, t1) or 0) * 1000)
            res["quiet_gap_ms"].append((longest_gap(probe.replies, t0 - (t1 - t0) - 0.2, t0 - 0.2) or 0) * 1000)
            res["bytes"] = os.path.getsize(tr.snapshot)
            log("snapshot save: %.2f s, longest gap %.1f ms (quiet before: %.1f ms), %d bytes"
                % (res["save_s"][-1], res["gap_ms"][-1], res["quiet_gap_ms"][-1], res["bytes"]))
            time.sleep(1.0)
        probe.stop_flag = True
        probe.join(2)
        tr.stop()  # removes the shared memory: the next start has new partitions
        t = time.monotonic()
        tr.start()
        rc, out = tr.ctl("wait-ready", "120", timeout=130)
        res["load_ready_s"] = time.monotonic() - t
        rc, out = tr.ctl("show", "info", "json")
        res["loaded"] = json.loads(out)["snapshot"]["load"]
        log("start with the snapshot: ready after %.2f s, %s" % (res["load_ready_s"], res["loaded"]))
    finally:
        tr.stop()
    bench.results["snapshot"] = res

    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else None

    lines = ["### Swarm snapshot, %d IPv4 peers in one partition" % peers, "",
             "| what | median | rounds |", "|---|---:|---|",
             "| `shoalctl snapshot save` (s) | %.2f | %s |" % (med(res["save_s"]), ", ".join("%.2f" % x for x in res["save_s"])),
             "| longest gap between probe replies during the save (ms) | %.1f | %s |"
             % (med(res["gap_ms"]), ", ".join("%.1f" % x for x in res["gap_ms"])),
             "| the same over a quiet stretch just before (ms) | %.1f | %s |"
             % (med(res["quiet_gap_ms"]), ", ".join("%.1f" % x for x in res["quiet_gap_ms"])),
             "| snapshot file (bytes) | %d | |" % res["bytes"],
             "| start with tracker.snapshot_load to every worker ready (s) | %.2f | |" % res["load_ready_s"],
             "", "A probe announces every 1 ms over UDP; the swarm worker writes its partition in slices "
             "of at most ~0.3 ms between batches. Loaded at start: %s." % json.dumps(res["loaded"]), ""]
    return "\n".join(lines)
