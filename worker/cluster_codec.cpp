// worker/cluster_codec.cpp — see cluster_codec.hpp (format table there).
#include "worker/cluster_codec.hpp"

#include <algorithm>
#include <cstring>

#include "worker/cluster_ws_codec.hpp"
#include "shm/byte_order.hpp"

namespace shoal::worker {
namespace {

using namespace be;  // get16/32/64, put16/32/64: shm/byte_order.hpp

constexpr uint8_t kMagic[4] = {'S', 'H', 'C', 'L'};

}  // namespace

void encode_cluster_message(const ClusterHeader& h, const shm::Delta* deltas, size_t n, std::vector<uint8_t>* out) {
  if (n > kMaxDeltasPerMessage) n = kMaxDeltasPerMessage;
  size_t name_len = std::min(h.name.size(), kClusterMaxName);
  out->reserve(out->size() + kClusterHeaderBytes + name_len + n * kClusterDeltaBytes);
  out->insert(out->end(), kMagic, kMagic + 4);
  out->push_back(kClusterVersion);
  out->push_back(h.kind);
  put16(out, h.node_id);
  put64(out, h.session);
  put64(out, h.seq);
  put64(out, h.sent_ms);
  put16(out, uint16_t(n));
  out->push_back(uint8_t(name_len));
  out->insert(out->end(), h.name.begin(), h.name.begin() + long(name_len));
  for (size_t i = 0; i < n && h.kind == kClusterWsDeltas; i++) encode_ws_delta_record(deltas[i], out);
  for (size_t i = 0; i < n && h.kind != kClusterWsDeltas; i++) {
    const shm::Delta& d = deltas[i];
    out->insert(out->end(), d.info_hash, d.info_hash + 20);
    out->push_back(d.family);
    out->push_back(d.flags);
    const uint8_t* port = reinterpret_cast<const uint8_t*>(&d.port_be);  // already network order
    out->push_back(port[0]);
    out->push_back(port[1]);
    uint8_t addr[16] = {};
    std::memcpy(addr, d.addr, d.family == 4 ? 4 : 16);
    out->insert(out->end(), addr, addr + 16);
    put16(out, d.topology_group);
    put16(out, d.progress);
  }
}

bool decode_cluster_message(const uint8_t* p, size_t len, ClusterHeader* h, std::vector<shm::Delta>* deltas,
                            std::string* why) {
  deltas->clear();
  if (len < kClusterHeaderBytes) return *why = "shorter than the header (" + std::to_string(len) + " bytes)", false;
  if (std::memcmp(p, kMagic, 4) != 0) return *why = "bad magic", false;
  if (p[4] != kClusterVersion) return *why = "version " + std::to_string(p[4]) + " (this shoald speaks 1)", false;
  h->kind = p[5];
  bool ws = h->kind == kClusterWsDeltas;
  if (h->kind != kClusterDeltas && h->kind != kClusterHello && h->kind != kClusterHeartbeat && !ws)
    return *why = "unknown kind " + std::to_string(p[5]), false;
  h->node_id = get16(p + 6);
  if (h->node_id == 0) return *why = "node id 0", false;
  h->session = get64(p + 8);
  h->seq = get64(p + 16);
  h->sent_ms = get64(p + 24);
  uint16_t count = get16(p + 32);
  size_t name_len = p[34];
  if (name_len > kClusterMaxName) return *why = "name of " + std::to_string(name_len) + " bytes", false;
  if (count > kMaxDeltasPerMessage || (h->kind != kClusterDeltas && !ws && count != 0))
    return *why = "count " + std::to_string(count) + " not allowed", false;
  size_t record = ws ? kClusterWsDeltaBytes : kClusterDeltaBytes;
  size_t want = kClusterHeaderBytes + name_len + size_t(count) * record;
  if (len != want) return *why = std::to_string(len) + " bytes where the header says " + std::to_string(want), false;
  h->name.assign(reinterpret_cast<const char*>(p + kClusterHeaderBytes), name_len);
  if (h->name.find('\0') != std::string::npos) return *why = "NUL in the node name", false;
  const uint8_t* d = p + kClusterHeaderBytes + name_len;
  deltas->resize(count);
  for (uint16_t i = 0; ws && i < count; i++, d += kClusterWsDeltaBytes)
    if (!decode_ws_delta_record(d, h->node_id, &(*deltas)[i], why))
      return deltas->clear(), *why = "delta " + std::to_string(i) + ": " + *why, false;
  for (uint16_t i = 0; !ws && i < count; i++, d += kClusterDeltaBytes) {
    shm::Delta& x = (*deltas)[i];
    x = shm::Delta{};
    std::memcpy(x.info_hash, d, 20);
    x.family = d[20];
    x.flags = d[21];
    if (x.family != 4 && x.family != 6) return deltas->clear(), *why = "delta " + std::to_string(i) + ": family " + std::to_string(x.family), false;
    if (x.flags & ~shm::kDeltaKnownFlags) return deltas->clear(), *why = "delta " + std::to_string(i) + ": unknown flags", false;
    std::memcpy(&x.port_be, d + 22, 2);
    std::memcpy(x.addr, d + 24, x.family == 4 ? 4 : 16);
    x.topology_group = get16(d + 40);
    x.progress = get16(d + 42);
    x.origin = h->node_id;
  }
  return true;
}

}  // namespace shoal::worker
