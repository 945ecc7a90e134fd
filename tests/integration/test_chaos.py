"""Chaos: kill -9 swarm and socket workers under announce load; nothing acknowledged is lost.

A load thread drives ~2000 torrents x 5 peers (distinct 127.0.2.x source addresses and ports)
through a random walk of started / none / completed / stopped announces, keeping a ledger of
ACKNOWLEDGED state only: a peer enters the ledger when its announce reply arrives, leaves it when
its stopped reply arrives. Requests that time out are retried like a real client would (same
request, exponential backoff, reconnect after repeated timeouts); a request abandoned after
every attempt makes its torrent "uncertain". Meanwhile the main thread kill -9s each swarm
worker 8 times (each time after the replacement is up and answering) and each socket worker 3
times. Afterwards every torrent is scraped and announced to from a fresh peer and compared with
the ledger."""
import collections
import os
import random
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from bep15 import EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, Op  # noqa: E402

N_TORRENTS = 2000
PEERS_PER_TORRENT = 5
SWARM_KILLS_PER_WORKER = 8
SOCKET_KILLS_PER_WORKER = 3
RATE = 5000             # announces per second offered by the load thread
WINDOW = 128            # announces in flight at most
MAX_ACK_GAP = 2.5       # seconds without any acknowledged announce = "stopped answering"
TEST_BUDGET = 110.0


def peer_addr(i):
    """The i-th load peer: (source address, announced port)."""
    return "127.0.2.%d" % (1 + i % 250), 20000 + i


class Load:
    """Random-walk announce load with an acknowledged-state ledger (runs in its own thread)."""

    def __init__(self, tracker, seed=1):
        self.rng = random.Random(seed)
        self.hashes = [harness.info_hash("chaos", t) for t in range(N_TORRENTS)]
        n = N_TORRENTS * PEERS_PER_TORRENT
        self.peer_torrent = [i // PEERS_PER_TORRENT for i in range(n)]
        self.state = [None] * n          # acked: None (absent), "L" leecher, "S" seeder
        self.completed_acked = set()     # peers whose completed announce was acknowledged
        self.ever_completed = set()      # peers that ever sent completed (never send it twice)
        self.uncertain = set()           # peers whose last announce was abandoned
        self.ready = collections.deque(self.rng.sample(range(n), n))
        self.stop = threading.Event()
        self.pipeline = bep15.Pipeline(tracker, timeout=0.4, max_timeout=1.6, attempts=8)
        self.pipeline.on_done = self.on_done
        self.acks = 0
        self.ops = 0
        self.last_ack = None
        self.max_gap = 0.0
        self.error = None
        self.errors = []
        self.thread = threading.Thread(target=self.run, name="load", daemon=True)

    def next_op(self, i):
        st = self.state[i]
        r = self.rng.random()
        left = 1000
        if st is None:
            event = EVENT_STARTED
            left = 0 if r < 0.2 else 1000
        elif st == "L":
            if r < 0.15:
                event = EVENT_STOPPED
            elif r < 0.45 and i not in self.ever_completed:
                event, left = EVENT_COMPLETED, 0
                self.ever_completed.add(i)
            else:
                event = EVENT_NONE
        else:
            event = EVENT_STOPPED if r < 0.2 else EVENT_NONE
            left = 0
        src, port = peer_addr(i)
        params = dict(info_hash=self.hashes[self.peer_torrent[i]], peer_id=b"-SHCHAOS" + b"%012d" % i,
                      left=left, event=event, port=port, numwant=5, key=i)
        return Op("announce", src, params, tag=i)

    def ops_gen(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            allowed = int((time.monotonic() - t0) * RATE) - self.ops
            if allowed <= 0 or not self.ready:
                yield None
                continue
            i = self.ready.popleft()
            self.ops += 1
            yield self.next_op(i)

    def on_done(self, op, reply, err):
        i = op.tag
        now = time.monotonic()
        if reply is None:
            if err is not None:
                self.errors.append("peer %d: error reply %r" % (i, err))
            self.uncertain.add(i)
        else:
            self.acks += 1
            if self.last_ack is not None:
                self.max_gap = max(self.max_gap, now - self.last_ack)
            self.last_ack = now
            self.uncertain.discard(i)
            ev = op.params["event"]
            if ev == EVENT_STOPPED:
                self.state[i] = None
            else:
                self.state[i] = "S" if op.params["left"] == 0 else "L"
                if ev == EVENT_COMPLETED:
                    self.completed_acked.add(i)
        self.ready.append(i)

    def run(self):
        try:
            self.last_ack = time.monotonic()
            self.pipeline.run(self.ops_gen(), window=WINDOW, deadline=time.monotonic() + TEST_BUDGET)
        except BaseException as e:   # reported by the test
            self.error = e

    # expected state ----------------------------------------------------------------------
    def expected(self):
        """{torrent: (seeders, leechers, completed, uncertain_peers, {(ip, port)})}"""
        out = {}
        for t in range(N_TORRENTS):
            s = l = 0
            comp = 0
            unc = 0
            peers = set()
            for i in range(t * PEERS_PER_TORRENT, (t + 1) * PEERS_PER_TORRENT):
                if i in self.uncertain:
                    unc += 1
                    continue
                if i in self.completed_acked:
                    comp += 1
                if self.state[i] == "S":
                    s += 1
                elif self.state[i] == "L":
                    l += 1
                if self.state[i] is not None:
                    peers.add(peer_addr(i))
            out[t] = (s, l, comp, unc, peers)
        return out


class ChaosTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.t0 = time.monotonic()

    def left(self):
        return max(1.0, TEST_BUDGET - (time.monotonic() - self.t0))

    def probe(self, d, hashes, sources=("127.0.4.1", "127.0.4.2", "127.0.4.3", "127.0.4.4")):
        """The tracker answers a connect + scrape from several sources (so both socket workers
        are likely hit) covering many hashes (so every partition is asked). Bounded."""
        deadline = time.monotonic() + min(8.0, self.left())
        for src in sources:
            while True:
                try:
                    with d.client(source=src, timeout=0.25, attempts=1) as c:
                        res = c.scrape(hashes[:74])
                    self.assertEqual(len(res), 74)
                    break
                except bep15.TrackerTimeout:
                    d.assert_alive()
                    if time.monotonic() > deadline:
                        self.fail("tracker not answering %s after a worker restart" % src)

    def kill_and_wait(self, d, role, slot, hashes, restarts):
        t_kill = time.monotonic()
        old = d.kill_worker(role, slot)
        new = d.wait_worker_replaced(role, slot, old, timeout=min(5.0, self.left()))
        t_new = time.monotonic()
        self.probe(d, hashes)
        restarts.append((role, slot, old, new, t_new - t_kill, time.monotonic() - t_kill))
        return old

    def test_kill_workers_under_load(self):
        with harness.Shoald(socket_workers=2, swarm_workers=2) as d:
            load = Load(d.addr4)
            load.thread.start()
            restarts = []
            killed = []
            try:
                # Let the ledger fill a little before the first kill.
                harness.wait_for(lambda: load.acks >= 3000 or load.error, min(15, self.left()),
                                 what="initial load")
                for rnd in range(SWARM_KILLS_PER_WORKER):
                    for slot in range(2):
                        killed.append(self.kill_and_wait(d, "swarm", slot, load.hashes, restarts))
                        # two of these per round: > restart_healthy_after (1 s) between kills
                        # of one slot, so the backoff stays at restart_backoff_min
                        time.sleep(0.6)
                    if rnd % 3 == 1:
                        for slot in range(2):
                            if sum(1 for r in restarts if r[0] == "socket" and r[1] == slot) < SOCKET_KILLS_PER_WORKER:
                                killed.append(self.kill_and_wait(d, "socket", slot, load.hashes, restarts))
                                time.sleep(0.3)
                    self.assertIsNone(load.error, "load thread failed")
                while any(sum(1 for r in restarts if r[0] == "socket" and r[1] == s) < SOCKET_KILLS_PER_WORKER
                          for s in range(2)):
                    for slot in range(2):
                        killed.append(self.kill_and_wait(d, "socket", slot, load.hashes, restarts))
                        time.sleep(0.6)
                time.sleep(1.0)   # load keeps running after the last restart
            finally:
                load.stop.set()
                load.thread.join(min(30.0, self.left()))
            self.assertFalse(load.thread.is_alive(), "load thread did not drain in time")
            self.assertIsNone(load.error, "load thread failed: %r" % load.error)
            st = load.pipeline.stats
            sys.stderr.write("\nchaos: %d kills, load %s, acks %d, max ack gap %.2fs\n"
                             % (len(killed), st, load.acks, load.max_gap))
            for r in restarts:
                sys.stderr.write("  %s %d: pid %d -> %d, new pid after %.0f ms, answering after %.0f ms\n"
                                 % (r[0], r[1], r[2], r[3], r[4] * 1000, r[5] * 1000))
            load.pipeline.close()

            # --- the daemon answered throughout -------------------------------------------
            self.assertEqual(load.errors, [], "error replies under load")
            self.assertEqual(st.failed, 0, "announces abandoned after %d attempts" % load.pipeline.attempts)
            self.assertGreater(load.acks, 10000, "load too small to mean anything")
            self.assertLessEqual(load.max_gap, MAX_ACK_GAP, "no announce answered for %.2fs" % load.max_gap)
            ops_done = st.answered + st.failed + st.errors
            within = st.answered_within(1.0)
            sys.stderr.write("chaos: answered within 1 s: %d of %d (%.2f%%), p99 %.1f ms\n"
                             % (within, ops_done, 100.0 * within / max(1, ops_done), st.percentile(0.99) * 1000))
            self.assertGreaterEqual(within, 0.99 * ops_done,
                                    "fewer than 99%% of announces answered within 1 s (%d of %d)" % (within, ops_done))

            # --- nothing acknowledged was lost: scrape ------------------------------------
            exp = load.expected()
            res = {}
            with bep15.Pipeline(d.addr4, timeout=0.5, attempts=6) as pl:
                def on_scrape(op, reply, err):
                    self.assertIsNotNone(reply, "scrape failed: %r" % err)
                    for t, row in zip(op.tag, bep15.parse_scrape(reply)):
                        res[t] = row
                pl.on_done = on_scrape
                ops = []
                for k in range(0, N_TORRENTS, 70):
                    ts = list(range(k, min(k + 70, N_TORRENTS)))
                    ops.append(Op("scrape", "127.0.3.%d" % (1 + k % 20),
                                  {"info_hashes": [load.hashes[t] for t in ts]}, tag=ts))
                pl.run(ops, window=8, deadline=time.monotonic() + min(20, self.left()))
            missing, extra, bad_completed, exact = [], [], [], 0
            for t in range(N_TORRENTS):
                s_exp, l_exp, c_exp, unc, _ = exp[t]
                seeders, completed, leechers = res[t]
                if seeders + leechers < s_exp + l_exp:
                    missing.append((t, (seeders, leechers), (s_exp, l_exp)))
                if unc == 0:
                    exact += 1
                    if (seeders, leechers) != (s_exp, l_exp):
                        extra.append((t, (seeders, leechers), (s_exp, l_exp)))
                    if completed != c_exp:
                        bad_completed.append((t, completed, c_exp))
                else:
                    if seeders + leechers > s_exp + l_exp + unc:
                        extra.append((t, (seeders, leechers), (s_exp, l_exp, unc)))
                    if not c_exp <= completed <= c_exp + unc:
                        bad_completed.append((t, completed, c_exp, unc))
            self.assertEqual(missing[:20], [], "%d torrents with acknowledged peers missing from scrape "
                             "(torrent, got (seeders, leechers), ledger)" % len(missing))
            self.assertEqual(extra[:20], [], "%d torrents whose scrape counts differ from the ledger "
                             "(torrent, got, ledger)" % len(extra))
            self.assertEqual(bad_completed[:20], [], "%d torrents whose completed count differs from the "
                             "ledger (torrent, got, ledger)" % len(bad_completed))
            self.assertGreater(sum(e[0] + e[1] for e in exp.values()), 3000, "ledger nearly empty")

            # --- ... and announce hands every ledger peer out ----------------------------
            got = {}
            with bep15.Pipeline(d.addr4, timeout=0.5, attempts=6) as pl:
                def on_announce(op, reply, err):
                    self.assertIsNotNone(reply, "check announce failed: %r" % err)
                    got[op.tag] = set(bep15.parse_announce(reply, pl.family).peers)
                pl.on_done = on_announce
                ops = [Op("announce", "127.0.3.%d" % (21 + t % 20),
                          dict(info_hash=load.hashes[t], left=1000, event=EVENT_STARTED, port=65000,
                               numwant=200), tag=t) for t in range(N_TORRENTS)]
                pl.run(ops, window=32, deadline=time.monotonic() + min(30, self.left()))
            lost, ghosts = [], []
            for t in range(N_TORRENTS):
                peers = exp[t][4]
                if not peers <= got[t]:
                    lost.append((t, sorted(peers - got[t])))
                if exp[t][3] == 0 and got[t] - peers:
                    ghosts.append((t, sorted(got[t] - peers)))
            self.assertEqual(lost[:20], [], "%d torrents: acknowledged peers not returned by announce" % len(lost))
            self.assertEqual(ghosts[:20], [], "%d torrents: stopped/unknown peers returned" % len(ghosts))

            # --- restarts are visible in the log ------------------------------------------
            d.assert_alive()
            log = d.log()
            unlogged = [p for p in killed if not re.search(r"\b%d\b" % p, log)]
            self.assertEqual(unlogged, [], "killed worker pids not mentioned in the shoald log")
            repairs = d.counter("partition_repairs")
            repair_lines = re.findall(r"(?im)^.*partition \d+ (?:was mid-update|.*repair).*$", log)
            attach_lines = re.findall(r"(?im)^.*partition \d+ (?:attached|was mid-update|.*repair).*$", log)
            swarm_kills = sum(1 for r in restarts if r[0] == "swarm")
            sys.stderr.write("chaos: partition_repairs = %d, repair lines in log = %d, attach lines = %d\n"
                             % (repairs, len(repair_lines), len(attach_lines)))
            self.assertEqual(len(repair_lines), repairs,
                             "partition_repairs counter and repairs reported in the log disagree")
            self.assertGreaterEqual(len(attach_lines), 2 + swarm_kills,
                                    "each swarm worker (re)start must log how it found its partition")

    def test_connection_id_survives_socket_worker_restart(self):
        with harness.Shoald(socket_workers=2, swarm_workers=1) as d:
            clients = [d.client(source="127.0.5.%d" % i) for i in range(1, 9)]
            try:
                cids = [c.connect() for c in clients]
                ih = harness.info_hash(self.id())
                for slot in range(2):
                    old = d.kill_worker("socket", slot)
                    d.wait_worker_replaced("socket", slot, old)
                for n, (c, cid) in enumerate(zip(clients, cids)):
                    c.timeout, c.attempts = 1.0, 5
                    try:
                        r = c.announce(ih, port=1000 + n, event=EVENT_STARTED, conn_id=cid)
                    except bep15.TrackerTimeout:
                        self.fail("connection id issued before the socket workers restarted is no "
                                  "longer accepted (source %s, 5 attempts)" % c.source)
                    self.assertEqual(r.leechers, n + 1)
            finally:
                for c in clients:
                    c.close()


if __name__ == "__main__":
    harness.main()
