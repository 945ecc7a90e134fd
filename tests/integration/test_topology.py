"""The topology map and the location-aware peer selection (issue 11) against a real shoald over
BEP 15. Hosts are loopback addresses of different /24s (127.0.R.H: rack R, host H), which the
map places in racks, zones and regions. `nearest` answers rack first, then zone, then region;
`tiered` keeps ordinary hosts in their rack and lets only representatives reach other racks;
mode "prefix" groups by /24 without a map; SIGUSR1 reloads the map with the access list (a bad
map keeps the old one and the log names the line); a bad map stops the start and `shoald -t`
names the line. Loopback only; every wait is bounded; only our shoald is signalled, by PID."""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

MAP = ("# test datacenter\n"
       "127.0.1.0/24 dc1/z1/r1\n"
       "127.0.2.0/24 dc1/z1/r2   # same zone as r1\n"
       "127.0.3.0/24 dc1/z2/r3\n"
       "127.0.4.0/24 dc2/z9/r4\n")
IH = harness.info_hash("topology")


def config(policy, mode="file", extra=""):
    topo = 'topology:\n{\n  mode = "%s";\n%s};\n' % (
        mode, '  file = "@DIR@/topology.map";\n' if mode == "file" else "")
    return topo + 'peer_selection:\n{\n  policy = "%s";\n%s};\n' % (policy, extra)


def host(rack, h):
    return "127.0.%d.%d" % (rack, h)


def announce(d, rack, h, numwant=50, left=1000, event=0, info_hash=IH):
    """Host 127.0.rack.h announces port 6000 + 100 * rack + h; returns the set of peer addresses."""
    with d.client(source=host(rack, h)) as c:
        reply = c.announce(info_hash, 6000 + 100 * rack + h, left=left, event=event, numwant=numwant)
    return {ip for ip, _port in reply.peers}


def racks_of(peers):
    return sorted(int(ip.split(".")[2]) for ip in peers)


class TopologyTest(unittest.TestCase):

    def test_nearest_fills_rack_then_zone_then_region(self):
        with harness.Shoald(extra=config("nearest"), files={"topology.map": MAP}) as d:
            for rack in (1, 2, 3, 4):
                for h in (1, 2, 3):
                    announce(d, rack, h, numwant=0)
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=2)), [1, 1])
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=5)), [1, 1, 2, 2, 2])   # then its zone
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=8)), [1, 1, 2, 2, 2, 3, 3, 3])  # region
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=50)), [1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
            # An address outside the map sits in the default location: it is everyone's stranger.
            self.assertEqual(len(announce(d, 9, 1, numwant=3)), 3)
            self.assertIn("topology map: 4 prefixes, 5 locations", d.log())

    def test_tiered_keeps_ordinary_hosts_in_their_rack(self):
        extra = "  max_representatives_per_rack = 1;\n"
        with harness.Shoald(extra=config("tiered", extra=extra), files={"topology.map": MAP}) as d:
            announce(d, 4, 1, left=0, numwant=0)  # the seeder, in dc2
            for rack in (1, 3):
                for h in (1, 2, 3):
                    announce(d, rack, h, numwant=0)
            # 127.0.1.1 and 127.0.3.1 asked first: their racks' representatives.
            self.assertEqual(announce(d, 1, 1), {host(4, 1), host(3, 1), host(1, 2), host(1, 3)})
            self.assertEqual(announce(d, 1, 2), {host(1, 1), host(1, 3)})  # its rack only
            self.assertEqual(announce(d, 3, 3), {host(3, 1), host(3, 2)})
            # The seeder reaches only representatives of other racks.
            self.assertEqual(announce(d, 4, 1, left=0), {host(1, 1), host(3, 1)})
            # The representative of rack 1 stops: the next host of the rack to announce takes over.
            announce(d, 1, 1, event=3)
            self.assertEqual(announce(d, 1, 3), {host(4, 1), host(3, 1), host(1, 2)})
            self.assertEqual(announce(d, 1, 2), {host(1, 3)})
            # Rack 1 completes a copy: it no longer needs anyone outside.
            announce(d, 1, 2, left=0, event=1)
            self.assertEqual(announce(d, 1, 3), {host(1, 2)})

    def test_prefix_mode_groups_by_slash_24_without_a_map(self):
        with harness.Shoald(extra=config("nearest", mode="prefix")) as d:
            for rack in (5, 6):
                for h in (1, 2, 3, 4):
                    announce(d, rack, h, numwant=0)
            self.assertEqual(racks_of(announce(d, 5, 1, numwant=3)), [5, 5, 5])
            self.assertEqual(racks_of(announce(d, 6, 4, numwant=3)), [6, 6, 6])

    def test_reload_with_the_access_list_and_a_bad_map_keeps_the_old_one(self):
        with harness.Shoald(extra=config("nearest"), files={"topology.map": MAP}) as d:
            for rack in (1, 2):
                for h in (1, 2):
                    announce(d, rack, h, numwant=0)
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=1)), [1])
            # A bad map: the log names the line, the old map stays.
            d.write_file("topology.map", MAP + "127.0.9.0/33 dc9\n")
            before = d.log().count("keeping previous topology map")
            os.kill(d.pid, signal.SIGUSR1)
            harness.wait_for(lambda: d.log().count("keeping previous topology map") > before, 10,
                             what="the bad map to be refused")
            self.assertIn("topology.map:6: bad prefix length \"33\" (must be 0 to 32)", d.log())
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=1)), [1])
            # A good one: 127.0.1.1 now sits in r2's rack. Stored peers keep their location
            # until they announce again; the asker is resolved at once.
            d.write_file("topology.map", MAP.replace("127.0.1.0/24 dc1/z1/r1", "127.0.1.1/32 dc1/z1/r2"))
            rc, out = d.ctl("reload")
            self.assertEqual(rc, 0, out)
            harness.wait_for(lambda: "topology map reloaded: 4 prefixes" in d.log(), 10,
                             what="the reload to be published")
            for h in (1, 2):
                announce(d, 2, h, numwant=0)
            self.assertEqual(racks_of(announce(d, 1, 1, numwant=2)), [2, 2])
            d.assert_alive()

    def test_bad_map_at_start_and_shoald_t_name_the_line(self):
        bad = MAP + "127.0.5.0/24 dc1//r5\n"
        want = 'topology.map:6: location "dc1//r5": empty level'
        shm_name = "shoaltest-%d-topo-bad" % os.getpid()
        with tempfile.TemporaryDirectory(prefix="shoaltest-topo-") as tmp:
            with open(os.path.join(tmp, "topology.map"), "w") as f:
                f.write(bad)
            conf = os.path.join(tmp, "shoal.conf")
            with open(conf, "w") as f:
                f.write('shm_name = "%s";\nudp: { listen = [ "127.0.0.1:%d" ]; };\nstats: { socket = ""; };\n%s'
                        % (shm_name, harness.free_udp_port(), config("tiered").replace("@DIR@", tmp)))
            for args, prefix in ((["-t"], ""), ([], "cannot start: ")):
                r = subprocess.run([harness.SHOALD] + args + ["-c", conf], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
                out = r.stdout.decode("utf-8", "replace")
                self.assertEqual(r.returncode, 1, out)
                self.assertIn(prefix + os.path.join(tmp, want), out)
            self.assertFalse([n for n in os.listdir("/dev/shm") if n.startswith(shm_name)],
                             "segments left behind")
            # A policy that needs locations without a topology: named with its line.
            with open(conf, "w") as f:
                f.write('peer_selection:\n{\n  policy = "nearest";\n};\n')
            r = subprocess.run([harness.SHOALD, "-t", "-c", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(b':3: peer_selection.policy: "nearest" needs locations', r.stdout)

if __name__ == "__main__":
    harness.main()
