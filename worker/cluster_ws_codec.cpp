// worker/cluster_ws_codec.cpp — see cluster_ws_codec.hpp (format tables there).
#include "worker/cluster_ws_codec.hpp"

#include <simdjson.h>

#include <cstring>

#include "shm/cluster_ws.hpp"
#include "shm/relay_ring.hpp"
#include "shm/byte_order.hpp"

namespace shoal::worker {
namespace {

using namespace be;  // get16/32/64, put16/32/64: shm/byte_order.hpp

constexpr uint8_t kMagic[4] = {'S', 'H', 'W', 'R'};
constexpr uint8_t kVersion = 1;

// True when `text` is one JSON object (simdjson validates UTF-8 and the grammar).
bool json_object(std::string_view text) {
  static thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element e;
  if (parser.parse(padded).get(e) != simdjson::SUCCESS) return false;
  return e.is_object();
}

}  // namespace

void encode_ws_delta_record(const shm::Delta& d, std::vector<uint8_t>* out) {
  shm::WsDelta w = shm::unpack_ws_delta(d);
  out->insert(out->end(), w.info_hash, w.info_hash + 20);
  out->insert(out->end(), w.peer_id, w.peer_id + 20);
  out->push_back(w.flags);
  out->push_back(w.slot);
  put16(out, w.generation);
  put32(out, w.token);
}

bool decode_ws_delta_record(const uint8_t* p, uint16_t node, shm::Delta* d, std::string* why) {
  shm::WsDelta w{};
  std::memcpy(w.info_hash, p, 20);
  std::memcpy(w.peer_id, p + 20, 20);
  w.flags = p[40];
  if (w.flags & ~(shm::kDeltaKnownFlags | shm::kDeltaWsGone | shm::kDeltaWsKeyed)) return *why = "unknown flags", false;
  w.slot = p[41];
  w.generation = get16(p + 42);
  w.token = get32(p + 44);
  w.origin = node;
  shm::pack_ws_delta(w, d);
  return true;
}

void encode_relay_message(const RelayMessage& m, std::vector<uint8_t>* out) {
  std::string_view sdp = m.sdp_json.substr(0, kRelayMaxSdpBytes);
  out->reserve(out->size() + kRelayMessageHeaderBytes + sdp.size());
  out->insert(out->end(), kMagic, kMagic + 4);
  out->push_back(kVersion);
  out->push_back(m.kind);
  put16(out, m.from_node);
  put16(out, m.to_node);
  out->push_back(m.target_slot);
  out->push_back(m.from_slot);
  put32(out, m.target_generation);
  put32(out, m.target_token);
  put32(out, m.from_generation);
  put32(out, m.from_token);
  out->insert(out->end(), m.info_hash, m.info_hash + 20);
  out->insert(out->end(), m.peer_id, m.peer_id + 20);
  out->insert(out->end(), m.offer_id, m.offer_id + 20);
  put16(out, uint16_t(sdp.size()));
  out->insert(out->end(), sdp.begin(), sdp.end());
}

bool decode_relay_message(const uint8_t* p, size_t len, RelayMessage* m, std::string* why) {
  *m = RelayMessage{};
  if (len < kRelayMessageHeaderBytes) return *why = "shorter than the header (" + std::to_string(len) + " bytes)", false;
  if (std::memcmp(p, kMagic, 4) != 0) return *why = "bad magic", false;
  if (p[4] != kVersion) return *why = "version " + std::to_string(p[4]) + " (this shoald speaks 1)", false;
  m->kind = p[5];
  if (m->kind != shm::kRelayOffer && m->kind != shm::kRelayAnswer) return *why = "unknown kind " + std::to_string(p[5]), false;
  m->from_node = get16(p + 6);
  m->to_node = get16(p + 8);
  if (m->from_node == 0 || m->to_node == 0) return *why = "node id 0", false;
  m->target_slot = p[10];
  m->from_slot = p[11];
  m->target_generation = get32(p + 12);
  m->target_token = get32(p + 16);
  m->from_generation = get32(p + 20);
  m->from_token = get32(p + 24);
  std::memcpy(m->info_hash, p + 28, 20);
  std::memcpy(m->peer_id, p + 48, 20);
  std::memcpy(m->offer_id, p + 68, 20);
  size_t sdp_len = get16(p + 88);
  if (sdp_len == 0 || sdp_len > kRelayMaxSdpBytes) return *why = "sdp of " + std::to_string(sdp_len) + " bytes", false;
  if (len != kRelayMessageHeaderBytes + sdp_len)
    return *why = std::to_string(len) + " bytes where the header says " + std::to_string(kRelayMessageHeaderBytes + sdp_len), false;
  std::string_view sdp(reinterpret_cast<const char*>(p + kRelayMessageHeaderBytes), sdp_len);
  if (!json_object(sdp)) return *why = "offer/answer is not one JSON object", false;
  m->sdp_json = sdp;
  return true;
}

}  // namespace shoal::worker
