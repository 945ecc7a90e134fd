"""Small HTTP/HTTPS tracker client pieces for the integration tests (Python 3 stdlib only).

RawHttp speaks HTTP/1.x over one TCP (or TLS) connection byte by byte, so tests control
pipelining, keep-alive, partial and malformed requests. Also: bencode decoding, announce/scrape
target builders with exact %-encoding of binary values, compact peer parsing, a TCP port free on
127.0.0.1 and ::1, a shoald config block for http/https, and test certificates made by
tools/make_test_cert.sh. Every socket operation has a timeout; nothing here starts processes
except openssl (via that script), bounded by a timeout.
"""
import hashlib
import os
import select
import socket
import ssl
import subprocess
import time
import urllib.parse

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
MAKE_CERT = os.path.join(REPO, "tools", "make_test_cert.sh")


# ----------------------------------------------------------------------------- bencode

def bdecode(data):
    """Decodes one bencoded value (bytes keys and strings); raises ValueError on bad input."""
    def dec(i):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i, out = i + 1, []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            i, out = i + 1, {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v, i = dec(i)
                out[k] = v
            return out, i + 1
        if not c.isdigit():
            raise ValueError("bad bencode at %d: %r" % (i, data[i:i + 20]))
        j = data.index(b":", i)
        n = int(data[i:j])
        return data[j + 1:j + 1 + n], j + 1 + n
    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing bytes after bencoded value")
    return v


def compact_peers(blob, family=4):
    """[(ip text, port)] from a BEP 23 (6-byte) or BEP 7 peers6 (18-byte) string."""
    size = 6 if family == 4 else 18
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    n = len(blob) // size
    return [(socket.inet_ntop(af, blob[k * size:k * size + size - 2]),
             int.from_bytes(blob[k * size + size - 2:k * size + size], "big")) for k in range(n)]


# ----------------------------------------------------------------------------- requests

def pct(b):
    """Every byte %-escaped (as BitTorrent clients do for binary values)."""
    return "".join("%%%02X" % x for x in b)


def announce_target(info_hash, peer_id, port, left=0, event=None, numwant=None, compact=None,
                    extra="", path="/announce"):
    q = "info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d" % (
        pct(info_hash), pct(peer_id), port, left)
    if event:
        q += "&event=" + event
    if numwant is not None:
        q += "&numwant=%s" % numwant
    if compact is not None:
        q += "&compact=%d" % compact
    return path + "?" + q + extra


def scrape_target(*hashes, path="/scrape"):
    return path + "?" + "&".join("info_hash=" + pct(h) for h in hashes)


def get(target, host="127.0.0.1", version="1.1", headers=()):
    lines = ["GET %s HTTP/%s" % (target, version), "Host: %s" % host] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def peer_id(n):
    return ("-SH0001-%012d" % n).encode()


# ----------------------------------------------------------------------------- connections

class Response:
    def __init__(self, version, status, headers, body):
        self.version, self.status, self.headers, self.body = version, status, headers, body

    def bencoded(self):
        return bdecode(self.body)

    def __repr__(self):
        return "<%s %d %r>" % (self.version, self.status, self.body[:200])


class RawHttp:
    """One HTTP connection to (host, port); optional source address and TLS context."""

    def __init__(self, host, port, source=None, timeout=5.0, tls=None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect((host, port))
        if tls is not None:
            s = tls.wrap_socket(s, server_hostname=host)
        self.sock, self.buf, self.connected_at = s, b"", time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by server")
        self.buf += chunk

    def read_response(self):
        """The next response (Content-Length framed, or up to close without one);
        ConnectionError if the server closed before a whole response."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if "content-length" not in headers:  # HTTP/1.0 style: the body ends at close
            while True:
                try:
                    self._fill()
                except ConnectionError:
                    break
            body, self.buf = self.buf, b""
            return Response(version, int(status), headers, body)
        n = int(headers["content-length"])
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return Response(version, int(status), headers, body)

    def request(self, target, **kw):
        self.send(get(target, **kw))
        return self.read_response()

    def wait_closed(self, timeout):
        """Seconds until the server closed the connection (EOF or reset), or None on timeout.
        Bytes that arrive meanwhile are kept in the buffer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                continue
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, OSError):
                return time.monotonic() - self.connected_at
            if not chunk:
                return time.monotonic() - self.connected_at
            self.buf += chunk
        return None


def free_tcp_port_both():
    """A TCP port free on both 127.0.0.1 and ::1."""
    return harness.free_port_both(socket.SOCK_STREAM)


def config_block(group, port, **opts):
    """`group: { enabled = true; listen = [127.0.0.1:port, [::1]:port]; opts... };`"""
    items = {"enabled": "true", "listen": '[ "127.0.0.1:%d", "[::1]:%d" ]' % (port, port)}
    for k, v in opts.items():
        items[k] = ('"%s"' % v) if isinstance(v, str) and not v.startswith("[") else v
    return "%s:\n{\n%s};\n" % (group, "".join("  %s = %s;\n" % kv for kv in items.items()))


def make_cert(directory, name="shoal-test"):
    """(cert path, key path) of a fresh self-signed pair from tools/make_test_cert.sh."""
    r = subprocess.run([MAKE_CERT, directory, name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if r.returncode != 0:
        raise RuntimeError("make_test_cert.sh failed: %s" % r.stdout.decode())
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


def pem_fingerprint(cert_path):
    """SHA-256 of the certificate (DER) as lowercase hex."""
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def served_fingerprint(port, host="127.0.0.1", timeout=10):
    """SHA-256 fingerprint (lowercase hex) of the certificate a new TLS connection is shown, as
    `openssl s_client | openssl x509 -fingerprint -sha256` reports it."""
    target = ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)
    r = subprocess.run(["openssl", "s_client", "-connect", target],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=timeout)
    x = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=r.stdout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = x.stdout.decode().strip()
    if "=" not in out:
        raise AssertionError("openssl s_client got no certificate from %s:%d: %s" % (host, port, out))
    return out.split("=", 1)[1].replace(":", "").lower()


def tls_client_context(cafile):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    return ctx
