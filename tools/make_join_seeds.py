#!/usr/bin/python3
"""Writes seeds of tests/fuzz/fuzz_cluster_join: a live node's answers to a joining node as the
target reads them (each message a big-endian u16 length, then its bytes): frame 1 the snapshot
preamble and header chunk, one frame per data chunk, the end chunk last (worker/cluster_join.hpp),
built from tools/make_snapshot_seeds.py's snapshots, and one of version 2 with WebTorrent peer
records; a busy answer; a join request; deploy-
transfer messages (worker/cluster_transfers.hpp). Run from the repository root:
tools/make_join_seeds.py tests/fuzz/corpus/fuzz_cluster_join"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_snapshot_seeds import snapshot, webtorrent_snapshot  # noqa: E402


def chunks(stream):
    """The preamble with the header chunk, then each further chunk."""
    out, i = [], 16
    while i < len(stream):
        n = struct.unpack(">I", stream[i + 4:i + 8])[0]
        out.append(stream[i:i + 12 + n])
        i += 12 + n
    out[0] = stream[:16] + out[0]
    return out


def frame(kind, seq, payload, node=7, name=b"node-7"):
    return b"SHJN" + bytes([kind, len(name)]) + struct.pack(">HII", node, seq, 0) + name + payload


def messages(msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def transfer(op, info_hash=bytes(20), torrent=b"", time_ms=1765000000000, version=2):
    """A <subject>.transfers message (worker/cluster_transfers.hpp); version 1 has no time."""
    t = struct.pack(">Q", time_ms) if version == 2 else b""
    return b"SHTF" + bytes([version, op]) + struct.pack(">H", 3) + info_hash + t + torrent


def main(d):
    os.makedirs(d, exist_ok=True)
    seeds = {}
    for name, torrents in (("answer-small", [[(4, 1), (6, 2)]]),
                           ("answer-three", [[(4, 0)] * 3, [], [(6, 0x81), (4, 3)]])):
        parts = chunks(snapshot(torrents))
        seeds[name] = messages([frame(1, k + 1, c) for k, c in enumerate(parts)])
    seeds["answer-webtorrent"] = messages([frame(1, k + 1, c) for k, c in enumerate(chunks(webtorrent_snapshot()))])
    seeds["busy-then-request"] = messages([frame(2, 0, b"answering another node"), b"SHJQ\x00\x05"])
    seeds["transfers-v1"] = messages([transfer(2, bytes(range(20)), version=1)])
    seeds["transfers"] = messages([transfer(3, time_ms=0), transfer(2, bytes(range(20))),
                                   transfer(1, bytes(range(20)), b"d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:" + bytes(20) + b"ee")])
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
