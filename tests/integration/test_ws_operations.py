"""WebTorrent tracker (issue 10) as an operator sees it, against a real shoald on loopback with
python3-websocket (websocket-client) as the client: a peer_id stays with the connection that
announced it first; a rolling restart closes WebSocket connections with 1001 and clients come
back; the limits (connections per worker, message size, binary frames, malformed JSON, unknown
actions, handshake path and timeout); WebTorrent peers kept apart from UDP peers of the same
info_hash in scrape, `show torrent` and `show stats`; wss with the test certificate.
Offers and answers between real bittorrent-tracker clients, forged answers and kill -9 are in
test_ws.py; the WebTorrent file transfer in test_webtorrent_transfer.py.

Every wait is bounded; only 127.0.0.1 is used; only the shoald started here is signalled.
"""
import json
import os
import socket
import ssl
import sys
import tempfile
import shutil
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from http_client import make_cert  # noqa: E402

try:
    import websocket  # Debian python3-websocket (websocket-client)
except ImportError:  # pragma: no cover - make deps installs it
    websocket = None

TIMEOUT = 5.0


def bin20(text):
    """A 20-byte binary id as the JavaScript client sends it: one code point per byte."""
    return text.ljust(20, "_")[:20]


def ih_of(tag):
    return bin20("ih-" + tag)


class WsClient:
    """One WebSocket connection speaking the WebTorrent tracker JSON."""

    def __init__(self, url, **kw):
        sslopt = {"cert_reqs": ssl.CERT_NONE} if url.startswith("wss") else None
        self.ws = websocket.create_connection(url, timeout=TIMEOUT, sslopt=sslopt, **kw)

    def send(self, obj):
        self.ws.send(json.dumps(obj))

    def recv(self, timeout=TIMEOUT):
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def announce(self, ih, peer_id, event="started", left=100, offers=None, numwant=None):
        msg = {"action": "announce", "info_hash": ih, "peer_id": peer_id, "event": event, "left": left,
               "uploaded": 0, "downloaded": 0, "offers": offers or []}
        if numwant is not None:
            msg["numwant"] = numwant
        self.send(msg)
        return self.recv()

    def scrape(self, ih):
        self.send({"action": "scrape", "info_hash": ih})
        return self.recv()["files"][ih]

    def close_code(self, timeout=TIMEOUT):
        """Reads until the server's close frame; returns its status code (None if the TCP
        connection ended without one)."""
        self.ws.settimeout(timeout)
        while True:
            try:
                op, data = self.ws.recv_data(control_frame=True)
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                return None
            if op == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


class WsOperationsTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        if websocket is None:
            self.fail("python3-websocket is missing: run `make deps`")
        self.tmp = tempfile.mkdtemp(prefix="shoal-wsops-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.clients = []
        self.addCleanup(lambda: [c.close() for c in self.clients])

    def start(self, socket_workers=1, ws_opts="", wss=False):
        self.port = harness.free_tcp_port()
        extra = 'ws: { enabled = true; listen = [ "127.0.0.1:%d" ]; %s };\n' % (self.port, ws_opts)
        if wss:
            cert, key = make_cert(self.tmp)
            self.tls_port = harness.free_tcp_port()
            extra += ('https: { certificate = "%s"; private_key = "%s"; };\n'
                      'wss: { enabled = true; listen = [ "127.0.0.1:%d" ]; };\n' % (cert, key, self.tls_port))
        d = harness.Shoald(socket_workers=socket_workers, ipv6=False, extra=extra)
        d.__enter__()
        self.addCleanup(d.__exit__, None, None, None)
        d.wait_ready()
        self.d = d
        return d

    def client(self, path="/announce"):
        c = WsClient("ws://127.0.0.1:%d%s" % (self.port, path))
        self.clients.append(c)
        return c

    def test_peer_id_stays_with_the_connection_that_announced_it(self):
        self.start()
        ih, pid = ih_of("bind"), bin20("-WW0001-owner")
        a, b = self.client(), self.client()
        r = a.announce(ih, pid)
        self.assertEqual(r.get("incomplete"), 1, r)
        r = b.announce(ih, pid)
        self.assertIn("peer_id is in use", r.get("failure reason", ""), r)
        self.assertEqual(r.get("info_hash"), ih, "the error names the info_hash it answers")
        self.assertEqual(r.get("action"), "announce")
        self.assertEqual(b.scrape(ih)["incomplete"], 1, "the refused announce added nobody")
        # Another peer_id on b is fine; once a closes, its peer leaves and b may take the id.
        self.assertEqual(b.announce(ih, bin20("-WW0001-other")).get("incomplete"), 2)
        a.close()
        harness.wait_for(lambda: b.scrape(ih)["incomplete"] == 1, 5, what="a's peer to leave on close")
        r = b.announce(ih, pid)
        self.assertNotIn("failure reason", r)
        self.assertEqual(r.get("incomplete"), 2)

    def test_rolling_restart_closes_with_1001_and_clients_come_back(self):
        self.start()
        ih = ih_of("roll")
        a = self.client()
        a.announce(ih, bin20("-WW0001-roll"))
        old = self.d.worker_pid("socket", 0)
        rc, out = self.d.ctl("restart", "workers")
        self.assertEqual(rc, 0, out)
        self.assertEqual(a.close_code(timeout=15), 1001, "going away: the client should reconnect")
        harness.wait_for(lambda: self.d.worker_pid("socket", 0) not in (None, old), 15, what="a new socket worker")
        b = self.client()
        r = b.announce(ih, bin20("-WW0001-roll"))
        self.assertNotIn("failure reason", r, "the old connection's peer_id is free again")
        self.assertEqual(r["incomplete"], 1, "the closed connection's peer left its swarm")
        self.d.assert_alive()

    def test_limits_and_bad_input(self):
        self.start(ws_opts="max_connections = 16; max_message_bytes = 2048; handshake_timeout = 1;")
        conns = [self.client() for _ in range(16)]
        for c in conns[:2]:
            self.assertEqual(c.scrape(ih_of("x"))["complete"], 0)
        extra = WsClient.__new__(WsClient)
        try:
            extra.ws = websocket.create_connection("ws://127.0.0.1:%d/" % self.port, timeout=TIMEOUT)
            got = extra.close_code(timeout=3)
        except (websocket.WebSocketException, ConnectionError, OSError):
            got = None  # closed during the handshake: what a refused connection looks like
        self.assertIsNone(got, "the 17th connection must be closed at once")
        self.d.wait_counter("ws_connections_refused", lambda v: v >= 1)
        for c in conns:
            c.close()
        harness.wait_for(lambda: self.d.counter("ws_connections_closed") >= 16, 5, what="16 closed")

        c = self.client()
        c.ws.send("{not json")
        r = c.recv()
        self.assertIn("failure reason", r)
        c.send({"action": "dance", "info_hash": ih_of("y")})
        r = c.recv()
        self.assertIn("failure reason", r)
        c.send({"action": "announce", "info_hash": "short", "peer_id": bin20("p")})
        r = c.recv()
        self.assertIn("failure reason", r)
        self.assertEqual(r.get("action"), "announce")
        self.assertEqual(c.scrape(ih_of("y"))["complete"], 0, "the connection still serves")
        c.ws.send("x" * 4096)
        self.assertEqual(c.close_code(), 1009, "message over ws.max_message_bytes")
        c2 = self.client()
        c2.ws.send_binary(b"\x00\x01")
        self.assertEqual(c2.close_code(), 1003, "binary messages are not WebTorrent")

        raw = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        raw.sendall(b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.assertTrue(raw.recv(200).startswith(b"HTTP/1.1 404"))
        raw.close()
        idle = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        t0 = time.monotonic()
        self.assertEqual(idle.recv(10), b"", "a connection that never finishes its handshake is closed")
        self.assertLess(time.monotonic() - t0, 4.0, "within ws.handshake_timeout plus the sweep")
        idle.close()
        self.d.wait_counter("ws_handshake_failures", lambda v: v >= 2)
        self.d.assert_alive()

    def connect_from(self, source):
        """A WebSocket connection from `source` (a 127.0.0.0/8 address); None if the tracker
        closed it before or during the opening handshake."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((source, 0))
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", self.port))
        try:
            c = WsClient("ws://127.0.0.1:%d/announce" % self.port, socket=sock)
        except (websocket.WebSocketException, ConnectionError, OSError):
            sock.close()
            return None
        self.clients.append(c)
        try:  # refused connections are closed at accept: the handshake may still have "worked"
            c.scrape(ih_of("probe"))
        except (websocket.WebSocketException, ConnectionError, OSError, ValueError):
            return None
        return c

    def test_one_source_cannot_take_every_connection(self):
        self.start(ws_opts="max_connections_per_source = 4;")
        held = [self.connect_from("127.0.0.2") for _ in range(4)]
        self.assertTrue(all(held), "4 connections from one source fit its share")
        self.assertIsNone(self.connect_from("127.0.0.2"), "the 5th from the same source is closed")
        self.assertIsNotNone(self.connect_from("127.0.0.3"), "another source still gets in")
        held[0].close()
        harness.wait_for(lambda: self.d.counter("ws_connections_closed") >= 1, 5, what="the close")
        self.assertIsNotNone(self.connect_from("127.0.0.2"), "a freed place is taken again")
        self.assertEqual(self.d.counter("ws_connections_refused"), 1)
        self.d.assert_alive()

    def test_one_source_cannot_open_connections_faster_than_its_rate(self):
        self.start(ws_opts="max_connections_per_source = 0; per_source_accept_rate = 1; per_source_accept_burst = 3;")
        t0 = time.monotonic()
        burst = [self.connect_from("127.0.0.4") for _ in range(3)]
        refused = self.connect_from("127.0.0.4") is None
        if time.monotonic() - t0 < 0.9:  # no token refilled meanwhile (1 a second)
            self.assertTrue(refused, "the 4th within a second is over ws.per_source_accept_rate")
        self.assertTrue(all(burst), "the burst of 3 is let in")
        self.assertIsNotNone(self.connect_from("127.0.0.5"), "other sources are not limited")
        time.sleep(1.1)
        self.assertIsNotNone(self.connect_from("127.0.0.4"), "a second later it may open one more")
        self.assertGreaterEqual(self.d.counter("ws_connections_refused"), 1)

    def test_a_client_that_never_reads_is_closed_not_buffered(self):
        # docs/hardening.md A15: offers keep coming for a client that reads nothing; once its
        # unsent output passes 4 x max_message_bytes (16 KiB here) the tracker closes it, while
        # the offering client is served on.
        self.start(ws_opts="max_message_bytes = 4096; relay_bytes_per_second = 10000000;")
        ih = ih_of("slow")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before connect: a small window
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", self.port))
        deaf = WsClient("ws://127.0.0.1:%d/announce" % self.port, socket=sock)
        self.clients.append(deaf)
        deaf.announce(ih, bin20("-WW0001-deaf"))
        talker = self.client()
        sdp = {"type": "offer", "sdp": "v=0 " + "x" * 3000}
        deadline = time.monotonic() + 25  # the kernel's socket buffers take the first megabytes
        i = 0
        while time.monotonic() < deadline:
            i += 1
            r = talker.announce(ih, bin20("-WW0001-talker"), event="started" if i == 1 else "none",
                                offers=[{"offer_id": bin20("offer-%d" % i), "offer": sdp}])
            self.assertNotIn("failure reason", r)
            if i % 50 == 0 and self.d.counter("ws_connections_closed") >= 1:
                break
        self.assertGreaterEqual(self.d.counter("ws_connections_closed"), 1,
                                "the client that never reads was not closed after %d offers (%d relayed)"
                                % (i, self.d.counter("ws_offers_relayed")))
        self.assertEqual(talker.scrape(ih)["incomplete"], 1, "its peer left the swarm; the talker is served")
        self.d.assert_alive()

    def test_webtorrent_peers_are_kept_apart_from_udp_peers(self):
        self.start()
        ih = ih_of("apart")
        u = self.d.client()
        u.announce(ih.encode("latin1"), 6881, left=0)  # a UDP seeder
        w = self.client()
        r = w.announce(ih, bin20("-WW0001-apart"))
        self.assertEqual((r["complete"], r["incomplete"]), (0, 1), "the UDP seeder is not a WebTorrent peer")
        self.assertEqual(w.scrape(ih), {"complete": 0, "incomplete": 1, "downloaded": 0})
        s = u.scrape([ih.encode("latin1")])[0]
        self.assertEqual((s[0], s[2]), (1, 0), "UDP scrape: one seeder, no WebTorrent leecher")
        t = self.d.ctl_json("show", "torrent", ih.encode("latin1").hex())
        self.assertEqual((t["seeders"], t["leechers"]), (1, 0))
        self.assertEqual(t["webtorrent"], {"seeders": 0, "leechers": 1, "completed": 0})
        stats = self.d.ctl_json("show", "stats")
        self.assertEqual(stats["peers_webtorrent"], 1)
        self.assertEqual(stats["peers_ipv4"], 1)
        self.assertGreaterEqual(stats["counters"]["ws_announce"], 1)

    def test_wss_serves_the_same_tracker(self):
        self.start(wss=True)
        ih = ih_of("tls")
        c = WsClient("wss://127.0.0.1:%d/announce" % self.tls_port)
        self.clients.append(c)
        r = c.announce(ih, bin20("-WW0001-tls"))
        self.assertEqual(r["incomplete"], 1)
        plain = self.client()
        self.assertEqual(plain.scrape(ih)["incomplete"], 1, "ws and wss share the swarm")


if __name__ == "__main__":
    harness.main()
