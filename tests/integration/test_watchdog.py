"""The supervisor's watchdog (issue 12): a worker that hangs (here: SIGSTOP, as a worker stuck in
a loop or a blocking call would look) stops writing its heartbeat; after
supervisor.heartbeat_timeout seconds the supervisor kills and restarts it, says so in the log,
and announces on its partition are answered again. A hang counts toward the crash-loop breaker.
Loopback only; every wait is bounded; only our shoald's workers are signalled, by PID."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402


class WatchdogTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_a_hung_worker_is_killed_and_restarted(self):
        with harness.Shoald(supervisor={"heartbeat_timeout": 2, "crash_loop_limit": 2}) as d:
            ih = harness.info_hash("watchdog")
            with d.client() as c:
                c.announce(ih, 6001, left=10, event=bep15.EVENT_STARTED)
            for role in ("swarm", "socket"):
                old = d.worker_pid(role, 0)
                t0 = time.monotonic()
                os.kill(old, signal.SIGSTOP)
                new = d.wait_worker_replaced(role, 0, old, timeout=10)
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 1.5, "killed before its heartbeat could be stale")
                self.assertIn("%s worker 0 (pid %d) is hung: no heartbeat for" % (role, old), d.log())
                self.assertIn("was killed by the watchdog", d.log())
                harness.wait_for(lambda: d.ctl("wait-ready", "5")[0] == 0, 10, what="the new worker ready")
                with d.client(timeout=0.5, attempts=6) as c:  # served again, swarm kept
                    r = c.announce(ih, 6002, left=10, event=bep15.EVENT_STARTED)
                self.assertEqual(r.leechers, 2)
                self.assertNotEqual(new, old)
                print("\n  hung %s worker replaced after %.1f s" % (role, took))
            # Two hangs in a row reached crash_loop_limit 2 for neither slot (one each): both serve.
            self.assertNotIn("crash loop", d.log())


if __name__ == "__main__":
    harness.main()
