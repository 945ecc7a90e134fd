"""Bad input on the UDP port: malformed, truncated, forged and oversized requests.

Pass = the tracker answers only what BEP 15 allows (errors only to valid connection ids, never
to forged ones), counts what it drops, and keeps running: after every test a normal announce is
answered and no worker process was replaced (no crash)."""
import os
import random
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402
from bep15 import ACTION_ERROR, EVENT_STARTED  # noqa: E402

SILENCE = 0.3   # seconds to wait before concluding "no reply"


class BadInputTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.need_shoald()
        cls.d = harness.Shoald(socket_workers=1, swarm_workers=2).start()
        cls.pids = cls.d.workers()

    @classmethod
    def tearDownClass(cls):
        cls.d.__exit__(None, None, None)

    def setUp(self):
        self.ih = harness.info_hash(self.id())
        self.cl = self.d.client(source="127.0.0.40")
        self.cid = self.cl.connect()

    def tearDown(self):
        self.cl.close()
        self.d.assert_alive()
        self.assertEqual(self.d.workers(), self.pids, "a worker was restarted: it crashed")
        with self.d.client(source="127.0.0.41") as c:
            r = c.announce(harness.info_hash("alive", self.id()), port=1, event=EVENT_STARTED)
            self.assertEqual(r.leechers, 1)

    def counters(self):
        return self.d.counters()

    def assert_counter_delta(self, before, name, delta, timeout=3.0):
        """Waits (bounded) for counter `name` to reach before+delta, then checks it does not
        overshoot after a settle period."""
        self.d.wait_counter(name, lambda v: v >= before[name] + delta, timeout)
        time.sleep(0.2)
        self.assertEqual(self.d.counter(name) - before[name], delta, "counter %s" % name)

    def assert_error_reply(self, reply, tid, what):
        self.assertIsNotNone(reply, "%s: no error reply" % what)
        action, rtid = struct.unpack(">iI", reply[:8])
        self.assertEqual(action, ACTION_ERROR, "%s: action %d (want error)" % (what, action))
        self.assertEqual(rtid, tid, "%s: transaction id not echoed" % what)
        msg = reply[8:].decode("utf-8", "replace")
        self.assertTrue(msg.strip(), "%s: empty error message" % what)
        return msg

    def valid_announce(self, tid=0x1234, **kw):
        kw.setdefault("port", 7000)
        kw.setdefault("event", EVENT_STARTED)
        return bep15.build_announce(self.cid, tid, self.ih, **kw)

    # -------------------------------------------------------------------------------------
    def test_short_datagrams_dropped_and_counted(self):
        before = self.counters()
        full = self.valid_announce()
        for n in range(16):
            self.cl.send_raw(full[:n])
        self.assertIsNone(self.cl.recv_raw(SILENCE), "reply to a datagram shorter than 16 bytes")
        # Linux delivers the empty datagram too: 16 datagrams (0..15 bytes).
        self.assert_counter_delta(before, "udp_malformed", 16)

    def test_every_truncation_of_an_announce(self):
        tids = {}
        for n in range(16, bep15.ANNOUNCE_LEN):
            tid = 0x55000000 + n
            tids[tid] = n
            self.cl.send_raw(self.valid_announce(tid=tid)[:n])
        while True:
            reply = self.cl.recv_raw(SILENCE)
            if reply is None:
                break
            # Allowed: an error for the valid connection id. Never an announce reply.
            tid = struct.unpack(">I", reply[4:8])[0]
            self.assertIn(tid, tids, "reply with an unknown transaction id")
            self.assert_error_reply(reply, tid, "announce truncated to %d bytes" % tids[tid])
        self.assertEqual(self.cl.scrape([self.ih]), [(0, 0, 0)], "a truncated announce was applied")
        r = self.cl.announce(self.ih, port=7000, event=EVENT_STARTED)
        self.assertEqual(r.leechers, 1)

    def test_wrong_connection_ids_no_reply_and_counted(self):
        rng = random.Random(15)
        before = self.counters()
        n = 0
        for i in range(60):
            cid = rng.getrandbits(64)
            if cid == self.cid:
                continue
            if i % 3 == 0:
                data = bep15.build_announce(cid, 1000 + i, self.ih, port=7001, event=EVENT_STARTED)
            elif i % 3 == 1:
                data = bep15.build_scrape(cid, 1000 + i, [self.ih])
            else:   # unknown action, bad event, port 0: still no reply without a valid id
                data = bep15.build_announce(cid, 1000 + i, self.ih, port=0, event=9)
            self.cl.send_raw(data)
            n += 1
        # the connect id with its bits flipped
        for bit in (0, 31, 32, 63):
            self.cl.send_raw(bep15.build_announce(self.cid ^ (1 << bit), 2000 + bit, self.ih, port=7001))
            n += 1
        self.assertIsNone(self.cl.recv_raw(SILENCE), "a request with a bad connection id was answered")
        self.assert_counter_delta(before, "udp_bad_connection_id", n)
        self.assertEqual(self.cl.scrape([self.ih]), [(0, 0, 0)], "a forged announce was applied")

    def test_connect_with_wrong_protocol_id(self):
        before = self.counters()
        for pid in (0, 0x41727101981, 1 << 63, bep15.PROTOCOL_ID ^ 0xff00):
            self.cl.send_raw(bep15.build_connect(42, protocol_id=pid))
        self.assertIsNone(self.cl.recv_raw(SILENCE), "connect with a wrong protocol id answered")
        self.assert_counter_delta(before, "udp_malformed", 4)

    def test_unknown_actions(self):
        for action in (3, 4, 5, 17, 0x7fffffff, -1):
            tid = 0x4000 + (action & 0xff)
            data = struct.pack(">QiI", self.cid, action, tid) + self.ih + bytes(80)
            msg = self.assert_error_reply(self.cl.expect_silence(data, wait=1.0), tid,
                                          "unknown action %d" % action)
            self.assertNotIn("\0", msg)
            # Same with a forged connection id: silence.
            forged = struct.pack(">QiI", self.cid ^ 1, action, tid) + self.ih + bytes(80)
            self.assertIsNone(self.cl.expect_silence(forged), "unknown action %d with bad id answered" % action)

    def test_port_zero_is_an_error(self):
        msg = self.assert_error_reply(self.cl.expect_silence(self.valid_announce(tid=77, port=0), 1.0),
                                      77, "announce with port 0")
        self.assertIn("port", msg.lower())
        self.assertEqual(self.cl.scrape([self.ih]), [(0, 0, 0)], "port-0 peer was added")

    def test_bad_event_is_an_error(self):
        for ev in (4, 5, 255, -1):
            self.assert_error_reply(self.cl.expect_silence(self.valid_announce(tid=88, event=ev), 1.0),
                                    88, "announce with event %d" % ev)
        self.assertEqual(self.cl.scrape([self.ih]), [(0, 0, 0)], "announce with a bad event applied")

    def test_scrape_without_hashes_is_an_error(self):
        self.assert_error_reply(self.cl.expect_silence(bep15.build_scrape(self.cid, 99, []), 1.0),
                                99, "scrape with no hashes")

    def test_scrape_with_partial_hash(self):
        # 16 + 20 + 7 bytes: a trailing partial hash must not be read past the datagram.
        data = bep15.build_scrape(self.cid, 101, [self.ih]) + b"\xff" * 7
        reply = self.cl.expect_silence(data, 1.0)
        self.assertIsNotNone(reply, "scrape with a trailing partial hash: no reply")
        action, tid = struct.unpack(">iI", reply[:8])
        self.assertEqual(tid, 101)
        if action == 2:
            self.assertEqual(len(reply), 8 + 12, "a partial hash was answered as a hash")
        else:
            self.assertEqual(action, ACTION_ERROR)

    def test_oversized_scrape_answers_74(self):
        hashes = [harness.info_hash(self.id(), i) for i in range(100)]
        # Give distinct counts to positions 0, 73 and 74 to check order and the cut.
        for pos, n in ((0, 1), (73, 2), (74, 3)):
            for k in range(n):
                self.cl.announce(hashes[pos], port=7100 + k, event=EVENT_STARTED)
        res = self.cl.scrape(hashes)
        self.assertEqual(len(res), 74)
        self.assertEqual(res[0], (0, 0, 1))
        self.assertEqual(res[73], (0, 0, 2))
        self.assertTrue(all(r == (0, 0, 0) for r in res[1:73]))

    def test_source_port_zero_dropped_and_counted(self):
        # A UDP datagram from port 0 can only be built with a raw socket (root only).
        import socket
        try:
            raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        except PermissionError:
            self.skipTest("raw sockets need root")
        before = self.counters()
        with raw:
            payload = bep15.build_connect(0x0badf00d)
            # UDP header: source port 0, destination, length, checksum 0 (= none, IPv4).
            hdr = struct.pack(">HHHH", 0, self.d.port, 8 + len(payload), 0)
            for _ in range(3):
                raw.sendto(hdr + payload, ("127.0.0.1", 0))
        self.assert_counter_delta(before, "udp_source_port_zero", 3)
        self.assertEqual(self.d.counter("udp_connect"), before["udp_connect"],
                         "a connect from source port 0 was answered")

    def test_random_datagrams(self):
        rng = random.Random(0x5eed)
        sent = {}   # tid -> what was sent
        with self.d.client(source="127.0.0.42") as fz:
            fz_cid = fz.connect()
            for i in range(2000):
                kind = rng.randrange(5)
                n = rng.choice([rng.randrange(0, 40), rng.randrange(40, 200), rng.randrange(200, 1500)])
                body = bytes(rng.getrandbits(8) for _ in range(n))
                tid = rng.getrandbits(32)
                if kind == 0:      # pure noise
                    data = body
                    label = "noise"
                    if len(data) >= 16:
                        tid = struct.unpack(">I", data[12:16])[0]
                elif kind == 1:    # protocol id + random action
                    action = rng.randrange(-2, 6)
                    data = struct.pack(">QiI", bep15.PROTOCOL_ID, action, tid) + body[:rng.randrange(0, 40)]
                    # Only a connect may be answered; the protocol id is no connection id.
                    label = "connect" if action == 0 else "protocol-id-as-connection-id"
                elif kind == 2:    # valid id + random action + random body
                    action = rng.randrange(-1, 6)
                    data = struct.pack(">QiI", fz_cid, action, tid) + body
                    label = "valid-id" if action != 0 else "connect-with-wrong-protocol-id"
                elif kind == 3:    # valid id, announce with random fields
                    data = struct.pack(">QiI", fz_cid, 1, tid) + body.ljust(82, b"\0")[:rng.choice([82, 82, 60, 120])]
                    label = "valid-id"
                else:              # forged id, otherwise valid announce
                    data = bep15.build_announce(rng.getrandbits(64), tid, body.ljust(20, b"\0")[:20],
                                                port=rng.randrange(1, 65536))
                    label = "forged-id"
                sent.setdefault(tid, set()).add(label)
                fz.send_raw(data)
                if i % 50 == 49:
                    time.sleep(0.005)   # stay below the socket buffers
            replies = []
            while True:
                r = fz.recv_raw(0.5)
                if r is None:
                    break
                replies.append(r)
        for r in replies:
            self.assertGreaterEqual(len(r), 8, "reply shorter than 8 bytes")
            action, tid = struct.unpack(">iI", r[:8])
            self.assertIn(action, (0, 1, 2, 3), "reply with action %d" % action)
            labels = sent.get(tid)
            self.assertIsNotNone(labels, "reply with a transaction id that was never sent")
            allowed = {"connect"} if action == 0 else {"valid-id"}
            self.assertTrue(labels & allowed, "action %d reply to a request that must be dropped: %s"
                            % (action, sorted(labels)))
            if action == 0:
                self.assertEqual(len(r), 16)
            elif action == 2:
                self.assertEqual((len(r) - 8) % 12, 0)
            elif action == 1:
                self.assertGreaterEqual(len(r), 20)
                self.assertEqual((len(r) - 20) % 6, 0)
        self.assertTrue(replies, "the tracker answered none of the valid-id requests")


if __name__ == "__main__":
    harness.main()
