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
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from bep15 import EVENT_STARTED  # noqa: E402
from chaos_load import BudgetedCase, Load, verify_ledger  # noqa: E402

SWARM_KILLS_PER_WORKER = 8
SOCKET_KILLS_PER_WORKER = 3
MAX_ACK_GAP = 2.5       # seconds without any acknowledged announce = "stopped answering"
TEST_BUDGET = 110.0


class ChaosTest(BudgetedCase):
    TEST_BUDGET = TEST_BUDGET

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
            load = Load(d.addr4, budget=TEST_BUDGET)
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

            verify_ledger(self, d, load, self.left())

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
