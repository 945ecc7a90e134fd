"""Chaos at scale (issue 12): 100 kill -9s in about 60 s under announce load, of every worker role
at random moments (not waiting for the replacement, so a worker may die while starting, while
recovering its partition, or while its predecessor's requests are redone), with rolling restarts
in between (a kill may land in the middle of one). Afterwards the ledger check of test_chaos:
every acknowledged peer is still in its swarm, with the right counts, and handed out by announce.
Loopback only; bounded; only our shoald's workers are killed, by PID."""
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from chaos_load import BudgetedCase, Load, verify_ledger  # noqa: E402

KILLS = 100
KILL_SECONDS = 60.0
ROLL_EVERY = 25          # a rolling restart after every 25 kills
TEST_BUDGET = 150.0


class ChaosScaleTest(BudgetedCase):
    TEST_BUDGET = TEST_BUDGET

    def test_a_hundred_kills_in_a_minute_lose_no_acknowledged_peer(self):
        rng = random.Random(7)
        # crash_loop_limit 0: kill -9 from outside never trips the breaker anyway, but a worker
        # killed while starting must not be mistaken for a crash loop either.
        sup = {"restart_backoff_min": 20, "restart_backoff_max": 200, "restart_healthy_after": 1, "crash_loop_limit": 0}
        with harness.Shoald(socket_workers=2, swarm_workers=2, supervisor=sup) as d:
            load = Load(d.addr4, seed=3, budget=TEST_BUDGET)
            load.thread.start()
            kills, rolls = [], 0
            try:
                harness.wait_for(lambda: load.acks >= 2000 or load.error, min(15, self.left()), what="initial load")
                start = time.monotonic()
                while len(kills) < KILLS:
                    # Spread the kills over KILL_SECONDS, at random moments.
                    due = start + KILL_SECONDS * (len(kills) + rng.random()) / KILLS
                    time.sleep(max(0.0, due - time.monotonic()))
                    role, slot = rng.choice([("swarm", 0), ("swarm", 1), ("socket", 0), ("socket", 1)])
                    pid = d.workers().get((role, slot), 0)
                    if pid:
                        try:
                            os.kill(pid, signal.SIGKILL)
                            kills.append((role, slot, pid))
                        except ProcessLookupError:
                            pass
                    if kills and len(kills) % ROLL_EVERY == 0 and rolls < len(kills) // ROLL_EVERY:
                        rc, out = d.ctl("restart", "workers")
                        rolls += rc == 0
                    self.assertIsNone(load.error, "load thread failed")
                    d.assert_alive()
                took = time.monotonic() - start
                # Every slot serves again before the books are closed.
                harness.wait_for(lambda: d.ctl("wait-ready", "2")[0] == 0, min(30, self.left()),
                                 what="every worker ready after the chaos")
                time.sleep(1.0)
            finally:
                load.stop.set()
                load.thread.join(min(30.0, self.left()))
            self.assertFalse(load.thread.is_alive(), "load thread did not drain in time")
            self.assertIsNone(load.error, "load thread failed: %r" % load.error)
            st = load.pipeline.stats
            load.pipeline.close()
            self.assertEqual(load.errors, [], "error replies under load")
            self.assertGreater(load.acks, 10000, "load too small to mean anything")
            exp = verify_ledger(self, d, load, self.left())
            d.assert_alive()
            self.assertGreaterEqual(len(kills), KILLS)
            self.assertGreaterEqual(rolls, 1, "no rolling restart was started in between")
            uncertain = sum(e[3] for e in exp.values())
            print("\n  chaos at scale: %d kills in %.1f s, %d rolling restarts, %d acks, %d announces "
                  "abandoned (uncertain peers %d), load %s" % (len(kills), took, rolls, load.acks, st.failed,
                                                               uncertain, st))


if __name__ == "__main__":
    harness.main()
