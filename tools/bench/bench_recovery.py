"""`make bench` section "recovery" (issue 12): how long a swarm worker's partition is without
service when its worker is killed (kill -9) or replaced by a rolling restart, with 1,000,000 IPv4
peers stored (one socket worker, one swarm worker, pinned to the tracker CPU; the probe and the
bench's polls on the generator CPU).

A probe announces one torrent over UDP (BEP 15) every millisecond from the generator CPU and
records when each reply arrives; the figure of a round is the longest time between two replies
around the event (kill -9 of the swarm worker, or SIGUSR2 to the supervisor: a rolling restart of
every worker, the swarm slot first). Rounds are 3.5 s apart (the previous worker's check in the
background has finished) and restart_healthy_after is 1 s, so every kill is a first crash. Medians of the rounds, and what shoald logged about each recovery.
"""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import trackers as T

PROTOCOL_ID = 0x41727101980


class Probe(threading.Thread):
    """Announces `info_hash` to host:port every `period` s (a new transaction each time, so a
    lost request costs one period); records the monotonic time of every reply. The thread runs
    on `cpu` (the generator's): on the tracker's CPU it waited behind the processes it measures,
    and their start-up showed as gaps of up to 12 ms in which no request was sent."""

    def __init__(self, host, port, info_hash, cpu, period=0.001):
        super().__init__(daemon=True)
        self.addr, self.ih, self.period, self.cpu = (host, port), info_hash, period, cpu
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setblocking(False)
        self.replies = []
        self.stop_flag = False
        self.conn = None

    def connect(self):
        self.s.settimeout(1.0)
        for _ in range(10):
            try:
                self.s.sendto(struct.pack(">QII", PROTOCOL_ID, 0, 7), self.addr)
                d = self.s.recv(64)
                self.conn = d[8:16]
                break
            except OSError:
                continue
        self.s.setblocking(False)
        if self.conn is None:
            raise RuntimeError("probe: no connect reply")

    def run(self):
        os.sched_setaffinity(0, {self.cpu})  # this thread only
        tid = 100
        next_send = time.monotonic()
        while not self.stop_flag:
            now = time.monotonic()
            if now >= next_send:
                tid += 1
                pkt = self.conn + struct.pack(">II", 1, tid) + self.ih + b"-PR0001-probeprobe00" + \
                    struct.pack(">QQQIIIiH", 0, 100, 0, 0, 0, 0, 0, 6881)
                try:
                    self.s.sendto(pkt, self.addr)
                except OSError:
                    pass
                next_send = now + self.period
            try:
                d = self.s.recv(2048)
                if len(d) >= 20 and struct.unpack(">I", d[:4])[0] == 1:
                    self.replies.append(time.monotonic())
            except BlockingIOError:
                time.sleep(0.0002)
            except OSError:
                time.sleep(0.0002)

    def gap_around(self, t_event, before=0.05, after=3.0):
        """Longest time without a reply from `before` s before the event to `after` s after."""
        ts = [t for t in self.replies if t_event - before <= t <= t_event + after]
        if len(ts) < 2:
            return None
        return max(b - a for a, b in zip(ts, ts[1:]))


class RecoveryShoald(T.Shoald):
    """The bench's shoald, with restart_healthy_after = 1 s: the rounds are 3.5 s apart, so each
    kill is the first crash of a streak (restarted at once), not the n-th of a crash loop."""

    def argv(self):
        argv = super().argv()
        with open(argv[-1], "a") as f:
            f.write("supervisor:\n{\n  restart_healthy_after = 1;\n};\n")
        return argv


def swarm_pid(bench, tr):
    out = subprocess.run([bench.tool("shm_inspect"), "--name", tr.shm, "workers"], stdout=subprocess.PIPE,
                         text=True, timeout=10).stdout
    m = re.search(r"^swarm 0 pid=(\d+) .*ready=(\d+)", out, re.M)
    return int(m.group(1)) if m else None


def fill(bench, tr, peers, torrents=100000):
    argv = ["taskset", "-c", str(bench.a.gen_cpu), bench.tool("udp_load"), "--target", tr.udp_target, "--json",
            "--peers", str(peers), "--sockets", "64", "--inflight", "2", "--max-requests", str(int(peers * 1.12)),
            "--torrents", str(torrents), "--mix", "0:1:0", "--warmup", "0", "--duration", "120"]
    subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=200)


def run(bench, log):
    """Returns the markdown table; fills bench.results["recovery"]."""
    peers = 200000 if bench.a.quick else 1000000
    rounds = 2 if bench.a.quick else 3
    tr = RecoveryShoald(bench, "shoald", str(bench.a.tracker_cpu), memory=True)
    res = {"peers": peers, "kill": [], "roll": []}
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {bench.a.gen_cpu})  # this thread and what it starts (shm_inspect); shoald has its taskset
    try:
        tr.start()
        fill(bench, tr, peers)
        with open(bench.whitelist) as f:
            ih = bytes.fromhex(next(f).strip())
        probe = Probe("127.0.0.1", tr.port, ih, bench.a.gen_cpu)
        probe.connect()
        probe.start()
        time.sleep(0.3)
        for kind in ("kill", "roll"):
            for _ in range(rounds):
                old = swarm_pid(bench, tr)
                t = time.monotonic()
                if kind == "kill":
                    os.kill(old, signal.SIGKILL)
                else:
                    os.kill(tr.proc.pid, signal.SIGUSR2)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and swarm_pid(bench, tr) in (None, old):
                    time.sleep(0.01)
                time.sleep(3.5)  # the replacement's background check, and the rest of the roll
                gap = probe.gap_around(t)
                res[kind].append(gap * 1000 if gap is not None else None)
                log("recovery %s: %s ms without service" % (kind, res[kind][-1]))
        probe.stop_flag = True
        probe.join(2)
    finally:
        tr.stop()
        os.sched_setaffinity(0, affinity)
    bench.results["recovery"] = res

    def med(xs):
        xs = sorted(x for x in xs if x is not None)
        return xs[len(xs) // 2] if xs else None

    def f(x):
        return "%.1f" % x if x is not None else "—"

    lines = ["### Recovery of a swarm worker's partition, %d IPv4 peers stored" % peers, "",
             "| event | ms without service (median) | rounds | target |", "|---|---:|---|---:|",
             "| kill -9 of the swarm worker | %s | %s | < 50 |" % (f(med(res["kill"])), ", ".join(f(x) for x in res["kill"])),
             "| rolling restart (swarm slot first) | %s | %s | < 20 |" % (f(med(res["roll"])), ", ".join(f(x) for x in res["roll"])),
             "", "Measured by a UDP probe announcing every 1 ms from the generator's CPU (the longest time "
             "between two replies around the event, 3 s of it: a roll replaces the socket worker too), on "
             "this shared 2-CPU machine. kill -9: the kernel's teardown of the killed worker (its 60-70 MB "
             "of mapped partition) comes before the restart, then the new worker's start "
             "(`partition 0 serving X ms after this worker started`, 1-3 ms). Rolling restart: the new swarm "
             "worker waits, attached, until the old one releases the partition after its last batch, and "
             "serves at once (`serving X ms after this worker took it`, 0.1-0.3 ms); the old one's exit runs "
             "at idle priority. Other jobs on the tracker's CPU show as gaps of their own.", ""]
    return "\n".join(lines)
