"""Floods from one source (issue 12, the attack table's "one address takes a worker's time"):
with udp.per_source_rate set, a source sending far above it gets at most its burst plus the rate
answered, the rest is dropped unanswered (no reply to amplify) and counted (udp_rate_limited,
shoal_errors_total{cause="rate_limited"}), while another source is served as usual, and the
flooding source is served again once it slows down. The Prometheus endpoint bounds its
connections in number and time: a client trickling bytes (slowloris) is closed at the request
deadline, and many of them do not lock the scraper out. Loopback only; bounded; only our shoald."""
import os
import socket
import struct
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402

RATE, BURST = 20, 10


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
