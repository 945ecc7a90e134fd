"""The WebTorrent tracker (issue 10) with real WebSocket clients against a real shoald:

  * npm bittorrent-tracker clients (WebRTC from @roamhq/wrtc; exchange.js) announce one info_hash
    over ws:// and wss://: an offer of each reaches the other, its answer comes back, and the
    client's own scrape counts both; also with the two clients on different socket workers, and
    with one on IPv4 and one on IPv6;
  * a raw ws client (rawws.js) speaking the tracker JSON: scrape counts per info_hash follow
    announces, completed, stopped and closed connections; forged answers (an offer_id the sender
    never received, a wrong to_peer_id, a replay, an expired offer) are never relayed;
  * kill -9 of a socket worker: its peers leave the swarm (scrape), and new offers go to live
    peers only.
Which worker holds a connection is read from /proc (webtorrent.conn_workers). Every node script
is bounded by its own timeout and every wait here too; processes are stopped by PID.
SHOAL_WS_TRACKER=node runs the tests that apply against npm bittorrent-tracker's own server.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import webtorrent as wt  # noqa: E402
from webtorrent import announce, answer, b2s, counts, msgs, offer, scrape, RawWs  # noqa: E402

A_IP, B_IP = "127.0.0.2", "127.0.0.3"


def shoald_only(test):
    """For behaviour npm bittorrent-tracker's server does not have (socket workers; it relays any
    answer to any to_peer_id)."""
    return unittest.skipIf(wt.BACKEND == "node", "shoald only")(test)


def ih(*parts):
    return harness.info_hash("ws", *parts)


def pid(*parts):
    """A peer_id unique to `parts` (20 bytes, Azureus-style prefix)."""
    return b"-WS0001-" + harness.info_hash("peer", *parts).hex()[:12].encode()


class WsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = wt.need_node()
        if why:
            raise AssertionError(why)
        if wt.BACKEND != "node":
            harness.need_shoald()

    def tracker(self, tls=False, **kw):
        t = wt.tracker(tls=tls, **kw)
        t.__enter__()
        self.addCleanup(t.__exit__, None, None, None)
        return t

    # ------------------------------------------------------------------ bittorrent-tracker clients

    def exchange(self, t, url_a, url_b, env=None, hold=0, timeout=30):
        args = ["--url-a", url_a, "--url-b", url_b, "--local-a", A_IP]
        if "[" not in url_b:
            args += ["--local-b", B_IP]
        if not hold:
            return wt.run_json("exchange.js", args, timeout, env=env)
        p = wt.NodeProc("exchange.js", args + ["--hold", str(hold), "--timeout", str(timeout - 3)], env=env)
        self.addCleanup(p.stop)
        return p, p.result(timeout)

    def check_exchange(self, r):
        self.assertTrue(r["ok"], "offer/answer exchange failed: %s" % r)
        a, b = r["a"]["peer_id"], r["b"]["peer_id"]
        r1, r2 = r["rounds"]
        # B's offer reached A, A's answer to that offer reached B; then the other way round.
        self.assertEqual(r1["offer_to_a"]["peer_id"], b)
        self.assertEqual(r1["answer_to_b"]["peer_id"], a)
        self.assertEqual(r2["offer_to_b"]["peer_id"], a)
        self.assertEqual(r2["answer_to_a"]["peer_id"], b)
        for side in ("a", "b"):
            self.assertEqual([m for m in r[side]["received"] if m["kind"] == "failure"], [])
        # Neither client was ever given its own offer or answer.
        for side, me in (("a", a), ("b", b)):
            self.assertFalse([m for m in r[side]["received"] if m.get("peer_id") == me], r[side]["received"])
        s = r["scrape"]
        self.assertEqual(s["complete"] + s["incomplete"], 2, "scrape by the client: %s" % s)

    def check_counters(self, t, **want):
        """shoald's own counters (shm_inspect) agree with what the clients saw."""
        if wt.BACKEND == "node":
            return
        for name, value in want.items():
            t.wait_counter(name, lambda v, value=value: v == value)

    def test_offer_and_answer_over_ws(self):
        t = self.tracker()
        r = self.exchange(t, t.ws_url("/announce"), t.ws_url("/"))
        self.check_exchange(r)
        self.check_counters(t, ws_answers_relayed=2, ws_answers_dropped=0, ws_relay_dropped=0, ws_failure=0)

    def test_offer_and_answer_over_wss(self):
        t = self.tracker(tls=True)
        r = self.exchange(t, t.wss_url("/announce"), t.wss_url("/announce"), env=wt.node_env(t.cert))
        self.check_exchange(r)
        self.check_counters(t, ws_answers_relayed=2, ws_answers_dropped=0, ws_handshake_failures=0)

    @shoald_only
    def test_offer_and_answer_with_one_send_per_connection(self):
        """ws.io_uring = false: the writes go out one send() per connection, with the same result."""
        t = self.tracker(tls=True, ws_opts={"io_uring": False})
        r = self.exchange(t, t.wss_url("/announce"), t.ws_url("/"), env=wt.node_env(t.cert))
        self.check_exchange(r)
        self.check_counters(t, ws_answers_relayed=2, ws_answers_dropped=0, ws_handshake_failures=0)

    @shoald_only
    def test_offer_and_answer_between_ipv4_and_ipv6_connections(self):
        """WebRTC peers meet whatever address family their tracker connection has."""
        t = self.tracker()
        r = self.exchange(t, t.ws_url(), t.ws_url(host="[::1]"))
        self.check_exchange(r)

    @shoald_only
    def test_offer_and_answer_across_socket_workers(self):
        """SO_REUSEPORT picks the worker: new connections until A and B are on different ones."""
        t = self.tracker(socket_workers=2)
        seen = []
        for attempt in range(12):   # both on one worker 12 times: 1 in 4096
            p, r = self.exchange(t, t.ws_url(), t.ws_url("/"), hold=20)
            self.check_exchange(r)
            held = wt.conn_workers(t, t.ws_port)
            slots = {ip: slot for (ip, _), slot in held.items()}
            p.stop()
            self.assertIn(A_IP, slots, "client A's connection not found among the socket workers': %s" % held)
            self.assertIn(B_IP, slots, "client B's connection not found among the socket workers': %s" % held)
            seen.append((slots[A_IP], slots[B_IP]))
            if slots[A_IP] != slots[B_IP]:
                break
        self.assertNotEqual(seen[-1][0], seen[-1][1], "A and B always on one worker: %s" % seen)
        # Every run relayed one answer each way, wherever the clients were.
        self.check_counters(t, ws_answers_relayed=2 * len(seen), ws_answers_dropped=0, ws_relay_dropped=0)
        print("\n  (A's worker, B's worker) per run: %s" % seen)
        t.assert_alive()

    # ------------------------------------------------------------------ raw client: scrape

    def test_scrape_counts_per_info_hash(self):
        t = self.tracker()
        url = t.ws_url()
        h1, h2, h3 = ih("scrape", 1), ih("scrape", 2), ih("scrape", 3)
        r = RawWs()
        for c in ("s1", "s2", "l1", "l2", "q"):
            r.open(c, url)
        for c, h, left in (("s1", h1, 0), ("s2", h1, 0), ("l1", h1, 5), ("l2", h2, 5)):
            r.send(c, announce(h, pid(c), left=left)).wait(c, match={"action": "announce"})
        s = r.pause("joined").start(timeout=45)
        self.addCleanup(s.close)
        p = s.pause()
        self.assertTrue(all(p["conns"][c]["received"] == 1 for c in ("s1", "s2", "l1", "l2")), p)

        def phase(steps, hashes, want, what):
            """steps, then scrape (up to 5 s) until every hash in `want` has its counts."""
            if steps:
                s.step(steps)
            files = s.scrape_until("q", hashes, lambda f: all(counts(f, h) == c for h, c in want.items()))
            self.assertIsNotNone(files, "%s: no scrape reply" % what)
            self.assertEqual({h.hex(): counts(files, h) for h in want}, {h.hex(): c for h, c in want.items()},
                             "%s: (complete, incomplete)" % what)
            return files
        phase(None, (h1, h2, h3), {h1: (2, 1), h2: (0, 1), h3: (0, 0)}, "2 seeders + 1 leecher, 1 leecher, none")
        files = phase(RawWs().send("l1", announce(h1, pid("l1"), left=0, event="completed")), (h1,),
                      {h1: (3, 0)}, "after l1's completed")
        if wt.BACKEND != "node":   # npm bittorrent-tracker reports downloaded = complete
            self.assertEqual(files[b2s(h1)]["downloaded"], 1)
        phase(RawWs().send("s2", announce(h1, pid("s2"), left=0, event="stopped")), (h1,),
              {h1: (2, 0)}, "after s2's stopped")
        phase(RawWs().close("l2"), (h2, h1), {h2: (0, 0), h1: (2, 0)}, "after l2's connection closed")
        # A scrape names info_hashes as a list, or one as a string (what the npm client sends).
        p = s.step(RawWs().send("q", {"action": "scrape", "info_hash": b2s(h1)}).wait(
            "q", match={"action": "scrape"}, fresh=True))
        self.assertEqual(counts(p["conns"]["q"]["last"].get("files"), h1), (2, 0), p["conns"]["q"]["last"])
        res = s.result()
        self.assertTrue(res["ok"], res)
        self.assertEqual([w for w in res["waits"] if w["timed_out"]], [], res["waits"])
        t.assert_alive()

    # ------------------------------------------------------------------ raw client: forged answers

    def forged_case(self, t, name, forge, expect=None, wait_before=0.0):
        """Swarm {A, B, C}: B joins, A announces one offer (so it can only go to B), then C joins.
        forge(r, h, oid, p) adds the forged sends (p(c): the peer_id of connection c in this case). A must then have received exactly the answers
        whose sdp is in `expect` (default: B's valid answer, sent after the forgeries), and B and
        C none. Returns rawws.js's result."""
        url = t.ws_url()
        h = ih("forged", name)
        oid = ih("offer", name)

        def p(c):
            return pid(name, c)
        r = RawWs()
        for c in ("a", "b", "c"):
            r.open(c, url)
        r.send("b", announce(h, p("b"))).wait("b", match={"action": "announce"})
        r.send("a", announce(h, p("a"), offers=[offer(oid, "sdp-offer-" + name)], numwant=1))
        r.wait("b", has=["offer"], timeout=5)
        r.send("c", announce(h, p("c"))).wait("c", match={"action": "announce"})
        if wait_before:
            r.sleep(wait_before)
        forge(r, h, oid, p)
        r.sleep(0.5)
        if expect is None:
            expect = ["sdp-valid-" + name]
            r.send("b", answer(h, p("b"), p("a"), oid, expect[0]))
            r.wait("a", has=["answer"], timeout=5)
            r.sleep(0.3)
        res = r.run(timeout=30)
        self.assertTrue(res["ok"], res)
        got_offer = msgs(res, "b", lambda m: "offer" in m)
        self.assertEqual(len(got_offer), 1, "B should get A's one offer: %s" % res["conns"]["b"])
        self.assertEqual(got_offer[0]["offer_id"], b2s(oid))
        self.assertEqual(got_offer[0]["peer_id"], b2s(p("a")))
        self.assertEqual(msgs(res, "c", lambda m: "offer" in m), [], "C joined after A's offer")
        answers = {c: [m["answer"]["sdp"] for m in msgs(res, c, lambda m: "answer" in m)] for c in ("a", "b", "c")}
        self.assertEqual(answers["b"], [], "%s: B made no offer: %s" % (name, answers))
        self.assertEqual(answers["c"], [], "%s: C made no offer: %s" % (name, answers))
        self.assertEqual(answers["a"], expect, "%s: answers relayed to A" % name)
        for m in msgs(res, "a", lambda m: "answer" in m):
            self.assertEqual((m["offer_id"], m["peer_id"]), (b2s(oid), b2s(p("b"))))
        return res

    @shoald_only
    def test_forged_answers_are_not_relayed(self):
        t = self.tracker()
        # An offer_id B never received.
        self.forged_case(t, "wrong-offer-id", lambda r, h, oid, p: r.send(
            "b", answer(h, p("b"), p("a"), ih("never", "offered"), "sdp-forged")))
        # The offer B received, answered to the wrong peer (C, who made no offer).
        self.forged_case(t, "wrong-to-peer-id", lambda r, h, oid, p: r.send(
            "b", answer(h, p("b"), p("c"), oid, "sdp-forged")))
        # C answers the offer it never received, in its own name and in B's.
        self.forged_case(t, "third-party", lambda r, h, oid, p: r.send(
            "c", answer(h, p("c"), p("a"), oid, "sdp-forged")).send(
            "c", answer(h, p("b"), p("a"), oid, "sdp-forged")))

        # B's answer, then the very same message again: relayed once.
        def replay(r, h, oid, p):
            r.send("b", answer(h, p("b"), p("a"), oid, "sdp-once"))
            r.wait("a", has=["answer"], timeout=5)
            r.send("b", answer(h, p("b"), p("a"), oid, "sdp-once"))
        self.forged_case(t, "replay", replay, expect=["sdp-once"])
        # Dropped: 1 + 1 + 2 + 1 forged; relayed: the 3 valid answers and the replay's first.
        self.check_counters(t, ws_answers_dropped=5, ws_answers_relayed=4, ws_offers_relayed=4)
        t.assert_alive()

    @shoald_only
    def test_an_expired_offer_lets_no_answer_through(self):
        t = self.tracker(ws_opts={"offer_ttl": 1})
        self.forged_case(t, "expired", lambda r, h, oid, p: r.send(
            "b", answer(h, p("b"), p("a"), oid, "sdp-late")), expect=[], wait_before=2.5)
        self.check_counters(t, ws_answers_dropped=1, ws_answers_relayed=0)
        t.assert_alive()

    # ------------------------------------------------------------------ kill -9 of a socket worker

    @shoald_only
    def test_killed_socket_worker_takes_its_peers_along(self):
        t = self.tracker(socket_workers=2)
        url = t.ws_url()
        names = ["p%d" % i for i in range(6)]
        for attempt in range(3):   # new peers and swarms each time
            hs, ho = ih("kill", "scrape", attempt), ih("kill", "offers", attempt)

            def peer(c, attempt=attempt):
                return pid("kill", attempt, c)
            r = RawWs()
            for c in names:
                r.open(c, url).send(c, announce(hs, peer(c))).wait(c, match={"action": "announce"})
            s = r.pause("opened").start(timeout=60)
            self.addCleanup(s.close)
            conns = s.pause()["conns"]
            by_port = {port: slot for (_, port), slot in wt.conn_workers(t, t.ws_port).items()}
            where = {c: by_port.get(conns[c]["local_port"]) for c in names}
            self.assertNotIn(None, where.values(), "connections not found in the workers: %s" % where)
            if len(set(where.values())) == 2:
                break
            s.close()
        else:
            self.fail("6 connections landed on one socket worker 3 times: %s" % where)
        victim = where["p0"]
        doomed = [c for c in names if where[c] == victim]
        live = [c for c in names if where[c] != victim]
        rcv = live[0]
        # The doomed peers and one live one (rcv) also join a second swarm, for the offer check.
        steps = RawWs()
        for c in doomed + [rcv]:
            steps.send(c, announce(ho, peer(c))).wait(c, match={"action": "announce"}, fresh=True)
        s.step(steps)
        before = {hs: (0, 6), ho: (0, len(doomed) + 1)}
        files = s.scrape_until(rcv, (hs, ho), lambda f: all(counts(f, h) == c for h, c in before.items()))
        self.assertEqual({h.hex(): counts(files, h) for h in before}, {h.hex(): c for h, c in before.items()},
                         "before the kill")

        old = t.kill_worker("socket", victim)
        t.wait_worker_replaced("socket", victim, old)
        t0 = time.monotonic()
        after = {hs: (0, len(live)), ho: (0, 1)}
        files = s.scrape_until(rcv, (hs, ho), lambda f: all(counts(f, h) == c for h, c in after.items()), timeout=10)
        self.assertEqual({h.hex(): counts(files, h) for h in after}, {h.hex(): c for h, c in after.items()},
                         "10 s after the kill of socket worker %d, which held %s" % (victim, doomed))
        gone = time.monotonic() - t0

        # A new peer (o) announces 8 times with one offer each: every offer must reach rcv, the one
        # live peer of that swarm; an offer sent to a peer of the dead worker would be lost.
        steps = RawWs().open("o", url)
        for i in range(8):
            steps.send("o", announce(ho, peer("o"), offers=[offer(ih("kill-offer", attempt, i))], numwant=1))
            steps.wait("o", match={"action": "announce"}, fresh=True)
        steps.wait(rcv, count=8, has=["offer"], timeout=5)
        s.step(steps)
        res = s.result()
        self.assertTrue(res["ok"], res)
        offers = msgs(res, rcv, lambda m: "offer" in m)
        self.assertEqual(sorted(m["offer_id"] for m in offers), sorted(b2s(ih("kill-offer", attempt, i)) for i in range(8)),
                         "%d of o's 8 offers reached the live peer" % len(offers))
        for c in doomed:
            self.assertFalse(res["conns"][c]["open"], "%s was on the killed worker" % c)
        for c in live:
            self.assertTrue(res["conns"][c]["open"], "%s was on the other worker" % c)
        self.check_counters(t, ws_relay_dropped=0)
        print("\n  socket worker %d killed with %d of 6 peers; scrape without them after %.1f s"
              % (victim, len(doomed), gone))
        t.assert_alive()


if __name__ == "__main__":
    harness.main()
