#!/usr/bin/python3
"""Writes valid snapshot streams (docs/snapshot-format.md; version 1, and one of version 2 with
WebTorrent peer records) as seeds of tests/fuzz/fuzz_snapshot:
the first byte of each seed is the fuzz target's split point, the rest a snapshot. Run from the
repository root: tools/make_snapshot_seeds.py tests/fuzz/corpus/fuzz_snapshot"""
import os
import struct
import sys
import zlib


def chunk(ctype, payload):
    head = struct.pack(">B3xI", ctype, len(payload))
    return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


def snapshot(torrents):
    out = b"SHOALSNP" + struct.pack(">HHI", 1, 0, 0)
    node, sw = b"seed-node", b"shoald seed"
    out += chunk(1, struct.pack(">QI", 1765000000, 9) + bytes([len(node)]) + node + bytes([len(sw)]) + sw)
    data, npeers = b"", 0
    for t, peers in enumerate(torrents):
        data += b"T" + bytes([t + 1] * 20) + bytes([0, 0]) + struct.pack(">I", t * 2)
        for p, (fam, flags) in enumerate(peers):
            addr = bytes([10, 0, t, p]) if fam == 4 else bytes([0xfd] + [0] * 14 + [p])
            data += b"P" + bytes([fam, flags]) + addr + struct.pack(">HIHH", 6881 + p, 30 * p, p % 3, 500)
            if flags & 0x80:
                data += b"-qB4500-" + bytes(12)
            npeers += 1
    chunks = 0
    if data:
        out += chunk(2, data)
        chunks = 1
    return out + chunk(3, struct.pack(">QQI", len(torrents), npeers, chunks))


def webtorrent_snapshot():
    """A version 2 stream: a BitTorrent torrent with one peer, then a WebTorrent torrent (kind 1)
    with two WebTorrent peer records ('W': flags, key, node, slot, generation, token, age)."""
    out = b"SHOALSNP" + struct.pack(">HHI", 2, 0, 0)
    node, sw = b"seed-node", b"shoald seed"
    out += chunk(1, struct.pack(">QI", 1765000000, 9) + bytes([len(node)]) + node + bytes([len(sw)]) + sw)
    data = b"T" + bytes([1] * 20) + bytes([0, 0]) + struct.pack(">I", 0)
    data += b"P" + bytes([4, 1]) + bytes([10, 0, 0, 1]) + struct.pack(">HIHH", 6881, 5, 0, 0xffff)
    data += b"T" + bytes([2] * 20) + bytes([1, 0]) + struct.pack(">I", 1)
    for p in range(2):
        data += b"W" + bytes([3 * p]) + bytes(range(p, p + 16)) + struct.pack(">HBHII", 1 + p, p, 7, 0x1000 + p, 20 * p)
    return out + chunk(2, data) + chunk(3, struct.pack(">QQI", 2, 3, 1))


def main(d):
    os.makedirs(d, exist_ok=True)
    seeds = {
        "empty": b"\x00" + snapshot([]),
        "small": b"\x07" + snapshot([[(4, 1), (4, 0), (6, 2)], [(6, 0x80), (4, 4)]]),
        "split_in_chunk": b"\x40" + snapshot([[(4, 3)] * 5, [(6, 1)] * 3]),
        "webtorrent": b"\x21" + webtorrent_snapshot(),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/fuzz_snapshot")
