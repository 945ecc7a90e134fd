// tools/ws/wt_messages.hpp — the WebTorrent tracker messages that tools/ws_load sends and
// checks, as npm bittorrent-tracker's websocket client speaks them (lib/client/
// websocket-tracker.js): an announce with offers, the answer to a relayed offer (action
// "announce" with to_peer_id, offer_id, answer), and the tracker's announce reply, relayed
// offer, relayed answer and error. Parsed (and so validated, UTF-8 included) by simdjson;
// written from templates: the texts that repeat (keys, the {type, sdp} objects of the SDP
// pool) are made once, and each message only appends them and its ids, escaped as JSON
// strings, to a buffer the caller reuses (no allocation per message).
//
// Binary strings (info_hash, peer_id, offer_id, to_peer_id) are 20 bytes sent as a JSON string
// of 20 code points 0..255, one per byte (UTF-8 on the wire), as the JavaScript client does.
//
// Self-checking ids, so that every relayed id can be verified without remembering it:
//   peer_id  = "-WL0100-" | connection index (u32 LE) | tag64(key, index)
//   offer_id = connection index (u32 LE) | offer sequence (u32 LE) | torrent (u32 LE) | tag64(...)
// and the SDP text of an offer (answer) is a function of the offer id (and the answering
// connection), so a relayed offer or answer is compared byte for byte with what was sent.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shoal_load::wt {

using Id = std::array<uint8_t, 20>;

/// Deterministic ids and SDP texts for one run (key: from --seed). The SDP texts come from a
/// pool of kSdpPool offers and kSdpPool answers made once (the tracker relays them unread, so
/// more variety buys nothing, and formatting each one would cost the generator CPU); which
/// one an offer id carries follows from its tag. The JSON texts of the objects {type, sdp} are
/// kept too.
class Ids {
 public:
  static constexpr size_t kSdpPool = 256;
  explicit Ids(uint64_t key);
  Ids(const Ids&) = delete;
  Ids& operator=(const Ids&) = delete;
  Id peer_id(uint32_t conn) const;
  // The connection whose peer_id this is, or -1 if it is not one of ours.
  int64_t peer_conn(const Id& peer_id) const;
  Id offer_id(uint32_t conn, uint32_t seq, uint32_t torrent) const;
  // Decodes an offer id made by offer_id(); false if its tag does not match.
  bool offer_parts(const Id& offer_id, uint32_t* conn, uint32_t* seq, uint32_t* torrent) const;
  // The SDP text (about 560 bytes, a browser's data-channel offer/answer in shape) of the
  // offer with this id; an answer's also depends on the answering connection.
  const std::string& offer_sdp(const Id& offer_id) const { return offers_[offer_slot(offer_id)]; }
  const std::string& answer_sdp(const Id& offer_id, uint32_t answering_conn) const {
    return answers_[answer_slot(offer_id, answering_conn)];
  }
  // The same as the JSON text of the object {"type":"offer"|"answer","sdp":...} sent.
  const std::string& offer_json(const Id& offer_id) const { return offer_json_[offer_slot(offer_id)]; }
  const std::string& answer_json(const Id& offer_id, uint32_t answering_conn) const {
    return answer_json_[answer_slot(offer_id, answering_conn)];
  }

  /// {"action":"announce","info_hash","peer_id","numwant","uploaded":0,"downloaded":0,"left",
  ///  "event" (omitted if null), "offers":[{"offer":{"type":"offer","sdp"},"offer_id"}]}
  /// Written to *out (replacing its content; its capacity is kept for the next message).
  void encode_announce(std::string* out, const Id& info_hash, const Id& peer_id, const char* event, int64_t left,
                       const Id* offer_ids, size_t offers) const;
  std::string encode_announce(const Id& info_hash, const Id& peer_id, const char* event, int64_t left,
                              const std::vector<Id>& offer_ids) const {
    std::string s;
    encode_announce(&s, info_hash, peer_id, event, left, offer_ids.data(), offer_ids.size());
    return s;
  }
  /// {"action":"announce","info_hash","peer_id","to_peer_id","offer_id",
  ///  "answer":{"type":"answer","sdp"}} sent by connection `conn`, written to *out.
  void encode_answer(std::string* out, const Id& info_hash, uint32_t conn, const Id& to_peer_id, const Id& offer_id) const;
  std::string encode_answer(const Id& info_hash, uint32_t conn, const Id& to_peer_id, const Id& offer_id) const {
    std::string s;
    encode_answer(&s, info_hash, conn, to_peer_id, offer_id);
    return s;
  }

 private:
  static size_t offer_slot(const Id& offer_id) { return offer_id[12] % kSdpPool; }
  static size_t answer_slot(const Id& offer_id, uint32_t conn) { return (offer_id[13] ^ conn) % kSdpPool; }
  uint64_t key_;
  std::vector<std::string> offers_, answers_;
  std::vector<std::string> offer_json_, answer_json_;  // {"type":..,"sdp":..} as JSON text
};

enum class Kind : uint8_t { announce_reply, offer, answer, error, scrape_reply, invalid };

/// One message from the tracker, classified and with its fields read. For invalid, `why`
/// names the first problem. Field rules checked here: the text is one JSON object (UTF-8,
/// nothing after it); action is "announce" or "scrape"; binary strings are 20 code points
/// <= 255; an announce reply has integer complete and incomplete >= 0 and interval > 0; a relayed
/// offer (answer) has an object "offer" ("answer"), whose content same_sdp_object() checks; an
/// error has a string "failure reason". `sdp_json` points into the parser's buffer: valid until
/// the next parse_reply.
struct Reply {
  Kind kind = Kind::invalid;
  std::string why;
  Id info_hash{}, peer_id{}, offer_id{};
  bool has_info_hash = false;
  int64_t complete = -1, incomplete = -1, interval = -1;
  std::string_view sdp_json;  // the offer's (answer's) object, as the JSON text received
  std::string failure;
};

/// Parses with simdjson's On Demand API, in one pass over the fields: what is read is checked,
/// the offer/answer object is taken as text (not unescaped: a relayed SDP is checked by
/// same_sdp_object, most often by one comparison of bytes).
Reply parse_reply(std::string_view text);

/// Whether object_json (Reply::sdp_json) is {"type": type, "sdp": sdp}: byte for byte the text
/// that was sent, expected_json (a tracker that relays the object as written), or else the same
/// once parsed (one that writes it anew: other key order, other escapes).
bool same_sdp_object(std::string_view object_json, std::string_view expected_json, std::string_view type,
                     std::string_view sdp);

/// Appends `utf8` as a JSON string literal (quotes, and the escapes RFC 8259 section 7 requires:
/// '"', '\\' and the control characters U+0000..U+001F).
void append_json_string(std::string* out, std::string_view utf8);
/// Appends a binary string (each byte one code point) as a JSON string literal.
void append_binary(std::string* out, const Id& id);

/// The UTF-8 form of a binary string and back (false on a code point > 255 or wrong length).
std::string latin1_to_utf8(const uint8_t* bytes, size_t n);
bool utf8_to_latin1(std::string_view utf8, uint8_t* out, size_t n);

}  // namespace shoal_load::wt
