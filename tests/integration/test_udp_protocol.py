"""BEP 15 behaviour a UDP tracker client sees from shoald (one daemon for the class, a fresh
info_hash per test). Peers are distinct loopback source addresses (127.0.x.y) and ports; IPv6
peers use ::1 with distinct ports."""
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from bep15 import EVENT_COMPLETED, EVENT_NONE, EVENT_STARTED, EVENT_STOPPED  # noqa: E402

INTERVAL = 60


class UdpProtocolTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.need_shoald()
        cls.d = harness.Shoald(socket_workers=1, swarm_workers=2,
                               tracker={"announce_interval": INTERVAL}).start()
        cls.clients = {}

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.ih = harness.info_hash(self.id())

    def tearDown(self):
        for c in self.clients.values():
            c.close()
        self.clients.clear()
        self.d.assert_alive()

    def c(self, source):
        """One client per source address (a peer's socket)."""
        cl = self.clients.get(source)
        if cl is None:
            fam = 6 if ":" in source else 4
            cl = self.clients[source] = self.d.client(family=fam, source=source)
        return cl

    def ann(self, source, port, ih=None, **kw):
        return self.c(source).announce(ih or self.ih, port=port, **kw)

    def scrape(self, hashes, source="127.0.0.1"):
        return self.c(source).scrape(hashes)

    # -------------------------------------------------------------------------------------
    def test_connect_reply(self):
        cl = self.c("127.0.0.1")
        tid = 0x01020304
        reply = cl.exchange(bep15.build_connect(tid), tid)
        self.assertEqual(len(reply), 16)
        action, rtid, _cid = struct.unpack(">iIQ", reply)
        self.assertEqual((action, rtid), (0, tid))

    def test_two_peers_see_each_other_ipv4(self):
        a = self.ann("127.0.0.11", 1001, event=EVENT_STARTED)
        self.assertEqual(a.interval, INTERVAL)
        self.assertEqual((a.leechers, a.seeders), (1, 0), "counts include the announcing peer")
        self.assertEqual(a.peers, [], "a peer must never be given itself")
        b = self.ann("127.0.0.12", 1002, event=EVENT_STARTED)
        self.assertEqual((b.leechers, b.seeders), (2, 0))
        self.assertEqual(b.peers, [("127.0.0.11", 1001)])
        self.assertEqual(len(b.raw), 20 + 6)
        a2 = self.ann("127.0.0.11", 1001)
        self.assertEqual(a2.peers, [("127.0.0.12", 1002)])
        self.assertEqual((a2.leechers, a2.seeders), (2, 0), "re-announce must not add a peer")
        # Same address, another announced port: another peer (peer = hash, IP, port).
        c = self.ann("127.0.0.11", 1003)
        self.assertEqual((c.leechers, c.seeders), (3, 0))
        self.assertEqual(sorted(c.peers), [("127.0.0.11", 1001), ("127.0.0.12", 1002)])
        self.assertEqual(self.scrape([self.ih]), [(0, 0, 3)])

    def test_two_peers_see_each_other_ipv6_families_separate(self):
        self.ann("127.0.0.13", 3001, event=EVENT_STARTED)
        self.ann("127.0.0.14", 3002, event=EVENT_STARTED)
        c = self.ann("::1", 3003, event=EVENT_STARTED)
        self.assertEqual(c.peers, [], "IPv4 peers must not appear in an IPv6 reply")
        self.assertEqual(c.leechers, 3, "counts cover both address families")
        # A second IPv6 peer (same address, other port) is seen with an 18-byte entry.
        d = self.c("::1").announce(self.ih, port=3004, event=EVENT_STARTED, left=0)
        self.assertEqual(d.peers, [("::1", 3003)])
        self.assertEqual(len(d.raw), 20 + 18)
        self.assertEqual((d.leechers, d.seeders), (3, 1))
        c2 = self.ann("::1", 3003)
        self.assertEqual(c2.peers, [("::1", 3004)])
        a = self.ann("127.0.0.13", 3001)
        self.assertEqual(a.peers, [("127.0.0.14", 3002)], "IPv6 peers must not appear in an IPv4 reply")
        self.assertEqual(len(a.raw), 20 + 6)
        self.assertEqual((a.leechers, a.seeders), (3, 1))
        self.assertEqual(self.scrape([self.ih], source="::1"), [(1, 0, 3)])

    def test_seeder_gets_no_seeders(self):
        self.ann("127.0.0.15", 4001, left=0, event=EVENT_STARTED)
        self.ann("127.0.0.16", 4002, left=0, event=EVENT_STARTED)
        self.ann("127.0.0.17", 4003, left=500, event=EVENT_STARTED)
        s = self.ann("127.0.0.15", 4001, left=0)
        self.assertEqual(s.peers, [("127.0.0.17", 4003)], "a seeder must get leechers only")
        self.assertEqual((s.seeders, s.leechers), (2, 1))
        l = self.ann("127.0.0.17", 4003, left=500)
        self.assertEqual(sorted(l.peers), [("127.0.0.15", 4001), ("127.0.0.16", 4002)])

    def _populate(self, peers, left=100):
        for src, port in peers:
            self.ann(src, port, left=left, event=EVENT_STARTED)

    def test_numwant_caps_ipv4(self):
        peers = [("127.0.%d.%d" % (1 + i // 200, 1 + i % 200), 10000 + i) for i in range(250)]
        self._populate(peers)
        asker = ("127.0.9.1", 9999)
        everyone = set(peers)
        # BEP 15: numwant -1 (any negative) = the default; 0 = no peers (counts only).
        for numwant, want in ((1000, 200), (-1, 50), (-7, 50), (0, 0), (10, 10), (1, 1), (199, 199)):
            r = self.ann(asker[0], asker[1], numwant=numwant)
            self.assertEqual(len(r.peers), want, "numwant %d" % numwant)
            self.assertEqual(len(set(r.peers)), want, "duplicate peers in a reply")
            self.assertTrue(set(r.peers) <= everyone, "unknown peers in the reply")
            self.assertNotIn(asker, r.peers)
            self.assertEqual(len(r.raw), 20 + 6 * want)
            self.assertEqual(r.leechers, 251)

    def test_numwant_caps_ipv6(self):
        peers = [("::1", 20000 + i) for i in range(100)]
        self._populate(peers)
        # 67 peers = 20 + 67 * 18 = 1226 bytes: the reply fits the IPv6 minimum MTU of 1280
        # bytes less 40 (IPv6 header) and 8 (UDP header), RFC 8200 section 5.
        for numwant, want in ((1000, 67), (200, 67), (68, 67), (-1, 50), (0, 0), (5, 5)):
            r = self.ann("::1", 29999, numwant=numwant)
            self.assertEqual(len(r.peers), want, "numwant %d over IPv6" % numwant)
            self.assertEqual(len(set(r.peers)), want)
            self.assertTrue(set(r.peers) <= set(peers))
            self.assertEqual(len(r.raw), 20 + 18 * want)
            self.assertLessEqual(len(r.raw), 1280 - 40 - 8)

    def test_stopped_removes_peer(self):
        self.ann("127.0.0.18", 5001, event=EVENT_STARTED)
        self.ann("127.0.0.19", 5002, left=0, event=EVENT_STARTED)
        self.assertEqual(self.scrape([self.ih]), [(1, 0, 1)])
        self.ann("127.0.0.19", 5002, left=0, event=EVENT_STOPPED)
        self.assertEqual(self.scrape([self.ih]), [(0, 0, 1)])
        r = self.ann("127.0.0.18", 5001)
        self.assertEqual(r.peers, [], "a stopped peer must not be handed out")
        self.assertEqual((r.seeders, r.leechers), (0, 1))
        # Stopping again (or a peer never seen) changes nothing.
        self.ann("127.0.0.19", 5002, left=0, event=EVENT_STOPPED)
        self.ann("127.0.0.20", 5003, event=EVENT_STOPPED)
        self.assertEqual(self.scrape([self.ih]), [(0, 0, 1)])

    def test_completed_counted_once_per_peer(self):
        self.ann("127.0.0.21", 6001, event=EVENT_STARTED)
        self.ann("127.0.0.22", 6002, event=EVENT_STARTED)
        self.ann("127.0.0.21", 6001, left=0, event=EVENT_COMPLETED)
        self.assertEqual(self.scrape([self.ih]), [(1, 1, 1)])
        self.ann("127.0.0.21", 6001, left=0, event=EVENT_COMPLETED)   # repeated
        self.ann("127.0.0.21", 6001, left=0, event=EVENT_COMPLETED)
        self.ann("127.0.0.21", 6001, left=0, event=EVENT_NONE)
        self.assertEqual(self.scrape([self.ih]), [(1, 1, 1)], "completed must count once per peer")
        self.ann("127.0.0.22", 6002, left=0, event=EVENT_COMPLETED)
        self.assertEqual(self.scrape([self.ih]), [(2, 2, 0)])

    def test_scrape_three_hashes_in_order(self):
        h1, h2, unknown = (harness.info_hash(self.id(), i) for i in range(3))
        self.ann("127.0.0.23", 7001, ih=h1, left=0, event=EVENT_STARTED)
        self.ann("127.0.0.24", 7002, ih=h1, left=0, event=EVENT_STARTED)
        self.ann("127.0.0.25", 7003, ih=h1, event=EVENT_STARTED)
        self.ann("127.0.0.25", 7003, ih=h1, left=0, event=EVENT_COMPLETED)
        for i in range(3):
            self.ann("127.0.0.26", 7010 + i, ih=h2, event=EVENT_STARTED)
        # (seeders, completed, leechers)
        self.assertEqual(self.scrape([h1, unknown, h2]), [(3, 1, 0), (0, 0, 0), (0, 0, 3)])
        self.assertEqual(self.scrape([h2, h1, unknown]), [(0, 0, 3), (3, 1, 0), (0, 0, 0)])
        self.assertEqual(self.scrape([h2, h2]), [(0, 0, 3), (0, 0, 3)])
        self.assertEqual(self.scrape([unknown]), [(0, 0, 0)])

    def test_bep41_options_accepted(self):
        variants = [
            bep15.bep41_urldata("/announce?passkey=0123456789abcdef"),
            b"\x01\x01" + bep15.bep41_urldata("/" + "k" * 300),   # NOPs, two URLData chunks
            b"\x00",                                              # EndOfOptions only
            b"\x02\x04/abc",                                      # no EndOfOptions
            b"\x00garbage after the end",
        ]
        for i, opts in enumerate(variants):
            r = self.ann("127.0.0.27", 8001 + i, event=EVENT_STARTED, options=opts)
            self.assertEqual(r.leechers, i + 1, "announce with BEP 41 options %r not applied" % opts[:16])
        r = self.ann("127.0.0.28", 8100)
        self.assertEqual(sorted(r.peers), [("127.0.0.27", 8001 + i) for i in range(len(variants))])

    def test_ip_field_ignored(self):
        self.ann("127.0.0.29", 9001, event=EVENT_STARTED, ip="1.2.3.4")
        r = self.ann("127.0.0.30", 9002, event=EVENT_STARTED, ip="127.0.0.99")
        self.assertEqual(r.peers, [("127.0.0.29", 9001)], "the announce ip field must be ignored")
        r2 = self.ann("127.0.0.29", 9001)
        self.assertEqual(r2.peers, [("127.0.0.30", 9002)])

    def test_connection_id_bound_to_source_address(self):
        a = self.c("127.0.0.31")
        cid = a.connect()
        b = self.c("127.0.0.32")
        data = bep15.build_announce(cid, 0x7777, self.ih, port=9100, event=EVENT_STARTED)
        self.assertIsNone(b.expect_silence(data, wait=0.4),
                          "a connection id issued to 127.0.0.31 was accepted from 127.0.0.32")
        self.assertEqual(self.scrape([self.ih]), [(0, 0, 0)])
        r = a.announce(self.ih, port=9100, event=EVENT_STARTED, conn_id=cid)
        self.assertEqual(r.leechers, 1)

    def test_connection_id_reusable(self):
        cl = self.c("127.0.0.33")
        cid = cl.connect()
        for i in range(20):
            r = cl.announce(self.ih, port=9200 + i, conn_id=cid)
            self.assertEqual(r.leechers, i + 1)
        self.assertEqual(cl.scrape([self.ih], conn_id=cid), [(0, 0, 20)])


if __name__ == "__main__":
    harness.main()
