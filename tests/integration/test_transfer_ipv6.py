"""End-to-end over IPv6: real BitTorrent clients on ::1 move a file through shoald.

  * UDP (BEP 15 over IPv6): python3-libtorrent seeder → python3-libtorrent downloader; announce
    URL udp://[::1]:PORT/announce. (aria2 speaks the UDP tracker protocol only through its IPv4
    DHT socket, so it cannot be the UDP client here.)
  * HTTP (BEP 3 with BEP 7 `peers6`): aria2c seeder → python3-libtorrent downloader; announce URL
    http://[::1]:PORT/announce.
Both peers sit on ::1 with different ports: the only way the downloader learns the seeder's
port is the tracker's reply (torrents are private; DHT, LPD and PEX are off). Each download is
checked by sha256, and the tracker's view by a BEP 15 scrape over IPv6: the peers are counted
as IPv6 peers (`shoalctl show stats`: peers_ipv6). Every wait is bounded by the test budget.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from http_client import config_block, free_tcp_port_both  # noqa: E402
from transfer import LT_DOWNLOADER, TransferCase, aria2_argv, sha256_file, torrent_info_hash  # noqa: E402

IP6 = "::1"


class Ipv6TransferTest(TransferCase):
    TOOLS = ("aria2c", "mktorrent")
    TEST_BUDGET = 90.0
    TMP_PREFIX = "shoal-v6-transfer-"

    def setUp(self):
        harness.need_shoald()
        try:
            import libtorrent  # noqa: F401
        except ImportError:
            self.fail("python3-libtorrent is not importable by %s" % sys.executable)
        self.d = None
        super().setUp()

    def stop_tracker(self, failed):
        if self.d is not None:
            self.d.__exit__(AssertionError if failed else None, None, None)

    def scrape(self, ih):
        try:
            with bep15.Client(self.d.addr6, timeout=1.0, attempts=2) as c:
                return c.scrape([ih])[0]
        except bep15.TrackerTimeout:
            return None

    def payload_and_torrent(self, announce):
        seed_dir = os.path.join(self.tmp, "seed")
        os.makedirs(seed_dir)
        src = os.path.join(seed_dir, "payload.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(5 << 20))
        torrent = os.path.join(self.tmp, "payload.torrent")
        r = subprocess.run(["mktorrent", "-p", "-l", "18", "-a", announce, "-o", torrent, src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        ih, meta = torrent_info_hash(torrent)
        self.assertEqual(meta[b"announce"], announce.encode())
        return seed_dir, src, torrent, ih

    def libtorrent(self, name, torrent, directory, budget):
        return self.start_proc(name, ["/usr/bin/python3", "-c", LT_DOWNLOADER, torrent, directory, IP6,
                                      str(harness.free_tcp_port(IP6)), str(budget)])

    def download_and_check(self, torrent, src, ih):
        dl_dir = os.path.join(self.tmp, "dl")
        os.makedirs(dl_dir)
        budget = max(5.0, min(45.0, self.left() - 15))
        leech = self.libtorrent("libtorrent-leech", torrent, dl_dir, budget)
        self.wait_libtorrent(leech, budget)
        self.assertEqual(sha256_file(os.path.join(dl_dir, "payload.bin")), sha256_file(src), "downloaded file differs")
        self.assertRegex(leech.output(), r'"ev": "tracker_reply", "peers": [1-9]')
        # Both peers are now seeders, stored as IPv6 peers of the torrent.
        self.wait_scrape(ih, lambda s, c, l: s == 2, 20, "tracker to count 2 IPv6 seeders")
        stats = self.d.ctl_json("show", "stats")
        self.assertGreaterEqual(stats["peers_ipv6"], 2, stats)
        self.assertEqual(stats["peers_ipv4"], 0, stats)

    def test_libtorrent_to_libtorrent_over_udp6(self):
        self.d = harness.Shoald(socket_workers=1, swarm_workers=2).start()
        seed_dir, src, torrent, ih = self.payload_and_torrent("udp://[::1]:%d/announce" % self.d.port)
        seeder = self.libtorrent("libtorrent-seed", torrent, seed_dir, self.left())
        self.wait_scrape(ih, lambda s, c, l: s == 1 and l == 0, 30, "tracker to count the libtorrent seeder")
        self.assertIsNone(seeder.p.poll(), "libtorrent seeder exited: %s" % seeder.output()[-2000:])
        self.download_and_check(torrent, src, ih)

    def test_aria2_to_libtorrent_over_http6(self):
        port = free_tcp_port_both()
        self.d = harness.Shoald(socket_workers=1, swarm_workers=2, extra=config_block("http", port)).start()
        seed_dir, src, torrent, ih = self.payload_and_torrent("http://[::1]:%d/announce" % port)
        argv = aria2_argv(IP6, torrent, seed_dir, self.tmp, "seed", True)
        argv[argv.index("--disable-ipv6=true")] = "--disable-ipv6=false"
        seeder = self.start_proc("aria2-seed", argv)
        self.wait_scrape(ih, lambda s, c, l: s == 1 and l == 0, 30, "tracker to count the aria2 seeder")
        self.assertIsNone(seeder.p.poll(), "aria2 seeder exited: %s" % seeder.output()[-2000:])
        self.download_and_check(torrent, src, ih)


if __name__ == "__main__":
    harness.main()
