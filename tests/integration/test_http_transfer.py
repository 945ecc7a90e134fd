"""End-to-end over the HTTP tracker (issue 4): real BitTorrent clients move a file through shoald.

  * http://  announce URL: aria2c seeder (127.0.0.2) → python3-libtorrent downloader (127.0.0.3)
  * https:// announce URL: aria2c → aria2c, the client told to trust the test certificate
  * mixed:  the seeder's torrent announces over UDP, the downloader's over HTTP (same info_hash),
            and they find each other: one swarm whichever protocol announced.
Each download is checked by sha256, and the tracker's view by a curl scrape. Torrents are private
with DHT-for-peers, LPD and PEX off, so the tracker is the only way peers can meet.
Every wait is bounded by the test budget; processes are stopped by PID (tests/lib/transfer.py).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from http_client import bdecode, config_block, free_tcp_port_both, make_cert, scrape_target  # noqa: E402
from transfer import LT_DOWNLOADER, TransferCase, aria2_argv, sha256_file, torrent_info_hash  # noqa: E402

SEED_IP = "127.0.0.2"
LEECH_IP = "127.0.0.3"


class HttpTransferTest(TransferCase):
    TOOLS = ("aria2c", "mktorrent", "curl", "openssl")
    TEST_BUDGET = 90.0
    SCRAPE_FIELDS = "(complete, downloaded, incomplete) from curl"
    TMP_PREFIX = "shoal-http-transfer-"

    def setUp(self):
        harness.need_shoald()
        self.d = None
        super().setUp()

    def stop_tracker(self, failed):
        if self.d is not None:
            self.d.__exit__(AssertionError if failed else None, None, None)

    def start_tracker(self, https=False):
        self.port = free_tcp_port_both()
        extra = config_block("http", self.port)
        if https:
            self.sport = free_tcp_port_both()
            self.cert, key = make_cert(os.path.join(self.tmp, "cert"))
            extra += config_block("https", self.sport, certificate=self.cert, private_key=key)
        self.d = harness.Shoald(socket_workers=2, swarm_workers=2, extra=extra).start()

    def make_payload(self):
        self.seed_dir = os.path.join(self.tmp, "seed")
        os.makedirs(self.seed_dir)
        self.src = os.path.join(self.seed_dir, "payload.bin")
        with open(self.src, "wb") as f:
            f.write(os.urandom(5 << 20))
        self.digest = sha256_file(self.src)

    def make_torrent(self, announce, name):
        path = os.path.join(self.tmp, name)
        r = subprocess.run(["mktorrent", "-p", "-l", "18", "-a", announce, "-o", path, self.src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        ih, meta = torrent_info_hash(path)
        self.assertEqual(meta[b"announce"], announce.encode())
        return path, ih

    def aria2(self, ip, torrent, outdir, tag, seeding, extra=()):
        argv = aria2_argv(ip, torrent, outdir, self.tmp, tag, seeding)
        return argv[:-1] + list(extra) + argv[-1:]

    def scrape(self, ih):
        url = "http://127.0.0.1:%d%s" % (self.port, scrape_target(ih))
        r = subprocess.run(["curl", "-s", "--max-time", "3", url], stdout=subprocess.PIPE, timeout=10)
        if r.returncode != 0:
            return None
        f = bdecode(r.stdout)[b"files"][ih]
        return f[b"complete"], f[b"downloaded"], f[b"incomplete"]

    def seed(self, torrent, ih, extra=()):
        seeder = self.start_proc("aria2-seed", self.aria2(SEED_IP, torrent, self.seed_dir, "seed", True, extra))
        self.wait_scrape(ih, lambda s, d, l: s == 1, 30, "tracker to count the aria2 seeder")
        self.assertIsNone(seeder.p.poll(), "aria2 seeder exited: %s" % seeder.output()[-2000:])

    def download_aria2(self, torrent, extra=()):
        dl = os.path.join(self.tmp, "dl")
        os.makedirs(dl)
        leech = self.start_proc("aria2-leech", self.aria2(LEECH_IP, torrent, dl, "leech", False, extra))
        self.wait_aria2_download(leech)
        with open(os.path.join(self.tmp, "aria2-leech.log"), errors="replace") as f:
            alog = f.read()
        self.assertRegex(alog, r"GET /announce\?info_hash=")   # it asked the HTTP(S) tracker ...
        self.assertIn("Connecting to %s:" % SEED_IP, alog)       # ... and dialled the seeder it was given
        return os.path.join(dl, "payload.bin")

    def check_done(self, out_path, ih):
        self.assertEqual(sha256_file(out_path), self.digest, "downloaded file differs")
        self.wait_scrape(ih, lambda s, d, l: s == 2 or d >= 1, 20, "tracker to count the finished downloader")
        self.d.assert_alive()

    # ------------------------------------------------------------------ tests

    def test_http_aria2_to_libtorrent(self):
        self.start_tracker()
        self.make_payload()
        torrent, ih = self.make_torrent("http://127.0.0.1:%d/announce" % self.port, "http.torrent")
        self.seed(torrent, ih)
        dl = os.path.join(self.tmp, "dl")
        os.makedirs(dl)
        budget = max(5.0, min(45.0, self.left() - 20))
        leech = self.start_proc("libtorrent-leech", ["/usr/bin/python3", "-c", LT_DOWNLOADER, torrent, dl, LEECH_IP,
                                                     str(harness.free_tcp_port(LEECH_IP)), str(budget)])
        self.wait_libtorrent(leech, budget)
        self.check_done(os.path.join(dl, "payload.bin"), ih)
        self.assertRegex(leech.output(), r'"ev": "tracker_reply", "peers": [1-9]')
        self.assertGreaterEqual(self.d.counter("http_announce"), 2)

    def test_https_aria2_to_aria2(self):
        self.start_tracker(https=True)
        self.make_payload()
        torrent, ih = self.make_torrent("https://127.0.0.1:%d/announce" % self.sport, "https.torrent")
        trust = ["--ca-certificate=" + self.cert, "--check-certificate=true"]
        self.seed(torrent, ih, trust)
        out = self.download_aria2(torrent, trust)
        self.check_done(out, ih)
        self.assertEqual(self.d.counter("tls_handshake_failures"), 0)

    def test_udp_seeder_meets_http_leecher(self):
        self.start_tracker()
        self.make_payload()
        udp_torrent, ih = self.make_torrent("udp://127.0.0.1:%d/announce" % self.d.port, "udp.torrent")
        http_torrent, ih2 = self.make_torrent("http://127.0.0.1:%d/announce" % self.port, "http.torrent")
        self.assertEqual(ih, ih2, "the two torrents must describe the same content")
        self.seed(udp_torrent, ih)
        before = self.d.counter("http_announce")
        out = self.download_aria2(http_torrent)
        self.check_done(out, ih)
        c = self.d.counters()
        self.assertGreaterEqual(c["udp_announce"], 1)
        self.assertGreater(c["http_announce"], before)


if __name__ == "__main__":
    harness.main()
