"""Swarm snapshots (issue 14): `shoalctl snapshot save FILE` writes every swarm; a shoald built
with another shm layout version (build/layout-test/shoald, Makefile `layout-test`: an upgrade that
changed the layout) refuses the shared memory the first one left, starts fresh, loads the snapshot
from tracker.snapshot_load before it reports ready, and clients see the same swarms: the same
peers in announce replies, the same scrape counts, the same `shoalctl show torrent`, the same
locations of a deploy transfer's peers (topology groups, progress). WebTorrent peers are live
connections: no snapshot carries them. A damaged
snapshot file stops shoald (exit 1) with the path and the reason, and `shoald -t` says the same;
a missing one starts empty."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from test_deploy import make_torrent  # noqa: E402

SHOALD = harness.SHOALD


def run_shoald(args, timeout=20):
    r = subprocess.run([SHOALD] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


class SnapshotTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.tmp = tempfile.mkdtemp(prefix="shoal-snapshot-")
        self.path = os.path.join(self.tmp, "snapshot")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, binary=None):
        # Topology mode "prefix": a peer's location is its /24; a registered transfer (state_dir
        # outlives the daemons) has a progress per peer from its `left`.
        extra = ('topology:\n{\n  mode = "prefix";\n};\n'
                 'transfers:\n{\n  state_dir = "%s";\n};\n' % os.path.join(self.tmp, "state"))
        d = harness.Shoald(swarm_workers=2, tracker={"snapshot_load": '"%s"' % self.path}, extra=extra)
        d.binary = binary or harness.SHOALD
        return d

    def fill_transfer(self, d):
        """Registers a deploy transfer of 40,000 bytes and announces 5 peers from two /24s: on
        127.0.1.x a seeder and two at 25% and 75%, on 127.0.2.x one at 50% and one at 0%."""
        path, ih = make_torrent(self.tmp, "deploy", 40000)
        rc, out = d.ctl("transfer", "add", path)
        self.assertEqual(rc, 0, out)
        for host, left in (("127.0.1.1", 0), ("127.0.1.2", 30000), ("127.0.1.3", 10000),
                           ("127.0.2.1", 20000), ("127.0.2.2", 40000)):
            with d.client(source=host) as c:
                c.announce(ih, port=7000, left=left, event=bep15.EVENT_STARTED, numwant=0)
        return ih

    def locations(self, d, ih):
        """`transfer show`'s locations once the progress poller has seen all 5 peers."""
        got = {}

        def polled():
            got["deploy"] = d.ctl_json("transfer", "show", ih.hex()).get("deploy") or {}
            return sum(l["hosts"] for l in got["deploy"].get("locations", [])) == 5
        harness.wait_for(polled, 10, what="the transfer's 5 peers in `transfer show`")
        return got["deploy"]["locations"]

    def fill(self, d):
        """Announces a few swarms: IPv4 and IPv6 peers, leechers and seeders (some completed).
        Returns the info_hashes."""
        hashes = [harness.info_hash("snapshot", i) for i in range(6)]
        with d.client() as c4, d.client(family=6) as c6:
            for i, h in enumerate(hashes):
                for p in range(3 + 4 * i):
                    seeder = p % 3 == 0
                    c4.announce(h, port=10000 + p, left=0 if seeder else 500,
                                event=bep15.EVENT_COMPLETED if seeder else bep15.EVENT_STARTED, numwant=0)
                for p in range(i):
                    c6.announce(h, port=20000 + p, left=100, event=bep15.EVENT_STARTED, numwant=0)
        return hashes

    def view(self, d, hashes):
        """What clients and the operator see of each swarm: scrape counts, the peers an announce
        returns to a new IPv4 and a new IPv6 leecher (from another port: never themselves), and the
        peers `shoalctl show torrent` lists."""
        out = {}
        with d.client() as c4, d.client(family=6) as c6:
            for h in hashes:
                scrape = c4.scrape([h])
                r4 = c4.announce(h, port=40000, left=1, event=bep15.EVENT_STOPPED, numwant=200)
                peers4 = sorted(c4.announce(h, port=40001, left=1, numwant=200).peers)
                c4.announce(h, port=40001, left=1, event=bep15.EVENT_STOPPED, numwant=0)
                peers6 = sorted(c6.announce(h, port=40002, left=1, numwant=200).peers)
                c6.announce(h, port=40002, left=1, event=bep15.EVENT_STOPPED, numwant=0)
                shown = d.ctl_json("show", "torrent", h.hex())
                listed = sorted((p["address"], p["port"], p["role"]) for p in shown["peers"])
                out[h.hex()] = (scrape, (r4.seeders, r4.leechers), peers4, peers6,
                                (shown["seeders"], shown["leechers"], shown["completed"]), listed)
        return out

    def test_save_then_load_into_new_shared_memory_keeps_every_swarm(self):
        d = self.daemon()
        with d:
            self.assertIn("no snapshot to load", d.log())  # a missing file: starts empty
            self.assertEqual(d.ctl_json("show", "info")["snapshot"]["load"]["state"][:8], "missing:")
            hashes = self.fill(d)
            before = self.view(d, hashes)
            deploy = self.fill_transfer(d)
            locations = self.locations(d, deploy)
            # Two locations ("group N", N from the /24), by hosts: 127.0.1.x then 127.0.2.x.
            self.assertEqual([(l["hosts"], l["seeders"], l["progress"]) for l in locations], [(3, 1, 66.7), (2, 0, 25.0)])
            self.assertNotEqual(locations[0]["location"], locations[1]["location"])
            # The last swarm: 23 IPv4 peers (8 seeders, which completed) and 5 IPv6 leechers.
            _, _, peers4, peers6, counts, listed = before[hashes[5].hex()]
            self.assertEqual((len(peers4), len(peers6), counts, len(listed)), (23, 5, (8, 20, 8), 28))
            rc, out = d.ctl("snapshot", "save", self.path)
            self.assertEqual(rc, 0, out)
            total = sum(3 + 4 * i + i for i in range(6)) + 5
            self.assertIn("torrents: 7\n", out)
            self.assertIn("peers: %d\n" % total, out)
            self.assertIn("file: %s\n" % self.path, out)
            self.assertEqual(sorted(n for n in os.listdir(self.tmp) if not n.startswith("deploy")), ["snapshot", "state"],
                             "the temporary file was left")
            self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
            # Stop, leaving the shared memory; start the shoald of the next layout version on it.
            self.assertEqual(d.stop(), 0)
            self.assertTrue(os.access(harness.LAYOUT_TEST_SHOALD, os.X_OK),
                            "%s is not built (make layout-test)" % harness.LAYOUT_TEST_SHOALD)
            again = self.daemon(harness.LAYOUT_TEST_SHOALD)
            again.port, again.shm_name = d.port, d.shm_name
            with again:
                log = again.log()
                old = int(run_shoald(["-V"])[1].split()[-1])
                self.assertEqual(again.ctl_json("show", "info")["layout_version"], old + 1)
                self.assertIn("cannot re-attach the shared memory a previous shoald left (/%s-control: layout version %d, "
                              "this binary uses %d); starting fresh" % (d.shm_name, old, old + 1), log)
                self.assertIn("loading the snapshot %s (7 torrents, %d peers" % (self.path, total), log)
                self.assertRegex(log, r"partition 0 loaded the snapshot .*; 0 peers skipped")
                info = again.ctl_json("show", "info")["snapshot"]["load"]
                self.assertEqual((info["state"], info["torrents"], info["peers"], info["skipped_expired"]),
                                 ("loaded", 7, total, 0))
                self.assertEqual(self.locations(again, deploy), locations)
                after = self.view(again, hashes)
                for h in hashes:
                    self.assertEqual(after[h.hex()], before[h.hex()], "swarm %s differs after the load" % h.hex())
                # A second save of the loaded daemon holds the same swarms.
                rc, out = again.ctl("snapshot", "save", self.path)
                self.assertEqual(rc, 0, out)
                self.assertIn("peers: %d\n" % total, out)

    def test_snapshot_save_needs_an_absolute_path_and_a_writable_directory(self):
        with self.daemon() as d:
            rc, out = d.ctl("snapshot", "save", "/nonexistent-dir/x")
            self.assertEqual(rc, 1, out)
            self.assertIn("error: /nonexistent-dir/x.tmp.", out)
            self.assertIn("No such file or directory", out)
            with socket.socket(socket.AF_UNIX) as sock:  # shoalctl makes a path absolute; the socket refuses
                sock.settimeout(5)
                sock.connect(d.stats_socket)
                sock.sendall(b"snapshot save relative/x\n")
                self.assertEqual(sock.recv(4096), b"error: snapshot save needs an absolute path\n\n")
            d.assert_alive()

    def corrupt_and_start(self, mutate, want):
        with self.daemon() as d:
            self.fill(d)
            rc, out = d.ctl("snapshot", "save", self.path)
            self.assertEqual(rc, 0, out)
            conf = os.path.join(self.tmp, "shoal.conf")
            shutil.copy(d.conf_path, conf)
        data = bytearray(open(self.path, "rb").read())
        mutate(data)
        with open(self.path, "wb") as f:
            f.write(data)
        rc, out = run_shoald(["-t", "-c", conf])
        self.assertEqual(rc, 1, out)
        self.assertIn("snapshot %s: %s" % (self.path, want), out)
        rc, out = run_shoald(["-c", conf, "--fresh"])
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot start: snapshot %s: %s" % (self.path, want), out)
        self.assertNotIn("ready:", out)
        return out

    def test_a_corrupt_snapshot_stops_shoald_with_the_offset(self):
        def flip(data):
            data[len(data) // 2] ^= 0xff
        out = self.corrupt_and_start(flip, "offset ")
        self.assertIn("data chunk checksum mismatch", out)

    def test_a_truncated_snapshot_stops_shoald(self):
        def cut(data):
            del data[-30:]  # the end chunk is 32 bytes: it is cut
        self.corrupt_and_start(cut, "offset ")

    def test_another_format_version_is_refused(self):
        def version(data):
            data[9] = 99
        self.corrupt_and_start(version, "offset 8: snapshot format version 99 is not supported")


if __name__ == "__main__":
    harness.main()
