"""bench_ws.py — the "ws" section of tools/bench/bench.py (issue 10): WebTorrent tracking over
WebSocket, shoald against npm bittorrent-tracker's own server, loaded by tools/ws_load.

- Throughput: ws:// and wss://, 64 connections x 1 announce in flight, 5 offers each (every
  relayed offer answered), 1,000 torrents; rounds alternate the trackers, each run on a freshly
  started tracker; median announces/s and the ratio shoald / bittorrent-tracker.
- Many connections: 16,000 connections (BENCH_QUICK: 4,000) on shoald's one socket worker, all
  announcing (closed loop), against the same on bittorrent-tracker.
- Memory per idle connection: the trackers' RSS before and after opening N idle connections
  (`ws_load --idle`), plain and TLS.

shoald runs with 1 socket worker + 1 swarm worker and ws/wss enabled; bittorrent-tracker runs
`new Server({http: false, udp: false, ws: ...})` under node, over wss behind node's https
server (the ws package's noServer upgrade hook), since the Server class has no TLS option.
Both pinned to the tracker CPU, ws_load to the generator CPU. The certificate comes from
tools/make_test_cert.sh and ws_load checks it (--cacert). Stdlib only; every process started
here is bounded in time and stopped by its PID.
"""
import os
import re
import resource
import select
import signal
import socket
import ssl
import statistics
import subprocess
import time

import trackers as T

TORRENTS, OFFERS, CONNECTIONS = 1000, 5, 64
# shoald counters that show trouble (shm_inspect counters), reported when they move in a run.
TROUBLE = ["ring_full_drops", "ws_connections_refused", "ws_handshake_failures", "ws_failure",
           "ws_answers_dropped", "ws_relay_dropped", "tls_handshake_failures"]
LABELS = {"shoald": "shoald (1 socket + 1 swarm worker)", "bittorrent-tracker": "bittorrent-tracker (npm, node)"}
_ws_cache = {}


def ws_probe(port, tls, timeout=0.5):
    """True if 127.0.0.1:port completes a WebSocket upgrade (101), over TLS if tls."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        s.sendall(b"GET /announce HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 101")
    except OSError:
        return False
    finally:
        s.close()


def shoald_has_ws(bench):
    """Whether this shoald build has the WebSocket front-end (a ws section in `shoald -p`)."""
    if bench.build not in _ws_cache:
        p = subprocess.run([bench.tool("shoald"), "-p"], stdout=subprocess.PIPE, text=True, timeout=10)
        _ws_cache[bench.build] = bool(re.search(r"^ws\s*[:=]", p.stdout, re.M))
    return _ws_cache[bench.build]


class ShoaldWs(T.Shoald):
    """shoald with ws on one port and wss on another (TLS: the bench's test certificate)."""

    def __init__(self, bench, name, cpus, cert_dir):
        super().__init__(bench, name, cpus)
        self.cert_dir = cert_dir
        self.ws_port, self.wss_port = T.free_port(), T.free_port()

    def url(self, tls):
        return "%s://127.0.0.1:%d/announce" % ("wss" if tls else "ws", self.wss_port if tls else self.ws_port)

    def argv(self):
        argv = super().argv()
        with open(argv[-1], "a") as f:  # super() wrote the UDP config; the UDP probe says ready
            # relay_bytes_per_second: each of ws_load's 64 connections carries the load of
            # many browsers (100+ announces/s, ~5 offers and ~5 answers each); shoald's default
            # per-connection relay budget (256 KiB/s, sized for one browser) would drop offers
            # that bittorrent-tracker (no such cap) relays, and shoald would do less per announce.
            f.write('ws:\n{\n  enabled = true;\n  listen = [ "127.0.0.1:%d" ];\n  max_connections = 16384;\n'
                    '  max_connections_per_source = 0;\n  relay_bytes_per_second = 16777216;\n};\n'
                    'wss:\n{\n  enabled = true;\n  listen = [ "127.0.0.1:%d" ];\n};\n'
                    'https:\n{\n  certificate = "%s/cert.pem";\n  private_key = "%s/key.pem";\n};\n'
                    % (self.ws_port, self.wss_port, self.cert_dir, self.cert_dir))
        return argv

    def wait_ready(self, timeout=30):
        super().wait_ready(timeout)
        deadline = time.monotonic() + 10
        while not (ws_probe(self.ws_port, False) and ws_probe(self.wss_port, True)):
            if time.monotonic() > deadline:
                raise RuntimeError("shoald: no WebSocket upgrade on ports %d/%d (see %s)"
                                   % (self.ws_port, self.wss_port, self.log.name))
            time.sleep(0.1)


class BtTrackerWs(T.Tracker):
    """npm bittorrent-tracker's Server with only its WebSocket tracker, plain or behind https."""
    SCRIPT = ("import Server from 'file://%s/node_modules/bittorrent-tracker/server.js';"
              "import https from 'node:https'; import fs from 'node:fs';"
              "const [port, cert, key] = [Number(process.argv[1]), process.argv[2], process.argv[3]];"
              "const s = new Server({ http: false, udp: false, stats: false, ws: cert ? { noServer: true } : true });"
              "s.on('error', e => console.error('error', e.message)); s.on('warning', () => {});"
              "if (cert) {"
              "  const h = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });"
              "  h.on('upgrade', (req, sock, head) => s.ws.handleUpgrade(req, sock, head,"
              "    ws => s.ws.emit('connection', ws, req)));"
              "  h.listen(port, '127.0.0.1');"
              "} else { s.listen(port, { http: '127.0.0.1' }); }")

    def __init__(self, bench, name, cpus, cert_dir, tls):
        super().__init__(bench, name, cpus)
        self.cert_dir, self.tls = cert_dir, tls

    def url(self, tls):
        assert tls == self.tls
        return "%s://127.0.0.1:%d/announce" % ("wss" if tls else "ws", self.port)

    def argv(self):
        tls = [os.path.join(self.cert_dir, "cert.pem"), os.path.join(self.cert_dir, "key.pem")] if self.tls else []
        return ["node", "--input-type=module", "-e", self.SCRIPT % self.b.a.node_dir, str(self.port)] + tls

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while not ws_probe(self.port, self.tls):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (see %s)" % (self.name, self.log.name))
            if time.monotonic() > deadline:
                raise RuntimeError("%s not ready after %ds" % (self.name, timeout))
            time.sleep(0.1)
        self.pids()


class WsSection:
    def __init__(self, bench, helpers):
        self.b, self.h, self.a = bench, helpers, bench.a
        self.cert_dir = os.path.join(bench.work, "ws-cert")
        subprocess.run([os.path.join(T_REPO, "tools", "make_test_cert.sh"), self.cert_dir],
                       stdout=subprocess.DEVNULL, check=True, timeout=30)
        self.hold = 4000 if self.a.quick else 16000
        raise_nofile(self.hold + 4096)  # ws_load raises its own; the trackers inherit this one
        self.names = ["shoald", "bittorrent-tracker"] if shoald_has_ws(bench) else ["bittorrent-tracker"]

    def make(self, name, tls):
        cpus = str(self.a.tracker_cpu)
        if name == "shoald":
            return ShoaldWs(self.b, name, cpus, self.cert_dir)
        return BtTrackerWs(self.b, name, cpus, self.cert_dir, tls)

    def gen_argv(self, url, connections, warmup, seconds, extra=()):
        return (["taskset", "-c", str(self.a.gen_cpu), self.b.tool("ws_load"), "--url", url,
                 "--connections", str(connections), "--torrents", str(TORRENTS), "--offers", str(OFFERS),
                 "--warmup", str(warmup), "--seconds", str(seconds), "--cacert",
                 os.path.join(self.cert_dir, "cert.pem")] + list(extra))

    def start(self, name, tls):
        """A freshly started tracker. A start that fails (e.g. a port taken by another user's
        process between the free-port check and the bind) is logged and tried once more on
        new ports."""
        for attempt in range(2):
            tr = self.make(name, tls)
            try:
                tr.start()
                return tr
            except RuntimeError as e:
                log = getattr(tr, "log", None)
                tail = open(log.name, errors="replace").read()[-600:] if log else ""
                tr.stop()
                self.h.log("ws: %s did not start (%s): %s" % (name, e, tail.strip().replace("\n", " | ")))
                if attempt:
                    raise

    def one_run(self, name, tls, connections, warmup, seconds, extra=()):
        """A fresh tracker, one ws_load run: the generator's window figures plus, read at its
        "measuring" and "measured" lines, the CPU shares and shoald's trouble counters over the
        same window (and over the whole run)."""
        tr = self.start(name, tls)
        try:
            self.h.wait_quiet()
            marks = {}

            def mark(phase, pid):
                marks[phase] = (time.monotonic(), tr.cpu_seconds(), proc_cpu_seconds(pid),
                                self.h.foreign_cpu(), tr.counters() or {})
            mark("start", None)
            res = run_ws_load(self.gen_argv(tr.url(tls), connections, warmup, seconds, extra),
                              warmup + seconds + 150, mark)
            mark("end", None)
            a, b = marks.get("measuring"), marks.get("measured")
            if a and b:
                wall = b[0] - a[0]
                res.update(tracker_cpu=(b[1] - a[1]) / wall * 100, generator_cpu=(b[2] - a[2]) / wall * 100,
                           other_cpu=self.h.foreign_delta(a[3], b[3]) / wall * 100)
                # CPU per announce (with its relayed offers and answers): what a busy shared
                # machine disturbs least.
                answered = max(1, res.get("responses", 0))
                res.update(tracker_us_per_announce=(b[1] - a[1]) * 1e6 / answered,
                           gen_us_per_announce=(b[2] - a[2]) * 1e6 / answered)
                res["tracker_counters"] = counter_delta(a[4], b[4])
            else:
                res.update(tracker_cpu=0.0, generator_cpu=0.0, other_cpu=0.0)
            res["tracker_counters_run"] = counter_delta(marks["start"][4], marks["end"][4])
            res.setdefault("announces_per_s", 0.0)
            res.setdefault("messages", [])
            if tr.proc.poll() is not None:
                res.setdefault("messages", []).append("tracker exited with %s" % tr.proc.returncode)
            self.h.log("ws %s %s %d conns: %.0f announces/s, offers %d answers %d errors %d invalid %d timeouts %d "
                       "open %s; CPU tracker %.0f%% gen %.0f%% other %.0f%% %s" % (
                           name, "wss" if tls else "ws", connections, res["announces_per_s"],
                           res.get("offers_received", 0), res.get("answers_received", 0), res.get("errors", 0),
                           res.get("invalid", 0), res.get("timeouts", 0), res.get("connections_open"),
                           res["tracker_cpu"], res["generator_cpu"], res["other_cpu"], res.get("messages", [])[:3]))
            return res
        finally:
            tr.stop()

    def quiet_run(self, *args):
        """one_run, redone (up to --retries, within the quiet budget) while others disturb it."""
        best = None
        for attempt in range(self.a.retries + 1):
            if attempt and self.h.QUIET_BUDGET[0] <= 0:
                break
            t = time.monotonic()
            res = self.one_run(*args)
            if attempt:
                self.h.QUIET_BUDGET[0] -= time.monotonic() - t
            if best is None or res["other_cpu"] < best["other_cpu"]:
                best = res
            if res["other_cpu"] <= self.a.max_other:
                break
        return best

    def throughput(self):
        runs = {(n, tls): [] for tls in (False, True) for n in self.names}
        keys = list(runs)
        for r in range(self.a.rounds):
            for key in keys[r % len(keys):] + keys[:r % len(keys)]:
                runs[key].append(self.quiet_run(key[0], key[1], CONNECTIONS, self.a.warmup, self.a.duration))
        return runs

    def hold_runs(self):
        """The many-connections row: one run per tracker (the open phase alone takes seconds)."""
        out = {}
        for n in self.names:
            out[n] = self.quiet_run(n, False, self.hold, 5, 6 if self.a.quick else 10, ("--timeout", "30"))
        return out

    def idle_memory(self, name, tls, n):
        """RSS (shoald: private + touched shm) before and after n idle connections."""
        tr = self.start(name, tls)
        gen = None
        try:
            time.sleep(1.0)
            m0 = tr.memory()
            argv = self.gen_argv(tr.url(tls), n, 0, 300, ("--idle", "--open-timeout", "120"))
            gen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = read_line(gen, 150)
            res = parse_json(line)
            time.sleep(1.0)  # let the tracker finish setting up the last connections
            m1 = tr.memory()
            opened = res.get("connections_open", 0)
            out = {"before": m0["total"], "after": m1["total"], "open": opened,
                   "per_conn": (m1["total"] - m0["total"]) / opened if opened else None,
                   "open_seconds": res.get("open_seconds"), "messages": res.get("messages", [])}
            self.h.log("ws idle %s %s: %s" % (name, "wss" if tls else "ws", out))
            return out
        finally:
            if gen is not None:
                stop_pid(gen)
            tr.stop()

    def run(self):
        tput = self.throughput()
        hold = self.hold_runs()
        mem = {(n, tls): self.idle_memory(n, tls, self.hold) for tls in (False, True) for n in self.names}
        self.b.results["ws"] = {"throughput": {"%s/%s" % (n, "wss" if t else "ws"): v for (n, t), v in tput.items()},
                                "hold": hold, "memory": {"%s/%s" % (n, "wss" if t else "ws"): v
                                                         for (n, t), v in mem.items()}}
        self.b.md.append(self.tables(tput, hold, mem))

    # ------------------------------------------------------------------ tables
    def tables(self, tput, hold, mem):
        fmt = self.h.fmt
        med = lambda rs, k: statistics.median([r.get(k, 0) for r in rs]) if rs else 0.0  # noqa: E731
        out = ["### WebTorrent over WebSocket: %d connections × 1 announce in flight, %d offers each" % (
                   CONNECTIONS, OFFERS), "",
               "`ws_load`: %d connections (peers, each from its own 127.x address), %s torrents (Pareto 1.16), "
               "every announce with %d offers of a ~560-byte SDP and numwant %d; a peer that receives a relayed "
               "offer sends the answer back; every reply, relayed offer and relayed answer is checked against the "
               "ids and SDP that were sent. *Offers / answers relayed* count what arrived at the peers. "
               "wss: TLS 1.3 with a P-256 certificate, verified by the generator." % (
                   CONNECTIONS, fmt(TORRENTS), OFFERS, OFFERS), "",
               "| tracker | transport | announces/s (median) | range | offers relayed/s | answers relayed/s | "
               "p99 ms | errors / invalid / timeouts | CPU: tracker / gen / other | CPU µs per announce: "
               "tracker / gen | shoald ÷ this |",
               "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for tls in (False, True):
            ref = med(tput.get(("shoald", tls), []), "announces_per_s")
            for n in self.names:
                rs = tput[(n, tls)]
                m = med(rs, "announces_per_s")
                v = [r["announces_per_s"] for r in rs]
                secs = [max(r.get("seconds", 0), 1e-9) for r in rs]
                ratio = "—" if n == "shoald" else ("%.2f×" % (ref / m) if ref and m else "n/a")
                out.append("| %s | %s | %s | %s – %s | %s | %s | %.0f | %d / %d / %d | %.0f%% / %.0f%% / %.0f%% | "
                           "%.0f / %.0f | %s |" % (
                    LABELS[n], "wss" if tls else "ws", fmt(m), fmt(min(v)), fmt(max(v)),
                    fmt(statistics.median([r.get("offers_received", 0) / s for r, s in zip(rs, secs)])),
                    fmt(statistics.median([r.get("answers_received", 0) / s for r, s in zip(rs, secs)])),
                    med(rs, "p99_us") / 1000, sum(r.get("errors", 0) for r in rs),
                    sum(r.get("invalid", 0) for r in rs), sum(r.get("timeouts", 0) for r in rs),
                    med(rs, "tracker_cpu"), med(rs, "generator_cpu"), med(rs, "other_cpu"),
                    med(rs, "tracker_us_per_announce"), med(rs, "gen_us_per_announce"), ratio))
        out += ["", "CPU columns are over the measured window (read when ws_load prints its window marks). "
                "*CPU µs per announce*: CPU time of the tracker's processes (of ws_load) in the window divided by "
                "the announces answered in it; each announce brings its relayed offers and answers. Other users' "
                "jobs on this shared machine change it least of all columns."]
        out += self.notes(tput)
        out += ["", "### %s WebSocket connections on one socket worker, all announcing (ws://)" % fmt(self.hold), "",
                "The same load from %s connections (closed loop: each has one announce in flight, so the "
                "latency is the queue); 5 s warm-up after the last connection opened, then %d s measured." % (
                    fmt(self.hold), 6 if self.a.quick else 10), "",
                "| tracker | connections open (end) | opened in s | announces/s | p50 ms | p99 ms | "
                "errors / invalid / timeouts / late | disconnects | CPU: tracker / gen / other | "
                "CPU µs per announce: tracker / gen | shoald ÷ this |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        ref = hold.get("shoald", {}).get("announces_per_s", 0)
        for n in self.names:
            r = hold[n]
            m = r.get("announces_per_s", 0)
            ratio = "—" if n == "shoald" else ("%.2f×" % (ref / m) if ref and m else "n/a")
            out.append("| %s | %s | %.1f | %s | %.0f | %.0f | %d / %d / %d / %d | %d | %.0f%% / %.0f%% / %.0f%% | "
                       "%.0f / %.0f | %s |" % (
                LABELS[n], fmt(r.get("connections_open", 0)), r.get("open_seconds", 0), fmt(m),
                r.get("p50_us", 0) / 1000, r.get("p99_us", 0) / 1000, r.get("errors", 0), r.get("invalid", 0),
                r.get("timeouts", 0), r.get("late", 0), r.get("disconnects", 0) + r.get("server_closes", 0),
                r["tracker_cpu"], r["generator_cpu"], r["other_cpu"], r.get("tracker_us_per_announce", 0),
                r.get("gen_us_per_announce", 0), ratio))
        trouble = [t for n in self.names for t in self.trouble(n, "ws", [hold[n]])]
        msgs = sorted({"%s: %s" % (n, m) for n in self.names for m in hold[n].get("messages", [])})
        if msgs:
            out += ["", "Messages seen: " + "; ".join(msgs[:8])]
        if trouble:
            out += ["", "Problems: " + "; ".join(trouble) + "."]
        out += ["", "### Memory per idle WebSocket connection", "",
                "`ws_load --idle` opens %s connections (upgrade done, nothing sent) and holds them; the tracker's "
                "memory is read before and 1 s after the last one opened. shoald: private RSS of all its processes "
                "plus touched shared memory; node: RSS. Kernel socket buffers are not in either figure." % fmt(
                    self.hold), "",
                "| tracker | transport | connections open | before | after | per connection | "
                "bittorrent-tracker ÷ shoald |", "|---|---|---:|---:|---:|---:|---:|"]
        for tls in (False, True):
            ref = mem.get(("shoald", tls), {}).get("per_conn")
            for n in self.names:
                r = mem[(n, tls)]
                pc = r.get("per_conn")
                ratio = "—" if n == "shoald" else ("%.1f×" % (pc / ref) if pc and ref else "n/a")
                out.append("| %s | %s | %s | %.1f MiB | %.1f MiB | %s | %s |" % (
                    LABELS[n], "wss" if tls else "ws", fmt(r["open"]), r["before"] / 1048576, r["after"] / 1048576,
                    ("%s B" % fmt(pc)) if pc is not None else "—", ratio))
        if "shoald" not in self.names:
            out += ["", "shoald: this build has no WebSocket front-end (no `ws` section in `shoald -p`); "
                    "only bittorrent-tracker was measured."]
        return "\n".join(out)

    @staticmethod
    def trouble(name, transport, rs):
        """Notes on one row's runs: problems outside the measured window, shoald's counters."""
        out = []
        for key in ("errors", "invalid", "timeouts", "late", "disconnects", "server_closes"):
            extra = sum(r.get("run_totals", {}).get(key, 0) - r.get(key, 0) for r in rs)
            if extra:
                out.append("%d %s outside the measured window" % (extra, key))
        for key, when in (("tracker_counters", "in the window"), ("tracker_counters_run", "in the whole run")):
            counters = {}
            for r in rs:
                for k, v in r.get(key, {}).items():
                    counters[k] = counters.get(k, 0) + v
            out += ["%s %d %s" % (k, v, when) for k, v in sorted(counters.items())]
        return ["%s (%s): %s" % (name, transport, ", ".join(out))] if out else []

    def notes(self, tput):
        msgs = sorted({"%s: %s" % (n, m) for (n, _), rs in tput.items() for r in rs for m in r.get("messages", [])})
        trouble = [t for (n, tls), rs in tput.items() for t in self.trouble(n, "wss" if tls else "ws", rs)]
        gen_busy = any(statistics.median([r["generator_cpu"] for r in rs]) > 90 for rs in tput.values() if rs)
        out = []
        if gen_busy:
            out += ["", "A generator CPU near 100 % means ws_load itself was the limit of that row: it parses and "
                    "writes as much JSON per announce as the tracker does (one announce, its reply, the relayed "
                    "offers and the answers), on one core."]
        if msgs:
            out += ["", "Messages seen: " + "; ".join(msgs[:8])]
        if trouble:
            out += ["", "Problems (shoald's counters from shm_inspect, read when the window opened and closed, "
                    "and at the start and end of the run: opening and closing the connections included): "
                    + "; ".join(trouble) + "."]
        return out


T_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_cpu_seconds(pid):
    """utime + stime of process pid in seconds (0 if gone or None)."""
    if pid is None:
        return 0.0
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def counter_delta(before, after):
    """The TROUBLE counters that moved between two shm_inspect readings."""
    return {k: after.get(k, 0) - before.get(k, 0) for k in TROUBLE if after.get(k, 0) != before.get(k, 0)}


def run_ws_load(argv, timeout, on_phase):
    """Runs ws_load (argv; taskset execs it, so the child's PID is ws_load's), calls
    on_phase(phase, pid) for every JSON line as it comes, and returns the last line's dict."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    last = None
    try:
        while True:
            line = read_line(p, max(0.0, deadline - time.monotonic()))
            if not line:
                break
            d = parse_json(line)
            on_phase(d.get("phase"), p.pid)
            last = d
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop_pid(p)
    if last is None:
        last = {"messages": ["ws_load: no output (exit %s): %s" % (p.returncode, p.stderr.read()[-200:].strip())]}
    return last


def read_line(p, timeout):
    """The first stdout line of p within timeout seconds ("" if none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            return p.stdout.readline()
        if p.poll() is not None:
            return ""
    return ""


def parse_json(line):
    import json
    try:
        return json.loads(line)
    except ValueError:
        return {"messages": ["no output from ws_load: %r" % line[:200]]}


def stop_pid(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def sec_ws(bench, helpers):
    """Runs the ws section; `helpers` is bench.py's module (wait_quiet, run_gen, fmt, ...)."""
    WsSection(bench, helpers).run()
