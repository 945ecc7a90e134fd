// worker/webtorrent_codec.hpp — WebTorrent tracker messages (JSON text over WebSocket, as npm
// bittorrent-tracker's websocket client and aquatic_ws speak them): parse the client's
// announce / answer / scrape, encode the tracker's replies. simdjson parses (it validates UTF-8
// and is ~30x faster than jansson on an announce with offers), jansson encodes; this file
// validates fields and turns them into fixed-size structs.
//
// Binary strings: info_hash, peer_id, offer_id and to_peer_id are 20-byte values that the
// JavaScript client sends as JSON strings of 20 code points, each 0..255 (one byte per code
// point, "latin1"). Parsing maps each code point to one byte and rejects any code point > 255
// or a length other than 20; encoding writes each byte back as the code point of that value
// (UTF-8 on the wire).
//
// Offers and answers ({type, sdp}) are opaque to the tracker: they are kept as the JSON text the
// client sent (at most kMaxSdpJsonBytes; valid, as the whole message was parsed) and spliced
// back unchanged into the relayed message.
//
// Fields the reference client reads from a reply (bittorrent-tracker lib/client/
// websocket-tracker.js): action, info_hash, interval, complete, incomplete, "failure reason";
// offer + offer_id + peer_id (a relayed offer); answer + offer_id + peer_id (a relayed answer).
// Its answer is sent as action "announce" with to_peer_id, offer_id and answer. Unknown keys
// (e.g. trackerid) are ignored; event "update" is read as "none".
//
// Scrape: `info_hash` may be one binary string or an array of them (at most kMaxScrapeHashes);
// absent or an empty array is refused (no full scrape, as the HTTP front-end: BEP 48 lets a
// tracker refuse it).
#pragma once
#include <array>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal::worker::webtorrent {

inline constexpr size_t kIdBytes = 20;            // info_hash, peer_id, offer_id
inline constexpr size_t kMaxOffers = 20;          // offers kept per announce (more: error)
inline constexpr size_t kMaxScrapeHashes = 64;
inline constexpr size_t kMaxSdpJsonBytes = 16384;  // one offer/answer as JSON text

using Id = std::array<uint8_t, kIdBytes>;

// a == b for two ids, in three loads each (std::array's == calls memcmp: the connection's
// swarm and delivered-offer lists are searched with it for every answer, ~2 % of the worker).
inline bool same_id(const Id& a, const Id& b) {
  uint64_t a0, a1, b0, b1;
  uint32_t a2, b2;
  std::memcpy(&a0, a.data(), 8), std::memcpy(&a1, a.data() + 8, 8), std::memcpy(&a2, a.data() + 16, 4);
  std::memcpy(&b0, b.data(), 8), std::memcpy(&b1, b.data() + 8, 8), std::memcpy(&b2, b.data() + 16, 4);
  return ((a0 ^ b0) | (a1 ^ b1) | uint64_t(a2 ^ b2)) == 0;
}

enum class Action : uint8_t { announce, answer, scrape };
enum class Event : uint8_t { none, started, completed, stopped };

// One offer of an announce; its `offer` object's JSON text (relayed as-is) is
// Announce::sdp_text[sdp_at, sdp_at + sdp_len): Announce::sdp(offer).
struct Offer {
  Id offer_id{};
  uint32_t sdp_at = 0, sdp_len = 0;  // bytes
};
// Offer o's JSON text in `sdp_text`, the buffer of its announce's offer texts (Announce::sdp_text
// or a copy of it).
inline std::string_view offer_sdp(std::string_view sdp_text, const Offer& o) { return sdp_text.substr(o.sdp_at, o.sdp_len); }

struct Announce {
  Id info_hash{};
  Id peer_id{};
  int64_t numwant = -1;   // -1: absent (the caller applies its default)
  Event event = Event::none;
  int64_t uploaded = 0, downloaded = 0, left = -1;  // bytes; left -1: absent
  std::vector<Offer> offers;
  // The offers' texts one after another: one allocation per announce, not one per offer (the
  // texts wait for the swarm worker's choice of targets, so they cannot stay views into the
  // message).
  std::string sdp_text;
  std::string_view sdp(const Offer& o) const { return offer_sdp(sdp_text, o); }
};

// An answer (bittorrent-tracker sends it as action "announce" with `answer`, `to_peer_id`,
// `offer_id`): goes back to the peer that made the offer.
struct Answer {
  Id info_hash{};
  Id peer_id{};      // the answering peer
  Id to_peer_id{};   // the peer that made the offer
  Id offer_id{};
  // The `answer` object's JSON text. A view into parse_message's buffer for this thread (no copy:
  // an answer is relayed at once): valid until the next parse_message call on the same thread.
  std::string_view sdp_json;
};

struct Scrape {
  std::vector<Id> info_hashes;
};

struct Message {
  Action action = Action::announce;
  Announce announce;  // action == announce
  Answer answer;      // action == answer
  Scrape scrape;      // action == scrape
};

// The result of parse_message. error is empty on success, else a client-facing reason; then
// action/info_hash say what the error answers, when they could be read (for encode_error).
struct ParseResult {
  Message msg;
  std::string error;
  std::string action_text;   // "announce" / "scrape" / "" if unreadable
  bool has_info_hash = false;
  Id info_hash{};
};

// Parses one client message (the text of one WebSocket message; the parser rejects invalid UTF-8,
// NUL escapes are allowed so binary strings may hold byte 0).
ParseResult parse_message(std::string_view text);

// Encoders: each returns compact JSON text for one WebSocket text message; the append_* forms
// append the same text to `out` (the front-end reuses one buffer: no allocation per message).
void append_announce_reply(std::string& out, const Id& info_hash, uint32_t interval_s, uint32_t complete,
                           uint32_t incomplete);
void append_relayed_offer(std::string& out, const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                          std::string_view sdp_json);
void append_relayed_answer(std::string& out, const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                           std::string_view sdp_json);
// Appends a JSON string literal of `utf8` (quotes; '"', '\\' and U+0000..U+001F escaped, RFC 8259
// section 7; other text, already UTF-8, is copied as is).
void append_json_string(std::string& out, std::string_view utf8);
// Appends a binary string (each byte one code point, see above) as a JSON string literal.
void append_binary(std::string& out, const Id& id);

}  // namespace shoal::worker::webtorrent

namespace simdjson::dom { class element; }

namespace shoal::worker::webtorrent {

// Appends a parsed JSON value as compact JSON text (strings escaped as append_json_string does;
// numbers as read: integers as integers, fractions keep a '.' or an exponent).
void append_compact(std::string& out, const simdjson::dom::element& v);
// Announce reply: {"action":"announce","info_hash":..,"interval":..,"complete":..,"incomplete":..}
std::string encode_announce_reply(const Id& info_hash, uint32_t interval_s, uint32_t complete,
                                  uint32_t incomplete);
// An offer relayed to a peer: {"action":"announce","info_hash","peer_id" (the offering peer),
// "offer_id","offer"}. sdp_json must be the text kept by parse_message.
std::string encode_relayed_offer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                 std::string_view sdp_json);
// An answer relayed to the offering peer: {"action":"announce","info_hash","peer_id" (the
// answering peer),"offer_id","answer"}.
std::string encode_relayed_answer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                  std::string_view sdp_json);
struct ScrapeEntry {
  Id info_hash{};
  uint32_t complete = 0, incomplete = 0, downloaded = 0;
};
// {"action":"scrape","files":{<info_hash>:{"complete","incomplete","downloaded"}}}
std::string encode_scrape_reply(const std::vector<ScrapeEntry>& entries);
// {"failure reason":..,"action":..(if non-empty),"info_hash":..(if given)}
std::string encode_error(std::string_view reason, std::string_view action, const Id* info_hash);

// A binary string as UTF-8 JSON-string content (each byte one code point), and back:
// decode_binary_string returns false on a code point > 255 or a length other than out.size().
std::string encode_binary_string(const uint8_t* bytes, size_t n);
bool decode_binary_string(std::string_view utf8, uint8_t* out, size_t n);

}  // namespace shoal::worker::webtorrent
