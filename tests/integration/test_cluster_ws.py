"""WebTorrent across cluster nodes (issue 14): a nats-server this test starts on a loopback port
and three shoald nodes (127.0.0.2/.3/.4, test_cluster.py's Node) with the WebSocket tracker on.

  - two npm bittorrent-tracker clients (exchange.js), A talking to node 1 and B to node 2: B's
    offer reaches A through the trackers, A's answer reaches B, and the other way round; a
    WebTorrent scrape on node 3 counts both peers; each node counts the offers and answers it
    sent and received across nodes, none dropped;
  - raw clients (rawws.js): b on node 2, a on node 1 sends one offer (it can only go to b), c on
    node 3 joins after it. Forged answers across nodes are never relayed: an offer_id b never
    received, the right offer answered to the wrong to_peer_id, c answering an offer it never
    received (in its own name and in b's), and a replay of b's valid answer;
  - node 3 started (new shared memory) after an npm client A announced to node 1: once it says
    ready it counts A (node 1's join answer carried it), and client B on node 3 gets A's answer;
  - a connection closed on node 2 leaves the swarm on node 3 (its stopped is replicated);
  - a close during a NATS outage (its stopped lost with the server) reaches the other nodes
    after the reconnection, before peer_ttl;
  - kill -9 of node 2's socket worker: its peer leaves nodes 1 and 3 at once (not at peer_ttl);
  - kill -9 of node 2: its WebTorrent peer stays on the other nodes until peer_ttl (20 s here),
    then it is gone and no offer goes to it.
Every wait is bounded; node scripts carry their own timeouts; processes are stopped by PID.
"""
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import webtorrent as wt  # noqa: E402
from http_client import free_tcp_port_both  # noqa: E402
from harness import wait_for  # noqa: E402
from test_cluster import BATCH_DELAY_MS, NATS_SERVER, NatsServer, Node  # noqa: E402
from webtorrent import announce, answer, b2s, counts, msgs, offer, RawWs  # noqa: E402

# A peer announced to one node is on the others within the batch delay and the receiving swarm
# worker's next batch; 0.6 s leaves room on a busy machine.
REPLICATED = BATCH_DELAY_MS / 1000.0 + 0.5


PEER_TTL = 20  # short, for the dead-node case: tracker.peer_ttl's smallest value


class WsNode(Node):
    """A cluster node with the WebSocket tracker on 127.0.0.1:<its own port>; peers expire
    PEER_TTL s after they were last heard of (renewals sent every 5 s, sweep every second)."""

    def __init__(self, host, node_id, nats_url):
        super().__init__(host, node_id, nats_url)
        self.ws_port = free_tcp_port_both()
        self.extra += wt.ws_config(self.ws_port, announce_interval=10)
        self.extra = self.extra.replace("batch_delay = %d;" % BATCH_DELAY_MS,
                                        "batch_delay = %d;\n  renewal_suppression = 5;" % BATCH_DELAY_MS)
        self.tracker_opts.update({"announce_interval": 10, "peer_ttl": PEER_TTL, "cleanup_interval": 1})

    def ws_url(self, path="/announce"):
        return "ws://127.0.0.1:%d%s" % (self.ws_port, path)

    def relay(self):
        return self.ctl_json("show cluster")["webtorrent"]


def ih(*parts):
    return harness.info_hash("cluster-ws", *parts)


def pid(*parts):
    return b"-WS0001-" + harness.info_hash("peer", *parts).hex()[:12].encode()


class ClusterWsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(NATS_SERVER, os.X_OK):
            raise AssertionError("nats-server not installed (make deps installs Debian's nats-server)")
        why = wt.need_node()
        if why:
            raise AssertionError(why)

    def setUp(self):
        self.nats = NatsServer()
        self.nodes = []
        try:
            for i, host in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4")):
                self.nodes.append(WsNode(host, i + 1, self.nats.url).start())
            for n in self.nodes:
                wait_for(lambda: n.ctl_json("show cluster")["nodes_seen"] == 2, 10, what="two other nodes seen")
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        for n in self.nodes:
            n.__exit__(None, None, None)
        self.nats.stop()

    def scrape_on(self, node, h, want, timeout=3.0):
        """WebTorrent scrape of h on `node` (a raw client) until it says `want` (complete,
        incomplete) or `timeout` passes; returns the last counts."""
        deadline = time.monotonic() + timeout
        while True:
            res = RawWs().open("q", node.ws_url()).send("q", wt.scrape(h)).wait("q", match={"action": "scrape"}).run(10)
            got = counts(msgs(res, "q", lambda m: m.get("action") == "scrape")[-1].get("files"), h)
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def test_offer_and_answer_between_clients_on_two_nodes_scrape_on_a_third(self):
        n1, n2, n3 = self.nodes
        h = ih("exchange")
        args = ["--url-a", n1.ws_url(), "--url-b", n2.ws_url("/"), "--local-a", "127.0.0.2", "--local-b", "127.0.0.3",
                "--info-hash", h.hex(), "--gap", "%g" % REPLICATED]
        p = wt.NodeProc("exchange.js", args + ["--hold", "20", "--timeout", "27"])
        self.addCleanup(p.stop)
        r = p.result(30)
        self.assertTrue(r["ok"], "offer/answer exchange across nodes failed: %s" % r)
        a, b = r["a"]["peer_id"], r["b"]["peer_id"]
        r1, r2 = r["rounds"]
        self.assertEqual(r1["offer_to_a"]["peer_id"], b, "B's offer (node 2) reached A (node 1)")
        self.assertEqual(r1["answer_to_b"]["peer_id"], a, "A's answer reached B")
        self.assertEqual(r2["offer_to_b"]["peer_id"], a)
        self.assertEqual(r2["answer_to_a"]["peer_id"], b)
        for side in ("a", "b"):
            self.assertEqual([m for m in r[side]["received"] if m["kind"] == "failure"], [])
        s = r["scrape"]
        self.assertEqual(s["complete"] + s["incomplete"], 2, "A's scrape on node 1 counts B of node 2: %s" % s)
        # A third node, which holds neither connection, counts both in the WebTorrent family.
        self.assertEqual(self.scrape_on(n3, h, (0, 2)), (0, 2), "WebTorrent scrape on node 3")
        for n in (n1, n2):
            w = n.relay()
            for k in ("offers_sent", "answers_sent", "offers_received", "answers_received"):
                self.assertGreaterEqual(w[k], 1, "%s on %s: %s" % (k, n.host, w))
            self.assertEqual(w["relay_dropped"], 0, w)
            self.assertEqual(n.counter("ws_answers_dropped"), 0)
        self.assertEqual(n3.relay()["offers_received"], 0, "node 3 holds no connection: nothing for it")
        p.stop()
        for n in self.nodes:
            n.assert_alive()

    def forged_case(self, name, forge, expect=None):
        """a on node 1, b on node 2, c on node 3. b joins; a (once b is replicated to node 1)
        announces one offer, which can only go to b; then c joins. forge(r, h, oid, p) adds the
        forged sends. a must then have received exactly the answers in `expect` (default: b's
        valid answer, sent after the forgeries), and b and c none."""
        n1, n2, n3 = self.nodes
        h, oid = ih("forged", name), ih("offer", name)

        def p(c):
            return pid(name, c)
        r = RawWs()
        r.open("a", n1.ws_url()).open("b", n2.ws_url()).open("c", n3.ws_url())
        r.send("b", announce(h, p("b"))).wait("b", match={"action": "announce"})
        r.sleep(REPLICATED)
        r.send("a", announce(h, p("a"), offers=[offer(oid, "sdp-offer-" + name)], numwant=1))
        r.wait("b", has=["offer"], timeout=5)
        r.send("c", announce(h, p("c"))).wait("c", match={"action": "announce"})
        r.sleep(REPLICATED)
        forge(r, h, oid, p)
        r.sleep(0.6)
        if expect is None:
            expect = ["sdp-valid-" + name]
            r.send("b", answer(h, p("b"), p("a"), oid, expect[0]))
            r.wait("a", has=["answer"], timeout=5)
            r.sleep(0.3)
        res = r.run(timeout=30)
        self.assertTrue(res["ok"], res)
        got_offer = msgs(res, "b", lambda m: "offer" in m)
        self.assertEqual(len(got_offer), 1, "b should get a's one offer across nodes: %s" % res["conns"]["b"])
        self.assertEqual((got_offer[0]["offer_id"], got_offer[0]["peer_id"]), (b2s(oid), b2s(p("a"))))
        self.assertEqual(msgs(res, "c", lambda m: "offer" in m), [], "c joined after a's offer")
        answers = {c: [m["answer"]["sdp"] for m in msgs(res, c, lambda m: "answer" in m)] for c in ("a", "b", "c")}
        self.assertEqual(answers["b"], [], "%s: b made no offer" % name)
        self.assertEqual(answers["c"], [], "%s: c made no offer" % name)
        self.assertEqual(answers["a"], expect, "%s: answers relayed to a (node 1)" % name)
        for m in msgs(res, "a", lambda m: "answer" in m):
            self.assertEqual((m["offer_id"], m["peer_id"]), (b2s(oid), b2s(p("b"))))

    def test_forged_answers_across_nodes_are_not_relayed(self):
        n1, n2, n3 = self.nodes
        self.forged_case("wrong-offer-id", lambda r, h, oid, p: r.send(
            "b", answer(h, p("b"), p("a"), ih("never", "offered"), "sdp-forged")))
        self.forged_case("wrong-to-peer-id", lambda r, h, oid, p: r.send(
            "b", answer(h, p("b"), p("c"), oid, "sdp-forged")))
        self.forged_case("third-party", lambda r, h, oid, p: r.send(
            "c", answer(h, p("c"), p("a"), oid, "sdp-forged")).send(
            "c", answer(h, p("b"), p("a"), oid, "sdp-forged")))

        def replay(r, h, oid, p):
            r.send("b", answer(h, p("b"), p("a"), oid, "sdp-once"))
            r.wait("a", has=["answer"], timeout=5)
            r.send("b", answer(h, p("b"), p("a"), oid, "sdp-once"))
        self.forged_case("replay", replay, expect=["sdp-once"])
        # The answering node drops the forgeries (b's on node 2: wrong offer_id, wrong
        # to_peer_id, the replay; c's two on node 3); only the 4 valid answers crossed.
        n2.wait_counter("ws_answers_dropped", lambda v: v == 3)
        n3.wait_counter("ws_answers_dropped", lambda v: v == 2)
        self.assertEqual(n2.relay()["answers_sent"], 4)
        self.assertEqual(n1.relay()["answers_received"], 4)
        self.assertEqual(n1.counter("ws_answers_relayed"), 4)
        self.assertEqual(n1.relay()["offers_sent"], 4)
        self.assertEqual(n2.counter("ws_offers_relayed"), 4)
        for n in self.nodes:
            self.assertEqual(n.relay()["relay_dropped"], 0)
            n.assert_alive()

    def test_a_node_started_later_counts_a_webtorrent_peer_once_ready_and_relays_to_it(self):
        n1, n2, n3 = self.nodes
        n3.__exit__(None, None, None)  # stopped, its segments removed: it comes back new
        self.nodes.remove(n3)
        c = WsNode("127.0.0.4", 3, self.nats.url)
        h = ih("joined-later")
        p = wt.NodeProc("exchange.js", ["--url-a", n1.ws_url(), "--url-b", c.ws_url(), "--local-a", "127.0.0.2",
                                        "--local-b", "127.0.0.4", "--info-hash", h.hex(), "--gap", "%g" % REPLICATED,
                                        "--b-waits-line", "--timeout", "25"])
        self.addCleanup(p.stop)
        self.assertIsNotNone(p.read_json(10, lambda o: "a_announced" in o or "ok" in o), "A announced to node 1")
        self.nodes.append(c)
        c.start()  # returns once ready: A's next announce is 10 s away
        self.assertEqual(c.ctl_json("show cluster")["join"]["state"], "joined")
        self.assertEqual(self.scrape_on(c, h, (0, 1), timeout=0), (0, 1), "A counted on node 3 the moment it is ready")
        p.send_line("go")  # B announces to node 3: its offer goes to A on node 1, A's answer comes back
        r = p.result(25)
        self.assertTrue(r["ok"], "offer/answer exchange with the node started later failed: %s" % r)
        a, b = r["a"]["peer_id"], r["b"]["peer_id"]
        self.assertEqual(r["rounds"][0]["offer_to_a"]["peer_id"], b, "B's offer (node 3) reached A (node 1)")
        self.assertEqual(r["rounds"][0]["answer_to_b"]["peer_id"], a, "A's answer reached B on node 3")
        self.assertEqual(c.relay()["relay_dropped"], 0)
        self.assertGreaterEqual(c.relay()["answers_received"], 1)

    def test_a_closed_connection_leaves_the_swarm_on_every_node(self):
        n1, n2, n3 = self.nodes
        h = ih("close")
        r = RawWs().open("x", n2.ws_url()).open("y", n1.ws_url())
        r.send("x", announce(h, pid("close", "x"), left=0)).wait("x", match={"action": "announce"})
        r.send("y", announce(h, pid("close", "y"))).wait("y", match={"action": "announce"})
        s = r.pause("joined").start(timeout=40)
        self.addCleanup(s.close)
        s.pause()
        self.assertEqual(self.scrape_on(n3, h, (1, 1)), (1, 1), "both peers on node 3")
        s.step(RawWs().close("x"))
        self.assertEqual(self.scrape_on(n3, h, (0, 1)), (0, 1), "x's close on node 2 reached node 3")
        self.assertEqual(self.scrape_on(n1, h, (0, 1)), (0, 1), "and node 1")
        s.result()

    def test_a_close_lost_with_a_dead_nats_server_reaches_the_other_nodes_after_the_reconnection(self):
        """The server stops; x's connection to node 2 closes: node 2 hands the WebTorrent stopped
        to a NATS connection it still believes alive, and the server dies with it unread. Node 2
        sends it again after the reconnection, so x leaves node 3 well before peer_ttl."""
        n1, n2, n3 = self.nodes
        h = ih("close-lost")
        s = RawWs().open("x", n2.ws_url()).send("x", announce(h, pid("close-lost", "x"))).wait(
            "x", match={"action": "announce"}).pause("joined").start(timeout=30)
        self.addCleanup(s.close)
        s.pause()
        self.assertEqual(self.scrape_on(n3, h, (0, 1)), (0, 1), "x on node 3")
        sent = n2.counters().get("cluster_deltas_sent", 0)
        self.nats.signal(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            s.step(RawWs().close("x"))
            wait_for(lambda: n2.counters().get("cluster_deltas_sent", 0) > sent, 5, what="node 2 to publish x's stopped")
            time.sleep(0.3)
            self.assertEqual(n2.ctl_json("show cluster")["bus"]["state"], "connected", "node 2 noticed the outage too early")
        finally:
            self.nats.kill_and_restart()
        self.assertEqual(self.scrape_on(n3, h, (0, 0), timeout=PEER_TTL / 2), (0, 0), "x gone from node 3")
        self.assertLess(time.monotonic() - t0, PEER_TTL * 0.75, "by node 2's word, not by expiry")
        s.result()

    def test_a_killed_socket_worker_takes_its_peers_off_every_node(self):
        """kill -9 of node 2's socket worker: its connection's peer leaves node 2 (the purge of
        issue 10) and, well before peer_ttl, nodes 1 and 3 (node 2 says the process is gone)."""
        n1, n2, n3 = self.nodes
        h = ih("killed-socket")
        s = RawWs().open("x", n2.ws_url()).send("x", announce(h, pid("killed", "x"))).wait(
            "x", match={"action": "announce"}).pause("joined").start(timeout=20)
        self.addCleanup(s.close)
        s.pause()
        self.assertEqual(self.scrape_on(n3, h, (0, 1)), (0, 1), "x on node 3")
        old = n2.kill_worker("socket", 0)
        t0 = time.monotonic()
        n2.wait_worker_replaced("socket", 0, old)
        for n in (n1, n3):
            self.assertEqual(self.scrape_on(n, h, (0, 0), timeout=3.0), (0, 0), "x gone from %s" % n.host)
        self.assertLess(time.monotonic() - t0, PEER_TTL / 2, "by node 2's word, not by expiry")
        s.close()

    def test_a_dead_nodes_webtorrent_peers_expire_on_the_others(self):
        """kill -9 of every process of node 2: its peer stays on nodes 1 and 3 (nobody said
        stopped) until PEER_TTL has passed since they last heard of it, then it is gone there
        and no longer offered."""
        n1, n2, n3 = self.nodes
        h = ih("dead-node")
        s = RawWs().open("x", n2.ws_url()).send("x", announce(h, pid("dead", "x"))).wait(
            "x", match={"action": "announce"}).pause("joined").start(timeout=20)
        self.addCleanup(s.close)
        s.pause()
        heard = time.monotonic()
        self.assertEqual(self.scrape_on(n3, h, (0, 1)), (0, 1), "x on node 3")
        pids = n2.all_pids()
        for p in pids:  # the supervisor first: nobody restarts the workers
            os.kill(p, signal.SIGKILL)
        wait_for(lambda: not n2.alive(), 5, what="node 2 gone")
        s.close()
        for n in (n1, n3):
            self.assertEqual(self.scrape_on(n, h, (0, 1), timeout=0), (0, 1), "kept on %s right after the kill" % n.host)
        left = PEER_TTL + 5 - (time.monotonic() - heard)
        for n in (n1, n3):
            self.assertEqual(self.scrape_on(n, h, (0, 0), timeout=max(1.0, left)), (0, 0),
                             "x expired on %s within peer_ttl + 5 s" % n.host)
        self.assertGreaterEqual(time.monotonic() - heard, PEER_TTL - 1, "gone by expiry, not earlier")
        # An offer on node 1 now finds nobody: none goes to the dead node.
        res = RawWs().open("y", n1.ws_url()).send("y", announce(h, pid("dead", "y"), offers=[offer(ih("o"))])).wait(
            "y", match={"action": "announce"}).sleep(0.3).run(10)
        self.assertTrue(res["ok"], res)
        n1.wait_counter("ws_offers_relayed", lambda v: v == 0)
        self.assertEqual(n1.relay()["offers_sent"], 0)


if __name__ == "__main__":
    harness.main()
