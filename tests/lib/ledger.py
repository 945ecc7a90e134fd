"""A steady BEP 15 announce load with a ledger, for tests that disturb a running shoald (rolling
restarts, killed workers): every peer whose announce was answered is recorded, so the test can
check afterwards that the tracker still has each of them. Runs in a background thread, stops by
itself when the `with` block ends (bounded join)."""
import threading

import bep15
from harness import info_hash


class Background:
    """A loop in a daemon thread for the length of a `with` block: run() until self.stop is set;
    leaving the block sets it and joins the thread (at most 10 s)."""

    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)


class LoadWithLedger(Background):
    """Announces from a background thread; a peer enters the ledger when its reply arrived.
    Counts requests that had to be resent (lost) and ones never answered."""

    def __init__(self, d, torrents=200):
        super().__init__()
        self.d = d
        self.hashes = [info_hash("roll", i) for i in range(torrents)]
        self.ledger = {h: set() for h in self.hashes}
        self.lost = self.failed = self.sent = 0

    def run(self):
        with self.d.client(timeout=0.3, attempts=1) as c:
            while not self.stop.is_set():
                h = self.hashes[self.sent % len(self.hashes)]
                port = 10001 + self.sent % 50000  # a fast tracker answers thousands a second
                for attempt in range(10):
                    try:
                        c.announce(h, port, left=5, event=bep15.EVENT_STARTED)
                        self.ledger[h].add(port)
                        break
                    except bep15.TrackerTimeout:
                        self.lost += 1
                else:
                    self.failed += 1
                self.sent += 1
