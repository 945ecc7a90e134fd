"""trackers.py — start, probe, measure and stop the trackers that tools/bench/bench.py compares.

shoald (a temp config; 1 socket + 1 swarm worker unless told), Debian's opentracker (chrooted
in the bench's work dir, with the load generator's info hashes as its whitelist: the Debian
build is whitelist-only and IPv4-only), npm bittorrent-tracker (its server module run by node,
UDP + HTTP on loopback; the package's CLI imports the client, whose WebRTC addon cannot be
built offline) and tools/limit_server (--spin = the ceiling; "limit-blocking" sleeps in epoll;
"limit-full" = the ceiling of the full-reply load: numwant synthetic peers per announce).

Every tracker binds loopback addresses only, is pinned with taskset, is started by this module
and stopped by its PID (SIGTERM, then SIGKILL of the PIDs seen) with bounded waits.
Python 3 stdlib only.
"""
import os
import random
import re
import signal
import socket
import struct
import subprocess
import time

LABELS = {
    "shoald": "shoald (1 socket + 1 swarm worker)",
    "shoald-2sw": "shoald, 2 socket workers on 1 CPU",
    "shoald-2sw-2cpu": "shoald, 2 socket workers on 2 CPUs",
    "shoald-2x2-2cpu": "shoald, 2 socket + 2 swarm workers on 2 CPUs",
    "opentracker": "opentracker (Debian)",
    "bittorrent-tracker": "bittorrent-tracker (npm, node)",
    "limit": "limit server (--spin)",
    "limit-blocking": "limit server, sleeping in epoll",
    "limit-full": "limit server, full replies (--spin --full: numwant peers per announce)",
    "shoald-cluster": "shoald, cluster on (node 1 publishing its changes to NATS)",
    "shoald-cluster-3n": "shoald, cluster on + 2 simulated nodes' deltas (tools/cluster_load): a node of a 3-node cluster",
    "opentracker-if8": "(info) opentracker, udp_load --inflight 8: no drops in its 208 KB socket buffer",
}
# Extra generator arguments of informational rows (the main rows all get the same load).
EXTRA_GEN_ARGS = {"opentracker-if8": ("--inflight", "8")}
_live = []  # trackers started and not yet stopped
_nats = []  # the nats-server of the cluster section (started once, stopped by stop_all, by PID)


def nats_url(bench):
    """nats://127.0.0.1:<port> of a nats-server started for the bench (once; loopback only)."""
    if not _nats:
        import socket as _s
        s = _s.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        log = open(os.path.join(bench.work, "nats.log"), "wb")
        p = subprocess.Popen(["nats-server", "-a", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _s.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        _nats.append((p, port))
    return "nats://127.0.0.1:%d" % _nats[0][1]


def nats_port():
    """Port of the bench's nats-server (nats_url must have started it)."""
    return _nats[0][1]


def cluster_subject():
    """cluster.subject of the bench's shoald-cluster nodes (deltas go to <it>.deltas)."""
    return "shoalbench-%d" % os.getpid()


def free_port():
    """A port free for UDP and TCP on 127.0.0.1 and for UDP on ::1."""
    for _ in range(100):
        port = random.randint(20000, 45000)
        socks = []
        try:
            for fam, typ, host in [(socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"),
                                   (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
                                   (socket.AF_INET6, socket.SOCK_DGRAM, "::1")]:
                s = socket.socket(fam, typ)
                socks.append(s)
                s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def udp_announce_probe(host, port, info_hash, timeout=0.3):
    """True if host:port answers a BEP 15 connect and then an announce with >= 20 bytes."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(struct.pack(">QII", 0x41727101980, 0, 7), (host, port))
        d = s.recv(64)
        if len(d) < 16 or struct.unpack(">II", d[:8]) != (0, 7):
            return False
        conn = d[8:16]
        req = conn + struct.pack(">II", 1, 8) + info_hash + b"-SL0100-probe0000000" + struct.pack(
            ">QQQIIIiH", 0, 0, 0, 0, 0, 1, 0, 1234)
        s.sendto(req, (host, port))
        d = s.recv(2048)
        return len(d) >= 20 and struct.unpack(">I", d[:4])[0] == 1
    except OSError:
        return False
    finally:
        s.close()


def scrape_count(target, whitelist, torrents):
    """Peers stored over the first `torrents` hashes of the whitelist: sum of seeders + leechers
    from BEP 15 scrapes of 74 hashes each (retried on loss)."""
    host, port = re.match(r"^\[?([^\]]+)\]?:(\d+)$", target).groups()
    port = int(port)
    with open(whitelist) as f:
        hashes = [bytes.fromhex(next(f).strip()) for _ in range(torrents)]
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    total = 0
    try:
        conn = None
        for i in range(0, len(hashes), 74):
            chunk = hashes[i:i + 74]
            for attempt in range(6):
                try:
                    if conn is None or attempt:
                        s.sendto(struct.pack(">QII", 0x41727101980, 0, 1), (host, port))
                        d = s.recv(64)
                        conn = d[8:16]
                    tid = i + 2
                    s.sendto(conn + struct.pack(">II", 2, tid) + b"".join(chunk), (host, port))
                    d = s.recv(4096)
                    if struct.unpack(">II", d[:8]) != (2, tid) or len(d) != 8 + 12 * len(chunk):
                        continue
                    for k in range(len(chunk)):
                        seeders, _done, leechers = struct.unpack(">III", d[8 + 12 * k:20 + 12 * k])
                        total += seeders + leechers
                    break
                except OSError:
                    continue
            else:
                return None
    finally:
        s.close()
    return total


def proc_children(pid):
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def proc_status(pid):
    d = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                d[k] = v.strip()
    except OSError:
        pass
    return d


def kb(v):
    return int(v.split()[0]) * 1024 if v else 0


class Tracker:
    """Base: a process started with Popen (taskset execs the program, so Popen.pid is it)."""
    udp6_target = None

    def __init__(self, bench, name, cpus, http=False, memory=False):
        self.b, self.name, self.cpus, self.http, self.memory_mode = bench, name, cpus, http, memory
        self.port = free_port()
        self.proc = None
        self.seen = set()
        self.udp_target = "127.0.0.1:%d" % self.port
        self.http_target = "127.0.0.1:%d" % self.port if http else None

    def argv(self):
        raise NotImplementedError

    def start(self):
        log_path = os.path.join(self.b.work, "%s-%d.log" % (self.name, self.port))
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(["taskset", "-c", self.cpus] + self.argv(), stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=self.b.work, start_new_session=True)
        _live.append(self)
        self.wait_ready()

    def wait_ready(self, timeout=30):
        with open(self.b.whitelist) as f:
            h = bytes.fromhex(f.readline().strip())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited at start (see %s)" % (self.name, self.log.name))
            if udp_announce_probe("127.0.0.1", self.port, h):
                self.pids()
                return
            time.sleep(0.1)
        raise RuntimeError("%s not ready after %ds" % (self.name, timeout))

    def pids(self):
        if not self.proc or self.proc.poll() is not None:
            return []
        ps = [self.proc.pid] + proc_children(self.proc.pid)
        self.seen.update(ps)
        return ps

    def cpu_seconds(self):
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in self.pids():
            try:
                with open("/proc/%d/stat" % p) as f:
                    rest = f.read().rsplit(")", 1)[1].split()
                total += (int(rest[11]) + int(rest[12])) / tick
            except OSError:
                pass
        return total

    def ctx_switches(self):
        return sum(int(proc_status(p).get("voluntary_ctxt_switches", 0)) +
                   int(proc_status(p).get("nonvoluntary_ctxt_switches", 0)) for p in self.pids())

    def counters(self):
        return None

    def memory(self):
        priv = rss = 0
        for p in self.pids():
            st = proc_status(p)
            priv += kb(st.get("RssAnon")) + kb(st.get("RssFile"))
            rss += kb(st.get("VmRSS"))
        return {"private": priv, "vmrss_sum": rss, "total": priv, "processes": len(self.pids())}

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                for p in sorted(self.seen):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(timeout=5)
        for p in sorted(self.seen - {self.proc.pid}):  # workers must have gone with the parent
            deadline = time.monotonic() + 3
            while os.path.exists("/proc/%d" % p) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.log.close()
        if self in _live:
            _live.remove(self)
        self.proc = None


class Shoald(Tracker):
    def __init__(self, bench, name, cpus, http=False, memory=False, socket_workers=1, swarm_workers=1):
        super().__init__(bench, name, cpus, http, memory)
        self.sw, self.swarm = socket_workers, swarm_workers
        self.shm = "shoalbench-%d-%d" % (os.getpid(), self.port)
        self.udp6_target = "[::1]:%d" % self.port
        if http and not bench_has_http(bench):
            self.http_target = None

    def argv(self):
        conf = os.path.join(self.b.work, "shoal-%d.conf" % self.port)
        http = ('http:\n{\n  enabled = true;\n  listen = [ "127.0.0.1:%d" ];\n};\n' % self.port) if self.http_target else ""
        if self.name.startswith("shoald-cluster"):  # one node publishing every change to a local nats-server
            http += ('cluster:\n{\n  enabled = true;\n  node_id = 1;\n  servers = [ "%s" ];\n'
                     '  subject = "%s";\n};\n' % (nats_url(self.b), cluster_subject()))
        cap = "capacity:\n{\n  torrents_per_partition = 131072;\n  peers_per_partition = 1048576;\n};\n" \
            if self.memory_mode else ""
        with open(conf, "w") as f:
            # stats.socket off: the bench reads counters from shm (shm_inspect), and the default
            # /run/shoald.sock is taken by any other shoald on this machine (a second bench).
            f.write('# generated by tools/bench/trackers.py\nshm_name = "%s";\nsocket_workers = %d;\n'
                    'swarm_workers = %d;\nlog_level = "warn";\nstats:\n{\n  socket = "";\n};\n'
                    'udp:\n{\n  listen = [ "127.0.0.1:%d", "[::1]:%d" ];\n};\n%s%s'
                    'tracker:\n{\n  announce_interval = 1800;\n  peer_ttl = 3600;\n};\n'
                    % (self.shm, self.sw, self.swarm, self.port, self.port, http, cap))
        return [self.b.tool("shoald"), "-c", conf]

    def wait_ready(self, timeout=30):
        super().wait_ready(timeout)
        deadline = time.monotonic() + 10  # every worker forked (the probe needs only one of each)
        while len(self.pids()) < 1 + self.sw + self.swarm and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self):
        super().stop()
        # shoald keeps its segments after SIGTERM (a restart re-attaches its swarms): remove this
        # run's segments, which nothing else uses (the name holds the bench's PID and the port).
        for fn in os.listdir("/dev/shm"):
            if fn.startswith(self.shm + "-"):
                try:
                    os.unlink(os.path.join("/dev/shm", fn))
                except OSError:
                    pass

    def counters(self):
        p = subprocess.run([self.b.tool("shm_inspect"), "--name", self.shm, "counters"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=10)
        return {k: int(v) for k, v in (line.split() for line in p.stdout.splitlines() if len(line.split()) == 2)}

    def memory(self):
        m = super().memory()
        touched = size = 0
        part, segs = {}, {}
        for fn in os.listdir("/dev/shm"):
            if fn.startswith(self.shm + "-"):
                st = os.stat(os.path.join("/dev/shm", fn))
                touched += st.st_blocks * 512
                size += st.st_size
                segs[fn[len(self.shm) + 1:]] = (st.st_blocks * 512, st.st_size)
                if "-part-" in fn:
                    with open(os.path.join("/dev/shm", fn), "rb") as f:
                        f.seek(64 + 72)  # SegmentHeader, then PartitionHeader::torrents
                        vals = struct.unpack("<IIIII", f.read(20))
                    for k, v in zip(["torrents", "seeders", "leechers", "peers_v4", "peers_v6"], vals):
                        part[k] = part.get(k, 0) + v
        m.update(shm_touched=touched, shm_size=size, total=m["private"] + touched, partition=part, segments=segs)
        return m


_http_cache = {}


def bench_has_http(bench):
    """Whether this shoald build has the HTTP front-end (an http section in `shoald -p`)."""
    if bench.build not in _http_cache:
        p = subprocess.run([bench.tool("shoald"), "-p"], stdout=subprocess.PIPE, text=True, timeout=10)
        _http_cache[bench.build] = bool(re.search(r"^http:", p.stdout, re.M))
    return _http_cache[bench.build]


class OpenTracker(Tracker):
    def argv(self):
        # Chrooted in the work dir (-d) as "nobody"; the whitelist path is inside the chroot.
        return ["opentracker", "-i", "127.0.0.1", "-p", str(self.port), "-P", str(self.port),
                "-d", self.b.work, "-w", "/" + os.path.basename(self.b.whitelist)]


class BtTracker(Tracker):
    SCRIPT = ("import Server from 'file://%s/node_modules/bittorrent-tracker/server.js';"
              "const port = Number(process.argv[1]);"
              "const s = new Server({ http: true, udp: true, ws: false, stats: false });"
              "s.on('error', e => console.error('error', e.message)); s.on('warning', () => {});"
              "s.listen(port, { http: '127.0.0.1', udp: '127.0.0.1', udp6: '::1' });")

    def argv(self):
        return ["node", "--input-type=module", "-e", self.SCRIPT % self.b.a.node_dir, str(self.port)]


class Limit(Tracker):
    """limit_server: "limit" spins, "limit-blocking" sleeps in epoll, "limit-full" spins and
    answers every announce with numwant synthetic peers (the largest reply)."""
    def __init__(self, bench, name, cpus, http=False, memory=False):
        super().__init__(bench, name, cpus, http, memory)
        self.udp6_target = "[::1]:%d" % self.port

    def argv(self):
        mode = {"limit": ["--spin"], "limit-blocking": [], "limit-full": ["--spin", "--full"]}[self.name]
        return [self.b.tool("limit_server"), "--udp", "127.0.0.1:%d" % self.port, "--udp", "[::1]:%d" % self.port,
                "--http", "127.0.0.1:%d" % self.port] + mode


def make(name, bench, cpus, http=False, memory=False, **kw):
    if name.startswith("shoald"):
        return Shoald(bench, name, cpus, http, memory, **kw)
    cls = {"opentracker": OpenTracker, "opentracker-if8": OpenTracker, "bittorrent-tracker": BtTracker,
           "limit": Limit, "limit-blocking": Limit, "limit-full": Limit}[name]
    return cls(bench, name, cpus, http, memory)


def stop_all():
    for t in list(_live):
        try:
            t.stop()
        except Exception:  # noqa: BLE001 — best effort at exit; each stop is by PID
            pass
    for p, _port in _nats:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
    del _nats[:]
