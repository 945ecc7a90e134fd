"""A real WebTorrent transfer through shoald's WebSocket tracker (issue 10): npm webtorrent seeds a
file, a second webtorrent process (its own WebRTC stack, @roamhq/wrtc) that knows only the
torrent, whose one tracker is shoald's ws:// or wss:// URL, downloads it over a WebRTC data
channel, and the file's sha256 must match. DHT, LSD, uTP, PEX-by-DHT, UPnP, NAT-PMP, web seeds
and STUN are off (tests/integration/webtorrent/transfer.js), so the tracker is the only way the
peers can meet.

Everything runs inside one network namespace this test creates (tests/lib/netns.py Island): WebRTC
gathers candidates on every interface but lo, and the namespace gives it a veth pair that leads
nowhere outside. wss trusts the test certificate (tools/make_test_cert.sh) through
NODE_EXTRA_CA_CERTS. Every wait is bounded; processes are stopped by PID; the namespace is
deleted at the end. SHOAL_WS_TRACKER=node runs it against npm bittorrent-tracker's server.
"""
import hashlib
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import netns  # noqa: E402
import webtorrent as wt  # noqa: E402
from webtorrent import RawWs, b2s, msgs, scrape  # noqa: E402

FILE_MIB = 4
BUDGET = 60.0   # seconds per transfer


class WebTorrentTransferTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = netns.available()
        if why:
            raise unittest.SkipTest(why)
        why = wt.need_node()
        if why:
            raise AssertionError(why)
        if wt.BACKEND != "node":
            harness.need_shoald()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="shoal-wt-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.island = netns.Island()
        self.addCleanup(self.island.close)
        self.wrap = self.island.run_argv([])

    def transfer(self, tls):
        t0 = time.monotonic()
        t = wt.tracker(tls=tls, wrapper=self.wrap)
        t.__enter__()
        self.addCleanup(t.__exit__, None, None, None)
        url = t.wss_url() if tls else t.ws_url()
        env = wt.node_env(t.cert if tls else None)
        src = os.path.join(self.tmp, "seed", "payload.bin")
        os.makedirs(os.path.dirname(src))
        with open(src, "wb") as f:
            f.write(os.urandom(FILE_MIB << 20))
        with open(src, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        torrent = os.path.join(self.tmp, "payload.torrent")
        seeder = wt.NodeProc("transfer.js", ["seed", "--file", src, "--announce", url, "--torrent-out", torrent,
                                             "--timeout", str(int(BUDGET))], env=env, wrapper=self.wrap)
        self.addCleanup(seeder.stop)
        s = seeder.result(20)
        self.assertTrue(s["ok"], s)
        out = os.path.join(self.tmp, "dl")
        os.makedirs(out)
        r = wt.run_json("transfer.js", ["leech", "--torrent", torrent, "--out", out], BUDGET, env=env,
                        wrapper=self.wrap)
        self.assertTrue(r["ok"], "leecher: %s; seeder stderr: %s" % (r, seeder.stderr()[-2000:]))
        self.assertEqual(r["info_hash"], s["info_hash"])
        self.assertEqual(r["sha256"], digest, "downloaded file differs")
        self.assertEqual(r["announce"], [url], "the torrent names only the tracker")
        self.assertIn("webrtc", r["wires"], "the data came over WebRTC")
        # The tracker still counts the seeder.
        ih = bytes.fromhex(s["info_hash"])
        res = RawWs(env=env, wrapper=self.wrap).open("q", url).send("q", scrape(ih)).wait(
            "q", match={"action": "scrape"}).run(timeout=15)
        files = msgs(res, "q", lambda m: m.get("action") == "scrape")[0]["files"]
        self.assertGreaterEqual(files[b2s(ih)]["complete"], 1, files)
        if wt.BACKEND != "node":   # shoald's counters: the peers met through its relay
            c = t.counters()
            self.assertGreaterEqual(c["ws_offers_relayed"], 1, c)
            self.assertGreaterEqual(c["ws_answers_relayed"], 1, c)
            self.assertEqual(c["ws_failure"], 0, c)
        t.assert_alive()
        print("\n  %s: %d MiB in %.1f s (leecher), test %.1f s" % (url.split(":")[0], FILE_MIB, r["seconds"],
                                                               time.monotonic() - t0))

    def test_transfer_over_ws(self):
        self.transfer(tls=False)

    def test_transfer_over_wss(self):
        self.transfer(tls=True)


if __name__ == "__main__":
    harness.main()
