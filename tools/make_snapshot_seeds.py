#!/usr/bin/python3
"""Writes valid snapshot streams (docs/snapshot-format.md) as seeds of tests/fuzz/fuzz_snapshot:
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


def main(d):
    os.makedirs(d, exist_ok=True)
    seeds = {
        "empty": b"\x00" + snapshot([]),
        "small": b"\x07" + snapshot([[(4, 1), (4, 0), (6, 2)], [(6, 0x80), (4, 4)]]),
        "split_in_chunk": b"\x40" + snapshot([[(4, 3)] * 5, [(6, 1)] * 3]),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/fuzz_snapshot")
