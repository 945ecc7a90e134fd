"""Start, watch and stop a real shoald for the integration tests.

Python 3 stdlib only. Paths come from the environment (set by tests/run_tests.py):
  SHOALD        path of the shoald binary        (default: <repo>/build/shoald)
  SHM_INSPECT   path of the shm_inspect tool     (default: next to SHOALD)
  SHOAL_KEEP    if set, temp dirs are kept after the test

Rules kept here: every wait is bounded; only processes this harness started (shoald, and its
children while they are its children) are ever signalled, always by PID; temp dirs and the
daemon are cleaned up by the context manager even when a test fails; the daemon log is dumped
to stderr when a test fails.
"""
import itertools
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import bep15  # noqa: E402

SHOALD = os.environ.get("SHOALD", os.path.join(REPO, "build", "shoald"))
SHM_INSPECT = os.environ.get("SHM_INSPECT", os.path.join(os.path.dirname(SHOALD), "shm_inspect"))
SHOALCTL = os.environ.get("SHOALCTL", os.path.join(os.path.dirname(SHOALD), "shoalctl"))
# The same shoald with another shm layout version (Makefile `layout-test`), as after an upgrade.
LAYOUT_TEST_SHOALD = os.environ.get("LAYOUT_TEST_SHOALD", os.path.join(os.path.dirname(SHOALD), "layout-test", "shoald"))
KEEP = bool(os.environ.get("SHOAL_KEEP"))

_counter = itertools.count(1)
_live = []        # Shoald instances currently running (for log dumps on failure)

TITLE_RE = re.compile(r"^shoald: (socket|swarm|sync) worker (\d+)$")


# ----------------------------------------------------------------------------- helpers

def wait_for(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value (returned) or `timeout` s pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def _port_candidates():
    """Random ports below the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range,
    usually 32768-60999). A port bound to 0 comes from that range, and a test picks its ports
    seconds before the daemon binds them: meanwhile another test running beside it could draw the
    same port as the source port of an outgoing connection. Below the range only an explicit bind
    takes a port, so the bind check below is the whole race."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    top = max(low - 1, 2048)
    bottom = 10000 if top > 12000 else 1024
    return (random.randint(bottom, top) for _ in range(200))


def _bindable(port, kind, hosts):
    """True when `port` binds for `kind` on every host of `hosts` (each closed again at once)."""
    socks = []
    try:
        for host in hosts:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port_both(kind=socket.SOCK_DGRAM):
    """A port free for `kind` (SOCK_DGRAM/SOCK_STREAM) on both 127.0.0.1 and ::1, below the
    ephemeral port range (see _port_candidates)."""
    for port in _port_candidates():
        if _bindable(port, kind, ("127.0.0.1", "::1")):
            return port
    raise RuntimeError("no free %s port on both 127.0.0.1 and ::1" % ("UDP" if kind == socket.SOCK_DGRAM else "TCP"))


def free_udp_port():
    """A port free for UDP on both 127.0.0.1 and ::1."""
    return free_port_both(socket.SOCK_DGRAM)


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port free for `kind` on `host` (an IPv4 or IPv6 address), below the ephemeral port range
    (see _port_candidates)."""
    for port in _port_candidates():
        if _bindable(port, kind, (host,)):
            return port
    raise RuntimeError("no free port on %s" % host)


def free_tcp_port(host="127.0.0.1"):
    return free_port(host, socket.SOCK_STREAM)


def rss_kib(pid):
    """Resident set size of a live pid, KiB (VmRSS of /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1])


def proc_stat(pid):
    """(ppid, starttime) of a live pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] = state, rest[1] = ppid, ..., starttime is field 22 (rest[19])
    if rest[0] == "Z":
        return None
    return int(rest[1]), int(rest[19])


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    # setproctitle-style titles may be NUL-padded or space-padded.
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def children_of(pid):
    """Child pids of `pid` (from every thread's children file; /proc scan as a fallback)."""
    out = set()
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return []
    found_file = False
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.update(int(x) for x in f.read().split())
            found_file = True
        except (FileNotFoundError, ProcessLookupError):
            pass
    if not found_file:
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if st and st[0] == pid:
                    out.add(int(name))
    return sorted(out)


def pid_alive(pid):
    return proc_stat(pid) is not None


# ----------------------------------------------------------------------------- daemon

class ShoaldError(AssertionError):
    pass


def as_user(user="nobody", group="nogroup"):
    """Command prefix that runs the rest as `user` without privileges (util-linux setpriv, which
    exec's the command: its pid is the pid of the process started). Needs root."""
    return ["setpriv", "--reuid=" + user, "--regid=" + group, "--clear-groups", "--inh-caps=-all", "--"]


class Shoald:
    """A shoald started from a temp config; use as a context manager.

        with Shoald(socket_workers=2, swarm_workers=2) as d:
            c = d.client()             # bep15.Client to 127.0.0.1:<port>
            d.workers()                # {("swarm", 0): pid, ...}
            d.counters()               # {"udp_received": n, ...}

    files: {name: text or bytes} written into the daemon's temp dir before it starts; "@DIR@" in
    `extra` stands for that dir (e.g. path = "@DIR@/allow.txt"). write_file() replaces one later.
    """

    def __init__(self, socket_workers=1, swarm_workers=1, ipv6=True, extra="", tracker=None,
                 supervisor=None, ready_timeout=15.0, files=None):
        self.socket_workers = socket_workers
        self.swarm_workers = swarm_workers
        self.ipv6 = ipv6
        self.extra = extra
        self.tracker_opts = {"announce_interval": 60, "peer_ttl": 3600}
        self.tracker_opts.update(tracker or {})
        self.supervisor_opts = {"restart_backoff_min": 20, "restart_healthy_after": 1}
        self.supervisor_opts.update(supervisor or {})
        self.ready_timeout = ready_timeout
        self.files = dict(files or {})
        self.shm_name = "shoaltest-%d-%d" % (os.getpid(), next(_counter))
        self.args = []        # extra shoald arguments, e.g. ["--fresh"]
        self.env = None       # environment of shoald (None: the test's own)
        self.udp_opts = {}    # more settings of the udp group, e.g. {"recv_buffer": 1 << 20}
        self.host4 = "127.0.0.1"  # IPv4 listen address (another 127.0.0.x for a second node)
        self.wrapper = []     # command before shoald, e.g. as_user("nobody") (exec's shoald: same pid)
        self.binary = SHOALD  # the shoald to start (e.g. LAYOUT_TEST_SHOALD)
        self.proc = None
        self.dir = None
        self.port = None
        self.returncode = None
        self._seen = {}       # pid -> starttime of every worker ever seen (cleanup safety net)
        self._log_file = None

    # config ----------------------------------------------------------------------------
    def config_text(self):
        listen = ['"%s:%d"' % (self.host4, self.port)]
        if self.ipv6:
            listen.append('"[::1]:%d"' % self.port)
        sup = "".join("  %s = %s;\n" % kv for kv in self.supervisor_opts.items())
        trk = "".join("  %s = %s;\n" % kv for kv in self.tracker_opts.items())
        udp = "".join("  %s = %s;\n" % kv for kv in self.udp_opts.items())
        return ('# generated by tests/lib/harness.py\n'
                'shm_name = "%s";\n'
                'socket_workers = %d;\n'
                'swarm_workers = %d;\n'
                'supervisor:\n{\n%s};\n'
                'udp:\n{\n  listen = [ %s ];\n%s};\n'
                'tracker:\n{\n%s};\n'
                'stats:\n{\n  socket = "%s";\n};\n%s\n'
                % (self.shm_name, self.socket_workers, self.swarm_workers, sup,
                   ", ".join(listen), udp, trk, self.stats_socket, self.extra.replace("@DIR@", self.dir or "")))

    def write_file(self, name, content):
        """Writes `content` (str or bytes) to <temp dir>/name atomically (rename); returns the path."""
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
        return path

    @property
    def addr4(self):
        return (self.host4, self.port)

    @property
    def addr6(self):
        return ("::1", self.port)

    @property
    def stats_socket(self):
        # Known before start() (config_text() may be called first); removed by _cleanup_dir.
        return os.path.join(tempfile.gettempdir(), self.shm_name + ".sock")

    def ctl(self, *words, timeout=10):
        """Runs `shoalctl -s <socket> words...`; returns (exit code, stdout)."""
        r = subprocess.run([SHOALCTL, "-s", self.stats_socket] + list(words), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")

    def ctl_json(self, *words):
        """`shoalctl ... json` parsed; raises if the command failed."""
        import json
        rc, out = self.ctl(*(list(words) + ["json"]))
        if rc != 0:
            raise ShoaldError("shoalctl %s failed (%d): %s" % (" ".join(words), rc, out))
        return json.loads(out)

    @property
    def log_path(self):
        return os.path.join(self.dir, "shoald.log")

    # lifecycle -------------------------------------------------------------------------
    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise ShoaldError("shoald binary not found or not executable: %s" % self.binary)
        self.dir = tempfile.mkdtemp(prefix="shoaltest-")
        if self.wrapper:
            os.chmod(self.dir, 0o755)  # another user must read the config
        self.port = self.port or free_udp_port()   # preset to reuse a previous daemon's port
        self.conf_path = os.path.join(self.dir, "shoal.conf")
        for name, content in self.files.items():
            self.write_file(name, content)
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())
        self._log_file = open(self.log_path, "ab")  # O_APPEND: every writer adds at the end
        # Same process group as the test, so run_tests.py can reap everything on a hard timeout.
        self.proc = subprocess.Popen(self.wrapper + [self.binary, "-c", self.conf_path] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     cwd=self.dir, env=self.env)
        _live.append(self)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            self.dump_log("shoald did not become ready")
            self._cleanup_dir()
            raise
        return self

    def wait_ready(self, timeout=None):
        """Ready = every listen address answers a BEP 15 connect. Bounded."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        addrs = [self.addr4] + ([self.addr6] if self.ipv6 else [])
        for addr in addrs:
            with bep15.Client(addr, timeout=0.2, attempts=1) as c:
                while True:
                    if self.proc.poll() is not None:
                        raise ShoaldError("shoald exited with %s before it was ready"
                                          % self.proc.returncode)
                    try:
                        c.connect()
                        break
                    except bep15.TrackerTimeout:
                        if time.monotonic() > deadline:
                            raise ShoaldError("shoald not answering BEP 15 connect on %s:%d after %.1fs"
                                              % (addr[0], addr[1], timeout))
        # Workers should be visible too (a cluster node's sync worker is not counted).
        wait_for(lambda: len([k for k in self.workers() if k[0] != "sync"]) == self.socket_workers + self.swarm_workers,
                 max(1.0, deadline - time.monotonic()), what="all worker processes")
        # And every worker reports ready through the stats socket (shoalctl wait-ready polls
        # "show workers"; no sleeping on a guess).
        if os.access(SHOALCTL, os.X_OK):
            left = max(1.0, deadline - time.monotonic())
            rc, out = self.ctl("wait-ready", "%.1f" % left, timeout=left + 5)
            if rc != 0:
                raise ShoaldError("workers not ready per the stats socket: %s" % out.strip())

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status (negative = signal)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.workers()   # remember the current worker pids for the safety net
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self._reap_orphans()
        if self in _live:
            _live.remove(self)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        return self.returncode

    def _reap_orphans(self, grace=3.0):
        """Workers we saw and that still run (same pid AND same start time) after shoald
        exited: wait a little, then SIGKILL them by pid. Returns the pids that were left."""
        deadline = time.monotonic() + grace
        left = []
        while True:
            left = [p for p, st in self._seen.items() if (proc_stat(p) or (0, None))[1] == st]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.orphans = left
        return left

    def _cleanup_dir(self):
        if self.dir and not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.unlink(self.stats_socket)
        except OSError:
            pass
        # Our shm names are unique to this test process; remove leftovers of a killed daemon.
        try:
            for name in os.listdir("/dev/shm"):
                if name.startswith(self.shm_name + "-") or name == self.shm_name:
                    try:
                        os.unlink(os.path.join("/dev/shm", name))
                    except OSError:
                        pass
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        report = self.sanitizer_report()
        if exc_type is not None and not isinstance(exc, unittest.SkipTest):
            self.dump_log("test failed: %s" % (exc_type.__name__,))
        elif report:
            self.dump_log("sanitizer report")
        self._cleanup_dir()
        if report and exc_type is None:
            # A worker that ASan/UBSan stopped is restarted by the supervisor and the test may
            # still pass: the report itself is the failure (build-san runs, make check-sanitize).
            raise ShoaldError("shoald's log has a sanitizer report:\n" + report)
        return False

    def sanitizer_report(self):
        """The first AddressSanitizer/UndefinedBehaviorSanitizer report in the log (a few
        lines), or "" when there is none."""
        lines = self.log().splitlines()
        for i, line in enumerate(lines):
            if "ERROR: AddressSanitizer" in line or "runtime error:" in line or "ERROR: LeakSanitizer" in line:
                return "\n".join(lines[i:i + 12])
        return ""

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise ShoaldError("shoald exited unexpectedly with status %s" % self.proc.returncode)

    # log -------------------------------------------------------------------------------
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (FileNotFoundError, TypeError):
            return ""

    def dump_log(self, why, tail=150):
        lines = self.log().splitlines()
        sys.stderr.write("\n----- shoald log (%s; %s; last %d of %d lines) -----\n"
                         % (why, self.log_path, min(tail, len(lines)), len(lines)))
        sys.stderr.write("\n".join(lines[-tail:]) + "\n----- end of shoald log -----\n")
        sys.stderr.flush()

    # workers ---------------------------------------------------------------------------
    def workers(self):
        """{(role, slot): pid} of the current children of our shoald, by ps title."""
        out = {}
        if not self.alive():
            return out
        for child in children_of(self.proc.pid):
            st = proc_stat(child)
            if st is None or st[0] != self.proc.pid:
                continue
            m = TITLE_RE.match(proc_cmdline(child))
            if m:
                out[(m.group(1), int(m.group(2)))] = child
                self._seen[child] = st[1]
        return out

    def worker_pid(self, role, slot):
        return self.workers().get((role, slot))

    def kill_worker(self, role, slot, sig=signal.SIGKILL):
        """Signals the worker in (role, slot) by pid after checking that it is a child of our
        shoald. Returns the pid signalled."""
        self.assert_alive()
        pid = self.worker_pid(role, slot)
        if pid is None:
            raise ShoaldError("no %s worker %d running" % (role, slot))
        st = proc_stat(pid)
        if st is None or st[0] != self.proc.pid:
            raise ShoaldError("pid %d is not a child of shoald %d" % (pid, self.proc.pid))
        os.kill(pid, sig)
        return pid

    def wait_worker_replaced(self, role, slot, old_pid, timeout=5.0):
        """Waits until (role, slot) runs under a pid other than old_pid; returns it."""
        def check():
            self.assert_alive()
            p = self.worker_pid(role, slot)
            return p if p is not None and p != old_pid else None
        return wait_for(check, timeout, what="%s worker %d to be restarted (old pid %d)"
                        % (role, slot, old_pid))

    # clients and counters --------------------------------------------------------------
    def client(self, family=4, source=None, timeout=1.0, attempts=3):
        addr = self.addr6 if family == 6 else self.addr4
        return bep15.Client(addr, source=source, timeout=timeout, attempts=attempts)

    def counters(self):
        """{name: value} from `shm_inspect --name <shm_name> counters` (sum over workers)."""
        r = subprocess.run([SHM_INSPECT, "--name", self.shm_name, "counters"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        if r.returncode != 0:
            raise ShoaldError("shm_inspect failed (%d): %s" % (r.returncode, r.stderr.decode()))
        out = {}
        for line in r.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        if not out:
            raise ShoaldError("shm_inspect printed no counters: %r" % r.stdout[:500])
        return out

    def counter(self, name):
        c = self.counters()
        if name not in c:
            raise ShoaldError("counter %s not printed by shm_inspect (have: %s)" % (name, sorted(c)))
        return c[name]

    def wait_counter(self, name, pred, timeout=3.0):
        """Counters are updated by workers asynchronously: poll until pred(value) holds."""
        last = [None]

        def check():
            last[0] = self.counter(name)
            return pred(last[0])
        try:
            wait_for(check, timeout, interval=0.05, what="counter %s" % name)
        except AssertionError:
            raise AssertionError("counter %s = %s did not reach the expected value within %.1fs"
                                 % (name, last[0], timeout))
        return last[0]


# ----------------------------------------------------------------------------- test plumbing

def terminate(p, grace=3.0):
    """Stops a client process this test started (subprocess.Popen): SIGTERM, then SIGKILL after
    `grace` seconds; waits for it. Does nothing if it already exited."""
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def info_hash(*parts):
    """A deterministic 20-byte info_hash from arbitrary parts."""
    import hashlib
    return hashlib.sha1(repr(parts).encode()).digest()


def need_shoald(testcase=None):
    if not os.access(SHOALD, os.X_OK):
        raise unittest.SkipTest("shoald not built: %s" % SHOALD)


class _Result(unittest.TextTestResult):
    durations = []    # (seconds, test id) of every test run, setUp and tearDown included

    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        _Result.durations.append((time.monotonic() - self._t0, test.id()))

    def _dump(self, test):
        for d in list(_live):
            d.dump_log("%s failed" % test.id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._dump(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._dump(test)


def main():
    """unittest.main with a result class that dumps running daemons' logs on failure, and a
    machine-readable last line for tests/run_tests.py."""
    runner = unittest.TextTestRunner(verbosity=2, resultclass=_Result)
    prog = unittest.main(testRunner=runner, exit=False)
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    skipped = len(r.skipped)
    passed = r.testsRun - failed - skipped
    for secs, name in _Result.durations:   # per-test times, for run_tests.py's slowest-tests list
        print("SHOAL-TIME %.2f %s" % (secs, name))
    print("SHOAL-RESULT passed=%d failed=%d skipped=%d" % (passed, failed, skipped), flush=True)
    sys.exit(0 if failed == 0 else 1)
