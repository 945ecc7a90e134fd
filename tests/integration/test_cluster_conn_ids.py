"""Connection ids valid on every node (issue 14): two real shoald daemons (their own shm names)
on 127.0.0.2 and 127.0.0.3, the same UDP port, sharing udp.connection_id_key_file, as nodes
behind anycast or DNS round robin. A BEP 15 connect answered by A and an announce with that id
sent to B is answered by B; a node with another key file keeps silent and counts it
(udp_bad_connection_id). Clocks apart (libfaketime shifts B's wall clock): 8 s apart with
udp.connection_id_skew 10, ids go both ways; 400 s apart, neither node accepts the other's.
Key rotation with SIGHUP: an id made before the rotation is still accepted after it (the old key
stays second), and refused once the old key is removed; a broken or world-readable key file on
SIGHUP keeps the keys in force and the log says why; at start such a file stops shoald (exit 1)
and `shoald -t` names it.

The client is the project's BEP 15 client (tests/lib/bep15.py). A BitTorrent client such as
libtorrent is not used here: it caches a connection id per tracker IP address, so it would never
present A's id to B. Loopback only; every wait is bounded; only shoald daemons started here are
signalled, by PID."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402

KEY1 = "6b1e3b0c8d2f4a5e9c7d1f2a3b4c5d6e"
KEY2 = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
KEY3 = "00ff00ff00ff00ff00ff00ff00ff00ff"
HOST_A, HOST_B = "127.0.0.2", "127.0.0.3"
CLIENT = "127.0.0.9"  # the client's source address (connection ids are bound to it)
IH = harness.info_hash("cluster", "conn-ids")


def reference_ids(key_hex, client_ip, t0, t1):
    """The ids a node holding `key_hex` may answer a connect from `client_ip` with between
    wall-clock times t0 and t1, computed independently of shoald: CBC-MAC = the last block of
    AES-128-CBC with a zero IV (the openssl command) over ::ffff:client_ip and
    (unix_time / 120 as u32 big-endian, family byte 4, 11 zero bytes)."""
    out = set()
    for bucket in {int(t0) // 120, int(t1) // 120}:
        data = (b"\0" * 10 + b"\xff\xff" + socket.inet_aton(client_ip) + struct.pack(">IB", bucket, 4) + b"\0" * 11)
        r = subprocess.run(["openssl", "enc", "-aes-128-cbc", "-K", key_hex, "-iv", "0" * 32, "-nopad"], input=data,
                           stdout=subprocess.PIPE, check=True, timeout=10)
        out.add(struct.unpack(">Q", r.stdout[16:24])[0])
    return out


def connect_checked(testcase, c, key_hex):
    """A connect through client `c`; asserts the id is the one of `key_hex` and the wall clock."""
    t0 = time.time()
    cid = c.connect()
    testcase.assertIn(cid, reference_ids(key_hex, CLIENT, t0, time.time()),
                      "the id is not CBC-MAC(key, address, wall-clock bucket) of the expected key")
    return cid


def write_key_file(path, text, mode=0o600):
    """Writes `text` to `path` atomically (rename) with `mode` from the start."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)  # whatever the umask
    os.replace(tmp, path)


def shared_port():
    """A UDP port free on both 127.0.0.2 and 127.0.0.3."""
    for _ in range(50):
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            a.bind((HOST_A, 0))
            port = a.getsockname()[1]
            b.bind((HOST_B, port))
            return port
        except OSError:
            continue
        finally:
            a.close()
            b.close()
    raise RuntimeError("no UDP port free on both %s and %s" % (HOST_A, HOST_B))


def node(host, port, key_file, skew=10):
    d = harness.Shoald(ipv6=False)
    d.host4 = host
    d.port = port
    d.udp_opts = {"connection_id_key_file": '"%s"' % key_file, "connection_id_skew": skew}
    return d


def sighup(d, expect, timeout=10.0):
    """SIGHUP to our shoald; waits for one more log line containing `expect`."""
    before = d.log().count(expect)
    d.assert_alive()
    os.kill(d.pid, signal.SIGHUP)
    harness.wait_for(lambda: d.log().count(expect) > before, timeout, interval=0.01,
                     what="log line %r after SIGHUP" % expect)


def conn_info(d):
    return d.ctl_json("show", "info")["connection_ids"]


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"  # Debian package faketime


def behind(d, seconds):
    """Runs node `d` with its wall clock `seconds` behind (libfaketime: only CLOCK_REALTIME and
    time() are shifted; its monotonic clock stays the real one)."""
    d.env = dict(os.environ, LD_PRELOAD=LIBFAKETIME, FAKETIME="-%d" % seconds, FAKETIME_DONT_FAKE_MONOTONIC="1")
    return d


class ClusterConnectionIdTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()
        self.dir = tempfile.mkdtemp(prefix="shoaltest-keys-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.port = shared_port()

    def start(self, d):
        d.start()
        self.addCleanup(d.stop)
        return d

    def key_file(self, name, text):
        path = os.path.join(self.dir, name)
        write_key_file(path, text)
        return path

    def client(self, d):
        c = bep15.Client(d.addr4, source=CLIENT, timeout=0.5, attempts=4)
        self.addCleanup(c.close)
        return c

    def assert_answered(self, c, cid, peer_port):
        reply = c.announce(IH, port=peer_port, conn_id=cid, event=bep15.EVENT_STARTED)
        self.assertEqual(reply.interval, 60)  # the harness's tracker.announce_interval
        self.assertGreaterEqual(reply.leechers, 1, "the announcing peer is in the swarm of this node")

    def assert_silent_and_counted(self, d, c, cid):
        before = d.counter("udp_bad_connection_id")
        data = bep15.build_announce(cid, 0x5151, IH, port=6881)
        self.assertIsNone(c.expect_silence(data, wait=0.5), "a node answered an id it cannot have made")
        d.wait_counter("udp_bad_connection_id", lambda v: v == before + 1)

    def test_connect_on_a_announce_on_b(self):
        keys = self.key_file("cluster.key", "# the cluster key\n%s\n" % KEY1)
        a = self.start(node(HOST_A, self.port, keys))
        b = self.start(node(HOST_B, self.port, keys))
        ca, cb = self.client(a), self.client(b)
        cid = connect_checked(self, ca, KEY1)      # wall-clock buckets: what every node computes
        self.assert_answered(cb, cid, 7001)        # connect on A, announce on B
        self.assertGreaterEqual(cb.scrape([IH], conn_id=cid)[0][2], 1)  # scrape too: (seeders, completed, leechers)
        self.assert_answered(ca, cb.connect(), 7002)  # and the other way round
        self.assertEqual(b.counter("udp_bad_connection_id"), 0)
        self.assertEqual(a.counter("udp_bad_connection_id"), 0)
        # Operators compare fingerprints across nodes; the keys themselves are never shown.
        ia, ib = conn_info(a), conn_info(b)
        self.assertEqual(ia["fingerprints"], ib["fingerprints"])
        self.assertNotIn(KEY1[:8], json.dumps(ia))
        self.assertEqual((ia["keys"], ia["clock"], ia["skew_seconds"], ia["key_file"]), (1, "wall", 10, keys))

    def test_other_key_file_is_refused_and_counted(self):
        a = self.start(node(HOST_A, self.port, self.key_file("a.key", KEY1 + "\n")))
        c = self.start(node(HOST_B, self.port, self.key_file("c.key", KEY3 + "\n")))
        ca, cc = self.client(a), self.client(c)
        cid = ca.connect()
        self.assert_silent_and_counted(c, cc, cid)
        self.assert_answered(cc, cc.connect(), 7003)  # its own ids still work
        self.assertNotEqual(conn_info(a)["fingerprints"], conn_info(c)["fingerprints"])

    def test_clocks_apart_within_the_skew_are_accepted_beyond_refused(self):
        if not os.path.exists(LIBFAKETIME):
            self.skipTest("libfaketime not installed (make deps: Debian package faketime)")
        keys = self.key_file("cluster.key", KEY1 + "\n")
        a = self.start(node(HOST_A, self.port, keys, skew=10))
        b = self.start(behind(node(HOST_B, self.port, keys, skew=10), 8))
        ca, cb = self.client(a), self.client(b)
        for i in range(3):  # 8 s apart with 10 s allowed: both ways, wherever in a bucket
            self.assert_answered(cb, ca.connect(), 7100 + i)
            self.assert_answered(ca, cb.connect(), 7200 + i)
        b.stop()
        far = self.start(behind(node(HOST_B, self.port, keys, skew=10), 400))  # beyond any id's lifetime
        cf = self.client(far)
        self.assert_silent_and_counted(far, cf, ca.connect())
        self.assert_silent_and_counted(a, ca, cf.connect())

    def test_rotation_with_sighup_keeps_ids_made_before_it(self):
        path = self.key_file("cluster.key", KEY1 + "\n")
        a = self.start(node(HOST_A, self.port, path))
        b = self.start(node(HOST_B, self.port, path))
        ca, cb = self.client(a), self.client(b)
        old_id = connect_checked(self, ca, KEY1)
        # Step 1 on every node: the new key first, the old one second.
        write_key_file(path, "# rotation step 1\n%s\n%s  # previous\n" % (KEY2, KEY1))
        for d in (a, b):
            sighup(d, "connection-id keys reloaded from")
        self.assert_answered(cb, old_id, 7004)     # made before the rotation, accepted after it
        new_id = connect_checked(self, ca, KEY2)   # new ids: the new key
        self.assert_answered(cb, new_id, 7005)
        self.assertEqual(conn_info(b)["keys"], 2)
        self.assertEqual(conn_info(b)["reloads"], 1)
        # Step 2, after the ids' lifetime: the old key goes. Ids made with it are refused, the new
        # ones (made with KEY2 since step 1) are not.
        write_key_file(path, KEY2 + "\n")
        sighup(b, "connection-id keys reloaded from")
        self.assert_silent_and_counted(b, cb, old_id)
        self.assert_answered(cb, new_id, 7006)
        self.assertEqual(conn_info(b)["keys"], 1)

    def test_bad_key_file_on_sighup_keeps_the_keys_in_force(self):
        path = self.key_file("cluster.key", KEY1 + "\n")
        a = self.start(node(HOST_A, self.port, path))
        b = self.start(node(HOST_B, self.port, path))
        ca, cb = self.client(a), self.client(b)
        before = conn_info(b)["fingerprints"]
        write_key_file(path, "%s\n%szz\n" % (KEY2, KEY1[:30]))
        sighup(b, "keeping the connection-id keys in force")
        self.assertIn("%s:2: not a hex digit 'z' at column 31" % path, b.log())
        write_key_file(path, KEY2 + "\n", mode=0o644)
        sighup(b, "keeping the connection-id keys in force")
        self.assertIn("%s: permissions 0644 are too open" % path, b.log())
        info = conn_info(b)
        self.assertEqual((info["fingerprints"], info["reload_errors"], info["reloads"]), (before, 2, 0))
        self.assert_answered(cb, ca.connect(), 7007)  # B still holds KEY1, as A does
        b.assert_alive()

    def test_bad_key_file_at_start_and_shoald_t(self):
        open_file = os.path.join(self.dir, "open.key")
        write_key_file(open_file, KEY1 + "\n", mode=0o644)
        d = node(HOST_A, self.port, open_file)
        d.dir = self.dir
        conf = os.path.join(self.dir, "shoal.conf")
        with open(conf, "w") as f:
            f.write(d.config_text())
        t = subprocess.run([harness.SHOALD, "-t", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        self.assertEqual(t.returncode, 1)
        self.assertIn("udp.connection_id_key_file %s: permissions 0644 are too open" % open_file, t.stderr.decode())
        run = subprocess.run([harness.SHOALD, "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=20)
        self.assertEqual(run.returncode, 1)
        self.assertIn("cannot start: udp.connection_id_key_file %s: permissions 0644" % open_file, run.stdout.decode())
        os.chmod(open_file, 0o600)
        ok = subprocess.run([harness.SHOALD, "-t", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr.decode())


if __name__ == "__main__":
    harness.main()
