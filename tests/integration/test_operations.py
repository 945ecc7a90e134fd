"""Operating shoald as an operator would: shoalctl against the stats socket (counts match what
was announced), Prometheus metrics, a rolling restart under load that loses no peer, and the
supervisor killed with SIGKILL (its workers exit within a second)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from ledger import LoadWithLedger  # noqa: E402
from harness import Shoald, info_hash, wait_for  # noqa: E402


def stats(d):
    return d.ctl_json("show", "stats")


class StatsSocketTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_counts_match_announces(self):
        with Shoald(socket_workers=2, swarm_workers=2) as d:
            rc, out = d.ctl("wait-ready", "5")
            self.assertEqual(rc, 0, out)
            hashes = [info_hash("ops", i) for i in range(3)]
            sent = 0
            with d.client() as c:
                for h in hashes:
                    for p in range(5):   # peer 0 is a seeder
                        c.announce(h, 7000 + p, left=0 if p == 0 else 10, event=bep15.EVENT_STARTED)
                        sent += 1
                c.announce(hashes[0], 7001, left=0, event=bep15.EVENT_COMPLETED)
                sent += 1
            wait_for(lambda: stats(d)["torrents"] == 3, 3, what="3 torrents in show stats")
            s = stats(d)
            self.assertEqual((s["seeders"], s["leechers"], s["completed"]), (4, 11, 1))
            self.assertEqual(s["peers_ipv4"], 15)
            self.assertEqual(s["counters"]["udp_announce"], sent)
            t = d.ctl_json("show", "torrent", hashes[0].hex())
            self.assertTrue(t["found"])
            self.assertEqual((t["seeders"], t["leechers"], t["completed"], t["peer_total"]), (2, 3, 1, 5))
            self.assertEqual(sorted(p["port"] for p in t["peers"]), [7000, 7001, 7002, 7003, 7004])
            self.assertEqual({p["address"] for p in t["peers"]}, {"127.0.0.1"})
            rc, text = d.ctl("show", "stats")
            self.assertEqual(rc, 0)
            self.assertIn("torrents: 3\n", text)
            self.assertRegex(text, r"counters\.udp_announce: %d\n" % sent)
            rc, out = d.ctl("show", "torrent", hashes[1].hex().upper())
            self.assertIn("peer_total: 5", out)

    def test_bad_commands_get_errors(self):
        with Shoald() as d:
            rc, out = d.ctl("frobnicate")
            self.assertEqual(rc, 1)
            self.assertIn("error: unknown command", out)
            rc, out = d.ctl("show", "torrent", "abc")
            self.assertEqual(rc, 1)
            self.assertIn("40-character hex", out)
            rc, out = d.ctl("help")
            self.assertEqual(rc, 0)
            lines = out.splitlines()
            for words in ("show info", "show workers", "show stats", "show torrent", "reload",
                          "restart workers"):
                mine = [l for l in lines if l.startswith(words + ":") or l.startswith(words + " ")]
                self.assertEqual(len(mine), 1, "one help line for %r in %r" % (words, out))
                usage, _, what = mine[0].partition(": ")
                self.assertTrue(what, mine[0])
                # The command's name is said once: not again after the usage.
                self.assertNotIn(words, what, mine[0])
            self.assertIn("show torrent <hex info_hash> [json]: counts", out)

    def test_flood_while_a_command_is_pending_does_not_grow_the_supervisor(self):
        # Issue 12: while "show torrent" waited for a swarm worker, the stats socket read
        # everything the client sent into memory.
        with Shoald(socket_workers=1, swarm_workers=1) as d:
            swarm = d.workers()[("swarm", 0)]
            before = harness.rss_kib(d.pid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            os.kill(swarm, signal.SIGSTOP)  # the command stays pending (up to 1 s)
            try:
                s.connect(d.stats_socket)
                s.sendall(b"show torrent " + b"ab" * 20 + b"\n")
                s.setblocking(False)
                chunk, sent, deadline = b"x" * 65536, 0, time.monotonic() + 0.8
                while time.monotonic() < deadline and sent < (32 << 20):
                    try:
                        sent += s.send(chunk)
                    except BlockingIOError:
                        time.sleep(0.01)
                grown = harness.rss_kib(d.pid) - before
            finally:
                os.kill(swarm, signal.SIGCONT)
                s.close()
            self.assertLess(sent, 8 << 20, "the supervisor accepted %d bytes while a command was pending" % sent)
            self.assertLess(grown, 8 * 1024, "supervisor RSS grew by %d KiB" % grown)
            rc, out = d.ctl("show", "info")
            self.assertEqual(rc, 0, out)

    def test_concurrent_show_torrent_queries_all_get_their_own_answer(self):
        # Issue 12: one mailbox per swarm worker; concurrent clients overwrote each other's
        # query and 39 of 80 timed out.
        import threading
        with Shoald(socket_workers=1, swarm_workers=2) as d:
            hashes = [info_hash("concurrent", i) for i in range(8)]
            with d.client() as c:
                for i, h in enumerate(hashes):
                    for p in range(i + 1):  # torrent i has i + 1 leechers
                        c.announce(h, 30000 + p, left=5)
            results = [None] * 80

            def ask(k):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(d.stats_socket)
                s.sendall(b"show torrent %s json\n" % hashes[k % 8].hex().encode())
                data = b""
                while not data.endswith(b"\n\n"):
                    part = s.recv(65536)
                    if not part:
                        break
                    data += part
                s.close()
                results[k] = data.decode()

            threads = [threading.Thread(target=ask, args=(k,)) for k in range(80)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            for k, text in enumerate(results):
                self.assertIsNotNone(text, "client %d got no reply" % k)
                self.assertNotIn("error", text, "client %d: %s" % (k, text))
                reply = json.loads(text)
                self.assertEqual(reply["info_hash"], hashes[k % 8].hex(), "client %d got another query's answer" % k)
                self.assertEqual(reply["leechers"], k % 8 + 1)

    def test_show_workers_shows_a_killed_worker(self):
        with Shoald(socket_workers=1, swarm_workers=2) as d:
            before = {(w["role"], w["index"]): w for w in d.ctl_json("show", "workers")["workers"]}
            self.assertEqual(len(before), 3)
            self.assertTrue(all(w["ready"] for w in before.values()))
            old = d.kill_worker("swarm", 1)
            self.assertEqual(before[("swarm", 1)]["pid"], old)

            def replaced():
                w = {(x["role"], x["index"]): x for x in d.ctl_json("show", "workers")["workers"]}
                s = w[("swarm", 1)]
                return s["ready"] and s["pid"] not in (0, old) and s["restarts"] == 1
            wait_for(replaced, 5, what="swarm worker 1 restarted in show workers")
            info = d.ctl_json("show", "info")
            self.assertEqual(info["pid"], d.pid)
            self.assertEqual(info["swarm_workers"], 2)


class CrashLoopTest(unittest.TestCase):
    """Issue 12: a worker that crashes again and again is not respawned forever."""

    def setUp(self):
        harness.need_shoald()

    def test_crash_loop_stops_restarts_and_a_rolling_restart_revives(self):
        port = harness.free_tcp_port()
        d = Shoald(socket_workers=1, swarm_workers=2,
                   supervisor={"crash_loop_limit": 3, "crash_loop_window": 60, "restart_backoff_min": 20},
                   extra='metrics: { listen = "127.0.0.1:%d"; };' % port)
        with d:
            def state(role, index):
                w = {(x["role"], x["index"]): x for x in d.ctl_json("show", "workers")["workers"]}
                return w[(role, index)]

            for n in range(3):  # a crash is any death but SIGKILL: here SIGABRT, as abort() gives
                wait_for(lambda: state("swarm", 1)["ready"], 10, what="swarm worker 1 ready")
                old = d.kill_worker("swarm", 1, signal.SIGABRT)
                # Seen once the old process is gone from the slot (respawned, or not: disabled).
                wait_for(lambda: state("swarm", 1)["pid"] != old, 10, what="crash %d seen" % (n + 1))
            wait_for(lambda: state("swarm", 1)["state"] == "disabled", 5, what="slot disabled")
            time.sleep(0.3)  # no respawn comes
            self.assertEqual(state("swarm", 1)["pid"], 0)
            self.assertEqual(state("swarm", 1)["state"], "disabled")
            self.assertRegex(d.log(), r"swarm worker 1 was terminated by signal 6: Aborted.*crashed 3 times within 60 s, "
                                      r"a crash loop: not restarting it")
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                text = r.read().decode()
            self.assertIn('shoal_worker_disabled{role="swarm",slot="1"} 1', text)
            self.assertIn('shoal_worker_disabled{role="swarm",slot="0"} 0', text)
            # The other partition keeps serving.
            self.assertEqual(state("swarm", 0)["state"], "running")
            # A rolling restart starts it again.
            rc, out = d.ctl("restart", "workers")
            self.assertEqual(rc, 0, out)
            self.assertIn("1 stopped by the crash-loop breaker started again", out)
            wait_for(lambda: state("swarm", 1)["ready"] and state("swarm", 1)["state"] == "running", 15,
                     what="revived swarm worker ready")

    def test_sigkill_is_not_a_crash_loop(self):
        with Shoald(socket_workers=1, swarm_workers=1, supervisor={"crash_loop_limit": 2, "restart_backoff_min": 20}) as d:
            for _ in range(4):
                wait_for(lambda: all(w["ready"] for w in d.ctl_json("show", "workers")["workers"]), 10, what="ready")
                d.kill_worker("swarm", 0)  # SIGKILL: from outside, never counted
                time.sleep(0.05)
            wait_for(lambda: all(w["ready"] for w in d.ctl_json("show", "workers")["workers"]), 10, what="ready")
            self.assertNotIn("crash loop", d.log())


class MetricsTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def fetch(self, port):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            self.assertIn("text/plain", r.headers["Content-Type"])
            return r.read().decode()

    def test_oversized_header_is_refused_and_does_not_grow_the_supervisor(self):
        # Issue 12: one 64 MiB header line took the supervisor from 8 MB to 74 MB RSS.
        port = harness.free_tcp_port()
        with Shoald(extra='metrics: { listen = "127.0.0.1:%d"; };' % port) as d:
            before = harness.rss_kib(d.pid)
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            reply = b""
            try:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ")
                chunk = b"a" * 65536
                for _ in range(16 * 16):  # up to 16 MiB, until shoald gives up on us
                    s.sendall(chunk)
            except OSError:
                pass  # closed by shoald: expected
            try:
                s.settimeout(2)
                reply = s.recv(4096)
            except OSError:
                pass
            s.close()
            self.assertTrue(reply == b"" or b" 400 " in reply.split(b"\r\n")[0] or b" 413 " in reply.split(b"\r\n")[0],
                            reply[:200])
            self.assertLess(harness.rss_kib(d.pid) - before, 4 * 1024, "supervisor RSS grew")
            self.assertIn("shoal_torrents", self.fetch(port))  # still serving

    def test_metrics_reflect_announces(self):
        port = harness.free_tcp_port()
        with Shoald(extra='metrics: { listen = "127.0.0.1:%d"; };' % port) as d:
            h = info_hash("metrics")
            with d.client() as c:
                for p in range(4):
                    c.announce(h, 9000 + p, left=0 if p == 0 else 1, event=bep15.EVENT_STARTED)
            wait_for(lambda: stats(d)["torrents"] == 1, 3, what="torrent counted")
            text = self.fetch(port)
            samples = {}
            for line in text.splitlines():
                if line.startswith("#") or not line:
                    continue
                m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$', line)
                self.assertIsNotNone(m, "not an exposition sample line: %r" % line)
                samples[m.group(1)] = float(m.group(2))
            self.assertEqual(samples['shoal_requests_total{protocol="udp",kind="announce"}'], 4)
            self.assertEqual(samples["shoal_torrents"], 1)
            self.assertEqual(samples['shoal_peers{family="ipv4",role="seeder"}'], 1)
            self.assertEqual(samples['shoal_peers{family="ipv4",role="leecher"}'], 3)
            self.assertEqual(samples['shoal_peers{family="ipv6",role="seeder"}'], 0)
            self.assertEqual(samples['shoal_worker_up{role="swarm",slot="0"}'], 1)
            self.assertGreater(samples["process_start_time_seconds"], 1.6e9)
            promtool = shutil.which("promtool")
            if promtool is None:
                self.skipTest("promtool not installed (Debian package prometheus; make deps installs it)")
            r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout.decode())


class RollingRestartTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_rolling_restart_under_load_loses_no_peer(self):
        with Shoald(socket_workers=2, swarm_workers=2) as d:
            before = {(w["role"], w["index"]): w["pid"] for w in d.ctl_json("show", "workers")["workers"]}
            with LoadWithLedger(d) as load:
                time.sleep(1.0)
                rc, out = d.ctl("restart", "workers")
                self.assertEqual(rc, 0, out)
                self.assertIn("rolling restart of 4 workers started", out)

                def rolled():
                    ws = d.ctl_json("show", "workers")["workers"]
                    return all(w["generation"] == 2 and w["ready"] for w in ws)
                wait_for(rolled, 30, what="every worker replaced")
                time.sleep(1.0)
            after = {(w["role"], w["index"]): w["pid"] for w in d.ctl_json("show", "workers")["workers"]}
            self.assertTrue(all(after[k] != before[k] for k in before), (before, after))
            self.assertIn("rolling restart done: 4 workers replaced", d.log())
            self.assertEqual(load.failed, 0)
            self.assertGreater(load.sent, 200)
            # A few lost datagrams are allowed (a client would retry), never a lost peer.
            self.assertLessEqual(load.lost, 5, "lost %d of %d announces" % (load.lost, load.sent))
            with d.client() as c:
                for i in range(0, len(load.hashes), 74):
                    chunk = load.hashes[i:i + 74]
                    for h, (seeders, completed, leechers) in zip(chunk, c.scrape(chunk)):
                        self.assertEqual(seeders + leechers, len(load.ledger[h]))
            print("rolling restart: %d announces, %d resent, %d unanswered" % (load.sent, load.lost, load.failed))


class HttpRollingRestartTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_keep_alive_connections_are_closed_gracefully(self):
        import http_client as hc
        port = harness.free_tcp_port()
        extra = 'http: { enabled = true; listen = ["127.0.0.1:%d"]; };' % port
        with Shoald(socket_workers=1, swarm_workers=1, extra=extra) as d:
            h = info_hash("http-roll")
            idle = hc.RawHttp("127.0.0.1", port)          # keep-alive, idle during the roll
            r = idle.request(hc.announce_target(h, hc.peer_id(1), 6001, left=5))
            self.assertEqual(r.status, 200)
            old = d.worker_pid("socket", 0)
            rc, out = d.ctl("restart", "workers")
            self.assertEqual(rc, 0, out)
            ok = refused = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:          # announces keep working during the roll
                try:
                    with hc.RawHttp("127.0.0.1", port) as c:
                        r = c.request(hc.announce_target(h, hc.peer_id(2), 6002 + ok % 50, left=5))
                        self.assertEqual(r.status, 200)
                        self.assertIn(b"complete", r.bencoded())
                        ok += 1
                except ConnectionRefusedError:
                    refused += 1
                if "rolling restart done" in d.log() and ok > 20:
                    break
            self.assertIn("rolling restart done: 2 workers replaced", d.log())
            self.assertEqual(refused, 0)
            self.assertNotEqual(d.worker_pid("socket", 0), old)
            # The idle connection is among those closed; announce connections the loop opened
            # while the old worker still accepted may be between requests too, so count >= 1.
            m = re.search(r"closed (\d+) idle keep-alive connections", d.log())
            self.assertIsNotNone(m, "the draining worker did not report closing idle connections")
            self.assertGreaterEqual(int(m.group(1)), 1)
            # The idle connection was closed by the old worker with a FIN, not reset: reading
            # gives a clean end of stream.
            idle.sock.settimeout(5)
            self.assertEqual(idle.sock.recv(1), b"")
            idle.close()


class SupervisorDeathTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_workers_exit_within_a_second_of_supervisor_kill9(self):
        d = Shoald(socket_workers=2, swarm_workers=2).start()
        try:
            workers = list(d.workers().values())
            self.assertEqual(len(workers), 4)
            os.kill(d.pid, signal.SIGKILL)
            d.proc.wait(5)
            t0 = time.monotonic()
            wait_for(lambda: not any(harness.pid_alive(p) for p in workers), 1.0,
                     what="every worker gone within 1 s of the supervisor's death")
            print("workers gone %.0f ms after the supervisor" % ((time.monotonic() - t0) * 1000))
        finally:
            d.stop()
            d._cleanup_dir()


class KeptStateTest(unittest.TestCase):
    """Swarms live in shared memory, so they outlive the supervisor: a new shoald with the same
    configuration re-attaches them (after kill -9 or a clean stop), unless --fresh or the
    layout differs."""

    def setUp(self):
        harness.need_shoald()

    def successor(self, d, args=()):
        n = Shoald(socket_workers=d.socket_workers, swarm_workers=d.swarm_workers)
        n.shm_name, n.port, n.args = d.shm_name, d.port, list(args)
        return n

    def announce_some(self, d, torrents=10, peers=5):
        hashes = [info_hash("kept", d.shm_name, i) for i in range(torrents)]
        with d.client() as c:
            for h in hashes:
                for p in range(peers):
                    c.announce(h, 20000 + p, left=0 if p == 0 else 3, event=bep15.EVENT_STARTED)
        return hashes

    def scrape_all(self, d, hashes):
        with d.client() as c:
            return c.scrape(hashes)

    def test_second_shoald_on_the_same_shm_name_is_refused(self):
        # Issue 12: a second shoald on the same configuration used to SIGKILL the first one's
        # workers, bind anyway (SO_REUSEPORT), delete its stats socket and share its rings.
        with Shoald(socket_workers=1, swarm_workers=2) as d:
            hashes = self.announce_some(d)
            workers = d.workers()
            r = subprocess.run([harness.SHOALD, "-c", d.conf_path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=15)
            out = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, out)
            self.assertIn('another shoald (pid %d) is running on shm_name "%s"' % (d.pid, d.shm_name), out)
            self.assertNotIn("re-attach", out)
            # The first one goes on untouched: same workers, stats socket, swarms.
            self.assertEqual(d.workers(), workers)
            self.assertTrue(os.path.exists(d.stats_socket))
            rc, info = d.ctl("show", "info")
            self.assertEqual(rc, 0, info)
            self.assertEqual(self.scrape_all(d, hashes), [(1, 0, 4)] * 10)
            # --remove-shm refuses too, naming the supervisor.
            r = subprocess.run([harness.SHOALD, "--remove-shm", "-c", d.conf_path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=15)
            self.assertEqual(r.returncode, 1)
            self.assertIn("a shoald (pid %d) is running" % d.pid, r.stdout.decode())

    def test_live_stats_socket_of_another_daemon_is_never_unlinked(self):
        # Issue 12: a start on another shm_name but the same stats.socket path deleted the running
        # daemon's socket (no instance lock protects that path), leaving it without shoalctl.
        with Shoald() as d:
            other = Shoald()
            other.dir = tempfile.mkdtemp(prefix="shoaltest-")
            self.addCleanup(other._cleanup_dir)
            other.port = harness.free_udp_port()
            conf = os.path.join(other.dir, "shoal.conf")
            with open(conf, "w") as f:
                f.write(other.config_text().replace(other.stats_socket, d.stats_socket))
            r = subprocess.run([harness.SHOALD, "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=15)
            out = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, out)
            self.assertIn("stats socket %s is in use by another process" % d.stats_socket, out)
            self.assertEqual(d.ctl_json("show", "info")["pid"], d.pid)
            # A stale socket file (its daemon killed) is still replaced: the re-attach tests below
            # start on the socket path a kill -9 left behind.

    def test_new_shoald_reattaches_after_supervisor_kill9(self):
        d = Shoald(socket_workers=2, swarm_workers=2).start()
        try:
            hashes = self.announce_some(d)
            old = d.client()
            cid = old.connect()
            workers = list(d.workers().values())
            gens = {(w["role"], w["index"]): w["generation"] for w in d.ctl_json("show", "workers")["workers"]}
            os.kill(d.pid, signal.SIGKILL)
            d.proc.wait(5)
            wait_for(lambda: not any(harness.pid_alive(p) for p in workers), 2.0, what="old workers gone")
            n = self.successor(d).start()
            try:
                self.assertIn("re-attached the shared memory of a previous shoald: 10 torrents, 50 peers kept", n.log())
                # Generations go on from the previous shoald's (issue 12: they restarted at 1).
                for w in n.ctl_json("show", "workers")["workers"]:
                    self.assertEqual(w["generation"], gens[(w["role"], w["index"])] + 1, w)
                self.assertEqual(self.scrape_all(n, hashes), [(1, 0, 4)] * 10)
                with n.client() as c:
                    r = c.announce(hashes[3], 30000, left=7, numwant=50)
                self.assertEqual(sorted(p for _, p in r.peers), [20000, 20001, 20002, 20003, 20004])
                # connection ids survive too (the key lives in the control segment)
                self.assertEqual(old.scrape([hashes[0]], conn_id=cid), [(1, 0, 4)])
                old.close()
            finally:
                n.stop()
                n._cleanup_dir()
        finally:
            d.stop()
            d._cleanup_dir()

    def test_clean_stop_keeps_state_and_fresh_discards_it(self):
        d = Shoald().start()
        try:
            hashes = self.announce_some(d, torrents=2, peers=3)
            self.assertEqual(d.stop(), 0)
            self.assertIn("stopped; shared memory kept (2 torrents, 6 peers)", d.log())
            n = self.successor(d).start()
            try:
                self.assertEqual(self.scrape_all(n, hashes), [(1, 0, 2)] * 2)
            finally:
                self.assertEqual(n.stop(), 0)
            f = self.successor(d, ["--fresh"]).start()
            try:
                self.assertIn("--fresh: discarding", f.log())
                self.assertEqual(self.scrape_all(f, hashes), [(0, 0, 0)] * 2)
            finally:
                f.stop()
        finally:
            d.stop()
            d._cleanup_dir()

    def test_other_layout_version_starts_fresh(self):
        d = Shoald().start()
        try:
            hashes = self.announce_some(d, torrents=1, peers=2)
            self.assertEqual(d.stop(), 0)
            with open("/dev/shm/%s-control" % d.shm_name, "r+b") as f:   # SegmentHeader.layout_version
                f.seek(8)
                f.write((999).to_bytes(4, "little"))
            n = self.successor(d).start()
            try:
                self.assertRegex(n.log(), r"cannot re-attach .*layout version 999, this binary uses \d+\); starting fresh")
                self.assertEqual(self.scrape_all(n, hashes), [(0, 0, 0)])
            finally:
                n.stop()
        finally:
            d.stop()
            d._cleanup_dir()


if __name__ == "__main__":
    harness.main()
