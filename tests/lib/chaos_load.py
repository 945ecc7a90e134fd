"""The chaos tests' announce load and its ledger (tests/integration/test_chaos.py,
test_chaos_scale.py): a random walk of started / none / completed / stopped announces over
N_TORRENTS x PEERS_PER_TORRENT peers from 127.0.2.x, keeping ACKNOWLEDGED state only, and the
check that the tracker still holds exactly that state after the chaos."""
import collections
import random
import threading
import time
import unittest

import bep15
import harness
from bep15 import EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED, Op

class BudgetedCase(unittest.TestCase):
    """A test case with a time budget (TEST_BUDGET seconds) that every wait is capped by."""
    TEST_BUDGET = 110.0

    def setUp(self):
        harness.need_shoald()
        self.t0 = time.monotonic()

    def left(self):
        return max(1.0, self.TEST_BUDGET - (time.monotonic() - self.t0))


N_TORRENTS = 2000
PEERS_PER_TORRENT = 5
RATE = 5000             # announces per second offered by the load thread
WINDOW = 128            # announces in flight at most


def peer_addr(i):
    """The i-th load peer: (source address, announced port)."""
    return "127.0.2.%d" % (1 + i % 250), 20000 + i


class Load:
    """Random-walk announce load with an acknowledged-state ledger (runs in its own thread)."""

    def __init__(self, tracker, seed=1, budget=110.0):
        self.budget = budget
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
            self.pipeline.run(self.ops_gen(), window=WINDOW, deadline=time.monotonic() + self.budget)
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


def verify_ledger(tc, d, load, budget):
    """Asserts (on unittest case `tc`) that shoald `d` still holds what `load` had acknowledged:
    scrape counts and completed per torrent, and every acknowledged peer handed out by announce
    (none that stopped). `budget`: seconds the checks may take. Returns the expected state."""
    left = lambda: budget  # noqa: E731 - each phase is bounded by the whole budget
    # --- nothing acknowledged was lost: scrape ------------------------------------
    exp = load.expected()
    res = {}
    with bep15.Pipeline(d.addr4, timeout=0.5, attempts=6) as pl:
        def on_scrape(op, reply, err):
            tc.assertIsNotNone(reply, "scrape failed: %r" % err)
            for t, row in zip(op.tag, bep15.parse_scrape(reply)):
                res[t] = row
        pl.on_done = on_scrape
        ops = []
        for k in range(0, N_TORRENTS, 70):
            ts = list(range(k, min(k + 70, N_TORRENTS)))
            ops.append(Op("scrape", "127.0.3.%d" % (1 + k % 20),
                          {"info_hashes": [load.hashes[t] for t in ts]}, tag=ts))
        pl.run(ops, window=8, deadline=time.monotonic() + min(20, left()))
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
    tc.assertEqual(missing[:20], [], "%d torrents with acknowledged peers missing from scrape "
                     "(torrent, got (seeders, leechers), ledger)" % len(missing))
    tc.assertEqual(extra[:20], [], "%d torrents whose scrape counts differ from the ledger "
                     "(torrent, got, ledger)" % len(extra))
    tc.assertEqual(bad_completed[:20], [], "%d torrents whose completed count differs from the "
                     "ledger (torrent, got, ledger)" % len(bad_completed))
    tc.assertGreater(sum(e[0] + e[1] for e in exp.values()), 3000, "ledger nearly empty")

    # --- ... and announce hands every ledger peer out ----------------------------
    got = {}
    with bep15.Pipeline(d.addr4, timeout=0.5, attempts=6) as pl:
        def on_announce(op, reply, err):
            tc.assertIsNotNone(reply, "check announce failed: %r" % err)
            got[op.tag] = set(bep15.parse_announce(reply, pl.family).peers)
        pl.on_done = on_announce
        ops = [Op("announce", "127.0.3.%d" % (21 + t % 20),
                  dict(info_hash=load.hashes[t], left=1000, event=EVENT_STARTED, port=65000,
                       numwant=200), tag=t) for t in range(N_TORRENTS)]
        pl.run(ops, window=32, deadline=time.monotonic() + min(30, left()))
    lost, ghosts = [], []
    for t in range(N_TORRENTS):
        peers = exp[t][4]
        if not peers <= got[t]:
            lost.append((t, sorted(peers - got[t])))
        if exp[t][3] == 0 and got[t] - peers:
            ghosts.append((t, sorted(got[t] - peers)))
    tc.assertEqual(lost[:20], [], "%d torrents: acknowledged peers not returned by announce" % len(lost))
    tc.assertEqual(ghosts[:20], [], "%d torrents: stopped/unknown peers returned" % len(ghosts))

    return exp
