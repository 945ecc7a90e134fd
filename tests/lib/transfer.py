"""Shared by the end-to-end transfer tests (tests/integration/test_transfer_udp.py over UDP,
test_http_transfer.py over HTTP/HTTPS): real BitTorrent clients started by PID and stopped by
PID, their command lines, torrent and file helpers, and TransferCase, the test-case base that
owns the temp dir, the processes, the test budget and the wait for a tracker's scrape.
Subclasses set TOOLS, TEST_BUDGET, SCRAPE_FIELDS, and implement scrape(ih) and stop_tracker()."""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness

# ----------------------------------------------------------------------------- bencode

def _bdecode(data, i=0):
    c = data[i:i + 1]
    if c == b"i":
        j = data.index(b"e", i)
        return int(data[i + 1:j]), j + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = _bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = _bdecode(data, i)
            start = i
            v, i = _bdecode(data, i)
            out[k] = v
            if k == b"info":
                out[b"__info_raw__"] = data[start:i]
        return out, i + 1
    j = data.index(b":", i)
    n = int(data[i:j])
    return data[j + 1:j + 1 + n], j + 1 + n


def torrent_info_hash(path):
    with open(path, "rb") as f:
        meta, _ = _bdecode(f.read())
    return hashlib.sha1(meta[b"__info_raw__"]).digest(), meta


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- processes

class Proc:
    """A child process started by this test, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name, self.log_path = name, log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, cwd=cwd)

    def stop(self, grace=3.0):
        harness.terminate(self.p, grace)
        self.log.close()
        return self.p.returncode

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def aria2_argv(ip, torrent, outdir, tmp, tag, seeding):
    argv = ["aria2c", "--no-conf=true", "--interface=" + ip, "--disable-ipv6=true",
            "--dir=" + outdir,
            "--listen-port=%d" % harness.free_tcp_port(ip),
            # DHT must be on for aria2's UDP tracker client; no entry point, empty table.
            "--enable-dht=true", "--enable-dht6=false",
            "--dht-listen-port=%d" % harness.free_port(ip, socket.SOCK_DGRAM),
            "--dht-file-path=" + os.path.join(tmp, "dht-%s.dat" % tag),
            "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            "--bt-tracker-interval=1", "--bt-tracker-timeout=5", "--bt-tracker-connect-timeout=5",
            "--seed-ratio=0.0", "--file-allocation=none", "--summary-interval=0",
            "--console-log-level=warn", "--log=" + os.path.join(tmp, "aria2-%s.log" % tag),
            "--log-level=info", "--bt-stop-timeout=60"]
    if seeding:
        argv += ["--check-integrity=true", "--bt-seed-unverified=false"]
    else:
        hook = os.path.join(tmp, "hook-%s.sh" % tag)
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho \"$@\" >> %s\n" % os.path.join(tmp, "done-%s" % tag))
        os.chmod(hook, 0o755)
        argv += ["--on-bt-download-complete=" + hook]
    return argv + [torrent]


LT_DOWNLOADER = r"""
import json, sys, time
import libtorrent as lt
torrent, save, ip, port, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def out(**kw):
    print(json.dumps(kw), flush=True)
s = lt.session({
    "listen_interfaces": ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port),
    "outgoing_interfaces": ip,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "announce_to_all_trackers": True, "min_announce_interval": 1,
    "stop_tracker_timeout": 1, "tracker_completion_timeout": 5, "tracker_receive_timeout": 3,
    "min_reconnect_time": 1,  # retry a peer that was unreachable or useless before within seconds
    "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.tracker_notification
                  | lt.alert.category_t.connect_notification | lt.alert.category_t.error_notification,
})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = save
p.flags |= lt.torrent_flags.disable_pex | lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd
h = s.add_torrent(p)
t0 = time.time()
done = False
while time.time() - t0 < budget:
    for a in s.pop_alerts():
        if isinstance(a, lt.tracker_reply_alert):
            out(ev="tracker_reply", peers=a.num_peers, msg=a.message())
        elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
            out(ev="tracker_error", msg=a.message())
        elif isinstance(a, lt.peer_connect_alert):
            out(ev="peer_connect", msg=a.message())
        elif isinstance(a, lt.listen_failed_alert):
            out(ev="listen_failed", msg=a.message())
    st = h.status()
    if st.is_seeding and not done:
        done = True
        out(ev="finished", seconds=round(time.time() - t0, 2))
    time.sleep(0.05)
out(ev="budget_over")
"""



# ----------------------------------------------------------------------------- the base class

class TransferCase(unittest.TestCase):
    TOOLS = ("aria2c", "mktorrent")   # executables the test needs (from DEB_PACKAGES)
    TEST_BUDGET = 85.0                # seconds, whole test: every wait is capped by it
    SCRAPE_FIELDS = "(seeders, completed, leechers)"   # what scrape() returns, for messages
    TMP_PREFIX = "shoal-transfer-"

    def setUp(self):
        self.t_start = time.monotonic()
        for tool in self.TOOLS:
            if shutil.which(tool) is None:
                self.fail("%s not installed (see DEB_PACKAGES in the Makefile)" % tool)
        self.tmp = tempfile.mkdtemp(prefix=self.TMP_PREFIX)
        self.procs = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        failed = not getattr(self._outcome, "success", True)
        for p in self.procs:
            p.stop()
            if failed:
                sys.stderr.write("\n----- %s output -----\n%s\n" % (p.name, p.output()[-4000:]))
        self.stop_tracker(failed)
        if not harness.KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def stop_tracker(self, failed):
        """Stops the tracker the test started, if any (failed: dump its log)."""

    def scrape(self, ih):
        """The tracker's counts for ih as SCRAPE_FIELDS, or None if it could not be asked."""
        raise NotImplementedError

    def left(self):
        """Seconds left of the test budget."""
        return max(0.5, self.TEST_BUDGET - (time.monotonic() - self.t_start))

    def start_proc(self, name, argv, cwd=None):
        p = Proc(name, argv, os.path.join(self.tmp, name + ".out"), cwd=cwd)
        self.procs.append(p)
        return p

    def wait_scrape(self, ih, pred, timeout, what):
        """Polls scrape(ih) until pred(*counts) holds; fails with the last counts. Returns them."""
        last = [None]

        def check():
            last[0] = self.scrape(ih)
            return last[0] is not None and pred(*last[0])
        try:
            harness.wait_for(check, min(timeout, self.left()), interval=0.2, what=what)
        except AssertionError:
            self.fail("%s: last scrape %s = %s" % (what, self.SCRAPE_FIELDS, last[0]))
        return last[0]

    def wait_libtorrent(self, leech, budget):
        """Waits for the LT_DOWNLOADER process `leech` to report "finished"."""
        def finished():
            out = leech.output()
            if '"ev": "finished"' in out:
                return True
            if leech.p.poll() is not None:
                self.fail("libtorrent downloader exited (%s) without finishing: %s" % (leech.p.returncode, out[-3000:]))
            return False
        harness.wait_for(finished, min(budget + 5, self.left()), interval=0.1, what="libtorrent download to finish")

    def wait_aria2_download(self, leech, tag="leech"):
        """Waits for the aria2 downloader `leech` to run its on-complete hook (done-<tag>)."""
        marker = os.path.join(self.tmp, "done-" + tag)

        def finished():
            if leech.p.poll() is not None:
                self.fail("aria2 downloader exited early (%s): %s" % (leech.p.returncode, leech.output()[-2000:]))
            return os.path.exists(marker)
        harness.wait_for(finished, min(45, self.left()), interval=0.1, what="aria2 download to finish")
