"""tools/ws_load, the WebSocket load generator of `make bench`, against a real shoald (short,
validated runs on loopback): every reply, relayed offer and relayed answer it reads checks out
(errors, invalid messages and timeouts 0), over ws:// and wss://, with its receives and sends
batched through io_uring and without (WS_LOAD_NO_IO_URING), and against a shoald whose
WebSocket front-end sends one send() per connection (ws.io_uring = false). The bench's WebSocket
figures are only worth what this generator checks.

Each run is bounded (ws_load's own --seconds, and a subprocess timeout); only 127.0.0.1 is used;
the shoald is stopped by its PID.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import webtorrent as wt  # noqa: E402

WS_LOAD = os.path.join(os.path.dirname(harness.SHOALD), "ws_load")


class WsLoadTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        harness.need_shoald()
        if not os.access(WS_LOAD, os.X_OK):
            raise unittest.SkipTest("ws_load not built: %s" % WS_LOAD)

    def run_load(self, tls, no_io_uring=False, **ws_opts):
        opts = {"max_connections_per_source": 0, "relay_bytes_per_second": 16777216}
        opts.update(ws_opts)
        with wt.WsShoald(tls=tls, ws_opts=opts) as t:
            url = t.wss_url() if tls else t.ws_url()
            env = dict(os.environ)
            if no_io_uring:
                env["WS_LOAD_NO_IO_URING"] = "1"
            cmd = [WS_LOAD, "--url", url, "--connections", "16", "--torrents", "50", "--warmup", "0.5",
                   "--seconds", "1.5"]
            if tls:
                cmd += ["--cacert", t.cert]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
            end = [x for x in lines if x.get("phase") == "measured"]
            self.assertTrue(end, r.stdout)
            return end[-1]

    def check(self, m):
        self.assertGreater(m["responses"], 100, m)
        self.assertEqual((m["errors"], m["invalid"], m["timeouts"], m["disconnects"]), (0, 0, 0, 0), m)
        self.assertEqual(m["run_totals"]["invalid"], 0, m)
        # Offers went out and their answers came back, every one checked against what was sent.
        self.assertGreater(m["offers_received"], 100, m)
        self.assertGreater(m["answers_received"], 100, m)
        self.assertGreater(m["cpu_seconds"], 0, m)

    def test_ws(self):
        self.check(self.run_load(tls=False))

    def test_wss(self):
        self.check(self.run_load(tls=True))

    def test_wss_without_io_uring_on_either_side(self):
        self.check(self.run_load(tls=True, no_io_uring=True, io_uring=False))


if __name__ == "__main__":
    harness.main()
