// worker/cluster_ws_codec.hpp — WebTorrent across cluster nodes (issue 14): the record of a
// WebTorrent delta inside a cluster message of kind 4 (worker/cluster_codec.hpp), and the relay
// message that carries one WebRTC offer or answer to the node holding the target connection.
// Pure functions, no I/O; used by the sync worker. Integers big-endian. docs/cluster.md has the
// same tables.
//
// WebTorrent delta record (48 bytes; the message header names the node holding the connection):
//   0  20  info_hash
//   20 20  peer_id
//   40  1  flags (shm::kDelta*: 1 seeder, 2 stopped, 4 completed now, 8 counted; 16: the socket
//          process (slot, generation) is gone with all its connections, info_hash/peer_id zero;
//          32: keyed, the peer_id field holds the peer's 16-byte key and 4 zeros: a resync)
//   41  1  socket slot holding the connection
//   42  2  generation of that socket process (low 16 bits)
//   44  4  token of the connection in it
//
// Relay message (subject <cluster.subject>.relay.<node_id of the receiver>):
//   0  4   magic "SHWR"
//   4  1   version 1
//   5  1   kind: 1 offer, 2 answer (shm::kRelayOffer / kRelayAnswer)
//   6  2   from_node: the sender's node id (1-65535)
//   8  2   to_node: the receiver's node id (a message for another node is refused)
//   10 1   target_slot: socket slot holding the target connection on to_node
//   11 1   from_slot: offer: socket slot of the offering connection on from_node; answer: 0
//   12 4   target_generation: of the target's socket process (its low 16 bits are compared)
//   16 4   target_token: the target connection's token
//   20 4   from_generation: offer: of the offering connection's socket process; answer: 0
//   24 4   from_token: offer: the offering connection's token; answer: 0
//   28 20  info_hash
//   48 20  peer_id: offer: the offering peer's; answer: the answering peer's
//   68 20  offer_id
//   88 2   sdp_len (1-16384), then sdp_len bytes: the offer or answer object as JSON text
// Refused whole when anything is off: length, magic, version, kind, node id 0, sdp_len out of
// range, or the JSON text not one object (it is spliced unchanged into a client's message).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "shm/cluster_segment.hpp"

namespace shoal::worker {

inline constexpr size_t kClusterWsDeltaBytes = 48;
inline constexpr size_t kRelayMessageHeaderBytes = 90;
inline constexpr size_t kRelayMaxSdpBytes = 16384;  // webtorrent::kMaxSdpJsonBytes

// Appends the record of one WebTorrent delta (packed in `d` as shm/cluster_ws.hpp says).
void encode_ws_delta_record(const shm::Delta& d, std::vector<uint8_t>* out);
// Decodes one record (kClusterWsDeltaBytes at p) into *d, packed, origin = node. False with
// *why for unknown flag bits.
bool decode_ws_delta_record(const uint8_t* p, uint16_t node, shm::Delta* d, std::string* why);

// One offer or answer between nodes (fields as in the table above).
struct RelayMessage {
  uint8_t kind = 0;  // shm::kRelayOffer or kRelayAnswer
  uint16_t from_node = 0, to_node = 0;
  uint8_t target_slot = 0, from_slot = 0;
  uint32_t target_generation = 0, target_token = 0;
  uint32_t from_generation = 0, from_token = 0;
  uint8_t info_hash[20] = {};
  uint8_t peer_id[20] = {};
  uint8_t offer_id[20] = {};
  std::string_view sdp_json;  // points into the encoded or decoded buffer
};

// Appends the encoded message to *out (sdp_json cut at kRelayMaxSdpBytes: the caller passes
// text the WebTorrent codec kept, never longer).
void encode_relay_message(const RelayMessage& m, std::vector<uint8_t>* out);
// Decodes a whole message; m->sdp_json points into `data`. False with *why.
bool decode_relay_message(const uint8_t* data, size_t len, RelayMessage* m, std::string* why);

}  // namespace shoal::worker
