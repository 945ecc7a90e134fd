"""Privilege drop (issue 12, shoal.conf(5) daemon.user): started as root with daemon.user set,
shoald binds its listeners (here an HTTP port below 1024, which only root may bind) and then runs
as that user, supervisor and workers alike, with no capabilities; its shared-memory segments and
stats socket belong to the user, so a restarted worker attaches them, a rolling restart works,
the stop removes the socket, and the next start re-attaches the swarms as that user, also when
the previous shoald ran as root. An unknown user, an unreadable key, a foreign state directory or
a start without root are refused with a message that names the setting.

Needs root (CI runs as root); uses the system user `nobody`. Loopback only; bounded; only our
shoald, by PID."""
import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from http_client import RawHttp, announce_target, bdecode, config_block, make_cert, peer_id  # noqa: E402

USER = "nobody"


def low_tcp_port():
    """A free TCP port below 1024 on 127.0.0.1 (only root may bind one)."""
    for port in range(990, 600, -1):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise unittest.SkipTest("no free TCP port below 1024")


def status(pid):
    """{field: value} of /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def shoald_run(args, timeout=15):
    r = subprocess.run([harness.SHOALD] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace")


class PrivilegeDropTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.pw = pwd.getpwnam(USER)
        self.groups = sorted(os.getgrouplist(USER, self.pw.pw_gid))
        self.tmp = tempfile.mkdtemp(prefix="shoal-priv-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def assert_runs_as_user(self, pid):
        st = status(pid)
        self.assertEqual(st["Uid"].split(), [str(self.pw.pw_uid)] * 4, "pid %d: %s" % (pid, st["Uid"]))
        self.assertEqual(st["Gid"].split(), [str(self.pw.pw_gid)] * 4, "pid %d: %s" % (pid, st["Gid"]))
        self.assertEqual(sorted(int(g) for g in st["Groups"].split()), self.groups)
        self.assertEqual(int(st["CapEff"], 16), 0, "pid %d keeps capabilities" % pid)
        self.assertEqual(int(st["CapPrm"], 16), 0, "pid %d keeps capabilities" % pid)

    def assert_owned_by_user(self, path, mode=None):
        sb = os.lstat(path)
        self.assertEqual((sb.st_uid, sb.st_gid), (self.pw.pw_uid, self.pw.pw_gid), path)
        if mode is not None:
            self.assertEqual(stat.S_IMODE(sb.st_mode), mode, path)

    def segments(self, d):
        return sorted(os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm")
                      if n.startswith(d.shm_name + "-") and n != d.shm_name + "-lock")

    def test_after_binding_every_process_runs_as_the_user_and_keeps_working(self):
        hport = low_tcp_port()
        d = harness.Shoald(socket_workers=2, extra='daemon: { user = "%s"; };\n' % USER +
                           'http: { enabled = true; listen = [ "127.0.0.1:%d" ]; };\n' % hport)
        ih = harness.info_hash("privileges", "drop")
        with d:
            self.assertIn("running as user %s (uid %d)" % (USER, self.pw.pw_uid), d.log())
            for pid in [d.pid] + list(d.workers().values()):
                self.assert_runs_as_user(pid)
            # Its files are the user's: the workers attach the segments, the supervisor keeps the socket.
            segs = self.segments(d)
            self.assertGreaterEqual(len(segs), 4)
            for path in segs:
                self.assert_owned_by_user(path, 0o600)
            self.assert_owned_by_user(d.stats_socket, 0o600)
            # It serves on the ports bound as root (HTTP below 1024, UDP).
            with d.client() as c:
                self.assertEqual(c.announce(ih, 6001, left=1, event=bep15.EVENT_STARTED).leechers, 1)
            with RawHttp("127.0.0.1", hport) as h:
                r = h.request(announce_target(ih, peer_id(2), 6002, left=0))
                self.assertEqual(r.status, 200)
                self.assertEqual(bdecode(r.body)[b"incomplete"], 1)
            # A killed worker comes back as the user and attaches its partition; nothing is lost.
            old = d.worker_pid("swarm", 0)
            d.kill_worker("swarm", 0)
            new = d.wait_worker_replaced("swarm", 0, old)
            self.assert_runs_as_user(new)
            harness.wait_for(lambda: all(w["ready"] for w in d.ctl_json("show", "workers")["workers"]), 5,
                             what="the restarted worker to be ready")
            with d.client() as c:
                self.assertEqual(c.scrape([ih]), [(1, 0, 1)])
            # A rolling restart forks new workers of every role, as the user.
            rc, out = d.ctl("restart", "workers")
            self.assertEqual(rc, 0, out)
            harness.wait_for(lambda: "rolling restart done" in d.log(), 15, what="the rolling restart")
            for pid in d.workers().values():
                self.assert_runs_as_user(pid)
            with d.client() as c:
                self.assertEqual(c.scrape([ih]), [(1, 0, 1)])
            self.assertEqual(d.stop(), 0)
            self.assertFalse(os.path.exists(d.stats_socket), "the user removes its own stats socket at the stop")

    def test_restarts_as_the_user_keep_the_swarms_also_after_a_root_run(self):
        ih = harness.info_hash("privileges", "kept")
        d = harness.Shoald()  # as root, without daemon.user: root's segments
        try:
            d.start()
            with d.client() as c:
                c.announce(ih, 7001, left=0, event=bep15.EVENT_STARTED)
            self.assertEqual(d.stop(), 0)
            for n in range(2):  # root's segments handed over; then the user's own re-attached
                d.extra = 'daemon: { user = "%s"; };\n' % USER
                d.start()
                self.assertIn("re-attached the shared memory of a previous shoald: 1 torrents, 1 peers kept", d.log())
                self.assertEqual(n == 0, "gave the" in d.log() and "that root owned to %s" % USER in d.log())
                for path in self.segments(d):
                    self.assert_owned_by_user(path, 0o600)
                with d.client() as c:
                    self.assertEqual(c.scrape([ih]), [(1, 0, 0)])
                self.assertEqual(d.stop(), 0)
        finally:
            d.stop()
            d._cleanup_dir()

    def test_the_transfers_directory_it_makes_is_the_users_and_a_foreign_one_is_refused(self):
        state = os.path.join(self.tmp, "transfers")
        d = harness.Shoald(extra='daemon: { user = "%s"; };\ntransfers: { state_dir = "%s"; };\n' % (USER, state))
        os.chmod(self.tmp, 0o755)
        with d:
            self.assert_owned_by_user(state)
        # A directory with other files in it is not shoald's to give away: refused, and why.
        with open(os.path.join(state, "notes.txt"), "w") as f:
            f.write("not a transfer\n")
        os.chown(state, 0, 0)
        os.chmod(state, 0o755)
        conf = os.path.join(self.tmp, "foreign.conf")
        d2 = harness.Shoald(extra=d.extra)
        d2.port = harness.free_udp_port()
        with open(conf, "w") as f:
            f.write(d2.config_text())
        try:
            rc, out = shoald_run(["-c", conf])
        finally:
            d2._cleanup_dir()
        self.assertEqual(rc, 1, out)
        self.assertIn("transfers.state_dir %s is not writable by daemon.user %s" % (state, USER), out)

    def test_bad_settings_and_a_start_without_root_are_refused(self):
        def conf(name, text):
            path = os.path.join(self.tmp, name)
            with open(path, "w") as f:
                f.write('shm_name = "shoaltest-%d-priv";\nudp: { listen = [ "127.0.0.1:%d" ]; };\n'
                        'stats: { socket = ""; };\n%s' % (os.getpid(), harness.free_udp_port(), text))
            return path
        unknown = conf("unknown.conf", 'daemon: { user = "no-such-shoal-user"; };\n')
        rc, out = shoald_run(["-t", "-c", unknown])
        self.assertEqual(rc, 1, out)
        self.assertIn('daemon.user "no-such-shoal-user": no such user', out)
        rc, out = shoald_run(["-c", unknown])
        self.assertEqual(rc, 1, out)
        self.assertIn('cannot start: daemon.user "no-such-shoal-user": no such user', out)
        group_only = conf("group.conf", 'daemon: { group = "%s"; };\n' % grp.getgrgid(self.pw.pw_gid).gr_name)
        rc, out = shoald_run(["-t", "-c", group_only])
        self.assertEqual(rc, 1, out)
        self.assertIn("daemon.group: needs daemon.user", out)
        # The workers would read the key as the user: a key only root can read is refused at once.
        os.chmod(self.tmp, 0o755)
        cert, key = make_cert(os.path.join(self.tmp, "tls"))
        tls = conf("tls.conf", 'daemon: { user = "%s"; };\n' % USER +
                   config_block("https", harness.free_tcp_port(), certificate=cert, private_key=key))
        rc, out = shoald_run(["-c", tls])
        self.assertEqual(rc, 1, out)
        self.assertIn("cannot start", out)
        self.assertIn(key, out)
        self.assertIn("(read as daemon.user %s)" % USER, out)
        # Started without root, shoald cannot switch to another user: it says so and stops.
        other = conf("other.conf", 'daemon: { user = "daemon"; };\n')
        os.chmod(other, 0o644)
        r = subprocess.run(harness.as_user(USER, grp.getgrgid(self.pw.pw_gid).gr_name) + [harness.SHOALD, "-c", other],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15)
        out = r.stdout.decode("utf-8", "replace")
        self.assertEqual(r.returncode, 1, out)
        self.assertIn("only root can switch users", out)


if __name__ == "__main__":
    harness.main()
