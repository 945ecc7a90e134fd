"""Per-source quota of new torrents (issue 12, "one source fills a partition"), against a real
shoald on loopback: with tracker.new_torrents_per_source_rate = 1 and a burst of 3, an address
may create 3 torrents at once and then about one a second; an announce that would create one
more gets an error and changes nothing (UDP BEP 15 error, WebSocket failure reason), while its
announces to torrents that exist, and other addresses, are served as before. Counted in
new_torrents_refused. With the quota off (the default) nothing is limited.

Every wait is bounded; only 127.0.0.0/8 is used; only the shoald started here is signalled.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402

try:
    import websocket  # Debian python3-websocket
except ImportError:  # pragma: no cover
    websocket = None

QUOTA = "tracker: { new_torrents_per_source_rate = 1; new_torrents_per_source_burst = 3; };\n"


class QuotaTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_one_address_cannot_create_torrents_faster_than_its_quota(self):
        port = harness.free_tcp_port()
        extra = 'ws: { enabled = true; listen = [ "127.0.0.1:%d" ]; };\n' % port
        with harness.Shoald(ipv6=False, tracker={"new_torrents_per_source_rate": 1,
                                                 "new_torrents_per_source_burst": 3}, extra=extra) as d:
            a = d.client(source="127.0.0.2")
            hashes = [harness.info_hash("quota", i) for i in range(6)]
            t0 = time.monotonic()
            for ih in hashes[:3]:
                a.announce(ih, 6881, left=0)
            with self.assertRaises(bep15.TrackerError) as err:
                a.announce(hashes[3], 6881)
            fast = time.monotonic() - t0 < 0.9  # no token refilled meanwhile (one a second)
            self.assertIn("too many new torrents", err.exception.message)
            self.assertEqual(a.scrape([hashes[3]])[0], (0, 0, 0), "the refused torrent was not created")
            r = a.announce(hashes[0], 6881, left=0)  # an existing torrent: never limited
            self.assertEqual(r.seeders, 1)
            b = d.client(source="127.0.0.3")
            r = b.announce(hashes[4], 6882)  # another address has its own quota
            self.assertEqual(r.leechers, 1)
            self.assertGreaterEqual(d.counter("new_torrents_refused"), 1 if fast else 0)
            time.sleep(1.2)
            r = a.announce(hashes[5], 6881)  # a second later: one more
            self.assertEqual(r.leechers, 1)

            # The WebTorrent swarms of the same address count against the same quota.
            ws = websocket.create_connection("ws://127.0.0.1:%d/announce" % port, timeout=5)
            try:
                replies = []
                for i in range(5):
                    ih = harness.info_hash("quota-ws", i).decode("latin1")
                    ws.send(json.dumps({"action": "announce", "info_hash": ih, "peer_id": "-WW0001-quota-ws-000",
                                        "event": "started", "left": 1, "offers": []}))
                    replies.append(json.loads(ws.recv()))
                refused = [r for r in replies if "too many new torrents" in r.get("failure reason", "")]
                self.assertGreaterEqual(len(refused), 1, replies)
                self.assertEqual(refused[0].get("action"), "announce")
            finally:
                ws.close()
            d.assert_alive()

    def test_no_quota_by_default(self):
        with harness.Shoald(ipv6=False) as d:
            a = d.client(source="127.0.0.4")
            for i in range(40):
                a.announce(harness.info_hash("free", i), 6881)
            self.assertEqual(d.counter("new_torrents_refused"), 0)


if __name__ == "__main__":
    harness.main()
