"""WebTorrent (WS/WSS tracker) pieces for the integration tests: the node scripts of
tests/integration/webtorrent/ (exchange.js, rawws.js, transfer.js, tracker.js) run as bounded
child processes, the tracker's JSON messages built in Python, and the two trackers a test can run:

  * WsShoald: a real shoald (tests/lib/harness.py) with ws and wss enabled;
  * NodeTracker: npm bittorrent-tracker's own server (tracker.js), the reference the scripts were
    proved against; tests run against it with SHOAL_WS_TRACKER=node.

Both give ws_url(path) / wss_url(path) and cert (for NODE_EXTRA_CA_CERTS). conn_workers() tells
which socket worker of a shoald holds each client connection (from /proc: the connection's socket
inode among the worker's fds), so a test can put clients on different workers without a hook.
Every process here is started by this module, bounded by a timeout and stopped by PID.
"""
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import harness
from http_client import free_tcp_port_both, make_cert

NODE_DIR = os.path.join(harness.REPO, "tests", "integration", "webtorrent")
BACKEND = os.environ.get("SHOAL_WS_TRACKER", "shoald")   # "shoald" or "node"


def need_node():
    """'' when node and the npm packages (make deps) are there, else why not."""
    if shutil.which("node") is None:
        return "node not installed (make deps)"
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", ".shoal-stamp")):
        return "npm packages missing in %s (make deps)" % NODE_DIR
    return ""


def node_env(cert=None):
    env = os.environ.copy()
    env.pop("NODE_OPTIONS", None)
    if cert:
        env["NODE_EXTRA_CA_CERTS"] = cert   # trust the test certificate, nothing else changes
    return env


def b2s(b):
    """bytes -> the tracker JSON's binary string (one char per byte)."""
    return b.decode("latin1")


# ----------------------------------------------------------------------------- processes

class NodeProc:
    """One node script started by this test (stdin and stdout are pipes; stderr to a temp file).
    read_json()/result(): the JSON lines it prints; send_line(): a line to its stdin; stop(): by
    PID (stdin closed first, which ends the scripts that wait on it; then SIGTERM, SIGKILL)."""

    def __init__(self, script, args, env=None, wrapper=()):
        self.name = script
        fd, self.err_path = tempfile.mkstemp(prefix="node-%s-" % script.replace(".js", ""), suffix=".err")
        self.err = os.fdopen(fd, "wb")
        argv = list(wrapper) + ["node", os.path.join(NODE_DIR, script)] + [str(a) for a in args]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  cwd=NODE_DIR, env=env or node_env())
        self.buf = b""
        self.out = []      # every stdout line so far (text)

    def read_json(self, timeout, pred=lambda o: True):
        """The next JSON line printed for which pred(obj) holds, within `timeout` s (None if the
        process ended or the time ran out first)."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace")
                self.out.append(text)
                try:
                    obj = json.loads(text)
                except ValueError:
                    continue
                if isinstance(obj, dict) and pred(obj):
                    return obj
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.2))
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk

    def result(self, timeout):
        """The result line ({"ok": ...}); fails with the output if none came within timeout."""
        obj = self.read_json(timeout, lambda o: "ok" in o)
        if obj is None:
            err = self.stderr()
            self.stop()
            raise AssertionError("%s printed no result within %.0f s (exit %s); stdout: %s; stderr: %s"
                                 % (self.name, timeout, self.p.returncode, "\n".join(self.out)[-3000:], err[-3000:]))
        return obj

    def send_line(self, text):
        try:
            self.p.stdin.write((text + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            pass

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self, grace=3.0):
        if self.p.poll() is None:
            self.close_stdin()
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                harness.terminate(self.p, grace)
        self.err.close()
        try:
            os.unlink(self.err_path)
        except OSError:
            pass
        return self.p.returncode


def run_json(script, args, timeout, env=None, wrapper=()):
    """Runs a node script to its end (its own --timeout should be below `timeout`); returns its
    result line."""
    p = NodeProc(script, list(args) + ["--timeout", "%g" % max(1.0, timeout - 3)], env=env, wrapper=wrapper)
    try:
        p.close_stdin()
        return p.result(timeout)
    finally:
        p.stop()


# ----------------------------------------------------------------------------- raw messages

def offer(offer_id, sdp="v=0 shoal-test offer"):
    return {"offer_id": b2s(offer_id), "offer": {"type": "offer", "sdp": sdp}}


def announce(ih, peer_id, offers=(), numwant=None, left=1, event=None):
    m = {"action": "announce", "info_hash": b2s(ih), "peer_id": b2s(peer_id), "uploaded": 0,
         "downloaded": 0, "left": left}
    if event:
        m["event"] = event
    if event not in ("stopped", "completed"):
        m["offers"] = list(offers)
        m["numwant"] = len(offers) if numwant is None else numwant
    return m


def answer(ih, peer_id, to_peer_id, offer_id, sdp="v=0 shoal-test answer"):
    return {"action": "announce", "info_hash": b2s(ih), "peer_id": b2s(peer_id),
            "to_peer_id": b2s(to_peer_id), "offer_id": b2s(offer_id),
            "answer": {"type": "answer", "sdp": sdp}}


def scrape(*ihs):
    return {"action": "scrape", "info_hash": [b2s(h) for h in ihs]}


class RawWs:
    """Steps for rawws.js (see that file), built in Python:

        r = RawWs().open("a", url).send("a", announce(...)).wait("a", has=["offer"])
        res = r.run(timeout=15)              # result line
        received = res["conns"]["a"]["received"]

    Interactive: s = r.start(15); s.pause() -> the pause line; s.go([more steps]); s.result().
    """

    def __init__(self, env=None, wrapper=()):
        self.steps = []
        self.env = env
        self.wrapper = list(wrapper)   # e.g. ["ip", "netns", "exec", NS]

    def open(self, c, url, local=None):
        self.steps.append({"op": "open", "c": c, "url": url, **({"local": local} if local else {})})
        return self

    def send(self, c, msg=None, raw=None):
        self.steps.append({"op": "send", "c": c, **({"raw": raw} if raw is not None else {"msg": msg})})
        return self

    def wait(self, c, count=1, timeout=3.0, match=None, has=(), fresh=False):
        self.steps.append({"op": "wait", "c": c, "count": count, "timeout": timeout,
                           "match": match or {}, "has": list(has), "fresh": fresh})
        return self

    def sleep(self, s):
        self.steps.append({"op": "sleep", "s": s})
        return self

    def pause(self, label=""):
        self.steps.append({"op": "pause", "label": label})
        return self

    def close(self, c):
        self.steps.append({"op": "close", "c": c})
        return self

    def _file(self):
        fd, path = tempfile.mkstemp(prefix="rawws-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(self.steps, f)
        return path

    def run(self, timeout=15.0):
        path = self._file()
        try:
            return run_json("rawws.js", ["--steps", path], timeout, env=self.env, wrapper=self.wrapper)
        finally:
            os.unlink(path)

    def start(self, timeout=30.0):
        return RawSession(self._file(), timeout, self.env, self.wrapper)


class RawSession:
    """A running rawws.js with pause steps: pause() waits for the next pause line, go() lets it
    run on (with more steps), result() waits for the result line. close() stops it by PID."""

    def __init__(self, path, timeout, env, wrapper=()):
        self.path = path
        self.deadline = time.monotonic() + timeout
        self.proc = NodeProc("rawws.js", ["--steps", path, "--timeout", "%g" % max(1.0, timeout - 3)], env=env,
                             wrapper=wrapper)
        self.paused = False

    def left(self):
        return max(0.5, self.deadline - time.monotonic())

    def pause(self):
        obj = self.proc.read_json(self.left(), lambda o: "pause" in o or "ok" in o)
        if obj is None or "ok" in obj:
            self.close()
            raise AssertionError("rawws.js did not pause: %s %s" % (obj, self.proc.stderr()[-2000:]))
        self.paused = True
        return obj

    def go(self, steps=None):
        self.paused = False
        self.proc.send_line(json.dumps(list(steps.steps if isinstance(steps, RawWs) else steps or [])))

    def step(self, steps):
        """Runs `steps` (a RawWs) and waits for the pause after them; returns the pause line."""
        self.go(steps.pause("step"))
        return self.pause()

    def scrape_until(self, c, hashes, pred, timeout=5.0, interval=0.2):
        """Scrapes `hashes` on connection c until pred(files) holds or `timeout` s pass; returns
        the last "files" ({binary info_hash: {"complete", "incomplete", ...}}) or None."""
        deadline = time.monotonic() + timeout
        files = None
        while True:
            last = self.step(RawWs().send(c, scrape(*hashes)).wait(c, match={"action": "scrape"}, fresh=True))
            m = last["conns"][c]["last"]
            files = m.get("files") if isinstance(m, dict) and m.get("action") == "scrape" else None
            if (files is not None and pred(files)) or time.monotonic() > deadline:
                return files
            time.sleep(interval)

    def result(self):
        """Lets a paused script run to its end; returns its result line."""
        if self.paused:
            self.go([])
        try:
            return self.proc.result(self.left())
        finally:
            self.close()

    def close(self):
        self.proc.stop()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def counts(files, h):
    """(complete, incomplete) of info_hash h (bytes) in a scrape reply's files (0, 0 if absent)."""
    f = (files or {}).get(b2s(h), {})
    return f.get("complete", 0), f.get("incomplete", 0)


def msgs(res, c, pred=lambda m: True):
    """The JSON messages connection `c` received (rawws.js result), filtered by pred."""
    return [e["msg"] for e in res["conns"][c]["received"] if isinstance(e["msg"], dict) and pred(e["msg"])]


# ----------------------------------------------------------------------------- trackers

def ws_config(ws_port, wss_port=None, cert=None, key=None, **ws_opts):
    """shoald config groups ws (and wss, with the https group's certificate and key)."""
    def group(name, items):
        return "%s:\n{\n%s};\n" % (name, "".join("  %s = %s;\n" % kv for kv in items.items()))
    ws = {"enabled": "true", "listen": '[ "127.0.0.1:%d", "[::1]:%d" ]' % (ws_port, ws_port)}
    ws.update({k: str(v).lower() if isinstance(v, bool) else v for k, v in ws_opts.items()})
    text = group("ws", ws)
    if wss_port:
        text += group("wss", {"enabled": "true", "listen": '[ "127.0.0.1:%d", "[::1]:%d" ]' % (wss_port, wss_port)})
        text += group("https", {"certificate": '"%s"' % cert, "private_key": '"%s"' % key})
    return text


class WsShoald(harness.Shoald):
    """A shoald with the WebTorrent front-end on: ws on ws_port, wss on wss_port (test
    certificate in its temp dir) when tls=True. ws_opts: more settings of the ws group.
    wrapper: e.g. ["ip", "netns", "exec", NS] to run it in a namespace (then readiness is read
    from the stats socket, a Unix socket the namespace shares)."""

    def __init__(self, tls=False, ws_opts=None, wrapper=(), **kw):
        super().__init__(**kw)
        self.wrapper = list(wrapper)
        self.tls = tls
        self.ws_opts = ws_opts or {}
        self.ws_port = free_tcp_port_both()
        self.wss_port = free_tcp_port_both() if tls else None
        self.certdir = tempfile.mkdtemp(prefix="shoal-ws-cert-")
        self.cert, self.key = make_cert(self.certdir) if tls else (None, None)
        self.extra += ws_config(self.ws_port, self.wss_port, self.cert, self.key, **self.ws_opts)

    def ws_url(self, path="/announce", host="127.0.0.1"):
        return "ws://%s:%d%s" % (host, self.ws_port, path)

    def wss_url(self, path="/announce", host="127.0.0.1"):
        return "wss://%s:%d%s" % (host, self.wss_port, path)

    def wait_ready(self, timeout=None):
        if not self.wrapper:
            return super().wait_ready(timeout)
        timeout = self.ready_timeout if timeout is None else timeout
        harness.wait_for(lambda: self.proc.poll() is not None or os.path.exists(self.stats_socket), timeout,
                         what="the stats socket")
        if self.proc.poll() is not None:
            raise harness.ShoaldError("shoald exited with %s before it was ready" % self.proc.returncode)
        rc, out = self.ctl("wait-ready", "%.1f" % timeout, timeout=timeout + 5)
        if rc != 0:
            raise harness.ShoaldError("workers not ready per the stats socket: %s" % out.strip())

    def __exit__(self, *exc):
        try:
            return super().__exit__(*exc)
        finally:
            shutil.rmtree(self.certdir, ignore_errors=True)


class NodeTracker:
    """npm bittorrent-tracker's server (tracker.js) on 127.0.0.1: ws, and wss when tls=True."""

    def __init__(self, tls=False, wrapper=(), **_ignored):
        self.tls = tls
        self.wrapper = list(wrapper)
        self.certdir = tempfile.mkdtemp(prefix="shoal-ws-cert-")
        self.cert = self.key = None
        self.proc = None

    def start(self):
        args = ["--host", "127.0.0.1", "--timeout", "600"]
        if self.tls:
            self.cert, self.key = make_cert(self.certdir)
            args += ["--wss-port", "0", "--cert", self.cert, "--key", self.key]
        self.proc = NodeProc("tracker.js", args, wrapper=self.wrapper)
        r = self.proc.result(15)
        if not r["ok"]:
            raise AssertionError("tracker.js failed: %s" % r)
        self.ws_port, self.wss_port = r["ws"], r["wss"]
        return self

    def ws_url(self, path="/announce", host="127.0.0.1"):
        return "ws://%s:%d%s" % (host, self.ws_port, path)

    def wss_url(self, path="/announce", host="127.0.0.1"):
        return "wss://%s:%d%s" % (host, self.wss_port, path)

    def assert_alive(self):
        if self.proc.p.poll() is not None:
            raise AssertionError("tracker.js exited: %s" % self.proc.stderr()[-2000:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc:
            self.proc.stop()
        shutil.rmtree(self.certdir, ignore_errors=True)
        return False


def tracker(tls=False, **kw):
    """The tracker the tests run against: WsShoald, or NodeTracker with SHOAL_WS_TRACKER=node."""
    return NodeTracker(tls=tls, **kw) if BACKEND == "node" else WsShoald(tls=tls, **kw)


# ----------------------------------------------------------------------------- which worker

def _socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return out
    for fd in fds:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _tcp_conns(port):
    """{inode: (remote ip text, remote port)} of established TCP connections whose local port is
    `port` (IPv4 and IPv6 tables)."""
    out = {}
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
            if state != "01" or int(local.split(":")[1], 16) != port:
                continue
            rip, rport = remote.split(":")
            out[inode] = (_ip_text(rip, v6), int(rport, 16))
    return out


def _ip_text(hexaddr, v6):
    import socket
    raw = bytes.fromhex(hexaddr)
    if not v6:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    text = socket.inet_ntop(socket.AF_INET6, words)
    return text[7:] if text.startswith("::ffff:") else text


def conn_workers(d, port):
    """{(client ip, client port): socket worker slot} for the connections to `port` that the
    socket workers of shoald `d` hold now."""
    conns = _tcp_conns(port)
    out = {}
    for (role, slot), pid in d.workers().items():
        if role != "socket":
            continue
        for inode in _socket_inodes(pid) & set(conns):
            out[conns[inode]] = slot
    return out
