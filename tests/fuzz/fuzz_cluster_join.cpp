// libFuzzer target: what a joining node parses of another node's answer (worker/cluster_join.hpp:
// the frames, fed in order to a JoinReceiver that checks sequence numbers and decodes the
// snapshot stream inside them), the join request, and the deploy-transfer messages
// (worker/cluster_transfers.hpp). All of it arrives over NATS from anything that can publish.
// Input: a sequence of messages, each a big-endian u16 length then that many bytes (a short
// last one is cut to what is left); seeds: tools/make_join_seeds.py.
// Checks: no crash or sanitizer report; a refused frame has a reason; every entry handed on is a
// join entry of family 0, 4, 6 or 'w' (a WebTorrent peer), and the peers counted equal the peer entries handed on; a
// failure has a reason; a decoded frame (but for its reserved word) or transfer
// message encodes back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "worker/cluster_join.hpp"
#include "worker/cluster_transfers.hpp"

namespace {

struct Sink final : shoal::worker::JoinEntrySink {
  uint64_t peers = 0;
  void put(const shoal::shm::Delta& d) override {
    if (!(d.flags & shoal::shm::kDeltaJoin) || (d.family != 0 && d.family != 4 && d.family != 6 && d.family != 'w')) __builtin_trap();
    if (d.family != 0) peers++;
  }
};

void check_transfer(const std::vector<uint8_t>& m) {
  using namespace shoal::worker;
  TransferMessage t;
  std::string why;
  if (!decode_transfer_message(m.data(), m.size(), &t, &why)) {
    if (why.empty()) __builtin_trap();
    return;
  }
  std::string torrent(reinterpret_cast<const char*>(t.torrent), t.torrent_len);
  if (m[4] == 1) {  // version 1 (no time field) reads as time 0; it is re-encoded as version 2
    if (t.time_ms != 0) __builtin_trap();
    return;
  }
  if (encode_transfer_message(t.op, t.node_id, t.info_hash, t.time_ms, torrent) != m) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shoal::worker;
  Sink sink;
  JoinReceiver rx(&sink, 1765000100);
  bool failed = false;
  size_t i = 0;
  while (i < size) {
    size_t n = i + 2 <= size ? size_t(data[i]) << 8 | data[i + 1] : 0;
    i += 2;
    if (i > size) break;
    n = std::min(n, size - i);
    std::vector<uint8_t> m(data + i, data + i + n);  // exact-size heap buffer: ASan sees overreads
    i += n;
    decode_join_request(m.data(), m.size());
    check_transfer(m);
    JoinFrame f;
    std::string why;
    if (decode_join_frame(m.data(), m.size(), &f, &why)) {
      std::vector<uint8_t> again;
      encode_join_frame(f, f.payload, f.payload_len, &again);
      std::vector<uint8_t> want = m;  // the reserved word (bytes 12-15) is ignored and written as 0
      std::memset(want.data() + 12, 0, 4);
      if (again != want) __builtin_trap();
    } else if (why.empty()) {
      __builtin_trap();
    }
    if (failed) continue;  // the sync worker stops feeding a failed receiver
    JoinReceiver::Result r = rx.take(m.data(), m.size());
    if (r == JoinReceiver::failed && rx.error().empty()) __builtin_trap();
    failed = r == JoinReceiver::failed;
  }
  if (rx.peers() != sink.peers) __builtin_trap();
  return 0;
}
