"""The access list (issue 5) against a real shoald over BEP 15: allow and deny modes, SIGUSR1
reloads that take effect without restarting workers (an allowed hash becomes refused and back),
a broken list on reload keeps the previous one and the log names the line, a bad list at start
stops shoald with exit 1 naming the line (and `shoald -t` says the same), and the reload of a
1,000,000-hash list: time to take effect and the segment's memory are measured and printed.
Loopback only; every wait is bounded; only the shoald started here is signalled, by PID."""
import os
import signal
import subprocess
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402

NOT_ALLOWED = "info_hash not allowed"
A, B, C, D, E = (harness.info_hash("acl", x) for x in "ABCDE")


def listing(hashes, comment="test list"):
    """File text for `hashes`: a comment, upper and lower case, a blank line."""
    lines = ["# " + comment]
    for i, h in enumerate(hashes):
        lines.append(h.hex().upper() if i % 2 else "  " + h.hex())
    return "\n".join(lines) + "\n\n"


def access_config(mode, max_entries=1024):
    return ('access_list:\n{\n  mode = "%s";\n  path = "@DIR@/list.txt";\n  max_entries = %d;\n};\n'
            % (mode, max_entries))


def access_info(d):
    """The access segment's fields from shm_inspect (name -> int)."""
    r = subprocess.run([harness.SHM_INSPECT, "--name", d.shm_name, "access"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        raise AssertionError("shm_inspect access failed: %s" % r.stderr.decode())
    return {k: int(v) for k, v in (line.split() for line in r.stdout.decode().splitlines())}


def reload(d, text, expect, timeout=10.0):
    """Writes list.txt, sends SIGUSR1 to our shoald, waits for one more log line containing
    `expect`; returns seconds from the signal to that line."""
    d.write_file("list.txt", text)
    before = d.log().count(expect)
    t0 = time.monotonic()
    d.assert_alive()
    os.kill(d.pid, signal.SIGUSR1)
    harness.wait_for(lambda: d.log().count(expect) > before, timeout, interval=0.01,
                     what="log line %r after SIGUSR1" % expect)
    return time.monotonic() - t0


class AccessListTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def clients(self, d, n=6):
        """Clients with distinct source ports, so both socket workers get some of them."""
        cs = [d.client(timeout=0.5, attempts=4) for _ in range(n)]
        for c in cs:
            self.addCleanup(c.close)
        return cs

    def assert_allowed(self, clients, h, port=6881):
        for c in clients:
            reply = c.announce(h, port=port)
            self.assertIsInstance(reply, bep15.AnnounceReply)

    def assert_refused(self, clients, h):
        for c in clients:
            with self.assertRaises(bep15.TrackerError) as cm:
                c.announce(h, port=6881)
            self.assertEqual(cm.exception.message, NOT_ALLOWED)

    # -------------------------------------------------------------------------------------
    def test_allow_mode_reload_back_and_forth_and_broken_list(self):
        with harness.Shoald(socket_workers=2, swarm_workers=2, extra=access_config("allow"),
                            files={"list.txt": listing([A, B])}) as d:
            self.assertIn("access list (allow mode): 2 hashes from", d.log())
            cs = self.clients(d)
            self.assert_allowed(cs, A)
            self.assert_refused(cs, C)
            denied = d.wait_counter("access_denied", lambda v: v >= len(cs))
            # Scrape: a refused hash is answered as an unknown torrent, the others normally.
            sc = cs[0].scrape([A, C, B])   # (seeders, completed, leechers) each
            self.assertGreaterEqual(sc[0][2], 1, "A's leechers")
            self.assertEqual(sc[1:], [(0, 0, 0), (0, 0, 0)])   # C refused; B allowed but unknown
            self.assertEqual(cs[0].scrape([C]), [(0, 0, 0)])
            d.wait_counter("access_denied", lambda v: v >= denied + 2)

            # Reload: A becomes refused, C allowed; then back.
            secs = reload(d, listing([B, C]), "access list reloaded: 2 hashes in")
            self.assert_refused(cs, A)
            self.assert_allowed(cs, C)
            reload(d, listing([A, B]), "access list reloaded: 2 hashes in")
            self.assert_allowed(cs, A)
            self.assert_refused(cs, C)

            # A broken list keeps the previous one; the log names the file and line.
            bad = listing([A]) + B.hex()[:39] + "\n"
            reload(d, bad, "list.txt:4: expected 40 hex characters, got 39; keeping previous list (2 hashes)")
            self.assertIn(os.path.join(d.dir, "list.txt") + ":4: expected 40", d.log())
            self.assert_allowed(cs, A)
            self.assert_allowed(cs, B)
            self.assert_refused(cs, C)
            reload(d, "zz\n", "list.txt:1: not a hex digit 'z' at column 1; keeping previous list")
            info = access_info(d)
            self.assertEqual((info["reloads"], info["reload_errors"], info["active_count"]), (2, 2, 2))

            # A restarted socket worker acks the current list; reloads still go through.
            old = d.kill_worker("socket", 1)
            d.wait_worker_replaced("socket", 1, old)
            reload(d, listing([C]), "access list reloaded: 1 hashes in")
            self.assert_refused(cs, A)
            self.assert_allowed(cs, C)
            d.assert_alive()
            print("\n  small list: SIGUSR1 to 'reloaded' log line in %.0f ms" % (secs * 1000))

    def test_deny_mode(self):
        with harness.Shoald(socket_workers=1, swarm_workers=2, extra=access_config("deny"),
                            files={"list.txt": listing([D])}) as d:
            cs = self.clients(d, 2)
            self.assert_refused(cs, D)
            self.assert_allowed(cs, E)
            sc = cs[0].scrape([D, E])
            self.assertEqual(sc[0], (0, 0, 0))
            self.assertGreaterEqual(sc[1][2], 1, "E's leechers")
            reload(d, listing([E]), "access list reloaded: 1 hashes in")
            self.assert_allowed(cs, D)
            self.assert_refused(cs, E)

    def test_reload_waits_for_every_socket_worker_to_ack(self):
        with harness.Shoald(socket_workers=2, swarm_workers=1, extra=access_config("allow"),
                            files={"list.txt": listing([A])}) as d:
            cs = self.clients(d, 4)
            # Back to back: the second reload finds the workers still on the old generation and
            # publishes from the timer once they have acked (within their 100 ms tick).
            reload(d, listing([B]), "access list reloaded: 1 hashes in")
            reload(d, listing([C, D]), "access list reloaded: 2 hashes in")
            self.assert_refused(cs, A)
            self.assert_refused(cs, B)
            self.assert_allowed(cs, C)
            # A worker that cannot ack (SIGSTOPped) holds the next-but-one reload back: warned
            # about, retried, never overwritten; it goes through once the worker runs again.
            gen = access_info(d)["generation"]
            harness.wait_for(lambda: all(v == gen for k, v in access_info(d).items() if k.startswith("ack_socket_")),
                             3.0, what="both socket workers to ack generation %d" % gen)
            pid = d.kill_worker("socket", 0, signal.SIGSTOP)
            try:
                reload(d, listing([D]), "access list reloaded: 1 hashes in")   # gen+1: all had acked gen
                os.kill(d.pid, signal.SIGUSR1)   # the same file again: must wait for worker 0
                warn = "socket worker 0 (pid %d) still acks generation %d, not %d" % (pid, gen, gen + 1)
                harness.wait_for(lambda: warn in d.log(), 5.0, what="the warning %r" % warn)
                info = access_info(d)
                self.assertEqual((info["generation"], info["reloads"]), (gen + 1, 3))
            finally:
                os.kill(pid, signal.SIGCONT)
            harness.wait_for(lambda: access_info(d)["generation"] == gen + 2, 3.0,
                             what="the held-back reload to go through after SIGCONT")
            self.assert_allowed(cs, D)
            self.assert_refused(cs, C)
            d.assert_alive()

    def test_http_announce_and_scrape(self):
        from http_client import RawHttp, announce_target, config_block, free_tcp_port_both, peer_id, scrape_target
        port = free_tcp_port_both()
        extra = access_config("allow") + config_block("http", port, idle_timeout=5)
        with harness.Shoald(socket_workers=1, swarm_workers=2, extra=extra, files={"list.txt": listing([A, B])}) as d:
            def get(target):
                with RawHttp("127.0.0.1", port) as c:
                    r = c.request(target)
                self.assertEqual(r.status, 200, r)
                return r.bencoded()
            self.assertIn(b"interval", get(announce_target(A, peer_id(1), 7001, left=5)))
            self.assertEqual(get(announce_target(C, peer_id(2), 7002, left=5)), {b"failure reason": NOT_ALLOWED.encode()})
            files = get(scrape_target(A, C))[b"files"]
            self.assertEqual(files[A][b"incomplete"], 1)
            self.assertEqual(files[C], {b"complete": 0, b"downloaded": 0, b"incomplete": 0})
            self.assertEqual(get(scrape_target(C))[b"files"][C][b"complete"], 0)   # all refused: answered at once
            reload(d, listing([C]), "access list reloaded: 1 hashes in")
            # HTTP requests use the snapshot of the worker's last batch or 100 ms tick: bounded wait.
            harness.wait_for(lambda: get(announce_target(A, peer_id(1), 7001, left=5)) ==
                             {b"failure reason": NOT_ALLOWED.encode()}, 2.0, interval=0.02,
                             what="HTTP to see the reloaded list")
            self.assertIn(b"interval", get(announce_target(C, peer_id(2), 7002, left=5)))
            self.assertGreaterEqual(d.counter("access_denied"), 4)

    def test_bad_list_at_start_exits_1_naming_the_line(self):
        tmp = tempfile.mkdtemp(prefix="shoaltest-acl-")
        self.addCleanup(shutil.rmtree, tmp, True)
        shm_name = "shoaltest-%d-acl-bad" % os.getpid()
        lst = os.path.join(tmp, "list.txt")
        conf = os.path.join(tmp, "shoal.conf")
        cases = [
            (listing([A]) + "  " + B.hex()[:6] + "g" + B.hex()[7:] + "\n", 1024, ":4: not a hex digit 'g' at column 9"),
            (listing([A, B, C]), 2, ":5: more than max_entries (2) distinct hashes"),  # found at the end
        ]
        for text, max_entries, want in cases:
            with open(lst, "w") as f:
                f.write(text)
            with open(conf, "w") as f:
                f.write('shm_name = "%s";\nudp: { listen = [ "127.0.0.1:%d" ]; };\nstats: { socket = ""; };\n%s'
                        % (shm_name, harness.free_udp_port(),
                           access_config("allow", max_entries).replace("@DIR@", tmp)))
            r = subprocess.run([harness.SHOALD, "-t", "-c", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            out = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, out)
            self.assertIn(lst + want, out)
            r = subprocess.run([harness.SHOALD, "-c", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            out = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 1, out)
            self.assertIn("cannot start: " + lst + want, out)
            self.assertFalse([n for n in os.listdir("/dev/shm") if n.startswith(shm_name)],
                             "segments left behind")

    def test_reload_of_a_million_hashes(self):
        n = 1000000
        probe = harness.info_hash("acl", "probe")
        with harness.Shoald(socket_workers=2, swarm_workers=2, extra=access_config("allow", 1048576),
                            files={"list.txt": listing([A])}) as d:
            cs = self.clients(d, 4)
            self.assert_allowed(cs, A)
            self.assert_refused(cs, probe)
            rss0 = _rss_kb(d.pid)
            results = []
            for round_ in range(3):   # three flips: both buffers are written, acks awaited each time
                hashes = [os.urandom(20) for _ in range(n - 1)] + [probe]
                text = "\n".join(h.hex() for h in hashes) + "\n"
                d.write_file("list.txt", text)
                before = d.log().count("access list reloaded: %d hashes in" % n)
                t0 = time.monotonic()
                os.kill(d.pid, signal.SIGUSR1)
                # Bounded: the new list must be enforced within 10 s.
                harness.wait_for(lambda: _announce_ok(cs[round_ % len(cs)], probe), 10.0, interval=0.01,
                                 what="the probe hash to be allowed after the reload")
                effect = time.monotonic() - t0
                harness.wait_for(lambda: d.log().count("access list reloaded: %d hashes in" % n) > before,
                                 5.0, what="the reload log line")
                self.assert_refused(cs, A)
                self.assert_allowed(cs, probe)
                line = [l for l in d.log().splitlines() if "access list reloaded: %d" % n in l][-1]
                results.append((effect, line.split("supervisor: ")[-1]))
                if round_ < 2:   # back to the small list, so the next round is a flip again
                    reload(d, listing([A]), "access list reloaded: 1 hashes in")
            info = access_info(d)
            shm_path = "/dev/shm/%s-access" % d.shm_name
            st = os.stat(shm_path)
            rss1, hwm = _rss_kb(d.pid), _hwm_kb(d.pid)
            print("\n  1,000,000-hash list: %.1f MB file" % (len(text) / 1e6))
            for effect, line in results:
                print("  SIGUSR1 -> probe allowed in %.0f ms; log: %s" % (effect * 1000, line))
            print("  access segment: %d bytes (capacity %d, 2 x %d x 20 B + 128), %d bytes resident in /dev/shm"
                  % (info["segment_size"], info["capacity"], info["capacity"], st.st_blocks * 512))
            print("  supervisor RSS %d kB before, %d kB after, peak %d kB" % (rss0, rss1, hwm))
            self.assertEqual(info["active_count"], n)
            self.assertEqual(info["segment_size"], 128 + 2 * 1048576 * 20)
            for effect, _ in results:
                self.assertLess(effect, 10.0)
            d.assert_alive()


def _announce_ok(client, h):
    try:
        client.announce(h, port=6881)
        return True
    except bep15.TrackerError as e:
        if e.message != NOT_ALLOWED:
            raise
        return False


def _status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _rss_kb(pid):
    return _status_kb(pid, "VmRSS")


def _hwm_kb(pid):
    return _status_kb(pid, "VmHWM")


if __name__ == "__main__":
    harness.main()
