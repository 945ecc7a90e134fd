"""A poison request (issue 12): a request that kills every swarm worker applying it would be
redone by each replacement forever (requests are retired only once answered). With the test
hook SHOAL_TEST_ABORT_INFO_HASH a swarm worker aborts on one info_hash: the first replacement
redoes the request and dies too, the second skips it (log, counter poison_requests_skipped), and
the partition serves again with every other swarm intact. The poisoner gets no reply. Loopback
only; bounded; only our shoald is signalled."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import bep15  # noqa: E402
import harness  # noqa: E402


class PoisonRequestTest(unittest.TestCase):

    def setUp(self):
        harness.need_shoald()

    def test_a_request_that_kills_two_workers_is_skipped(self):
        poison = harness.info_hash("poison")
        good = harness.info_hash("good")
        d = harness.Shoald(supervisor={"crash_loop_limit": 5})
        d.env = dict(os.environ, SHOAL_TEST_ABORT_INFO_HASH=poison.hex())
        with d:
            with d.client() as c:
                c.announce(good, 6001, left=10, event=bep15.EVENT_STARTED)
            first = d.worker_pid("swarm", 0)
            with d.client(timeout=0.3, attempts=1) as c:
                with self.assertRaises(bep15.TrackerTimeout):
                    c.announce(poison, 6002, left=10, event=bep15.EVENT_STARTED)
            harness.wait_for(lambda: "skipping it (a poison request" in d.log(), 10, what="the poison request skipped")
            self.assertIn("redoing it (it is skipped if it kills 2 workers in a row)", d.log())
            harness.wait_for(lambda: d.counter("poison_requests_skipped") == 1, 5, what="the skip counted")
            harness.wait_for(lambda: d.ctl("wait-ready", "2")[0] == 0, 10, what="the third swarm worker ready")
            self.assertNotEqual(d.worker_pid("swarm", 0), first)
            with d.client(timeout=0.5, attempts=6) as c:  # served again; the good swarm survived
                r = c.announce(good, 6003, left=10, event=bep15.EVENT_STARTED)
            self.assertEqual(r.leechers, 2)
            self.assertEqual(d.log().count("was terminated by signal 6"), 2)
            self.assertNotIn("crash loop", d.log())


if __name__ == "__main__":
    harness.main()
