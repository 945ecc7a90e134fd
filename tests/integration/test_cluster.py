"""Several shoald nodes as one tracker over NATS (issue 14): a nats-server this test starts on a
loopback port (stopped by its PID), three shoald nodes on 127.0.0.2, .3 and .4, each with its own
shared memory and stats socket.

  - a peer announced to node A appears on B and C within the batch delay plus 1 s (the project's
    BEP 15 client, and a real client: python3-libtorrent announcing to A);
  - `stopped` sent to B removes the peer on every node;
  - `completed` is counted once per peer across the cluster;
  - kill -9 of every process of node A: B and C still return A's peers;
  - kill -STOP of nats-server: every node keeps answering; after kill -CONT the nodes converge;
  - a `stopped` handed to a stopped nats-server that is then killed (lost) reaches B and C once
    A has reconnected to a new server (A keeps recent stopped deltas and sends them again);
  - a node whose NATS server is down when it starts serves anyway and says so;
  - joining: node B restarted with new shared memory while A holds 2,000 peers is not ready
    (show workers, wait-ready, metrics) until it has loaded a live node's snapshot, and the
    moment `shoalctl wait-ready` returns its scrape counts equal A's; a node started with no
    other node up becomes ready after cluster.join_timeout and says it started alone.
Every wait is bounded; the whole file takes about 60 s.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from harness import Shoald, wait_for  # noqa: E402

BATCH_DELAY_MS = 100
PROPAGATION = BATCH_DELAY_MS / 1000.0 + 1.0  # the bound: batch delay plus 1 s
NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


class NatsServer:
    """nats-server on 127.0.0.1:<free port>, started and stopped by PID."""

    def __init__(self):
        self.port = harness.free_tcp_port()
        self.dir = tempfile.mkdtemp(prefix="shoal-nats-")
        self.log = open(os.path.join(self.dir, "nats.log"), "wb")
        self._start()

    def _start(self):
        self.proc = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        harness.wait_for(self._listening, 10, what="nats-server to listen")

    def kill_and_restart(self):
        """SIGKILL (what it had received but not handled is lost), then a new one on the same port."""
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._start()

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("nats-server exited: %s" % open(self.log.name).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self):
        self.signal(signal.SIGCONT)  # a stopped server must run to take SIGTERM
        harness.terminate(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node(Shoald):
    """A shoald on its own loopback address (IPv4 only) with the cluster section set."""

    def __init__(self, host, node_id, nats_url, join_timeout=1, swarm_workers=1):
        self.metrics_port = harness.free_tcp_port()
        super().__init__(ipv6=False, swarm_workers=swarm_workers, extra=(
            'cluster:\n{\n  enabled = true;\n  node_id = %d;\n  node_name = "node-%d";\n'
            '  servers = [ "%s" ];\n  subject = "shoaltest-%d";\n  batch_delay = %d;\n  join_timeout = %d;\n};\n'
            'metrics:\n{\n  listen = "127.0.0.1:%d";\n};\n'
            % (node_id, node_id, nats_url, os.getpid(), BATCH_DELAY_MS, join_timeout, self.metrics_port)))
        self.host = host

    def start_unready(self):
        """Starts shoald and returns once its stats socket answers, ready or not."""
        real, self.wait_ready = self.wait_ready, lambda timeout=None: None
        try:
            self.start()
        finally:
            del self.wait_ready
        wait_for(lambda: self.ctl("show workers", timeout=2)[0] == 0, 10, what="the stats socket")
        return self

    def ready_now(self):
        """`shoalctl wait-ready` with a short limit: True when every worker is ready."""
        return self.ctl("wait-ready", "0.3", timeout=5)[0] == 0

    def metric(self, name):
        """A sample without labels from /metrics, or None."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def config_text(self):
        return super().config_text().replace('"127.0.0.1:%d"' % self.port, '"%s:%d"' % (self.host, self.port))

    @property
    def addr4(self):
        return (self.host, self.port)

    def peers_of(self, ih):
        """{(address, port): role} that `show torrent` lists on this node."""
        t = self.ctl_json("show torrent", ih.hex())
        return {(p["address"], p["port"]): p["role"] for p in t["peers"]}

    def all_pids(self):
        """The supervisor and every worker it runs now (sync worker included)."""
        return [self.pid] + [p for p in harness.children_of(self.pid)
                             if (harness.proc_stat(p) or (0,))[0] == self.pid]


def client(node, source):
    return bep15.Client(node.addr4, source=source, timeout=1.0, attempts=3)


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(NATS_SERVER, os.X_OK):
            raise AssertionError("nats-server not installed (make deps installs Debian's nats-server)")

    def setUp(self):
        self.nats = NatsServer()
        self.nodes = []
        try:
            for i, host in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4")):
                self.nodes.append(Node(host, i + 1, self.nats.url).start())
            a, b, c = self.nodes
            # Each node sees the others once they have sent their hello.
            for n in self.nodes:
                wait_for(lambda: n.ctl_json("show cluster")["bus"]["state"] == "connected", 10, what="bus connected")
            for n in self.nodes:
                wait_for(lambda: n.ctl_json("show cluster")["nodes_seen"] == 2, 10, what="two other nodes seen")
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        for n in self.nodes:
            n.__exit__(None, None, None)
        self.nats.stop()

    def wait_peer(self, node, ih, peer, present=True, timeout=PROPAGATION, role=None):
        def check():
            got = node.peers_of(ih)
            if not present:
                return peer not in got
            return peer in got and (role is None or got[peer] == role)
        wait_for(check, timeout, interval=0.05,
                 what="%s %s on %s:%d" % (peer, "to appear" if present else "to leave", node.host, node.port))

    def test_announce_replicates_stopped_removes_everywhere_completed_counts_once(self):
        a, b, c = self.nodes
        ih = harness.info_hash("cluster", "replicate")
        with client(a, "127.0.0.10") as x:
            t0 = time.monotonic()
            x.announce(ih, 6881, left=1000, event=bep15.EVENT_STARTED)
            peer = ("127.0.0.10", 6881)
            for n in (b, c):
                self.wait_peer(n, ih, peer, timeout=PROPAGATION - (time.monotonic() - t0))
            # What a client of C sees: A's peer in its announce reply.
            with client(c, "127.0.0.11") as y:
                self.assertIn(peer, y.announce(ih, 6882, left=1000, numwant=50).peers)
            # completed, sent to A then again to B: counted once everywhere.
            x.announce(ih, 6881, left=0, event=bep15.EVENT_COMPLETED)
            for n in (a, b, c):
                self.wait_peer(n, ih, peer, role="seeder")
        with client(b, "127.0.0.10") as x2:
            x2.announce(ih, 6881, left=0, event=bep15.EVENT_COMPLETED)
        time.sleep(PROPAGATION)
        for n in (a, b, c):
            with client(n, "127.0.0.12") as s:
                (seeders, completed, leechers), = s.scrape([ih])
            self.assertEqual(completed, 1, "completed on %s" % n.host)
            self.assertEqual(seeders, 1, "seeders on %s" % n.host)
        # stopped sent to B removes the peer on every node.
        with client(b, "127.0.0.10") as x3:
            x3.announce(ih, 6881, left=0, event=bep15.EVENT_STOPPED)
        for n in (a, b, c):
            self.wait_peer(n, ih, ("127.0.0.10", 6881), present=False)
        counters = b.ctl_json("show cluster")["deltas"]
        self.assertGreater(counters["deltas_applied"], 0)
        self.assertEqual(counters["bad_messages"], 0)

    def test_a_real_client_announced_to_a_is_on_b_and_c(self):
        import libtorrent as lt
        a, b, c = self.nodes
        ih = harness.info_hash("cluster", "libtorrent")
        ses = lt.session({"listen_interfaces": "127.0.0.20:0", "outgoing_interfaces": "127.0.0.20",
                          "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
                          "announce_to_all_trackers": True})
        try:
            p = lt.add_torrent_params()
            p.info_hash = lt.sha1_hash(ih)
            p.trackers = ["udp://%s:%d/announce" % a.addr4]
            p.save_path = tempfile.mkdtemp(prefix="shoal-lt-")
            ses.add_torrent(p)
            port = ses.listen_port()
            wait_for(lambda: any(pp == port for (_, pp) in a.peers_of(ih)), 15, interval=0.1,
                     what="libtorrent's announce on node A")
            t0 = time.monotonic()
            for n in (b, c):
                wait_for(lambda: any(pp == port for (_, pp) in n.peers_of(ih)), max(0.1, PROPAGATION - (time.monotonic() - t0)),
                         interval=0.05, what="libtorrent's peer on %s" % n.host)
        finally:
            del ses
            shutil.rmtree(p.save_path, ignore_errors=True)

    def test_kill_9_of_every_process_of_a_leaves_its_peers_on_b_and_c(self):
        a, b, c = self.nodes
        ih = harness.info_hash("cluster", "kill")
        with client(a, "127.0.0.13") as x:
            x.announce(ih, 7001, left=1000)
        for n in (b, c):
            self.wait_peer(n, ih, ("127.0.0.13", 7001))
        pids = a.all_pids()
        self.assertGreaterEqual(len(pids), 4, "supervisor, socket, swarm and sync worker")
        for pid in pids:  # the supervisor first: nobody restarts the workers
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not a.alive(), 5, what="node A gone")
        for pid in pids[1:]:
            wait_for(lambda: not harness.pid_alive(pid), 5, what="worker %d gone" % pid)
        for n in (b, c):
            with client(n, "127.0.0.14") as y:
                self.assertIn(("127.0.0.13", 7001), y.announce(ih, 7002, left=1000).peers)

    def test_a_stopped_nats_server_stops_no_node_and_they_converge_after_cont(self):
        a, b, c = self.nodes
        ih = harness.info_hash("cluster", "stop")
        self.nats.signal(signal.SIGSTOP)
        try:
            # Every node answers while the bus is stopped (and notices it within a few seconds).
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                for i, n in enumerate((a, b, c)):
                    with client(n, "127.0.0.15") as y:
                        y.announce(ih, 7100 + i, left=1000)
                time.sleep(0.5)
            wait_for(lambda: a.ctl_json("show cluster")["bus"]["state"] != "connected", 5, what="A to notice the outage")
            with client(a, "127.0.0.16") as x:
                x.announce(ih, 7200, left=1000)
            time.sleep(0.5)
            self.assertNotIn(("127.0.0.16", 7200), b.peers_of(ih), "no bus, no replication")
        finally:
            self.nats.signal(signal.SIGCONT)
        for n in (b, c):
            self.wait_peer(n, ih, ("127.0.0.16", 7200), timeout=15)
        for n in (a, b, c):
            wait_for(lambda: n.ctl_json("show cluster")["bus"]["state"] == "connected", 10, what="bus back")
            for i in range(3):  # each node's own peers of the stop reached the other nodes
                self.wait_peer(n, ih, ("127.0.0.15", 7100 + i), timeout=15)
        self.assertGreater(a.ctl_json("show cluster")["bus"]["reconnects"], 0)

    def test_a_stopped_lost_with_a_dead_nats_server_reaches_the_other_nodes_after_the_reconnection(self):
        a, b, c = self.nodes
        ih = harness.info_hash("cluster", "stopped-lost")
        peer = ("127.0.0.17", 7300)
        with client(a, peer[0]) as x:
            x.announce(ih, peer[1], left=1000, event=bep15.EVENT_STARTED)
        for n in (b, c):
            self.wait_peer(n, ih, peer)
        # The server stops: A's client notices only when its pings go unanswered (about 2 s), so
        # it hands the stopped to the dead connection; the server dies with it unread.
        sent = a.counters().get("cluster_deltas_sent", 0)
        self.nats.signal(signal.SIGSTOP)
        with client(a, peer[0]) as x:
            x.announce(ih, peer[1], left=1000, event=bep15.EVENT_STOPPED)
        wait_for(lambda: a.counters().get("cluster_deltas_sent", 0) > sent, 5, what="A to publish the stopped")
        time.sleep(0.3)
        self.assertEqual(a.ctl_json("show cluster")["bus"]["state"], "connected", "A noticed the outage too early")
        self.assertIn(peer, b.peers_of(ih), "B cannot have heard it")
        self.nats.kill_and_restart()
        for n in (b, c):  # A sends it again after its reconnection
            self.wait_peer(n, ih, peer, present=False, timeout=15)
        wait_for(lambda: "sent 1 stopped peers of the last outage again" in a.log(), 5, what="A's log line")


class NoBusAtStartTest(unittest.TestCase):
    def test_a_node_whose_servers_are_down_at_start_serves_and_says_so(self):
        port = harness.free_tcp_port()  # nothing listens there
        with Node("127.0.0.5", 9, "nats://127.0.0.1:%d" % port) as n:
            with client(n, "127.0.0.17") as x:
                self.assertEqual(x.announce(harness.info_hash("cluster", "nobus"), 7300).leechers, 1)
            bus = wait_for(lambda: (lambda b: b if b["state"] in ("connecting", "reconnecting") else None)(
                n.ctl_json("show cluster")["bus"]), 5, what="bus state")
            self.assertEqual(bus["server"], "")
            self.assertIn("NATS connection", n.log())
            self.assertEqual(n.ctl_json("show cluster")["deltas"]["deltas_queued"], 1)


def counts(node, hashes):
    """[(seeders, completed, leechers)] of `hashes` as a BEP 15 scrape of `node` returns them."""
    with client(node, "127.0.0.21") as x:
        return x.scrape(hashes)


class JoinTest(unittest.TestCase):
    """A node with new shared memory loads a live node's snapshot before it says ready."""

    def setUp(self):
        self.nats = NatsServer()
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.__exit__(None, None, None)
        self.nats.stop()

    def node(self, host, node_id, **kw):
        n = Node(host, node_id, self.nats.url, **kw)
        self.nodes.append(n)
        return n

    def test_a_node_with_no_other_node_up_becomes_ready_after_the_join_timeout(self):
        t0 = time.monotonic()
        n = self.node("127.0.0.2", 1, join_timeout=3).start_unready()
        self.assertFalse(n.ready_now(), "not ready while it waits for an answer")
        self.assertEqual(n.ctl_json("show cluster")["join"]["state"], "waiting")
        self.assertEqual(n.metric("shoal_cluster_ready"), 0)
        rc, out = n.ctl("wait-ready", "15", timeout=20)
        self.assertEqual(rc, 0, out)
        self.assertGreaterEqual(time.monotonic() - t0, 3.0, "ready only once cluster.join_timeout has passed")
        join = n.ctl_json("show cluster")["join"]
        self.assertEqual(join["state"], "alone")
        self.assertIn("no node answered within cluster.join_timeout (3 s)", join["note"])
        self.assertEqual(n.ctl_json("show info")["cluster_join"]["state"], "alone")
        self.assertEqual(n.metric("shoal_cluster_ready"), 1)
        self.assertIn("starting with what this node has", n.log())

    def test_a_restarted_node_loads_a_snapshot_and_is_complete_before_it_says_ready(self):
        a = self.node("127.0.0.2", 1).start()
        c = self.node("127.0.0.4", 3).start()
        b = self.node("127.0.0.3", 2).start()
        for n in (a, b, c):
            wait_for(lambda: n.ctl_json("show cluster")["nodes_seen"] == 2, 10, what="two other nodes seen")
        # 2,000 peers announced to A in 20 swarms, a quarter of them seeders that completed there.
        hashes = [harness.info_hash("cluster", "join", i) for i in range(20)]
        with client(a, "127.0.0.20") as x:
            for i in range(2000):
                seed = i % 4 == 0
                x.announce(hashes[i % 20], 10000 + i, left=0 if seed else 1000,
                           event=bep15.EVENT_COMPLETED if seed else bep15.EVENT_STARTED, numwant=0)
        want = counts(a, hashes)
        self.assertEqual(sum(s + l for s, _, l in want), 2000)
        self.assertEqual(sum(d for _, d, _ in want), 500)
        for n in (b, c):
            wait_for(lambda: counts(n, hashes) == want, 10, what="replication to %s" % n.host)
        # B restarts with new shared memory (stopped, its segments removed, started again).
        b.__exit__(None, None, None)
        self.nodes.remove(b)
        self.assertFalse([f for f in os.listdir("/dev/shm") if f.startswith(b.shm_name)])
        # The answering node's swarm worker held for a moment: B has asked and is loading, not ready.
        held = [n.worker_pid("swarm", 0) for n in (a, c)]
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        try:
            b = self.node("127.0.0.3", 2, join_timeout=10).start_unready()
            wait_for(lambda: b.ctl_json("show cluster")["join"]["state"] == "loading", 10, what="B loading a snapshot")
            self.assertFalse(b.ready_now())
            self.assertEqual(b.metric("shoal_cluster_ready"), 0)
            self.assertEqual(b.metric("shoal_cluster_join_state"), 2)
        finally:
            for pid in held:
                os.kill(pid, signal.SIGCONT)
        rc, out = b.ctl("wait-ready", "20", timeout=25)
        self.assertEqual(rc, 0, out)
        self.assertEqual(counts(b, hashes), counts(a, hashes), "complete the moment it says ready")
        join = b.ctl_json("show cluster")["join"]
        self.assertEqual(join["state"], "joined")
        self.assertIn(join["from_node_id"], (1, 3))
        self.assertEqual((join["torrents"], join["peers"]), (20, 2000))
        self.assertEqual(b.metric("shoal_cluster_ready"), 1)
        self.assertIn("cluster: joined: loaded the snapshot of node", b.log())


if __name__ == "__main__":
    harness.main()
