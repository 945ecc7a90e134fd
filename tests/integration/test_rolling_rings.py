"""Ring ownership during a rolling restart (issue 12): a socket worker's successor is SIGKILLed
at each step of the roll, under a steady announce load: right after it is spawned, again while
its respawn is not ready yet, and after it took over while its predecessor still drains. Ring
sets are assigned by the supervisor, so at no time may the live process of a slot and the one
draining use the same ring set (two producers on a single-producer ring); a sampler reads
`shoalctl show workers` every few milliseconds and checks it. The load's ledger then proves no
peer was lost. Two more cases: a successor killed after it is ready while its predecessor
(stopped) certainly has not drained, and a roll that gives up while the killed successor waits
in back-off (that respawn must never start beside the old worker). Loopback only; every wait is bounded; only our shoald's workers are killed, by
PID."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from ledger import Background, LoadWithLedger  # noqa: E402


class Sampler(Background):
    """Reads the socket slot from `show workers` in a loop; records every (pid, ring set,
    draining pid, draining ring set) seen and every violation of the ownership rule."""

    def __init__(self, d):
        super().__init__()
        self.d = d
        self.seen = []
        self.violations = []

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
                    if w["pid"] and w.get("draining_pid"):  # every state read here is checked too
                        self.assertNotEqual(w["ring_set"], w["draining_ring_set"], "two processes on one ring set: %r" % w)
                    fresh = w["pid"] and w["pid"] != old and w["pid"] not in kills
                    if ready:
                        return fresh and w["ready"] and w["pid"]
                    if ready is None:  # either: a respawn may be ready before a poll sees it starting
                        return fresh and (w["ready"] or w.get("draining_pid") == old) and w["pid"]
                    return fresh and w.get("draining_pid") == old and not w["ready"] and w["pid"]
                return harness.wait_for(check, 10, interval=0.002, what="a successor (ready=%s)" % ready)

            with LoadWithLedger(d) as load, Sampler(d) as sampler:
                time.sleep(0.5)
                rc, out = d.ctl("restart", "workers")
                self.assertEqual(rc, 0, out)
                # 1. right after the spawn; 2. its respawn; each before it is ready if the polls
                # (a shoalctl each) catch it so: a socket worker starts in a few ms now, and may be
                # ready by then (tests/unit/worker_cycle_test.cpp kills it at each step for sure).
                for ready in (None, None):
                    pid = successor(ready=ready)
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

    def check_swarms(self, d, load):
        """Every answered announce is in its swarm: scrape, show torrent and show stats agree
        with the ledger (each peer announced left=5: a leecher)."""
        self.assertEqual(load.failed, 0)
        self.assertGreater(load.sent, 100)
        with d.client() as c:
            for i in range(0, len(load.hashes), 74):
                chunk = load.hashes[i:i + 74]
                for h, (seeders, completed, leechers) in zip(chunk, c.scrape(chunk)):
                    self.assertEqual((seeders, leechers), (0, len(load.ledger[h])), h.hex())
        for h in load.hashes[:3]:
            t = d.ctl_json("show", "torrent", h.hex())
            self.assertEqual(t["leechers"], len(load.ledger[h]))
            if t["peer_total"] <= 100:
                self.assertEqual({p["port"] for p in t["peers"]}, load.ledger[h])
        st = d.ctl_json("show", "stats")
        self.assertEqual(st["leechers"], sum(len(v) for v in load.ledger.values()))
        self.assertGreaterEqual(st["counters"]["udp_announce"], load.sent)

    def test_successor_killed_after_ready_while_the_old_one_has_not_drained(self):
        # The old socket worker is stopped (SIGSTOP) before the roll, so it cannot drain: the
        # successor is killed after it is ready and certainly while the old one is still there;
        # its respawn must take the successor's set again, never the old one's.
        with harness.Shoald(socket_workers=1, swarm_workers=1, supervisor={"restart_backoff_min": 20}) as d:
            def slot():
                return next(w for w in d.ctl_json("show", "workers")["workers"] if w["role"] == "socket")

            with LoadWithLedger(d, torrents=100) as load:
                time.sleep(0.5)
                old = slot()["pid"]
                os.kill(old, signal.SIGSTOP)
                try:
                    rc, out = d.ctl("restart", "workers")
                    self.assertEqual(rc, 0, out)
                    first = harness.wait_for(lambda: (lambda w: w if w["pid"] not in (0, old) and w["ready"] else None)(slot()),
                                             10, what="a ready successor")
                    self.assertEqual(first.get("draining_pid"), old)
                    self.assertNotEqual(first["ring_set"], first["draining_ring_set"])
                    os.kill(first["pid"], signal.SIGKILL)
                    again = harness.wait_for(
                        lambda: (lambda w: w if w["pid"] not in (0, old, first["pid"]) else None)(slot()),
                        10, interval=0.002, what="the successor's respawn")
                    self.assertEqual(again.get("draining_pid"), old)
                    self.assertEqual(again["ring_set"], first["ring_set"], again)
                    harness.wait_for(lambda: slot()["ready"], 5, what="the respawn ready")
                finally:
                    os.kill(old, signal.SIGCONT)  # it drains now and exits
                harness.wait_for(lambda: "rolling restart done: 2 workers replaced" in d.log(), 20, what="the roll done")
                w = slot()
                self.assertNotIn("draining_pid", w)
                self.assertNotIn(w["pid"], (0, old, first["pid"]))
                time.sleep(0.3)
            self.check_swarms(d, load)
            d.assert_alive()

    def test_abandoned_roll_does_not_start_the_successor_later(self):
        # A back-off longer than the 5 s the roll waits for a ready successor: the roll gives
        # up while the killed successor waits for its respawn; the old worker must stay the
        # slot's only process, and that respawn must never come. Every socket worker waits 1 s
        # before it is ready (SHOAL_TEST_SOCKET_READY_DELAY_MS), so each successor is killed
        # before it is ready: a fast start used to win the race now and then, and the roll
        # went on instead of giving up.
        d = harness.Shoald(socket_workers=1, swarm_workers=1,
                           supervisor={"restart_backoff_min": 6000, "restart_backoff_max": 6000})
        d.env = dict(os.environ, SHOAL_TEST_SOCKET_READY_DELAY_MS="1000")
        with d:
            def slot():
                return next(w for w in d.ctl_json("show", "workers")["workers"] if w["role"] == "socket")

            with LoadWithLedger(d, torrents=50) as load:
                time.sleep(0.3)
                old = slot()["pid"]
                rc, out = d.ctl("restart", "workers")
                self.assertEqual(rc, 0, out)
                fresh = harness.wait_for(lambda: (lambda w: w["pid"] not in (0, old) and w["pid"])(slot()), 10,
                                         interval=0.002, what="a successor")
                self.assertFalse(slot()["ready"], "the successor was ready within its 1 s delay")
                os.kill(fresh, signal.SIGKILL)
                # The first crash of a streak is restarted at once: kill that one too, so the
                # next respawn waits out the 6 s back-off.
                again = harness.wait_for(lambda: (lambda w: w["pid"] not in (0, old, fresh) and w["pid"])(slot()), 10,
                                         interval=0.002, what="the successor restarted at once")
                self.assertFalse(slot()["ready"], "the restarted successor was ready within its 1 s delay")
                os.kill(again, signal.SIGKILL)
                harness.wait_for(lambda: "rolling restart abandoned" in d.log(), 10, what="the roll abandoned")
                time.sleep(2.5)  # past the respawn the back-off had planned (6 s after the kill)
                w = slot()
                self.assertEqual((w["pid"], w["state"], w["ready"]), (old, "running", True), w)
                self.assertNotIn("draining_pid", w)
                self.assertEqual(d.log().count("started socket worker 0"), 3, "the successor was started again")
            self.check_swarms(d, load)


if __name__ == "__main__":
    harness.main()
