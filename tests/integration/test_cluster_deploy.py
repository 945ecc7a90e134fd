"""Deploy transfers and real transfers across the nodes of a cluster (issue 14), on one
nats-server and three shoald nodes on 127.0.0.2, .3 and .4 (test_cluster.py's), started once for
the class:

  - a deploy transfer registered on node A (`shoalctl transfer add`) is registered on B and C,
    and on a fourth node started afterwards;
    peers announce with progress to A and B; `shoalctl transfer show` on C reports the transfer
    with every node's peers (counts, progress, locations); `transfer remove` on B removes it on
    A and C;
  - a transfer removed on A while the NATS server is stopped (the removal is lost with it) stays
    removed after the reconnection: B and C, which still have it and send it on A's ask, drop
    it on A's remembered removal, and A refuses their adds;
  - a real transfer: an aria2 seeder announces only to node A, a libtorrent leecher only to node
    B; the leecher gets the seeder's address from B and downloads the file (sha256 checked).
Every wait is bounded; only processes this test started are signalled, by PID.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from harness import wait_for  # noqa: E402
from test_cluster import NATS_SERVER, PROPAGATION, NatsServer, Node  # noqa: E402
from transfer import LT_DOWNLOADER, TransferCase, aria2_argv, sha256_file, torrent_info_hash  # noqa: E402

SEED_IP, LEECH_IP = "127.0.5.1", "127.0.6.1"


def mktorrent(src, tracker, out):
    r = subprocess.run(["mktorrent", "-l", "16", "-a", tracker, "-o", out, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout
    return torrent_info_hash(out)[0]


class ClusterDeployTest(TransferCase):
    TEST_BUDGET = 60.0
    TMP_PREFIX = "shoal-cluster-deploy-"

    @classmethod
    def setUpClass(cls):
        harness.need_shoald()
        if not os.access(NATS_SERVER, os.X_OK):
            raise AssertionError("nats-server not installed (make deps installs Debian's nats-server)")
        cls.nats = NatsServer()
        cls.nodes = []
        try:
            for i, host in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4")):
                cls.nodes.append(cls.node(host, i + 1).start())
            for n in cls.nodes:
                wait_for(lambda: n.ctl_json("show cluster")["nodes_seen"] == 2, 10, what="two other nodes seen")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def node(cls, host, node_id):
        n = Node(host, node_id, cls.nats.url)
        # Each node its own state_dir; locations: a peer's /24.
        n.extra += ('transfers:\n{\n  state_dir = "@DIR@/state";\n};\n'
                    'topology:\n{\n  mode = "prefix";\n};\n')
        return n

    @classmethod
    def tearDownClass(cls):
        for n in cls.nodes:
            n.__exit__(None, None, None)
        cls.nats.stop()

    def scrape(self, ih):
        with bep15.Client(self.nodes[1].addr4, source="127.0.0.9", timeout=1.0, attempts=3) as c:
            return c.scrape([ih])[0]

    def registered(self, node):
        return {t["info_hash"] for t in node.ctl_json("transfer list")["transfers"]}

    def add_on_a(self, name, size):
        """A transfer of a random file `name` registered on node A (`shoalctl transfer add`);
        returns its info_hash once nodes B and C have registered it too."""
        a, b, c = self.nodes
        src = os.path.join(self.tmp, name)
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        torrent = src + ".torrent"
        ih = mktorrent(src, "udp://127.0.0.1:1/announce", torrent)
        rc, out = a.ctl("transfer", "add", torrent)
        self.assertEqual(rc, 0, out)
        for n in (b, c):  # the batch delay, then the supervisor's 100 ms poll
            wait_for(lambda: ih.hex() in self.registered(n), PROPAGATION, interval=0.05,
                     what="the transfer registered on %s" % n.host)
            self.assertIn("cluster: transfer %s (%s) registered (by another node)" % (ih.hex(), name), n.log())
        return ih

    def test_a_transfer_registered_on_a_is_on_every_node_with_the_progress_of_all_nodes(self):
        a, b, c = self.nodes
        ih = self.add_on_a("deploy.bin", 40000)
        # A node that starts later asks for the transfers when it connects.
        with self.node("127.0.0.5", 4) as d:
            wait_for(lambda: ih.hex() in self.registered(d), PROPAGATION, interval=0.05, what="the transfer on a new node")
        # The socket workers of A and B know it (progress from `left` needs its length).
        for n in (a, b):
            wait_for(lambda: "registered transfers published: 1" in n.log(), 5, what="the transfer published on %s" % n.host)
        time.sleep(0.2)  # the socket workers take a publication at their next batch (100 ms)
        # On A: a seeder and one at 25% in 127.0.1.0/24; on B: one at 50% in 127.0.2.0/24.
        for node, host, left in ((a, "127.0.1.1", 0), (a, "127.0.1.2", 30000), (b, "127.0.2.1", 20000)):
            with bep15.Client(node.addr4, source=host, timeout=1.0, attempts=3) as cl:
                cl.announce(ih, port=7000, left=left, event=bep15.EVENT_STARTED, numwant=0)
        got = {}

        def combined():
            got["deploy"] = c.ctl_json("transfer", "show", ih.hex()).get("deploy") or {}
            return got["deploy"].get("leechers") == 2 and got["deploy"].get("seeders") == 1
        wait_for(combined, 5, interval=0.1, what="node C's progress to count the peers of A and B")
        deploy = got["deploy"]
        self.assertEqual(deploy["progress"], 58.3)  # (100 + 25 + 50) / 3
        self.assertEqual(sorted((l["hosts"], l["seeders"], l["progress"]) for l in deploy["locations"]),
                         [(1, 0, 50.0), (2, 1, 62.5)])
        # Removed on B: removed everywhere.
        rc, out = b.ctl("transfer", "remove", ih.hex())
        self.assertEqual(rc, 0, out)
        for n in (a, c):
            wait_for(lambda: ih.hex() not in self.registered(n), PROPAGATION, interval=0.05,
                     what="the transfer removed on %s" % n.host)

    def test_a_real_transfer_between_a_seeder_on_node_a_and_a_leecher_on_node_b(self):
        a, b, c = self.nodes
        seed_dir = os.path.join(self.tmp, "seed")
        os.makedirs(seed_dir)
        src = os.path.join(seed_dir, "payload.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3 << 20))
        # The same file for two trackers: the same info_hash (announce is outside the info dict).
        seed_torrent, leech_torrent = os.path.join(self.tmp, "seed.torrent"), os.path.join(self.tmp, "leech.torrent")
        ih = mktorrent(src, "udp://%s:%d/announce" % a.addr4, seed_torrent)
        self.assertEqual(mktorrent(src, "udp://%s:%d/announce" % b.addr4, leech_torrent), ih)
        seeder = self.start_proc("aria2-seed", aria2_argv(SEED_IP, seed_torrent, seed_dir, self.tmp, "seed", True))
        wait_for(lambda: any(addr == SEED_IP for (addr, _) in a.peers_of(ih)), min(30, self.left()), interval=0.1,
                 what="the aria2 seeder's announce on node A")
        self.assertIsNone(seeder.p.poll(), "aria2 seeder exited: %s" % seeder.output()[-2000:])
        wait_for(lambda: b.peers_of(ih).get((SEED_IP, seeder_port(seeder))) == "seeder", PROPAGATION, interval=0.05,
                 what="the seeder on node B")
        dl = os.path.join(self.tmp, "dl")
        os.makedirs(dl)
        script = os.path.join(self.tmp, "lt_downloader.py")
        with open(script, "w") as f:
            f.write(LT_DOWNLOADER)
        budget = min(40.0, self.left() - 5)
        leech = self.start_proc("lt-leech", ["/usr/bin/python3", script, leech_torrent, dl, LEECH_IP,
                                             str(harness.free_tcp_port(LEECH_IP)), str(budget)])
        self.wait_libtorrent(leech, budget)
        self.assertEqual(sha256_file(os.path.join(dl, "payload.bin")), sha256_file(src), "downloaded file differs")
        # The leecher announced only to B; A's `show torrent` lists it too (replicated).
        wait_for(lambda: any(addr == LEECH_IP for (addr, _) in a.peers_of(ih)), PROPAGATION + 5, interval=0.1,
                 what="the leecher on node A")

    def test_removal_during_a_nats_outage_is_not_undone_by_the_reconnection(self):
        a, b, c = self.nodes
        ih = self.add_on_a("outage.bin", 20000)
        # The server stops: A's client hands the remove to a connection it still believes alive
        # (it notices after its pings go unanswered), and the server dies with it unread.
        self.nats.signal(signal.SIGSTOP)
        try:
            rc, out = a.ctl("transfer", "remove", ih.hex())
            self.assertEqual(rc, 0, out)
            time.sleep(0.5)  # the supervisor's 100 ms poll, then the sync worker's tick
        finally:
            self.nats.kill_and_restart()
        # On reconnection B and C send their registrations (A's ask) and A its removal.
        for n in (b, c):
            wait_for(lambda: ih.hex() not in self.registered(n), 15, interval=0.1,
                     what="the transfer removed on %s after the reconnection" % n.host)
        wait_for(lambda: "cluster: transfer %s of node" % ih.hex() in a.log(), 5, interval=0.1,
                 what="A to refuse another node's add of the removed transfer")
        self.assertIn("it was removed at", a.log())
        self.assertNotIn(ih.hex(), self.registered(a))
        for n in (a, b, c):
            wait_for(lambda: n.ctl_json("show cluster")["bus"]["state"] == "connected", 10,
                     what="%s connected again" % n.host)


def seeder_port(proc):
    return int([x for x in proc.p.args if x.startswith("--listen-port=")][0].split("=")[1])


if __name__ == "__main__":
    harness.main()
