"""What an operator meets around the shared memory shoald leaves in /dev/shm: removing a stopped
daemon's segments (`shoald --remove-shm`), another user's segments at start, and a UDP buffer
that the kernel capped for an unprivileged shoald."""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

SHOALD = harness.SHOALD


def run(args, wrapper=(), timeout=15):
    r = subprocess.run(list(wrapper) + [SHOALD] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


def segments(shm_name, lock=False):
    """Files of shm_name in /dev/shm: the segments, and with lock=True the instance lock too."""
    return sorted(n for n in os.listdir("/dev/shm")
                  if n.startswith(shm_name + "-") and (lock or not n.endswith("-lock")))


def need_root(test):
    if os.geteuid() != 0:
        test.skipTest("needs root (runs shoald as another user)")


class RemoveShmTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_remove_shm_refuses_a_running_daemon_then_removes_a_stopped_ones(self):
        with harness.Shoald(swarm_workers=2) as d:
            before = segments(d.shm_name)
            self.assertIn(d.shm_name + "-control", before)
            self.assertIn(d.shm_name + "-part-1", before)
            rc, out = run(["--remove-shm", "-c", d.conf_path])
            self.assertEqual(rc, 1, out)
            self.assertIn("is running on shm_name \"%s\"" % d.shm_name, out)
            self.assertEqual(segments(d.shm_name), before, "a running daemon's segments were touched")
            # The daemon still answers.
            with d.client() as c:
                reply = c.announce(os.urandom(20), port=6881)
            self.assertEqual((reply.leechers, reply.seeders), (1, 0))
            d.stop()
            self.assertEqual(segments(d.shm_name), before, "a clean stop keeps the swarms in /dev/shm")
            rc, out = run(["--remove-shm", "-c", d.conf_path])
            self.assertEqual(rc, 0, out)
            for name in before:
                self.assertIn("removed /dev/shm/%s" % name, out)
            self.assertIn("freed", out)
            self.assertEqual(segments(d.shm_name, lock=True), [])
            rc, out = run(["--remove-shm", "-c", d.conf_path])
            self.assertEqual(rc, 0, out)
            self.assertIn("nothing to remove", out)


class OtherUserTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        need_root(self)

    def test_another_users_segments_get_one_clear_message(self):
        with harness.Shoald() as d:
            d.stop()  # root's segments stay in /dev/shm after a clean stop
            self.assertTrue(segments(d.shm_name))
            os.chmod(d.dir, 0o755)
            os.chmod(d.conf_path, 0o644)
            rc, out = run(["-c", d.conf_path], wrapper=harness.as_user())
            self.assertEqual(rc, 1, out)
            self.assertIn("shm_name \"%s\" exists but this user (uid 65534) may not use it" % d.shm_name, out)
            self.assertIn("set another shm_name", out)
            self.assertIn("--remove-shm", out)
            self.assertNotIn("File exists", out)
            self.assertNotIn("starting fresh", out)
            self.assertEqual(len([l for l in out.splitlines() if "cannot" in l]), 1, out)
            # The other user cannot remove them either, and says why; their owner can.
            rc, out = run(["--remove-shm", "-c", d.conf_path], wrapper=harness.as_user())
            self.assertEqual(rc, 1, out)
            self.assertIn("cannot remove /dev/shm/%s-control" % d.shm_name, out)
            rc, out = run(["--remove-shm", "-c", d.conf_path])
            self.assertEqual(rc, 0, out)
            self.assertEqual(segments(d.shm_name), [])

    def test_capped_udp_buffer_is_logged(self):
        d = harness.Shoald()
        d.udp_opts["recv_buffer"] = 67108864
        d.wrapper = harness.as_user()
        # net.core.rmem_max is far below 64 MiB on a default kernel; without CAP_NET_ADMIN the
        # buffer is capped there.
        with open("/proc/sys/net/core/rmem_max") as f:
            if int(f.read()) >= 67108864:
                self.skipTest("net.core.rmem_max is at least 64 MiB here")
        with d:
            deadline = time.monotonic() + 5
            log = ""
            while time.monotonic() < deadline and "kernel gave" not in log:
                with open(d.log_path, errors="replace") as f:
                    log = f.read()
                time.sleep(0.05)
        self.assertRegex(log, r"udp 127\.0\.0\.1:\d+: udp\.recv_buffer is 67108864 bytes but the kernel gave \d+ "
                              r"\(capped by net\.core\.rmem_max")


if __name__ == "__main__":
    harness.main()
