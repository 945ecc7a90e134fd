"""Ring ownership during a rolling restart (issue 12): a socket worker's successor is SIGKILLed
at each step of the roll, under a steady announce load: right after it is spawned, again while
its respawn is not ready yet, and after it took over while its predecessor still drains. Ring
sets are assigned by the supervisor, so at no time may the live process of a slot and the one
draining use the same ring set (two producers on a single-producer ring); a sampler reads
`shoalctl show workers` every few milliseconds and checks it. The load's ledger then proves no
peer was lost. Loopback only; every wait is bounded; only our shoald's workers are killed, by
PID."""
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from ledger import LoadWithLedger  # noqa: E402


class Sampler:
    """Reads the socket slot from `show workers` in a loop; records every (pid, ring set,
    draining pid, draining ring set) seen and every violation of the ownership rule."""

    def __init__(self, d):
        self.d = d
        self.seen = []
        self.violations = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def socket_slot(self):
        for w in self.d.ctl_json("show", "workers")["workers"]:
            if w["role"] == "socket":
                return w
        return None

    def run(self):
        while not self.stop.is_set():
            try:
                w = self.socket_slot()
            except Exception:  # noqa: BLE001 - a busy stats socket: sample again
                continue
            if w is None:
                continue
            row = (w["pid"], w.get("ring_set"), w.get("draining_pid"), w.get("draining_ring_set"))
            if not self.seen or self.seen[-1] != row:
                self.seen.append(row)
            if w.get("draining_pid") and w["pid"] and w.get("ring_set") == w.get("draining_ring_set"):
                self.violations.append(row)
            time.sleep(0.003)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class RollingRingsTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_killing_the_successor_at_each_step_never_shares_a_ring(self):
        with harness.Shoald(socket_workers=1, swarm_workers=2) as d:
            old = d.worker_pid("socket", 0)
            kills = []

            def slot():
                return next(w for w in d.ctl_json("show", "workers")["workers"] if w["role"] == "socket")

            def successor(ready):
                """Waits for a live successor: not ready yet while `old` drains, or ready (`old` may
                have finished draining by then: it takes milliseconds). Returns its pid."""
                def check():
                    w = slot()
                    fresh = w["pid"] and w["pid"] != old and w["pid"] not in kills
                    if ready:
                        return fresh and w["ready"] and w["pid"]
                    return fresh and w.get("draining_pid") == old and not w["ready"] and w["pid"]
                return harness.wait_for(check, 10, interval=0.002, what="a successor (ready=%s)" % ready)

            with LoadWithLedger(d) as load, Sampler(d) as sampler:
                time.sleep(0.5)
                rc, out = d.ctl("restart", "workers")
                self.assertEqual(rc, 0, out)
                # 1. right after the spawn; 2. its respawn, before it is ready.
                for _ in range(2):
                    pid = successor(ready=False)
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                # 3. a successor that took over (ready), while the old one drains or just after.
                pid = successor(ready=True)
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)
                # The roll ends one way or the other (done, or abandoned with the old one
                # serving); the slot then has one live, ready process.
                harness.wait_for(lambda: "rolling restart done" in d.log() or "rolling restart abandoned" in d.log(),
                                 30, what="the roll to end")
                harness.wait_for(lambda: slot()["ready"] and not slot().get("draining_pid"), 15,
                                 what="the socket slot to settle")
                time.sleep(0.5)
            self.assertEqual(sampler.violations, [], "two live processes on one ring set: %s" % sampler.violations)
            self.assertTrue(any(r[2] for r in sampler.seen), "the sampler never saw a draining process")
            self.assertEqual(load.failed, 0)
            self.assertGreater(load.sent, 100)
            with d.client() as c:  # every answered announce is still in its swarm
                for i in range(0, len(load.hashes), 74):
                    chunk = load.hashes[i:i + 74]
                    for h, (seeders, completed, leechers) in zip(chunk, c.scrape(chunk)):
                        self.assertEqual(seeders + leechers, len(load.ledger[h]))
            d.assert_alive()
            print("\n  successor killed %d times; %d announces, %d resent; %d slot states seen"
                  % (len(kills), load.sent, load.lost, len(sampler.seen)))


if __name__ == "__main__":
    harness.main()
