"""Floods from one source (issue 12, the attack table's "one address takes a worker's time"):
with udp.per_source_rate set, a source sending far above it gets at most its burst plus the rate
answered, the rest is dropped unanswered (no reply to amplify) and counted (udp_rate_limited,
shoal_errors_total{cause="rate_limited"}), while another source is served as usual, and the
flooding source is served again once it slows down. With http.per_source_accept_rate set, a
connect flood from one source (plain HTTP announces and bare TLS ClientHellos, which cost the
server a handshake and the sender nothing) gets at most its burst plus the rate of connections
served, the rest closed before any handshake and counted (http_accept_rate_limited,
shoal_errors_total{cause="accept_rate_limited"}), while announces from another source are all
answered, as fast as before the flood. The Prometheus endpoint bounds its
connections in number and time: a client trickling bytes (slowloris) is closed at the request
deadline, and many of them do not lock the scraper out. Loopback only; bounded; only our shoald."""
import multiprocessing
import os
import shutil
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from http_client import (RawHttp, announce_target, config_block, free_tcp_port_both, get, make_cert,  # noqa: E402
                         peer_id)

RATE, BURST = 20, 10
ACCEPT_RATE, ACCEPT_BURST = 100, 50
FLOOD_SECONDS = 3.0
FLOODER, VICTIM = "127.0.0.2", "127.0.0.9"


def blast(d, source, n):
    """Sends n BEP 15 connects from `source` as fast as possible; returns how many were answered."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.connect(d.addr4)
    for i in range(n):
        s.send(bep15.build_connect(i))
    s.settimeout(0.5)
    got = 0
    try:
        while True:
            data = s.recv(2048)
            if len(data) == 16 and struct.unpack(">i", data[:4])[0] == 0:
                got += 1
    except socket.timeout:
        pass
    s.close()
    return got


class FloodTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_one_source_over_its_rate_is_dropped_and_others_are_served(self):
        d = harness.Shoald()
        d.udp_opts = {"per_source_rate": RATE, "per_source_burst": BURST}
        with d:
            t0 = time.monotonic()
            got = blast(d, "127.0.0.7", 500)
            secs = time.monotonic() - t0
            self.assertGreaterEqual(got, BURST)
            self.assertLessEqual(got, BURST + int(RATE * secs) + 2, "answered %d of 500 in %.2f s" % (got, secs))
            harness.wait_for(lambda: d.counter("udp_rate_limited") >= 500 - got, 3, what="the drops to be counted")
            # Another source is not affected.
            self.assertEqual(blast(d, "127.0.0.8", BURST), BURST)
            with d.client(source="127.0.0.9") as c:
                r = c.announce(harness.info_hash("flood"), 6001, left=1, event=bep15.EVENT_STARTED)
                self.assertEqual(r.leechers, 1)
            # The flooding source, slowed down, is served again.
            time.sleep(1.0)
            self.assertGreaterEqual(blast(d, "127.0.0.7", 5), 5)
            print("\n  flood: %d of 500 connects answered in %.2f s at %d/s, burst %d" % (got, secs, RATE, BURST))


def client_hello():
    """The bytes of a TLS ClientHello (computed once: a flood replays them, so each connection
    costs the server a handshake and the sender only a connect and a send)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def connect_flood(port, sport, hello, seconds, results):
    """In a child process: new connections from FLOODER as fast as one process can, for
    `seconds`: odd ones send a ClientHello to the HTTPS port and close, even ones an announce to
    the HTTP port and wait for the answer or the close. Puts (attempts, announces answered)."""
    req = get(announce_target(harness.info_hash("flood", "http"), peer_id(99), 9099, left=5))
    attempts = served = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.bind((FLOODER, 0))
            tls = attempts % 2 == 1
            s.connect(("127.0.0.1", sport if tls else port))
            attempts += 1
            if tls:
                s.send(hello)
            else:
                s.sendall(req)
                served += s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
        finally:
            s.close()
    results.put((attempts, served))


def timed_announce(port, n):
    """ms for one announce from VICTIM over a new connection, or None if it was not answered.
    Paced (20 ms apart) to stay below ACCEPT_RATE itself."""
    time.sleep(0.02)
    t0 = time.monotonic()
    try:
        with RawHttp("127.0.0.1", port, source=VICTIM, timeout=5) as c:
            r = c.request(announce_target(harness.info_hash("flood", "victim"), peer_id(n % 40), 7100 + n % 40, left=5))
            return (time.monotonic() - t0) * 1000 if r.status == 200 else None
    except OSError:
        return None


class HttpAcceptFloodTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.tmp = tempfile.mkdtemp(prefix="shoal-flood-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_a_connect_flood_from_one_source_is_cut_and_does_not_slow_another(self):
        port, sport, mport = free_tcp_port_both(), free_tcp_port_both(), harness.free_tcp_port()
        cert, key = make_cert(self.tmp)
        extra = (config_block("http", port, per_source_accept_rate=ACCEPT_RATE, per_source_accept_burst=ACCEPT_BURST)
                 + config_block("https", sport, certificate=cert, private_key=key)
                 + 'metrics: { listen = "127.0.0.1:%d"; };' % mport)
        with harness.Shoald(extra=extra) as d:
            before = [timed_announce(port, n) for n in range(40)]
            self.assertNotIn(None, before, "announces before the flood")
            results = multiprocessing.Queue()
            flooders = [multiprocessing.Process(target=connect_flood, args=(port, sport, client_hello(), FLOOD_SECONDS, results))
                        for _ in range(2)]
            t0 = time.monotonic()
            for p in flooders:
                p.start()
            during = []
            while time.monotonic() - t0 < FLOOD_SECONDS - 0.2:
                during.append(timed_announce(port, len(during)))
            counts = [results.get(timeout=FLOOD_SECONDS + 10) for _ in flooders]
            flood_secs = time.monotonic() - t0
            for p in flooders:
                p.join(5)
                if p.is_alive():
                    p.terminate()
            attempts, served = sum(a for a, _ in counts), sum(s for _, s in counts)
            victim_conns = len(before) + len(during)
            # Every flood connection is adopted, then let through or closed at once.
            harness.wait_for(lambda: d.counters()["http_connections"] >= attempts + victim_conns, 5,
                             what="every connection to be counted")
            c = d.counters()
            limited = c["http_accept_rate_limited"]
            let_through = c["http_connections"] - victim_conns - limited
            allowed = ACCEPT_BURST + ACCEPT_RATE * flood_secs + 5
            print("\n  accept flood: %d connections from one source in %.1f s, %d let through (%d announces "
                  "answered, %d TLS handshakes), %d closed at once; another source's announce: median %.2f ms "
                  "before, %.2f ms during (%d announces)"
                  % (attempts, flood_secs, let_through, served, c["tls_handshake_failures"], limited,
                     statistics.median(before), statistics.median([x for x in during if x is not None] or [0]),
                     len(during)))
            self.assertGreater(attempts, 2 * allowed, "the flood was too weak to tell anything")
            self.assertLessEqual(let_through, allowed)
            self.assertLessEqual(served + c["tls_handshake_failures"], let_through)
            self.assertGreaterEqual(limited, attempts - allowed)
            # Another source: every announce answered, and no slower than before (loosely: this
            # machine is shared, and the flooders take CPU from everyone).
            self.assertNotIn(None, during, "announces from another source during the flood")
            self.assertLessEqual(statistics.median(during), 3 * statistics.median(before) + 10)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
                metrics = r.read().decode()
            self.assertIn('shoal_errors_total{cause="accept_rate_limited"} %d' % limited, metrics)
            # The flooding source, slowed down, is served again.
            time.sleep(1.0)
            with RawHttp("127.0.0.1", port, source=FLOODER, timeout=5) as h:
                self.assertEqual(h.request(announce_target(harness.info_hash("flood", "http"), peer_id(98), 9098,
                                                           left=5)).status, 200)
            d.assert_alive()


class MetricsSlowClientTest(unittest.TestCase):
    """The metrics endpoint: a request must be complete within 5 s (MetricsHttp::kRequestDeadlineMs)
    however slowly it trickles in, and at most 16 connections are open (kMaxConnections)."""

    DEADLINE = 5.0
    MAX_CONNECTIONS = 16

    def setUp(self):
        harness.need_shoald()
        self.port = harness.free_tcp_port()
        self.d = harness.Shoald(extra='metrics: { listen = "127.0.0.1:%d"; };' % self.port).start()
        self.addCleanup(self.d.__exit__, None, None, None)

    def fetch(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
            return r.read().decode()

    @staticmethod
    def closed(s):
        s.setblocking(False)
        try:
            return s.recv(4096) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def test_a_trickling_client_is_closed_at_the_deadline(self):
        # Issue 12: evhttp's timeout restarts with every byte, so one byte a second kept a
        # connection open forever.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        t0 = time.monotonic()
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            closed_after = None
            while time.monotonic() - t0 < self.DEADLINE + 4:
                try:
                    s.sendall(b"X")
                except OSError:
                    closed_after = time.monotonic() - t0
                    break
                if self.closed(s):
                    closed_after = time.monotonic() - t0
                    break
                time.sleep(0.5)
        finally:
            s.close()
        self.assertIsNotNone(closed_after, "a client trickling a byte every 0.5 s was never closed")
        self.assertGreater(closed_after, self.DEADLINE - 1)
        self.assertIn("shoal_torrents", self.fetch())

    def test_many_slow_clients_do_not_lock_the_scraper_out(self):
        socks = []
        try:
            for _ in range(3 * self.MAX_CONNECTIONS):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
                socks.append(s)
            # The oldest make room for the newest: at most MAX_CONNECTIONS stay open.
            harness.wait_for(lambda: sum(self.closed(s) for s in socks) >= 2 * self.MAX_CONNECTIONS, 3,
                     what="connections beyond the limit closed")
            self.assertTrue(all(self.closed(s) for s in socks[:2 * self.MAX_CONNECTIONS]), "the oldest are closed")
            self.assertFalse(any(self.closed(s) for s in socks[2 * self.MAX_CONNECTIONS:]), "the newest stay")
            # The scraper is served while the slow clients hold the endpoint.
            self.assertIn("shoal_torrents", self.fetch())
        finally:
            for s in socks:
                s.close()
        self.d.assert_alive()


if __name__ == "__main__":
    harness.main()
