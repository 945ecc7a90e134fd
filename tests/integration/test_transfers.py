"""Deploy transfers as deploy tooling and an operator use them: register a .torrent over the admin
HTTP API (curl) and with `shoalctl transfer add`, list and show it, download it back by
info_hash and by name, keep it across a restart of shoald, remove it; a bad .torrent gets a
clear error. Finally a real client (aria2) fetches the .torrent from the tracker by URL and
downloads the file from a seeder through shoald's UDP tracker."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from transfer import TransferCase, aria2_argv, sha256_file, torrent_info_hash  # noqa: E402


def curl(*args, data_file=None):
    """(HTTP status, body bytes) of one curl request (loopback only)."""
    argv = ["curl", "-s", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}"] + list(args)
    if data_file:
        argv += ["--data-binary", "@" + data_file, "-H", "Content-Type: application/x-bittorrent"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, timeout=15)
    body, _, code = r.stdout.rpartition(b"\n")
    return int(code or 0), body


class TransfersTest(TransferCase):
    TOOLS = ("aria2c", "mktorrent", "curl")
    TEST_BUDGET = 80.0
    TMP_PREFIX = "shoal-transfers-"

    def setUp(self):
        harness.need_shoald()
        super().setUp()
        self.d = None
        self.state = os.path.join(self.tmp, "state")
        self.admin_port = harness.free_tcp_port()

    def stop_tracker(self, failed):
        if self.d is not None:
            self.d.__exit__(AssertionError if failed else None, None, None)
            self.d = None

    def start(self):
        self.d = harness.Shoald(extra='transfers: { state_dir = "%s"; };\nadmin: { listen = "127.0.0.1:%d"; };\n'
                                % (self.state, self.admin_port)).start()
        self.url = "http://127.0.0.1:%d" % self.admin_port

    def make_torrent(self, name, size, announce="udp://127.0.0.1:1/announce"):
        d = os.path.join(self.tmp, "src-" + name)
        os.makedirs(d)
        src = os.path.join(d, name)
        with open(src, "wb") as f:
            f.write(os.urandom(size))
        path = os.path.join(self.tmp, name + ".torrent")
        r = subprocess.run(["mktorrent", "-l", "16", "-a", announce, "-o", path, src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode())
        ih, _ = torrent_info_hash(path)
        return path, ih.hex(), src

    def test_register_list_fetch_restart_remove(self):
        self.start()
        t1, h1, _ = self.make_torrent("app-1.0.tar", 300000)
        t2, h2, _ = self.make_torrent("db-2.1.img", 100000)
        # Over the admin API.
        code, body = curl("-X", "POST", self.url + "/transfers", data_file=t1)
        self.assertEqual(code, 201, body)
        reply = json.loads(body)
        self.assertTrue(reply["added"])
        self.assertEqual(reply["transfer"]["info_hash"], h1)
        self.assertEqual(reply["transfer"]["name"], "app-1.0.tar")
        self.assertEqual(reply["transfer"]["length"], 300000)
        code, body = curl("-X", "POST", self.url + "/transfers", data_file=t1)
        self.assertEqual((code, json.loads(body)["added"]), (200, False))
        junk = os.path.join(self.tmp, "junk.torrent")
        with open(junk, "wb") as f:
            f.write(b"d4:infoi5ee")
        code, body = curl("-X", "POST", self.url + "/transfers", data_file=junk)
        self.assertEqual(code, 400, body)
        self.assertIn("not a valid .torrent", json.loads(body)["error"])
        # With shoalctl (a relative path: shoalctl sends it as an absolute one).
        rc, out = self.d.ctl("transfer", "add", os.path.relpath(t2))
        self.assertEqual(rc, 0, out)
        self.assertIn("added: true", out)
        self.assertIn("transfer.info_hash: " + h2, out)
        rc, out = self.d.ctl("transfer", "add", junk)
        self.assertEqual(rc, 1, out)
        self.assertIn("error: %s: not a valid .torrent" % junk, out)
        # Listed and shown, both ways.
        listed = self.d.ctl_json("transfer", "list")
        self.assertEqual(listed["count"], 2)
        self.assertEqual(sorted(t["info_hash"] for t in listed["transfers"]), sorted([h1, h2]))
        code, body = curl(self.url + "/transfers")
        self.assertEqual(code, 200)
        self.assertEqual(len(json.loads(body)["transfers"]), 2)
        shown = self.d.ctl_json("transfer", "show", "db-2.1.img")
        self.assertEqual((shown["info_hash"], shown["length"]), (h2, 100000))
        self.assertEqual(shown["files"], [{"path": "db-2.1.img", "length": 100000}])
        # The .torrent comes back byte for byte, by info_hash and by name.
        with open(t1, "rb") as f:
            original = f.read()
        self.assertEqual(curl(self.url + "/transfers/%s.torrent" % h1), (200, original))
        self.assertEqual(curl(self.url + "/transfers/app-1.0.tar.torrent"), (200, original))
        self.assertEqual(curl(self.url + "/transfers/%s.json" % h1.upper())[0], 200)
        self.assertEqual(curl(self.url + "/transfers/nope.json")[0], 404)
        # A restart keeps the registrations.
        self.stop_tracker(False)
        self.start()
        self.assertEqual(self.d.ctl_json("transfer", "list")["count"], 2)
        # Removal, over the API and with shoalctl.
        code, body = curl("-X", "DELETE", self.url + "/transfers/" + h1)
        self.assertEqual((code, json.loads(body)), (200, {"removed": h1}))
        self.assertEqual(curl(self.url + "/transfers/%s.json" % h1)[0], 404)
        rc, out = self.d.ctl("transfer", "remove", "db-2.1.img")
        self.assertEqual(rc, 0, out)
        rc, out = self.d.ctl("transfer", "remove", "db-2.1.img")
        self.assertEqual(rc, 1, out)
        self.assertIn("no transfer", out)
        self.assertEqual(self.d.ctl_json("transfer", "list")["count"], 0)
        self.assertEqual([n for n in os.listdir(self.state) if n.endswith(".torrent")], [])

    def test_a_host_fetches_the_torrent_from_the_tracker_and_downloads(self):
        self.start()
        torrent, ih, src = self.make_torrent("build-7.bin", 3 << 20, "udp://127.0.0.1:%d/announce" % self.d.port)
        rc, out = self.d.ctl("transfer", "add", torrent)
        self.assertEqual(rc, 0, out)
        seeder = self.start_proc("aria2-seed", aria2_argv("127.0.0.2", torrent, os.path.dirname(src), self.tmp,
                                                           "seed", True))
        dl = os.path.join(self.tmp, "dl")
        os.makedirs(dl)
        # The host knows only the tracker: it fetches the .torrent by name and follows it.
        argv = aria2_argv("127.0.0.3", self.url + "/transfers/build-7.bin.torrent", dl, self.tmp, "leech", False)
        argv.insert(-1, "--follow-torrent=mem")
        leech = self.start_proc("aria2-leech", argv)
        self.wait_aria2_download(leech)
        self.assertEqual(sha256_file(os.path.join(dl, "build-7.bin")), sha256_file(src))
        self.assertIsNone(seeder.p.poll())
        # The deploy's progress as the tracker saw it: both hosts, complete once the leecher said
        # completed, with the times of its start and completion.
        def deploy():
            rc, out = self.d.ctl("transfer", "show", ih, "json")
            self.assertEqual(rc, 0, out)
            return json.loads(out).get("deploy") or {}
        harness.wait_for(lambda: deploy().get("complete"), min(20, self.left()), what="the transfer to show complete")
        p = deploy()
        self.assertEqual((p["seeders"], p["leechers"], p["progress"]), (2, 0, 100.0), p)
        self.assertGreaterEqual(p["completed"], 1)
        self.assertIsNotNone(p["first_started"])
        self.assertIsNotNone(p["first_completed"])
        self.assertEqual([(l["location"], l["hosts"]) for l in p["locations"]], [("unknown", 2)])


if __name__ == "__main__":
    harness.main()
