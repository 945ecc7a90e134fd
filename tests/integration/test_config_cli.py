"""shoald's command line and process life cycle as an operator sees them: -p, -t, bad configs,
a missing config, SIGTERM/SIGINT shutdown, ps titles, restart of a killed worker."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

SHOALD = harness.SHOALD


def run(args, timeout=10):
    r = subprocess.run([SHOALD] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


class ConfigCliTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.tmp = tempfile.mkdtemp(prefix="shoal-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def check_rejected(self, text, line, setting, name="bad.conf"):
        path = self.write(name, text)
        rc, out, err = run(["-t", "-c", path])
        msg = out + err
        self.assertEqual(rc, 1, "shoald -t accepted a bad config (rc %d): %s" % (rc, msg))
        self.assertIn("%s:%d:" % (path, line), msg, "message must name the file and line")
        self.assertIn(setting, msg, "message must name the setting")
        return msg

    # -------------------------------------------------------------------------------------
    def test_print_default_config_is_valid(self):
        rc, out, err = run(["-p"])
        self.assertEqual(rc, 0, err)
        with open(os.path.join(harness.REPO, "conf", "shoal.conf")) as f:
            self.assertEqual(out.rstrip("\n"), f.read().rstrip("\n"),
                             "shoald -p must print conf/shoal.conf")
        path = self.write("default.conf", out)
        rc, out2, err2 = run(["-t", "-c", path])
        self.assertEqual(rc, 0, "shoald -t rejects the output of shoald -p: %s%s" % (out2, err2))

    def test_harness_config_is_valid(self):
        d = harness.Shoald()
        d.port = harness.free_udp_port()
        path = self.write("test.conf", d.config_text())
        rc, out, err = run(["-t", "-c", path])
        self.assertEqual(rc, 0, out + err)

    def test_unknown_setting_names_file_and_line(self):
        text = ("# line 1\n"
                "socket_workers = 1;\n"
                "swarm_workers = 1;\n"
                "\n"
                "# line 5\n"
                "shm_name = \"shoaltest-cli\";\n"
                "no_such_setting = 5;\n"
                "log_level = \"info\";\n")
        self.check_rejected(text, 7, "no_such_setting")

    def test_unknown_setting_in_group(self):
        text = ("udp:\n"
                "{\n"
                "  enabled = true;\n"
                "  lisen = [ \"127.0.0.1:1\" ];\n"
                "};\n")
        self.check_rejected(text, 4, "lisen")

    def test_out_of_range_values(self):
        cases = [
            ("socket_workers = 0;\n", 1, "socket_workers"),
            ("\n\nswarm_workers = 65;\n", 3, "swarm_workers"),
            ("capacity:\n{\n  ring_slots = 100;\n};\n", 3, "ring_slots"),          # not a power of 2
            ("capacity:\n{\n  ring_slots = 131072;\n};\n", 3, "ring_slots"),       # > 65536
            ("log_level = \"loud\";\n", 1, "log_level"),
            ("udp:\n{\n  listen = [ \"localhost:6969\" ];\n};\n", 3, "listen"),   # numeric hosts only
            ("udp:\n{\n  listen = [ \"127.0.0.1:70000\" ];\n};\n", 3, "listen"),
            ("tracker:\n{\n  announce_interval = -5;\n};\n", 3, "announce_interval"),
            ("socket_workers = \"two\";\n", 1, "socket_workers"),                 # wrong type
        ]
        for i, (text, line, setting) in enumerate(cases):
            with self.subTest(setting=setting, text=text):
                self.check_rejected(text, line, setting, name="bad%d.conf" % i)

    def test_syntax_error_names_line(self):
        path = self.write("syntax.conf", "socket_workers = 1;\nswarm_workers = 1\nshm_name = ;\n")
        rc, out, err = run(["-t", "-c", path])
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out + err, re.escape(path) + r":[23]:")

    def test_missing_config(self):
        path = os.path.join(self.tmp, "missing.conf")
        for args in (["-c", path], ["-t", "-c", path]):
            t0 = time.monotonic()
            rc, out, err = run(args, timeout=10)
            self.assertEqual(rc, 1, "%s: rc %d" % (args, rc))
            self.assertIn(path, out + err, "the message must name the missing file")
            self.assertLess(time.monotonic() - t0, 5)

    def _titles(self, pids):
        r = subprocess.run(["ps", "-o", "pid=,args=", "-p", ",".join(str(p) for p in pids)],
                           stdout=subprocess.PIPE, timeout=10)
        out = {}
        for line in r.stdout.decode().splitlines():
            pid, _, args = line.strip().partition(" ")
            out[int(pid)] = args.strip()
        return out

    def test_ps_titles_and_sigterm_stops_everything(self):
        d = harness.Shoald(socket_workers=2, swarm_workers=3)
        with d:
            workers = d.workers()
            self.assertEqual(sorted(workers), [("socket", 0), ("socket", 1),
                                               ("swarm", 0), ("swarm", 1), ("swarm", 2)])
            titles = self._titles(workers.values())
            for (role, slot), pid in workers.items():
                self.assertEqual(titles.get(pid), "shoald: %s worker %d" % (role, slot))
            starts = {p: harness.proc_stat(p)[1] for p in workers.values()}
            t0 = time.monotonic()
            os.kill(d.pid, signal.SIGTERM)
            try:
                rc = d.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail("shoald did not exit within 10 s of SIGTERM")
            self.assertEqual(rc, 0, "exit status after SIGTERM")
            sys.stderr.write("\nSIGTERM -> exit in %.0f ms\n" % ((time.monotonic() - t0) * 1000))
            alive = [p for p, st in starts.items() if (harness.proc_stat(p) or (0, None))[1] == st]
            self.assertEqual(alive, [], "worker processes still running after shoald exited")

    def test_sigint_stops(self):
        with harness.Shoald() as d:
            workers = d.workers()
            starts = {p: harness.proc_stat(p)[1] for p in workers.values()}
            os.kill(d.pid, signal.SIGINT)
            try:
                rc = d.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail("shoald did not exit within 10 s of SIGINT")
            self.assertEqual(rc, 0)
            alive = [p for p, st in starts.items() if (harness.proc_stat(p) or (0, None))[1] == st]
            self.assertEqual(alive, [])

    def test_killed_worker_is_restarted_in_its_slot(self):
        with harness.Shoald(socket_workers=1, swarm_workers=2) as d:
            before = d.workers()
            old = d.kill_worker("swarm", 1)
            new = d.wait_worker_replaced("swarm", 1, old, timeout=5)
            self.assertFalse(harness.pid_alive(old) and harness.proc_stat(old)[0] == d.pid)
            after = d.workers()
            self.assertEqual(after[("swarm", 1)], new)
            for k in before:
                if k != ("swarm", 1):
                    self.assertEqual(after[k], before[k], "%s was restarted too" % (k,))
            self.assertEqual(self._titles([new]).get(new), "shoald: swarm worker 1")
            with d.client() as c:
                c.timeout, c.attempts = 0.5, 10
                for i in range(8):   # hashes spread over both partitions
                    r = c.announce(harness.info_hash("restart", i), port=1000 + i)
                    self.assertEqual(r.leechers, 1)


if __name__ == "__main__":
    harness.main()
