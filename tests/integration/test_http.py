"""HTTP and HTTPS tracker (issue 4) against a real shoald on loopback: protocol replies checked with
curl and raw sockets, scrape counts, a table of malformed requests (each answered with the right
status or failure reason, or closed, while others are served), keep-alive with pipelining,
HTTP/1.0, the connection limit, the trusted-proxy header, a client that closes while its request
waits for a stopped swarm worker ("try again" after 2 s, no crash), and a certificate swap on
SIGHUP seen by new connections while an open keep-alive connection keeps working.
Full file transfers with real clients are in test_http_transfer.py.

Every wait is bounded; only 127.0.0.0/8 and ::1 are used; only processes started here (shoald,
curl, openssl) are signalled, by PID, and only through the harness.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from http_client import (RawHttp, announce_target, bdecode, compact_peers, config_block, get,  # noqa: E402
                         free_tcp_port_both, make_cert, pem_fingerprint, peer_id, scrape_target,
                         served_fingerprint, tls_client_context)

IH_A = harness.info_hash("http", "a")
IH_B = harness.info_hash("http", "b")


class HttpTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.tmp = tempfile.mkdtemp(prefix="shoal-http-")
        self.d = None
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        if self.d is not None:
            failed = not getattr(self._outcome, "success", True)
            self.d.__exit__(AssertionError if failed else None, None, None)
        if not harness.KEEP:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, http=None, https=False, tracker=None, socket_workers=1):
        """Starts shoald with HTTP (and HTTPS when asked) on fresh ports of 127.0.0.1 and ::1."""
        self.port = free_tcp_port_both()
        extra = config_block("http", self.port, **dict({"idle_timeout": 5}, **(http or {})))
        if https:
            self.sport = free_tcp_port_both()
            self.cert_dir = os.path.join(self.tmp, "live")
            self.cert, self.key = make_cert(self.cert_dir, "first")
            extra += config_block("https", self.sport, certificate=self.cert, private_key=self.key)
        self.d = harness.Shoald(socket_workers=socket_workers, swarm_workers=2, extra=extra,
                                tracker=tracker).start()
        return self.d

    def conn(self, host="127.0.0.1", source=None, **kw):
        return RawHttp(host, self.port, source=source, **kw)

    def announce(self, ih, n, port, source=None, host="127.0.0.1", **kw):
        with self.conn(host=host, source=source) as c:
            r = c.request(announce_target(ih, peer_id(n), port, **kw))
        self.assertEqual(r.status, 200, r)
        return r.bencoded()

    def curl(self, target, host="127.0.0.1"):
        url = "http://%s:%d%s" % (host if ":" not in host else "[%s]" % host, self.port, target)
        r = subprocess.run(["curl", "-s", "-g", "--max-time", "5", url], stdout=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 0, "curl %s failed" % url)
        return bdecode(r.stdout)

    # ------------------------------------------------------------------ connection floods

    def test_one_source_cannot_take_every_connection(self):
        # Issue 12: 16 idle connections from one address (max_connections 16) locked every other
        # client out. Now a source gets at most max_connections_per_source.
        self.start(http={"max_connections": 16, "max_connections_per_source": 6, "idle_timeout": 30,
                         "first_request_timeout": 30})
        socks = []
        try:
            for _ in range(12):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=("127.0.0.5", 0))
                socks.append(s)
            def closed_now():
                n = 0
                for s in socks:
                    s.setblocking(False)
                    try:
                        n += s.recv(1) == b""
                    except BlockingIOError:
                        pass  # open, nothing to read
                    except OSError:
                        n += 1
                return n
            harness.wait_for(lambda: closed_now() >= 6, 5, what="connections over the per-source limit closed")
            time.sleep(0.3)  # and no more than those
            closed = closed_now()
            self.assertEqual(closed, 6, "connections beyond the per-source limit must be closed, the rest kept")
            # Another client is still served while the first source holds its connections.
            r = self.announce(IH_A, 9, 7009, source="127.0.0.6", left=5)
            self.assertIn(b"interval", r)
            self.assertGreaterEqual(self.d.counters()["http_connections_refused"], 6)
        finally:
            for s in socks:
                s.close()

    def test_a_source_at_its_limit_loses_its_oldest_idle_connection_not_the_new_one(self):
        # Issue 12: at http.max_connections_per_source the new connection was refused, so a
        # source whose idle keep-alive connections filled its share could not send a request.
        # Now its oldest idle connection makes room; a connection with a request in progress stays.
        self.start(http={"max_connections_per_source": 3, "idle_timeout": 30, "first_request_timeout": 30})
        src = "127.0.0.7"
        old = []
        try:
            for n in range(3):  # three keep-alive connections, idle after one announce each
                c = self.conn(source=src)
                r = c.request(announce_target(IH_A, peer_id(20 + n), 7020 + n, left=5))
                self.assertEqual(r.status, 200)
                old.append(c)
            # Part of a request: the second-oldest is busy, not idle.
            pending = get(announce_target(IH_A, peer_id(21), 7021, left=5))
            old[1].send(pending[:20])
            time.sleep(0.2)
            old.append(self.conn(source=src))  # a fourth connection is served (and kept open)
            self.assertEqual(old[3].request(announce_target(IH_A, peer_id(30), 7030, left=5)).status, 200)
            with self.assertRaises(ConnectionError, msg="the oldest idle connection must be closed"):
                old[0].request(announce_target(IH_A, peer_id(20), 7020, left=5))
            # A fifth closes old[2], now the oldest idle one; the busy one stays and is served.
            r = self.announce(IH_A, 31, 7031, source=src, left=5)
            self.assertIn(b"interval", r)
            with self.assertRaises(ConnectionError, msg="the oldest idle connection must be closed"):
                old[2].request(announce_target(IH_A, peer_id(22), 7022, left=5))
            old[1].send(pending[20:])
            self.assertEqual(old[1].read_response().status, 200)
            self.assertGreaterEqual(self.d.counters()["http_connections_refused"], 2)
        finally:
            for c in old:
                c.close()

    def test_a_connection_that_sends_nothing_is_closed_after_first_request_timeout(self):
        self.start(http={"idle_timeout": 30, "first_request_timeout": 1})
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        t0 = time.monotonic()
        try:
            self.assertEqual(s.recv(1), b"")
            took = time.monotonic() - t0
        finally:
            s.close()
        self.assertLess(took, 3.5, "closed after %.1f s; first_request_timeout is 1 s" % took)
        self.assertGreater(took, 0.8)

    # ------------------------------------------------------------------ replies and scrape

    def test_announce_replies_and_scrape_counts_with_curl(self):
        self.start()
        seed = self.announce(IH_A, 1, 7001, source="127.0.0.2", left=0, event="started")
        self.assertEqual(seed[b"interval"], 60)
        self.assertEqual(seed[b"min interval"], 30)
        self.assertEqual(seed[b"peers"], b"")
        leech = self.announce(IH_A, 2, 7002, source="127.0.0.3", left=5, event="started")
        self.assertEqual(compact_peers(leech[b"peers"]), [("127.0.0.2", 7001)])
        self.assertEqual((leech[b"complete"], leech[b"incomplete"]), (1, 1))
        # BEP 7: an IPv6 asker gets IPv6 peers in peers6; IPv4 peers are another swarm.
        v6a = self.announce(IH_A, 3, 7003, host="::1", left=5)
        self.assertEqual(v6a[b"peers"], b"")
        self.assertNotIn(b"peers6", v6a)
        v6b = self.announce(IH_A, 4, 7004, host="::1", left=5)
        self.assertEqual(compact_peers(v6b[b"peers6"], 6), [("::1", 7003)])
        # compact=0: the dictionary list (many clients still ask for it).
        d = self.announce(IH_A, 5, 7005, source="127.0.0.4", left=5, compact=0)
        self.assertEqual(sorted((p[b"ip"], p[b"port"]) for p in d[b"peers"]),
                         [(b"127.0.0.2", 7001), (b"127.0.0.3", 7002)])
        # A seeder completing, and a UDP peer in the same swarm: one swarm for both protocols.
        self.announce(IH_A, 2, 7002, source="127.0.0.3", left=0, event="completed")
        with self.d.client(source="127.0.0.6") as u:
            u.announce(IH_B, port=7100, left=0, event=bep15.EVENT_STARTED)
        files = self.curl(scrape_target(IH_A, IH_B, harness.info_hash("unknown")))[b"files"]
        self.assertEqual(files[IH_A], {b"complete": 2, b"downloaded": 1, b"incomplete": 3})
        self.assertEqual(files[IH_B], {b"complete": 1, b"downloaded": 0, b"incomplete": 0})
        self.assertEqual(files[harness.info_hash("unknown")][b"complete"], 0)
        self.assertEqual(self.curl(scrape_target(IH_A), host="::1")[b"files"][IH_A][b"complete"], 2)
        self.assertEqual(self.curl("/scrape")[b"failure reason"], b"full scrape is not allowed")
        # stopped removes the peer.
        self.announce(IH_A, 1, 7001, source="127.0.0.2", left=0, event="stopped")
        self.assertEqual(self.curl(scrape_target(IH_A))[b"files"][IH_A][b"complete"], 1)
        c = self.d.counters()
        self.assertGreaterEqual(c["http_announce"], 7)
        self.assertGreaterEqual(c["http_scrape"], 3)

    # ------------------------------------------------------------------ bad input

    def test_bad_input_table(self):
        self.start(http={"idle_timeout": 3, "max_header_bytes": 4096},
                   tracker={"max_numwant": 5, "default_numwant": 3})
        for n in range(8):  # a swarm bigger than max_numwant
            with self.d.client(source="127.0.1.%d" % (n + 1)) as u:
                u.announce(IH_B, port=8000 + n, left=0, event=bep15.EVENT_STARTED)
        ok = announce_target(IH_A, peer_id(1), 6881)
        cases = [
            # (name, bytes to send, expected: status int, b"failure text", or "closed")
            ("missing info_hash", get("/announce?peer_id=%s&port=1" % ("x" * 20)), b"missing info_hash"),
            ("info_hash 19 bytes", get("/announce?info_hash=%s&peer_id=%s&port=1" % ("a" * 19, "x" * 20)),
             b"info_hash must be 20 bytes"),
            ("bad escape", get(ok.replace("info_hash=%", "info_hash=%Z")), b"info_hash must be 20 bytes"),
            ("port 0", get(announce_target(IH_A, peer_id(1), 0)), b"port must be a number from 1 to 65535"),
            ("unknown path", get("/index.html"), 404),
            ("POST", b"POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501),
            ("POST with a body", b"POST /announce HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 413),
            ("binary garbage", bytes(range(256)) * 4 + b"\r\n\r\n", 400),
            ("no CRLF, 8 KiB", b"G" * 8192, 400),
            ("64 KiB header", get(ok, headers=["X-Big: " + "b" * 65536]), 400),
            ("truncated then closed", get(ok)[:40], "closed"),
        ]
        for name, data, want in cases:
            with self.subTest(case=name), self.conn(source="127.0.0.9") as c:
                try:
                    c.send(data)
                    if want == "closed":
                        c.sock.shutdown(1)   # half-close: the request can never complete
                        self.assertIsNotNone(c.wait_closed(5), "server kept the connection")
                        continue
                    r = c.read_response()
                except (ConnectionError, OSError) as e:
                    # The 64 KiB / garbage senders may see the 400 overtaken by a reset from the
                    # unread bytes; being closed is acceptable there, serving them is not.
                    self.assertIn(want, (400,), "%s: connection failed: %s" % (name, e))
                    continue
                if isinstance(want, bytes):
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.bencoded(), {b"failure reason": want})
                else:
                    self.assertEqual(r.status, want, r)
                    if want in (400, 413):
                        self.assertIsNotNone(c.wait_closed(3), "%s: not closed after 400" % name)
        # Huge numwant: capped at tracker.max_numwant; absent or negative means
        # tracker.default_numwant; 0 means no peers (counts only).
        for numwant, peers in (("99999999999999999999", 5), ("-5", 3), (None, 3), ("0", 0), ("4", 4)):
            r = self.announce(IH_B, 50, 9000, source="127.0.0.10", left=1, numwant=numwant)
            self.assertEqual(len(compact_peers(r[b"peers"])), peers, numwant)
        self.d.assert_alive()
        self.assertGreaterEqual(self.d.counter("http_failure"), 4)
        self.assertGreaterEqual(self.d.counter("http_not_found"), 1)

    def test_slowloris_is_closed_while_others_are_served(self):
        self.start(http={"idle_timeout": 3})
        slow = [self.conn(source="127.0.0.%d" % (20 + k)) for k in range(5)]
        data = get(announce_target(IH_A, peer_id(9), 6881))
        served = 0
        closed_at = [None] * len(slow)
        t0 = time.monotonic()
        try:
            for i in range(len(data)):
                if time.monotonic() - t0 > 8:
                    break
                for k, s in enumerate(slow):
                    if closed_at[k] is None:
                        try:
                            s.send(data[i:i + 1])
                        except OSError:
                            closed_at[k] = time.monotonic() - s.connected_at
                        else:
                            closed_at[k] = s.wait_closed(0.001)
                # Meanwhile a normal client is served promptly.
                if i % 3 == 0:
                    t = time.monotonic()
                    r = self.announce(IH_A, 10, 6000 + i, source="127.0.0.30", left=1)
                    self.assertIn(b"peers", r)
                    self.assertLess(time.monotonic() - t, 0.5)
                    served += 1
                if all(x is not None for x in closed_at):
                    break
                time.sleep(0.3)
        finally:
            for s in slow:
                s.close()
        self.assertGreater(served, 3)
        for k, at in enumerate(closed_at):
            self.assertIsNotNone(at, "slow connection %d still open after 8 s" % k)
            self.assertLess(at, 3 + 1.5, "slow connection %d closed late: %.1fs" % (k, at))
            self.assertGreater(at, 2.5, "slow connection %d closed early: %.1fs" % (k, at))

    # ------------------------------------------------------------------ HTTP/1.x connections

    def test_keepalive_pipelining_in_order(self):
        self.start()
        with self.conn(source="127.0.0.2") as c:
            c.send(get(announce_target(IH_A, peer_id(1), 7001, left=0)) +
                   get(scrape_target(IH_A)) +
                   get("/announce?info_hash=short") +
                   get(announce_target(IH_A, peer_id(1), 7001, left=0, compact=0)))
            r1, r2, r3, r4 = (c.read_response() for _ in range(4))
            self.assertEqual(r1.bencoded()[b"complete"], 1)
            self.assertEqual(r2.bencoded()[b"files"][IH_A][b"complete"], 1)
            self.assertEqual(r3.bencoded(), {b"failure reason": b"info_hash must be 20 bytes"})
            self.assertEqual(r4.bencoded()[b"peers"], [])
            time.sleep(1.0)  # idle but within idle_timeout: the connection is reused
            self.assertEqual(c.request(scrape_target(IH_A)).status, 200)
            self.assertIsNone(c.wait_closed(0.2))

    def test_a_long_pipelined_batch_is_answered_in_order_then_closed_as_asked(self):
        # More requests in one send than the front-end keeps in flight per connection (32): the
        # rest wait in its input and are answered after, still in request order. Each announce
        # adds one leecher to the same swarm, so reply i counts i + 1 leechers. The last request
        # asks to close: it is answered, then the connection closes and the bytes after it
        # (one more request) are never answered.
        self.start()
        n = 40
        batch = b"".join(get(announce_target(IH_B, peer_id(200 + i), 8200 + i, left=1, numwant=0))
                         for i in range(n - 1))
        batch += get(scrape_target(IH_B), headers=["Connection: close"])
        batch += get(scrape_target(IH_B))
        with self.conn(source="127.0.0.3") as c:
            c.send(batch)
            got = [c.read_response() for _ in range(n)]
            self.assertEqual([r.bencoded()[b"incomplete"] for r in got[:-1]], list(range(1, n)))
            self.assertEqual(got[-1].bencoded()[b"files"][IH_B][b"incomplete"], n - 1)
            self.assertEqual(got[-1].headers.get("connection", "").lower(), "close")
            self.assertIsNotNone(c.wait_closed(2), "Connection: close must be honoured")
            self.assertEqual(c.buf, b"", "nothing may be answered after Connection: close")
        self.d.assert_alive()

    def test_http_1_0(self):
        self.start()
        with self.conn() as c:
            r = c.request(announce_target(IH_A, peer_id(1), 7001), version="1.0")
            self.assertEqual((r.version, r.status), ("HTTP/1.0", 200))
            self.assertIn(b"interval", r.bencoded())
            self.assertIsNotNone(c.wait_closed(2), "HTTP/1.0 without keep-alive must be closed")
        with self.conn() as c:
            r = c.request(scrape_target(IH_A), version="1.0", headers=["Connection: keep-alive"])
            self.assertEqual(r.headers.get("connection", "").lower(), "keep-alive")
            r = c.request(scrape_target(IH_A), version="1.0", headers=["Connection: keep-alive"])
            self.assertEqual(r.bencoded()[b"files"][IH_A][b"complete"], 1)

    def test_connection_limit(self):
        self.start(http={"max_connections": 16, "idle_timeout": 30})
        conns = [self.conn(source="127.0.0.2") for _ in range(20)]
        try:
            closed = [c for c in conns if c.wait_closed(0.3) is not None]
            self.assertEqual(len(closed), 4, "connections beyond the limit must be closed at once")
            self.assertEqual(self.d.counter("http_connections_refused"), 4)
            open_ = [c for c in conns if c not in closed]
            self.assertEqual(open_[0].request(scrape_target(IH_A)).status, 200)
        finally:
            for c in conns:
                c.close()
        harness.wait_for(lambda: self._one_request_ok(), 3, what="a free connection slot")

    def _one_request_ok(self):
        try:
            with self.conn() as c:
                return c.request(scrape_target(IH_A)).status == 200
        except (ConnectionError, OSError):
            return False

    # ------------------------------------------------------------------ proxies

    def test_trusted_proxy_header(self):
        self.start(http={"real_ip_header": "X-Forwarded-For", "trusted_proxies": '[ "127.0.0.1" ]'})
        xff = ["X-Forwarded-For: 6.6.6.6, 198.51.100.7"]
        with self.conn(source="127.0.0.1") as c:  # the proxy
            r = c.request(announce_target(IH_A, peer_id(1), 7001, extra="&ip=9.9.9.9"), headers=xff)
            self.assertEqual(r.status, 200, r)
            r = c.request(announce_target(IH_A, peer_id(2), 7002))  # header missing
            self.assertEqual(r.bencoded(), {b"failure reason":
                                            b"missing X-Forwarded-For header from a trusted proxy"})
            r = c.request(announce_target(IH_A, peer_id(2), 7002), headers=["X-Forwarded-For: nonsense"])
            self.assertEqual(r.bencoded(), {b"failure reason":
                                            b"malformed X-Forwarded-For header from a trusted proxy"})
        with self.conn(source="127.0.0.5") as c:  # not a proxy: its header is ignored
            r = c.request(announce_target(IH_A, peer_id(3), 7003, left=1), headers=["X-Forwarded-For: 203.0.113.1"])
            peers = compact_peers(r.bencoded()[b"peers"])
        self.assertEqual(peers, [("198.51.100.7", 7001)])
        r = self.announce(IH_A, 4, 7004, source="127.0.0.6", left=1)
        self.assertEqual(sorted(compact_peers(r[b"peers"])), [("127.0.0.5", 7003), ("198.51.100.7", 7001)])
        self.d.assert_alive()

    # ------------------------------------------------------------------ in-flight requests

    def test_client_closes_while_in_flight_and_timeout(self):
        self.start()
        socket_pid = self.d.worker_pid("socket", 0)
        self.assertEqual(self.announce(IH_A, 1, 7001)[b"interval"], 60)
        stopped = [self.d.kill_worker("swarm", w, signal.SIGSTOP) for w in (0, 1)]
        try:
            quitters = []
            for k in range(20):  # requests in flight whose clients go away
                c = self.conn(source="127.0.0.%d" % (40 + k))
                c.send(get(announce_target(IH_A, peer_id(100 + k), 7100 + k)) + get(scrape_target(IH_A, IH_B)))
                quitters.append(c)
            time.sleep(0.2)
            for c in quitters:
                c.close()
            with self.conn(source="127.0.0.3", timeout=6) as c:
                t = time.monotonic()
                r = c.request(announce_target(IH_A, peer_id(2), 7002))
                waited = time.monotonic() - t
            self.assertEqual(r.bencoded(), {b"failure reason": b"try again"})
            self.assertTrue(1.5 <= waited <= 4.0, "try again after %.2fs" % waited)
        finally:
            for w, pid in zip((0, 1), stopped):
                os.kill(pid, signal.SIGCONT)   # pid was checked to be our shoald's child
        # Late responses for the gone requests are ignored; the worker did not crash.
        time.sleep(0.5)
        self.d.assert_alive()
        self.assertEqual(self.d.worker_pid("socket", 0), socket_pid)
        self.assertIn(b"interval", self.announce(IH_A, 3, 7003))
        self.assertGreaterEqual(self.d.counter("http_timeouts"), 21)

    # ------------------------------------------------------------------ TLS

    def test_https_and_certificate_reload_on_sighup(self):
        self.start(https=True)
        first = pem_fingerprint(self.cert)
        self.assertEqual(served_fingerprint(self.sport), first)
        tls = tls_client_context(self.cert)
        keep = RawHttp("127.0.0.1", self.sport, tls=tls)
        try:
            r = keep.request(announce_target(IH_A, peer_id(1), 7001))
            self.assertEqual(r.bencoded()[b"complete"], 1)
            # A new certificate in the same files, then SIGHUP to shoald (the supervisor).
            cert2, key2 = make_cert(os.path.join(self.tmp, "next"), "second")
            shutil.copy(cert2, self.cert)
            shutil.copy(key2, self.key)
            second = pem_fingerprint(self.cert)
            self.assertNotEqual(first, second)
            os.kill(self.d.pid, signal.SIGHUP)
            harness.wait_for(lambda: "TLS certificate reloaded" in self.d.log(), 5, what="reload log line")
            self.assertEqual(served_fingerprint(self.sport), second)
            self.assertEqual(served_fingerprint(self.sport, host="::1"), second)
            # The connection opened before the reload keeps working, on its old certificate.
            r = keep.request(scrape_target(IH_A))
            self.assertEqual(r.bencoded()[b"files"][IH_A][b"complete"], 1)
            import hashlib
            self.assertEqual(hashlib.sha256(keep.sock.getpeercert(binary_form=True)).hexdigest(), first)
            # A broken certificate is refused and the current one stays.
            with open(self.cert, "w") as f:
                f.write("broken\n")
            os.kill(self.d.pid, signal.SIGHUP)
            harness.wait_for(lambda: "TLS certificate reload failed" in self.d.log(), 5, what="failure log line")
            self.assertEqual(served_fingerprint(self.sport), second)
            self.assertEqual(keep.request(scrape_target(IH_A)).status, 200)
        finally:
            keep.close()
        # TLS handshake failures are counted; the worker survives them.
        raw = RawHttp("127.0.0.1", self.sport)
        raw.send(get("/announce"))   # plain HTTP on the TLS port
        self.assertIsNotNone(raw.wait_closed(3))
        raw.close()
        self.d.wait_counter("tls_handshake_failures", lambda v: v >= 1)
        self.d.assert_alive()


if __name__ == "__main__":
    harness.main()
