"""Floods from one source (issue 12, the attack table's "one address takes a worker's time"):
with udp.per_source_rate set, a source sending far above it gets at most its burst plus the rate
answered, the rest is dropped unanswered (no reply to amplify) and counted (udp_rate_limited,
shoal_errors_total{cause="rate_limited"}), while another source is served as usual, and the
flooding source is served again once it slows down. Loopback only; bounded; only our shoald."""
import os
import socket
import struct
import sys
import time
import unittest

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


if __name__ == "__main__":
    harness.main()
