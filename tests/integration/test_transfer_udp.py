"""End-to-end: two real BitTorrent clients move a file through shoald's UDP tracker.

The seeder is aria2c bound to 127.0.0.2; the downloader is aria2c (test 1) or python3-libtorrent
(test 2) bound to 127.0.0.3. The torrent is private and DHT-for-peers, LPD and PEX are off, so the
only way the downloader can learn the seeder's address is the tracker. (aria2 needs its DHT
machinery enabled to speak the UDP tracker protocol at all; with no entry point, an empty
routing table and a private torrent it never finds peers through it.)

Developer aid: SHOAL_TEST_TRACKER=opentracker runs the same tests against Debian's opentracker
(to separate client problems from tracker problems).
"""
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402

SEED_IP = "127.0.0.2"
LEECH_IP = "127.0.0.3"
PROBE_IP = "127.0.0.9"
TEST_BUDGET = 85.0      # seconds, whole test


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


def free_udp_port_on(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ----------------------------------------------------------------------------- processes

class Proc:
    """A child process started by this test, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name, self.log_path = name, log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, cwd=cwd)

    def stop(self, grace=3.0):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()
        return self.p.returncode

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


class OpenTracker:
    """Debian's opentracker on 127.0.0.1 (whitelist mode), for developing the client side."""

    def __init__(self, tmp, info_hashes, port):
        self.port = port
        self.root = os.path.join(tmp, "otroot")
        os.makedirs(self.root)
        os.chmod(tmp, 0o755)
        os.chmod(self.root, 0o755)
        with open(os.path.join(self.root, "wl.txt"), "w") as f:
            f.write("".join(h.hex() + "\n" for h in info_hashes))
        self.proc = Proc("opentracker", ["opentracker", "-i", "127.0.0.1", "-p", str(self.port),
                                         "-P", str(self.port), "-w", "/wl.txt", "-u", "nobody",
                                         "-d", self.root], os.path.join(tmp, "opentracker.log"))
        with bep15.Client(self.addr4, timeout=0.2, attempts=1) as c:
            harness.wait_for(lambda: self._try(c), 5, what="opentracker")

    @staticmethod
    def _try(c):
        try:
            return c.connect() is not None
        except bep15.TrackerTimeout:
            return False

    @property
    def addr4(self):
        return ("127.0.0.1", self.port)

    def stop(self):
        self.proc.stop()


def aria2_argv(ip, torrent, outdir, tmp, tag, seeding):
    argv = ["aria2c", "--no-conf=true", "--interface=" + ip, "--disable-ipv6=true",
            "--dir=" + outdir,
            "--listen-port=%d" % harness.free_tcp_port(ip),
            # DHT must be on for aria2's UDP tracker client; no entry point, empty table.
            "--enable-dht=true", "--enable-dht6=false",
            "--dht-listen-port=%d" % free_udp_port_on(ip),
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
    "listen_interfaces": "%s:%d" % (ip, port),
    "outgoing_interfaces": ip,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "announce_to_all_trackers": True, "min_announce_interval": 1,
    "stop_tracker_timeout": 1, "tracker_completion_timeout": 5, "tracker_receive_timeout": 3,
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


# ----------------------------------------------------------------------------- the tests

class TransferTest(unittest.TestCase):

    def setUp(self):
        self.t_start = time.monotonic()
        self.use_ot = os.environ.get("SHOAL_TEST_TRACKER") == "opentracker"
        if not self.use_ot:
            harness.need_shoald()
        for tool in ("aria2c", "mktorrent"):
            if shutil.which(tool) is None:
                self.fail("%s not installed (Debian package %s)" % (tool, "aria2" if tool == "aria2c" else tool))
        self.tmp = tempfile.mkdtemp(prefix="shoal-transfer-")
        self.procs = []
        self.tracker = None
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        failed = not getattr(self._outcome, "success", True)
        for p in self.procs:
            p.stop()
            if failed:
                sys.stderr.write("\n----- %s output -----\n%s\n" % (p.name, p.output()[-4000:]))
        if self.tracker is not None:
            if self.use_ot:
                self.tracker.stop()
            else:
                self.tracker.__exit__(AssertionError if failed else None, None, None)
        if not harness.KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def left(self):
        """Seconds left of the test budget (every wait is capped by it)."""
        return max(0.5, TEST_BUDGET - (time.monotonic() - self.t_start))

    def start(self, name, argv, cwd=None):
        p = Proc(name, argv, os.path.join(self.tmp, name + ".out"), cwd=cwd)
        self.procs.append(p)
        return p

    def make_torrent(self, port):
        rng = random.Random(0x5e0a1 ^ port)
        size = rng.randint(4 << 20, 8 << 20)
        seed_dir = os.path.join(self.tmp, "seed")
        os.makedirs(seed_dir)
        src = os.path.join(seed_dir, "payload.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        torrent = os.path.join(self.tmp, "payload.torrent")
        r = subprocess.run(["mktorrent", "-p", "-l", "18", "-a", "udp://127.0.0.1:%d/announce" % port,
                            "-o", torrent, src], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        ih, meta = torrent_info_hash(torrent)
        self.assertEqual(meta[b"announce"], b"udp://127.0.0.1:%d/announce" % port)
        return seed_dir, src, torrent, ih, sha256_file(src)

    def start_tracker_and_torrent(self):
        if self.use_ot:
            # opentracker needs the hash before it starts: build the torrent for a pre-picked
            # port, then start opentracker there.
            port = harness.free_udp_port()
            seed_dir, src, torrent, ih, digest = self.make_torrent(port)
            self.tracker = OpenTracker(self.tmp, [ih], port)
        else:
            self.tracker = harness.Shoald(socket_workers=1, swarm_workers=1).start()
            seed_dir, src, torrent, ih, digest = self.make_torrent(self.tracker.port)
        return seed_dir, src, torrent, ih, digest

    def scrape(self, ih):
        with bep15.Client(self.tracker.addr4, source=PROBE_IP, timeout=1.0, attempts=3) as c:
            return c.scrape([ih])[0]

    def wait_scrape(self, ih, pred, timeout, what):
        last = [None]

        def check():
            last[0] = self.scrape(ih)
            return pred(*last[0])
        try:
            harness.wait_for(check, min(timeout, self.left()), interval=0.2, what=what)
        except AssertionError:
            self.fail("%s: last scrape (seeders, completed, leechers) = %s" % (what, last[0]))
        return last[0]

    def seed_and_check_tracker(self, seed_dir, torrent, ih):
        seeder = self.start("aria2-seed", aria2_argv(SEED_IP, torrent, seed_dir, self.tmp, "seed", True))
        # The tracker must count the seeder (aria2 hash-checks first, then announces started).
        self.wait_scrape(ih, lambda s, c, l: s == 1 and l == 0, 30,
                         "tracker to count the aria2 seeder (1 seeder, 0 leechers)")
        self.assertIsNone(seeder.p.poll(), "aria2 seeder exited: %s" % seeder.output()[-2000:])
        # A leecher asking the tracker must be given the seeder's address (127.0.0.2, its port).
        seed_port = int([a for a in seeder.p.args if a.startswith("--listen-port=")][0].split("=")[1])
        with bep15.Client(self.tracker.addr4, source=PROBE_IP) as c:
            r = c.announce(ih, port=40000, left=1, event=bep15.EVENT_STARTED, numwant=50)
            c.announce(ih, port=40000, left=1, event=bep15.EVENT_STOPPED)
        self.assertIn((SEED_IP, seed_port), r.peers, "tracker did not hand out the seeder")
        self.assertEqual(r.seeders, 1)
        return seeder, seed_port

    def finish_checks(self, src_digest, out_path, ih):
        self.assertTrue(os.path.exists(out_path), "downloaded file missing")
        self.assertEqual(sha256_file(out_path), src_digest, "downloaded file differs")
        # The downloader is now a seeder: the tracker must know it finished.
        self.wait_scrape(ih, lambda s, c, l: s == 2 or c >= 1, 20,
                         "tracker to count the finished downloader (2 seeders or completed >= 1)")

    def test_aria2_to_aria2(self):
        seed_dir, src, torrent, ih, digest = self.start_tracker_and_torrent()
        self.seed_and_check_tracker(seed_dir, torrent, ih)
        dl_dir = os.path.join(self.tmp, "dl")
        os.makedirs(dl_dir)
        leech = self.start("aria2-leech", aria2_argv(LEECH_IP, torrent, dl_dir, self.tmp, "leech", False))
        marker = os.path.join(self.tmp, "done-leech")

        def finished():
            if leech.p.poll() is not None:
                self.fail("aria2 downloader exited early (%s): %s" % (leech.p.returncode, leech.output()[-2000:]))
            return os.path.exists(marker)
        harness.wait_for(finished, min(45, self.left()), interval=0.1, what="aria2 download to finish")
        self.finish_checks(digest, os.path.join(dl_dir, "payload.bin"), ih)
        # The downloader learned the seeder from the tracker (its log shows a peer in a reply).
        with open(os.path.join(self.tmp, "aria2-leech.log"), errors="replace") as f:
            alog = f.read()
        self.assertRegex(alog, r"UDPT received ANNOUNCE reply .*num_peers=[1-9]")

    def test_aria2_to_libtorrent(self):
        try:
            import libtorrent  # noqa: F401
        except ImportError:
            self.fail("python3-libtorrent is not importable by %s" % sys.executable)
        seed_dir, src, torrent, ih, digest = self.start_tracker_and_torrent()
        self.seed_and_check_tracker(seed_dir, torrent, ih)
        dl_dir = os.path.join(self.tmp, "dl")
        os.makedirs(dl_dir)
        budget = max(5.0, min(45.0, self.left() - 20))
        leech = self.start("libtorrent-leech", ["/usr/bin/python3", "-c", LT_DOWNLOADER, torrent, dl_dir,
                                                LEECH_IP, str(harness.free_tcp_port(LEECH_IP)),
                                                str(budget)])

        def finished():
            out = leech.output()
            if '"ev": "finished"' in out:
                return True
            if leech.p.poll() is not None:
                self.fail("libtorrent downloader exited (%s) without finishing: %s"
                          % (leech.p.returncode, out[-3000:]))
            return False
        harness.wait_for(finished, min(budget + 5, self.left()), interval=0.1,
                         what="libtorrent download to finish")
        self.finish_checks(digest, os.path.join(dl_dir, "payload.bin"), ih)
        self.assertRegex(leech.output(), r'"ev": "tracker_reply", "peers": [1-9]')


if __name__ == "__main__":
    harness.main()
