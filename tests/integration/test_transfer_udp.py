"""End-to-end: two real BitTorrent clients move a file through shoald's UDP tracker.

The seeder is aria2c bound to 127.0.0.2; the downloader is aria2c (test 1) or python3-libtorrent
(test 2) bound to 127.0.0.3. The torrent is private and DHT-for-peers, LPD and PEX are off, so the
only way the downloader can learn the seeder's address is the tracker. (aria2 needs its DHT
machinery enabled to speak the UDP tracker protocol at all; with no entry point, an empty
routing table and a private torrent it never finds peers through it.)

Developer aid: SHOAL_TEST_TRACKER=opentracker runs the same tests against Debian's opentracker
(to separate client problems from tracker problems).
"""
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from transfer import LT_DOWNLOADER, Proc, TransferCase, aria2_argv, sha256_file, torrent_info_hash  # noqa: E402

SEED_IP = "127.0.0.2"
LEECH_IP = "127.0.0.3"
PROBE_IP = "127.0.0.9"


# ----------------------------------------------------------------------------- opentracker

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


# ----------------------------------------------------------------------------- the tests

class TransferTest(TransferCase):
    TEST_BUDGET = 85.0

    def setUp(self):
        self.use_ot = os.environ.get("SHOAL_TEST_TRACKER") == "opentracker"
        if not self.use_ot:
            harness.need_shoald()
        self.tracker = None
        super().setUp()

    def stop_tracker(self, failed):
        if self.tracker is None:
            return
        if self.use_ot:
            self.tracker.stop()
        else:
            self.tracker.__exit__(AssertionError if failed else None, None, None)

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

    def seed_and_check_tracker(self, seed_dir, torrent, ih):
        seeder = self.start_proc("aria2-seed", aria2_argv(SEED_IP, torrent, seed_dir, self.tmp, "seed", True))
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
        leech = self.start_proc("aria2-leech", aria2_argv(LEECH_IP, torrent, dl_dir, self.tmp, "leech", False))
        self.wait_aria2_download(leech)
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
        leech = self.start_proc("libtorrent-leech", ["/usr/bin/python3", "-c", LT_DOWNLOADER, torrent, dl_dir,
                                                     LEECH_IP, str(harness.free_tcp_port(LEECH_IP)), str(budget)])
        self.wait_libtorrent(leech, budget)
        self.finish_checks(digest, os.path.join(dl_dir, "payload.bin"), ih)
        self.assertRegex(leech.output(), r'"ev": "tracker_reply", "peers": [1-9]')


if __name__ == "__main__":
    harness.main()
