"""How shoald tells whoever started it that it serves: `shoald -d` returns only once every
worker is ready (exit 0) or prints why it cannot start (exit 1), and under systemd's
Type=notify it sends READY=1 / STATUS= / STOPPING=1 to $NOTIFY_SOCKET (sd_notify protocol)."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import Shoald, wait_for  # noqa: E402


def occupy_udp(port):
    """A UDP socket on 127.0.0.1:port without SO_REUSEPORT: shoald's bind there fails."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


class DaemonizeTest(unittest.TestCase):
    """shoald -d, run as an operator would from a shell (the harness only prepares the config)."""

    def setUp(self):
        harness.need_shoald()
        self.d = Shoald()
        self.d.dir = tempfile.mkdtemp(prefix="shoaltest-")
        self.d.port = harness.free_udp_port()
        self.pid_file = os.path.join(self.d.dir, "shoald.pid")
        self.d.extra = 'pid_file = "%s";\n' % self.pid_file
        self.d.conf_path = os.path.join(self.d.dir, "shoal.conf")
        with open(self.d.conf_path, "w") as f:
            f.write(self.d.config_text())
        self.addCleanup(self.d._cleanup_dir)

    def daemonize(self, timeout=20):
        t0 = time.monotonic()
        r = subprocess.run([harness.SHOALD, "-d", "-c", self.d.conf_path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return r.returncode, r.stderr.decode("utf-8", "replace"), time.monotonic() - t0

    def stop_daemon(self, pid):
        """SIGTERM to the supervisor we started (by PID), bounded wait, SIGKILL as a last resort."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            wait_for(lambda: not harness.pid_alive(pid), 10, what="daemonized shoald to exit")
        finally:
            if harness.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)

    def test_returns_zero_once_every_worker_is_ready(self):
        rc, err, took = self.daemonize()
        self.assertEqual(rc, 0, "shoald -d failed: %s" % err)
        with open(self.pid_file) as f:
            pid = int(f.read().strip())
        self.addCleanup(self.stop_daemon, pid)
        self.assertTrue(harness.pid_alive(pid), "the pid file names no live process")
        self.assertIn("shoald: supervisor", harness.proc_cmdline(pid))
        # Right when -d returned: every worker already reports ready (no polling here).
        workers = self.d.ctl_json("show", "workers")
        states = [w["ready"] for w in workers["workers"]]
        self.assertEqual(states, [True, True], "workers not all ready when shoald -d returned: %s"
                         % json.dumps(workers))
        with self.d.client(timeout=1.0, attempts=1) as c:
            self.assertEqual(c.announce(harness.info_hash("daemon", 1), 6881).leechers, 1)
        sys.stderr.write("\nshoald -d returned after %.0f ms\n" % (took * 1000))

    def test_pid_file_symlink_is_not_followed(self):
        # Issue 12: the pid file was opened without O_NOFOLLOW, so a symlink at its path made
        # shoald truncate whatever it pointed to.
        target = os.path.join(self.d.dir, "precious.txt")
        with open(target, "w") as f:
            f.write("keep me\n")
        os.symlink(target, self.pid_file)
        rc, err, took = self.daemonize()
        self.assertEqual(rc, 1, "shoald -d must refuse a symlinked pid file (stderr: %r)" % err)
        self.assertIn("it is a symbolic link; shoald does not follow one", err)
        with open(target) as f:
            self.assertEqual(f.read(), "keep me\n")

    def test_second_daemon_is_refused_and_keeps_the_first_pid_file(self):
        rc, err, took = self.daemonize()
        self.assertEqual(rc, 0, err)
        with open(self.pid_file) as f:
            pid = int(f.read().strip())
        self.addCleanup(self.stop_daemon, pid)
        rc, err, took = self.daemonize()
        self.assertEqual(rc, 1, err)
        self.assertIn("another shoald (pid %d) is running on shm_name" % pid, err)
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read().strip()), pid)
        self.assertTrue(harness.pid_alive(pid))

    def test_bind_error_reaches_the_terminal_and_the_exit_status(self):
        blocker = occupy_udp(self.d.port)
        self.addCleanup(blocker.close)
        rc, err, took = self.daemonize()
        self.assertEqual(rc, 1, "shoald -d must fail when its UDP address is taken (stderr: %r)" % err)
        self.assertIn("shoald: cannot start:", err)
        self.assertIn("127.0.0.1:%d" % self.d.port, err, "the message must name the address")
        self.assertIn("Address already in use", err)
        self.assertLess(took, 10)
        if os.path.exists(self.pid_file):   # written before the bind; the daemon must be gone
            with open(self.pid_file) as f:
                pid = int(f.read().strip() or 0)
            if pid:
                wait_for(lambda: not harness.pid_alive(pid) or "shoald" not in harness.proc_cmdline(pid), 5,
                         what="failed daemon to exit")


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, abstract):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if abstract:
            name = "shoaltest-notify-%d-%d" % (os.getpid(), time.monotonic_ns() % 10**9)
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.dir = tempfile.mkdtemp(prefix="shoaltest-notify-")
            path = os.path.join(self.dir, "notify")
            self.sock.bind(path)
            self.env_value = path

    def receive(self, timeout):
        """The next message as {KEY: value}; fails the test after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no sd_notify message within %.0f s" % timeout)
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def close(self):
        self.sock.close()
        if self.dir:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)


class SdNotifyTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def check_notify(self, abstract):
        n = NotifySocket(abstract)
        self.addCleanup(n.close)
        d = Shoald(socket_workers=2, swarm_workers=1)
        d.env = dict(os.environ, NOTIFY_SOCKET=n.env_value)
        with d:
            m = n.receive(15)
            self.assertEqual(m.get("READY"), "1", m)
            self.assertEqual(m.get("STATUS"), "serving: 2 socket workers, 1 swarm workers")
            self.assertNotIn("ready=false", d.ctl("show", "workers")[1])
            os.kill(d.pid, signal.SIGTERM)
            self.assertEqual(n.receive(10).get("STOPPING"), "1")
            self.assertEqual(d.proc.wait(10), 0)

    def test_ready_and_stopping_on_a_path_socket(self):
        self.check_notify(abstract=False)

    def test_ready_and_stopping_on_an_abstract_socket(self):
        self.check_notify(abstract=True)

    def test_start_failure_sets_status(self):
        n = NotifySocket(abstract=False)
        self.addCleanup(n.close)
        d = Shoald()
        d.dir = tempfile.mkdtemp(prefix="shoaltest-")
        d.port = harness.free_udp_port()
        self.addCleanup(d._cleanup_dir)
        blocker = occupy_udp(d.port)
        self.addCleanup(blocker.close)
        conf = os.path.join(d.dir, "shoal.conf")
        with open(conf, "w") as f:
            f.write(d.config_text())
        r = subprocess.run([harness.SHOALD, "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20, env=dict(os.environ, NOTIFY_SOCKET=n.env_value))
        self.assertEqual(r.returncode, 1)
        m = n.receive(2)
        self.assertTrue(m.get("STATUS", "").startswith("cannot start: "), m)
        self.assertIn("127.0.0.1:%d" % d.port, m["STATUS"])
        self.assertNotIn("READY", m)


if __name__ == "__main__":
    harness.main()
