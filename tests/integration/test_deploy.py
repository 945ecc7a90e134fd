"""Deploy mode and the two intervals (issue 11) against a real shoald, over UDP and HTTP:
with transfers.mode "deploy" a torrent that is not a registered transfer gets no peers (HTTP
adds a "warning message"), a registered one is served; registering and removing with shoalctl
takes effect without a restart; a registered transfer in progress is told
transfers.active_interval, and once every peer seeds (and one completed) it falls back to
tracker.announce_interval, as does every torrent in the default "open" mode, which serves all.
Loopback only; every wait is bounded; only our shoald is signalled, by PID."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from http_client import RawHttp, announce_target, config_block, peer_id  # noqa: E402

ACTIVE, PASSIVE = 15, 60  # harness.Shoald sets tracker.announce_interval = 60


def make_torrent(tmp, name, size=40000):
    """A .torrent (mktorrent) of `size` random bytes; returns (path, 20-byte info_hash)."""
    from transfer import torrent_info_hash
    src = os.path.join(tmp, name)
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    path = src + ".torrent"
    r = subprocess.run(["mktorrent", "-l", "15", "-a", "udp://127.0.0.1:1/announce", "-o", path, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout
    ih, _ = torrent_info_hash(path)
    return path, ih


def probe_of(ih, pred):
    """A wait_published probe: pred(reply) about the announce reply for `ih`."""
    pred.ih = ih
    return pred


class DeployTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald(self)
        if not shutil.which("mktorrent"):
            self.skipTest("mktorrent is not installed (make deps)")
        self.tmp = tempfile.mkdtemp(prefix="shoal-deploy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start(self, mode, extra="", files=None):
        self.http_port = harness.free_tcp_port()
        extra += ('transfers:\n{\n  state_dir = "%s";\n  mode = "%s";\n  active_interval = %d;\n};\n'
                  % (os.path.join(self.tmp, "state"), mode, ACTIVE))
        extra += config_block("http", self.http_port)
        d = harness.Shoald(extra=extra, files=files)
        self.addCleanup(d.__exit__, None, None, None)
        return d.start()

    def http_announce(self, ih, n, left, event=None, rack=0):
        with RawHttp("127.0.0.1", self.http_port, source="127.0.%d.%d" % (rack, n)) as c:
            r = c.request(announce_target(ih, peer_id(n), 7000 + n, left=left, event=event, compact=1))
        self.assertEqual(r.status, 200, r)
        return r.bencoded()

    def udp_announce(self, d, ih, n, left, event=0):
        with d.client(source="127.0.0.%d" % n) as c:
            return c.announce(ih, 7000 + n, left=left, event=event)

    def wait_published(self, d, count, probe):
        """Waits for the log line of the publication, then until the socket worker took it (its
        next batch, within 100 ms): probe(reply of a `stopped` announce) is true."""
        harness.wait_for(lambda: "registered transfers published: %d" % count in d.log(), 10,
                         what="%d registered transfers to be published" % count)
        harness.wait_for(lambda: probe(self.http_announce(probe.ih, 200, left=0, event="stopped")), 5,
                         what="the socket worker to use the new set")

    def test_deploy_mode_serves_only_registered_transfers(self):
        path, ih = make_torrent(self.tmp, "artifact.bin")
        other = harness.info_hash("deploy", "unregistered")
        d = self.start("deploy")
        for n in (1, 2):
            self.http_announce(other, n, left=100)
        reply = self.http_announce(other, 3, left=100)
        self.assertEqual(reply[b"peers"], b"")
        self.assertIn(b"not a registered transfer", reply[b"warning message"])
        self.assertEqual(reply[b"incomplete"], 3)  # counted all the same
        self.assertEqual(self.udp_announce(d, other, 4, 100).peers, [])
        # Registered: served, with the short interval while it is in progress.
        rc, out = d.ctl("transfer", "add", path)
        self.assertEqual(rc, 0, out)
        self.wait_published(d, 1, probe_of(ih, lambda r: b"warning message" not in r))
        self.http_announce(ih, 1, left=0, event="completed")  # the seeder
        reply = self.http_announce(ih, 2, left=100)
        self.assertEqual(len(reply[b"peers"]), 6)
        self.assertNotIn(b"warning message", reply)
        self.assertEqual(reply[b"interval"], ACTIVE)
        udp = self.udp_announce(d, ih, 3, 100)
        self.assertEqual(len(udp.peers), 2)
        self.assertEqual(udp.interval, ACTIVE)
        # Everyone done: back to the passive interval.
        for n in (2, 3):
            self.http_announce(ih, n, left=0, event="completed")
        self.assertEqual(self.http_announce(ih, 2, left=0)[b"interval"], PASSIVE)
        self.assertEqual(self.udp_announce(d, ih, 3, 0).interval, PASSIVE)
        # Removed: no longer served.
        rc, out = d.ctl("transfer", "remove", ih.hex())
        self.assertEqual(rc, 0, out)
        self.wait_published(d, 0, probe_of(ih, lambda r: b"warning message" in r))
        reply = self.http_announce(ih, 4, left=100)
        self.assertEqual(reply[b"peers"], b"")
        self.assertIn(b"warning message", reply)

    def test_open_mode_serves_everything_and_keeps_two_intervals(self):
        path, ih = make_torrent(self.tmp, "artifact.bin")
        other = harness.info_hash("deploy", "open")
        d = self.start("open")
        rc, out = d.ctl("transfer", "add", path)
        self.assertEqual(rc, 0, out)
        self.wait_published(d, 1, probe_of(ih, lambda r: r[b"interval"] == ACTIVE))
        self.http_announce(other, 1, left=100)
        reply = self.http_announce(other, 2, left=100)
        self.assertEqual(len(reply[b"peers"]), 6)
        self.assertNotIn(b"warning message", reply)
        self.assertEqual(reply[b"interval"], PASSIVE)
        # A registered transfer with no completion yet is in progress, even with only seeders.
        self.assertEqual(self.http_announce(ih, 1, left=0)[b"interval"], ACTIVE)
        self.assertEqual(self.http_announce(ih, 1, left=0, event="completed")[b"interval"], PASSIVE)

    def test_progress_per_location_and_remove_drops_the_swarm(self):
        size = 40000
        path, ih = make_torrent(self.tmp, "artifact.bin", size)
        metrics_port = harness.free_tcp_port()
        admin_port = harness.free_tcp_port()
        topo = ('topology:\n{\n  mode = "file";\n  file = "@DIR@/topology.map";\n};\n'
                'peer_selection:\n{\n  policy = "tiered";\n  max_representatives_per_rack = 1;\n};\n'
                'metrics:\n{\n  listen = "127.0.0.1:%d";\n};\nadmin:\n{\n  listen = "127.0.0.1:%d";\n};\n'
                % (metrics_port, admin_port))
        d = self.start("open", extra=topo, files={"topology.map": "127.0.1.0/24 dc/r1\n127.0.2.0/24 dc/r2\n"})
        rc, out = d.ctl("transfer", "add", path)
        self.assertEqual(rc, 0, out)
        self.wait_published(d, 1, probe_of(ih, lambda r: r[b"interval"] == ACTIVE))
        t0 = time.time()
        self.http_announce(ih, 1, left=0, event="started", rack=1)          # r1: a seeder
        self.http_announce(ih, 2, left=size // 2, event="started", rack=1)  # r1: half
        for n in (1, 2, 3):
            self.http_announce(ih, n, left=size, event="started", rack=2)   # r2: nothing yet

        def deploy():
            rc, out = d.ctl("transfer", "show", ih.hex(), "json")
            self.assertEqual(rc, 0, out)
            return json.loads(out).get("deploy")
        harness.wait_for(lambda: (deploy() or {}).get("leechers") == 4, 10, what="the progress poll")
        p = deploy()
        self.assertFalse(p["complete"])
        self.assertAlmostEqual(p["progress"], 30.0, delta=0.2)  # (100 + 50 + 0 + 0 + 0) / 5
        self.assertGreaterEqual(p["first_started"], int(t0) - 1)
        self.assertIsNone(p["first_completed"])
        racks = {l["location"]: l for l in p["locations"]}
        self.assertEqual(racks["dc/r1"], {"location": "dc/r1", "hosts": 2, "seeders": 1, "representatives": 0,
                                          "progress": 75.0})
        self.assertEqual(racks["dc/r2"], {"location": "dc/r2", "hosts": 3, "seeders": 0, "representatives": 1,
                                          "progress": 0.0})
        # The admin API (p2ptracker's /transfers/<hash>.json?racks=1) and the metrics say the same.
        body = subprocess.run(["curl", "-s", "--max-time", "5",
                               "http://127.0.0.1:%d/transfers/%s.json?racks=1" % (admin_port, ih.hex())],
                              stdout=subprocess.PIPE, timeout=15).stdout
        self.assertEqual(len(json.loads(body)["deploy"]["locations"]), 2)
        metrics = subprocess.run(["curl", "-s", "--max-time", "5", "http://127.0.0.1:%d/metrics" % metrics_port],
                                 stdout=subprocess.PIPE, timeout=15).stdout.decode()
        self.assertIn('shoal_transfer_location_hosts{info_hash="%s",name="artifact.bin",location="dc/r2"} 3'
                      % ih.hex(), metrics)
        self.assertIn('shoal_transfer_progress_permille{info_hash="%s",name="artifact.bin"} 300' % ih.hex(), metrics)
        # Everyone completes.
        self.http_announce(ih, 2, left=0, event="completed", rack=1)
        for n in (1, 2, 3):
            self.http_announce(ih, n, left=0, event="completed", rack=2)
        harness.wait_for(lambda: deploy()["complete"], 10, what="the transfer to be complete")
        p = deploy()
        self.assertEqual(p["progress"], 100.0)
        self.assertLessEqual(p["first_completed"], p["last_completed"])
        # Remove: the registration and the swarm go.
        rc, out = d.ctl("transfer", "remove", ih.hex())
        self.assertEqual(rc, 0, out)
        harness.wait_for(lambda: "its swarm (5 peers) is dropped" in d.log(), 10, what="the swarm to be dropped")
        rc, out = d.ctl("show", "torrent", ih.hex(), "json")
        self.assertEqual(json.loads(out)["peer_total"], 0, out)

    def test_deploy_mode_needs_a_state_dir(self):
        conf = os.path.join(self.tmp, "shoal.conf")
        with open(conf, "w") as f:
            f.write('transfers:\n{\n  mode = "deploy";\n};\n')
        r = subprocess.run([harness.SHOALD, "-t", "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(b':3: transfers.mode: "deploy" needs transfers.state_dir', r.stdout)


if __name__ == "__main__":
    harness.main()
