"""A small BEP 15 (UDP tracker protocol) client for the shoal integration tests.

Python 3 stdlib only. Two layers:

* `Client`: one UDP socket bound to a chosen source address (127.0.0.x or ::1), synchronous
  connect / announce / scrape with bounded timeouts and retries, plus raw send/receive for
  malformed-input tests.
* `Pipeline`: many sockets and many requests in flight at once (selectors), used by the load
  and chaos tests. Every request is bounded (timeouts x attempts); timeouts and retries are
  counted so a test can assert how often the tracker failed to answer.

All integers on the wire are big-endian. Only loopback addresses are ever used by the tests.
"""
import ipaddress
import os
import selectors
import socket
import struct
import time

PROTOCOL_ID = 0x41727101980

ACTION_CONNECT = 0
ACTION_ANNOUNCE = 1
ACTION_SCRAPE = 2
ACTION_ERROR = 3

EVENT_NONE = 0
EVENT_COMPLETED = 1
EVENT_STARTED = 2
EVENT_STOPPED = 3

ANNOUNCE_LEN = 98


class TrackerError(Exception):
    """The tracker answered with action 3 (error)."""

    def __init__(self, message, transaction_id=None):
        super().__init__(message)
        self.message = message
        self.transaction_id = transaction_id


class TrackerTimeout(Exception):
    """No answer after every attempt."""


class ProtocolViolation(Exception):
    """The tracker answered with something that is not a valid BEP 15 response."""


def family_of(host):
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _tid():
    return struct.unpack(">I", os.urandom(4))[0]


# ----------------------------------------------------------------------------- encoding

def build_connect(transaction_id, protocol_id=PROTOCOL_ID):
    return struct.pack(">QiI", protocol_id, ACTION_CONNECT, transaction_id)


def build_announce(connection_id, transaction_id, info_hash, peer_id=None, downloaded=0,
                   left=1000, uploaded=0, event=EVENT_NONE, ip=0, key=0, numwant=-1,
                   port=6881, options=b"", action=ACTION_ANNOUNCE):
    assert len(info_hash) == 20
    if peer_id is None:
        peer_id = b"-SH0001-" + os.urandom(12)
    assert len(peer_id) == 20
    if isinstance(ip, str):
        ip = struct.unpack(">I", socket.inet_aton(ip))[0]
    return (struct.pack(">QiI", connection_id, action, transaction_id) + info_hash + peer_id +
            struct.pack(">qqqiIIiH", downloaded, left, uploaded, event, ip, key, numwant, port) +
            options)


def build_scrape(connection_id, transaction_id, info_hashes):
    return struct.pack(">QiI", connection_id, ACTION_SCRAPE, transaction_id) + b"".join(info_hashes)


def bep41_urldata(path):
    """BEP 41 options carrying `path` as URLData chunks, then EndOfOptions."""
    data = path.encode() if isinstance(path, str) else path
    out = b""
    while data:
        chunk, data = data[:255], data[255:]
        out += bytes([0x02, len(chunk)]) + chunk
    return out + b"\x00"


# ----------------------------------------------------------------------------- decoding

class AnnounceReply:
    __slots__ = ("interval", "leechers", "seeders", "peers", "raw")

    def __init__(self, interval, leechers, seeders, peers, raw):
        self.interval, self.leechers, self.seeders, self.peers, self.raw = (
            interval, leechers, seeders, peers, raw)

    def __repr__(self):
        return "AnnounceReply(interval=%d, leechers=%d, seeders=%d, peers=%d)" % (
            self.interval, self.leechers, self.seeders, len(self.peers))


def parse_header(data):
    if len(data) < 8:
        raise ProtocolViolation("reply shorter than 8 bytes: %r" % data)
    return struct.unpack(">iI", data[:8])


def parse_error(data):
    return data[8:].decode("utf-8", "replace")


def parse_connect(data):
    if len(data) != 16:
        raise ProtocolViolation("connect reply of %d bytes (want 16)" % len(data))
    action, tid, cid = struct.unpack(">iIQ", data)
    return cid


def parse_announce(data, family):
    """Decodes an announce reply; `family` is the transport family of the request."""
    if len(data) < 20:
        raise ProtocolViolation("announce reply of %d bytes (< 20)" % len(data))
    _action, _tid, interval, leechers, seeders = struct.unpack(">iIiii", data[:20])
    stride = 18 if family == socket.AF_INET6 else 6
    body = data[20:]
    if len(body) % stride:
        raise ProtocolViolation("announce reply peer bytes %d not a multiple of %d" % (len(body), stride))
    peers = []
    for off in range(0, len(body), stride):
        raw_ip = body[off:off + stride - 2]
        (pport,) = struct.unpack(">H", body[off + stride - 2:off + stride])
        peers.append((socket.inet_ntop(family, raw_ip), pport))
    return AnnounceReply(interval, leechers, seeders, peers, data)


def parse_scrape(data):
    if len(data) < 8 or (len(data) - 8) % 12:
        raise ProtocolViolation("scrape reply of %d bytes is not 8 + 12*n" % len(data))
    return [struct.unpack(">iii", data[off:off + 12]) for off in range(8, len(data), 12)]


# ----------------------------------------------------------------------------- sync client

class Client:
    """One socket, one source address, synchronous requests.

    tracker: (host, port). source: local address to bind (default: loopback of the family).
    timeout: seconds per attempt; attempts: tries per request (the total wait is bounded by
    timeout * attempts)."""

    def __init__(self, tracker, source=None, timeout=1.0, attempts=3):
        self.tracker = (tracker[0], int(tracker[1]))
        self.family = family_of(self.tracker[0])
        if source is None:
            source = "::1" if self.family == socket.AF_INET6 else "127.0.0.1"
        self.source = source
        self.timeout = timeout
        self.attempts = attempts
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.connect(self.tracker)   # only accept datagrams from the tracker address
        self.conn_id = None
        self.conn_time = 0.0
        self.timeouts = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    # raw access -----------------------------------------------------------------------
    def send_raw(self, data):
        self.sock.send(data)

    def recv_raw(self, timeout):
        """Next datagram from the tracker, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionRefusedError:
                # ICMP port unreachable from an earlier send: the tracker was not listening.
                continue

    def drain(self):
        """Discards queued datagrams (late answers of earlier attempts)."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    self.sock.recv(65536)
                except (BlockingIOError, ConnectionRefusedError):
                    break
        finally:
            self.sock.setblocking(True)

    def exchange(self, data, tid, timeout=None, attempts=None):
        """Sends `data` until an answer carrying transaction id `tid` arrives.
        Returns the raw answer; raises TrackerTimeout after all attempts."""
        timeout = self.timeout if timeout is None else timeout
        attempts = self.attempts if attempts is None else attempts
        for _ in range(attempts):
            self.sock.send(data)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                reply = self.recv_raw(left)
                if reply is None:
                    break
                if len(reply) >= 8 and struct.unpack(">I", reply[4:8])[0] == tid:
                    return reply
            self.timeouts += 1
        raise TrackerTimeout("no answer from %s:%d to a %d-byte request after %d attempts of %.1fs"
                             % (self.tracker[0], self.tracker[1], len(data), attempts, timeout))

    def _check(self, reply, want_action):
        action, tid = parse_header(reply)
        if action == ACTION_ERROR:
            raise TrackerError(parse_error(reply), tid)
        if action != want_action:
            raise ProtocolViolation("action %d in reply (want %d): %r" % (action, want_action, reply[:64]))
        return reply

    # protocol -------------------------------------------------------------------------
    def connect(self, protocol_id=PROTOCOL_ID):
        tid = _tid()
        reply = self._check(self.exchange(build_connect(tid, protocol_id), tid), ACTION_CONNECT)
        self.conn_id = parse_connect(reply)
        self.conn_time = time.monotonic()
        return self.conn_id

    def ensure_connected(self):
        # BEP 15: a client may use a connection id for one minute.
        if self.conn_id is None or time.monotonic() - self.conn_time > 50:
            self.connect()
        return self.conn_id

    def announce(self, info_hash, port, left=1000, event=EVENT_NONE, numwant=-1, ip=0,
                 key=0, peer_id=None, downloaded=0, uploaded=0, options=b"", conn_id=None):
        cid = self.ensure_connected() if conn_id is None else conn_id
        tid = _tid()
        data = build_announce(cid, tid, info_hash, peer_id, downloaded, left, uploaded, event, ip,
                              key, numwant, port, options)
        reply = self._check(self.exchange(data, tid), ACTION_ANNOUNCE)
        return parse_announce(reply, self.family)

    def scrape(self, info_hashes, conn_id=None):
        cid = self.ensure_connected() if conn_id is None else conn_id
        tid = _tid()
        reply = self._check(self.exchange(build_scrape(cid, tid, info_hashes), tid), ACTION_SCRAPE)
        return parse_scrape(reply)

    def request_raw(self, data_without_tid_fn, timeout=None, attempts=None):
        """data_without_tid_fn(tid) -> bytes; returns (action, tid, raw reply)."""
        tid = _tid()
        reply = self.exchange(data_without_tid_fn(tid), tid, timeout, attempts)
        action, rtid = parse_header(reply)
        return action, rtid, reply

    def expect_silence(self, data, wait=0.3):
        """Sends `data`; returns the datagram the tracker answered with, or None if it kept
        silent for `wait` seconds."""
        self.drain()
        self.sock.send(data)
        return self.recv_raw(wait)


# ----------------------------------------------------------------------------- pipeline

class Op:
    """One announce or scrape in a Pipeline.

    kind: "announce" or "scrape"; source: local address to send from; params: keyword
    arguments of build_announce (announce) or {"info_hashes": [...]} (scrape); tag: anything
    the caller wants back in the callback."""
    __slots__ = ("kind", "source", "params", "tag", "tid", "attempt", "deadline", "sent_once",
                 "data", "cid")

    def __init__(self, kind, source, params, tag=None):
        self.kind, self.source, self.params, self.tag = kind, source, params, tag
        self.tid = None
        self.attempt = 0
        self.deadline = 0.0
        self.sent_once = False
        self.data = None
        self.cid = None


class _Endpoint:
    __slots__ = ("sock", "source", "cid", "cid_time", "connect_tid", "connect_deadline",
                 "connect_attempt", "waiting")

    def __init__(self, sock, source):
        self.sock, self.source = sock, source
        self.cid = None
        self.cid_time = 0.0
        self.connect_tid = None
        self.connect_deadline = 0.0
        self.connect_attempt = 0
        self.waiting = []   # ops waiting for a connection id


class PipelineStats:
    def __init__(self):
        self.sent = 0            # request datagrams sent (incl. retries and connects)
        self.answered = 0        # ops acknowledged
        self.timeouts = 0        # attempts that got no answer in time
        self.reconnects = 0      # connection ids dropped after repeated timeouts
        self.failed = 0          # ops abandoned after every attempt
        self.errors = 0          # ops answered with action 3
        self.late = 0            # answers to an op already retried or finished
        self.max_latency = 0.0
        self.latencies = []      # seconds from first send to answer, per answered op

    def answered_within(self, seconds):
        return sum(1 for x in self.latencies if x <= seconds)

    def percentile(self, q):
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def __repr__(self):
        return ("sent=%d answered=%d timeouts=%d reconnects=%d failed=%d errors=%d late=%d "
                "max_latency=%.3fs" % (self.sent, self.answered, self.timeouts, self.reconnects,
                                       self.failed, self.errors, self.late, self.max_latency))


class Pipeline:
    """Many requests in flight over many source sockets, in one thread.

    Retry policy (a compressed BEP 15 client): resend after `timeout * 2**n` seconds (capped
    at `max_timeout`), at most `attempts` sends per op; after two timeouts in a row the
    connection id of that source is dropped and a new connect is made first (in case the id
    is no longer accepted). Every op ends in exactly one callback:
    on_done(op, reply_or_None, error_message_or_None); reply None means "abandoned"."""

    def __init__(self, tracker, timeout=0.4, max_timeout=1.6, attempts=7):
        self.tracker = (tracker[0], int(tracker[1]))
        self.family = family_of(self.tracker[0])
        self.timeout, self.max_timeout, self.attempts = timeout, max_timeout, attempts
        self.sel = selectors.DefaultSelector()
        self.endpoints = {}
        self.inflight = {}   # (source, tid) -> op or ("connect", endpoint)
        self.stats = PipelineStats()
        self._sent_at = {}

    def close(self):
        for ep in self.endpoints.values():
            self.sel.unregister(ep.sock)
            ep.sock.close()
        self.endpoints.clear()
        self.sel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _endpoint(self, source):
        ep = self.endpoints.get(source)
        if ep is None:
            s = socket.socket(self.family, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind((source, 0))
            s.connect(self.tracker)
            s.setblocking(False)
            ep = _Endpoint(s, source)
            self.endpoints[source] = ep
            self.sel.register(s, selectors.EVENT_READ, ep)
        return ep

    def _send(self, ep, data):
        try:
            ep.sock.send(data)
        except (BlockingIOError, ConnectionRefusedError):
            pass   # counts as a lost datagram; the retry timer handles it
        self.stats.sent += 1

    def _backoff(self, attempt):
        return min(self.timeout * (2 ** attempt), self.max_timeout)

    def _start_connect(self, ep, now):
        ep.connect_tid = _tid()
        ep.connect_deadline = now + self._backoff(ep.connect_attempt)
        self.inflight[(ep.source, ep.connect_tid)] = ("connect", ep)
        self._send(ep, build_connect(ep.connect_tid))

    def _send_op(self, op, ep, now):
        if op.tid is None:
            op.tid = _tid()
        if op.cid != ep.cid or op.data is None:
            op.cid = ep.cid
            if op.kind == "announce":
                op.data = build_announce(ep.cid, op.tid, **op.params)
            else:
                op.data = build_scrape(ep.cid, op.tid, op.params["info_hashes"])
        op.deadline = now + self._backoff(op.attempt)
        if not op.sent_once:
            self._sent_at[id(op)] = now
            op.sent_once = True
        self.inflight[(ep.source, op.tid)] = op
        self._send(ep, op.data)

    def submit(self, op, now=None):
        now = time.monotonic() if now is None else now
        ep = self._endpoint(op.source)
        if ep.cid is not None and now - ep.cid_time > 50:
            ep.cid = None
        if ep.cid is None:
            ep.waiting.append(op)
            if ep.connect_tid is None:
                self._start_connect(ep, now)
        else:
            self._send_op(op, ep, now)

    def _finish(self, op, reply, err):
        self.inflight.pop((op.source, op.tid), None)
        t0 = self._sent_at.pop(id(op), None)
        if reply is not None and t0 is not None:
            lat = time.monotonic() - t0
            self.stats.latencies.append(lat)
            self.stats.max_latency = max(self.stats.max_latency, lat)
        self.on_done(op, reply, err)

    def on_done(self, op, reply, err):   # overridden or replaced by the caller
        pass

    def pending(self):
        return sum(1 for v in self.inflight.values() if not isinstance(v, tuple)) + sum(
            len(ep.waiting) for ep in self.endpoints.values())

    def poll(self, max_wait=0.05):
        """Receives what is ready (waiting at most `max_wait`), then handles timeouts."""
        for key, _ in self.sel.select(max_wait):
            ep = key.data
            while True:
                try:
                    data = ep.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    continue
                self._on_datagram(ep, data)
        self._check_timeouts(time.monotonic())

    def _on_datagram(self, ep, data):
        if len(data) < 8:
            raise ProtocolViolation("datagram of %d bytes from the tracker" % len(data))
        action, tid = struct.unpack(">iI", data[:8])
        entry = self.inflight.pop((ep.source, tid), None)
        if entry is None:
            self.stats.late += 1
            return
        now = time.monotonic()
        if isinstance(entry, tuple):
            if action != ACTION_CONNECT:
                raise ProtocolViolation("action %d answering a connect" % action)
            ep.cid = parse_connect(data)
            ep.cid_time = now
            ep.connect_tid = None
            ep.connect_attempt = 0
            waiting, ep.waiting = ep.waiting, []
            for op in waiting:
                self._send_op(op, ep, now)
            return
        op = entry
        self.inflight[(ep.source, tid)] = op   # _finish pops it
        if action == ACTION_ERROR:
            self.stats.errors += 1
            self._finish(op, None, parse_error(data))
            return
        want = ACTION_ANNOUNCE if op.kind == "announce" else ACTION_SCRAPE
        if action != want:
            raise ProtocolViolation("action %d answering a %s" % (action, op.kind))
        self.stats.answered += 1
        self._finish(op, data, None)

    def _check_timeouts(self, now):
        expired = [(k, v) for k, v in self.inflight.items()
                   if (v[1].connect_deadline if isinstance(v, tuple) else v.deadline) <= now]
        for k, v in expired:
            self.inflight.pop(k, None)
            self.stats.timeouts += 1
            if isinstance(v, tuple):
                ep = v[1]
                ep.connect_attempt += 1
                if ep.connect_attempt >= self.attempts:
                    ep.connect_tid = None
                    ep.connect_attempt = 0
                    waiting, ep.waiting = ep.waiting, []
                    for op in waiting:
                        self.stats.failed += 1
                        self.on_done(op, None, None)
                else:
                    self._start_connect(ep, now)
                continue
            op = v
            op.attempt += 1
            ep = self.endpoints[op.source]
            if op.attempt >= self.attempts:
                self.stats.failed += 1
                self._sent_at.pop(id(op), None)
                self.on_done(op, None, None)
                continue
            if op.attempt % 2 == 0 and ep.cid is not None and ep.cid == op.cid:
                # Two timeouts in a row: the id may no longer be accepted; reconnect.
                ep.cid = None
                self.stats.reconnects += 1
            if ep.cid is None:
                ep.waiting.append(op)
                if ep.connect_tid is None:
                    self._start_connect(ep, now)
            else:
                self._send_op(op, ep, now)

    def run(self, ops, window=64, deadline=None, on_idle=None):
        """Runs `ops` (an iterable; may be a generator fed by callbacks) with at most `window`
        in flight; returns when all are done or `deadline` (monotonic) passes (then raises
        TrackerTimeout). `on_idle()` is called between polls."""
        it = iter(ops)
        exhausted = False
        while True:
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise TrackerTimeout("pipeline deadline passed with %d ops pending" % self.pending())
            while not exhausted and self.pending() < window:
                try:
                    op = next(it)
                except StopIteration:
                    exhausted = True
                    break
                if op is None:   # generator has nothing ready right now
                    break
                self.submit(op, now)
            if exhausted and self.pending() == 0:
                return
            self.poll(0.02)
            if on_idle is not None:
                on_idle()
