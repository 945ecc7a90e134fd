// worker/webtorrent_codec.cpp — WebTorrent tracker messages (JSON over WebSocket); see the header.
#include "worker/webtorrent_codec.hpp"

#include <jansson.h>
#include <simdjson.h>

#include <cstdlib>
#include <memory>

namespace shoal::worker::webtorrent {
namespace {

struct JsonDel {
  void operator()(json_t* j) const { json_decref(j); }
};
using Json = std::unique_ptr<json_t, JsonDel>;

// ---- parsing: simdjson's DOM parser (it validates UTF-8 and the JSON grammar; several times
// faster than jansson here: the announce with its offers is most of a WebTorrent tracker's work)

using simdjson::dom::element;
using simdjson::dom::object;

// A field of obj, or nullptr-equivalent (found == false) when absent.
bool field(const object& obj, std::string_view key, element* out) {
  return obj.at_key(key).get(*out) == simdjson::SUCCESS;
}

// Duplicate keys are refused (as jansson's JSON_REJECT_DUPLICATES did): a message must not mean
// one thing to the tracker and another to a peer. Objects here have a handful of keys.
bool has_duplicate_keys(const object& obj) {
  std::string_view seen[32];
  size_t n = 0;
  for (auto kv : obj) {
    for (size_t i = 0; i < n; ++i)
      if (seen[i] == kv.key) return true;
    if (n == 32) return false;  // more keys than any message of ours has: not checked further
    seen[n++] = kv.key;
  }
  return false;
}

// Reads a 20-byte binary string value named `key`. Returns "" on success, else the reason.
std::string id_value(const element& v, const char* key, Id& out) {
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) return std::string(key) + " must be a string";
  if (!decode_binary_string(s, out.data(), out.size()))
    return std::string(key) + " must be 20 characters, each U+0000..U+00FF";
  return {};
}

// Reads a required 20-byte binary string field of obj.
std::string get_id(const object& obj, const char* key, Id& out) {
  element v;
  if (!field(obj, key, &v)) return std::string("missing ") + key;
  return id_value(v, key, out);
}

// Reads a non-negative integer field; absent (or null) leaves out unchanged.
std::string get_count(const object& obj, const char* key, int64_t& out) {
  element v;
  if (!field(obj, key, &v) || v.is_null()) return {};
  int64_t n = 0;
  if (!v.is_int64() || v.get_int64().get(n) != simdjson::SUCCESS || n < 0)
    return std::string(key) + " must be a non-negative integer";
  out = n;
  return {};
}

// Keeps an offer/answer object as compact JSON text.
std::string get_sdp(const object& obj, const char* key, std::string& out) {
  element v;
  if (!field(obj, key, &v)) return std::string("missing ") + key;
  if (!v.is_object()) return std::string(key) + " must be an object";
  out = simdjson::minify(v);
  if (out.size() > kMaxSdpJsonBytes) return std::string(key) + " too large";
  return {};
}

std::string parse_announce(const object& root, ParseResult& r) {
  Announce& a = r.msg.announce;
  a.info_hash = r.info_hash;
  if (auto e = get_id(root, "peer_id", a.peer_id); !e.empty()) return e;
  element unused;
  if (field(root, "answer", &unused)) {  // an answer rides on action "announce"
    r.msg.action = Action::answer;
    Answer& an = r.msg.answer;
    an.info_hash = a.info_hash;
    an.peer_id = a.peer_id;
    if (auto e = get_id(root, "to_peer_id", an.to_peer_id); !e.empty()) return e;
    if (auto e = get_id(root, "offer_id", an.offer_id); !e.empty()) return e;
    return get_sdp(root, "answer", an.sdp_json);
  }
  if (auto e = get_count(root, "numwant", a.numwant); !e.empty()) return e;
  if (auto e = get_count(root, "uploaded", a.uploaded); !e.empty()) return e;
  if (auto e = get_count(root, "downloaded", a.downloaded); !e.empty()) return e;
  if (auto e = get_count(root, "left", a.left); !e.empty()) return e;
  if (element ev; field(root, "event", &ev) && !ev.is_null()) {
    std::string_view s;
    if (ev.get_string().get(s) != simdjson::SUCCESS) return "event must be a string";
    if (s == "none" || s == "update") a.event = Event::none;  // "update": bittorrent-tracker
    else if (s == "started") a.event = Event::started;
    else if (s == "completed") a.event = Event::completed;
    else if (s == "stopped") a.event = Event::stopped;
    else return "unknown event";
  }
  element offers;
  if (!field(root, "offers", &offers) || offers.is_null()) return {};
  simdjson::dom::array list;
  if (offers.get_array().get(list) != simdjson::SUCCESS) return "offers must be an array";
  if (list.size() > kMaxOffers) return "too many offers";
  a.offers.reserve(list.size());
  for (element o : list) {
    object ob;
    if (o.get_object().get(ob) != simdjson::SUCCESS) return "each offer must be an object";
    if (has_duplicate_keys(ob)) return "malformed JSON: duplicate key";
    Offer off;
    if (auto e = get_id(ob, "offer_id", off.offer_id); !e.empty()) return e;
    if (auto e = get_sdp(ob, "offer", off.sdp_json); !e.empty()) return e;
    a.offers.push_back(std::move(off));
  }
  return {};
}

std::string parse_scrape(const object& root, ParseResult& r) {
  element v;
  if (!field(root, "info_hash", &v)) return "missing info_hash (full scrape is not served)";
  auto& out = r.msg.scrape.info_hashes;
  if (v.is_string()) {
    out.push_back(r.info_hash);
    return {};
  }
  simdjson::dom::array list;
  if (v.get_array().get(list) != simdjson::SUCCESS) return "info_hash must be a string or an array of strings";
  if (list.size() == 0) return "empty info_hash list (full scrape is not served)";
  if (list.size() > kMaxScrapeHashes) return "too many info_hash values";
  for (element e : list) {
    Id id;
    if (auto err = id_value(e, "info_hash", id); !err.empty()) return err;
    out.push_back(id);
  }
  return {};
}

std::string binary(const Id& id) { return encode_binary_string(id.data(), id.size()); }

json_t* jstr(const Id& id) {
  std::string s = binary(id);
  return json_stringn(s.data(), s.size());
}

std::string dump(json_t* root) {
  Json owner(root);
  char* text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  std::string out = text != nullptr ? text : "";
  free(text);
  return out;
}

// {"action":"announce","info_hash","peer_id","offer_id",<key>:<sdp>} with the SDP spliced in.
std::string encode_relayed(const Id& info_hash, const Id& peer_id, const Id& offer_id,
                           const char* key, std::string_view sdp_json) {
  json_t* root = json_object();
  json_object_set_new(root, "action", json_string("announce"));
  json_object_set_new(root, "info_hash", jstr(info_hash));
  json_object_set_new(root, "peer_id", jstr(peer_id));
  json_object_set_new(root, "offer_id", jstr(offer_id));
  std::string head = dump(root);  // ends with '}'
  head.pop_back();
  head += ",\"";
  head += key;
  head += "\":";
  head += sdp_json;
  head += '}';
  return head;
}

}  // namespace

std::string encode_binary_string(const uint8_t* bytes, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = bytes[i];
    if (b < 0x80) {
      out += static_cast<char>(b);
    } else {  // U+0080..U+00FF: two UTF-8 bytes 110000xx 10xxxxxx
      out += static_cast<char>(0xc0 | (b >> 6));
      out += static_cast<char>(0x80 | (b & 0x3f));
    }
  }
  return out;
}

bool decode_binary_string(std::string_view s, uint8_t* out, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (k == n) return false;
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      out[k++] = c;
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < s.size() &&
               (static_cast<uint8_t>(s[i + 1]) & 0xc0) == 0x80) {
      out[k++] = static_cast<uint8_t>(((c & 0x03) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3f));
      ++i;
    } else {
      return false;  // a code point > U+00FF (or not UTF-8, which the parser already refused)
    }
  }
  return k == n;
}

ParseResult parse_message(std::string_view text) {
  ParseResult r;
  // One parser per thread (socket workers are single-threaded), reused: it keeps its buffers.
  static thread_local simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(text.data(), text.size()).get(doc); err != simdjson::SUCCESS) {
    r.error = std::string("malformed JSON: ") + simdjson::error_message(err);
    return r;
  }
  object root;
  if (doc.get_object().get(root) != simdjson::SUCCESS) {
    r.error = "message must be a JSON object";
    return r;
  }
  if (has_duplicate_keys(root)) {
    r.error = "malformed JSON: duplicate key";
    return r;
  }
  element action;
  if (!field(root, "action", &action)) {
    r.error = "missing action";
    return r;
  }
  std::string_view act;
  if (action.get_string().get(act) != simdjson::SUCCESS) {
    r.error = "action must be a string";
    return r;
  }
  if (act == "announce") r.action_text = "announce";
  else if (act == "scrape") r.action_text = "scrape";
  else {
    r.error = "unknown action";
    return r;
  }
  // info_hash: required for announce; for scrape a single string is read here, an array later.
  element ih;
  bool has_ih = field(root, "info_hash", &ih);
  if (act == "announce" || (has_ih && ih.is_string())) {
    r.error = get_id(root, "info_hash", r.info_hash);
    if (!r.error.empty()) return r;
    r.has_info_hash = true;
  }
  if (act == "announce") {
    r.msg.action = Action::announce;
    r.error = parse_announce(root, r);
  } else {
    r.msg.action = Action::scrape;
    r.error = parse_scrape(root, r);
  }
  return r;
}

std::string encode_announce_reply(const Id& info_hash, uint32_t interval_s, uint32_t complete,
                                  uint32_t incomplete) {
  json_t* root = json_object();
  json_object_set_new(root, "action", json_string("announce"));
  json_object_set_new(root, "info_hash", jstr(info_hash));
  json_object_set_new(root, "interval", json_integer(interval_s));
  json_object_set_new(root, "complete", json_integer(complete));
  json_object_set_new(root, "incomplete", json_integer(incomplete));
  return dump(root);
}

std::string encode_relayed_offer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                 std::string_view sdp_json) {
  return encode_relayed(info_hash, from_peer_id, offer_id, "offer", sdp_json);
}

std::string encode_relayed_answer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                  std::string_view sdp_json) {
  return encode_relayed(info_hash, from_peer_id, offer_id, "answer", sdp_json);
}

std::string encode_scrape_reply(const std::vector<ScrapeEntry>& entries) {
  json_t* root = json_object();
  json_object_set_new(root, "action", json_string("scrape"));
  json_t* files = json_object();
  for (const ScrapeEntry& e : entries) {
    json_t* f = json_object();
    json_object_set_new(f, "complete", json_integer(e.complete));
    json_object_set_new(f, "incomplete", json_integer(e.incomplete));
    json_object_set_new(f, "downloaded", json_integer(e.downloaded));
    std::string key = binary(e.info_hash);
    json_object_setn_new(files, key.data(), key.size(), f);
  }
  json_object_set_new(root, "files", files);
  return dump(root);
}

std::string encode_error(std::string_view reason, std::string_view action, const Id* info_hash) {
  json_t* root = json_object();
  json_object_set_new(root, "failure reason", json_stringn(reason.data(), reason.size()));
  if (!action.empty()) json_object_set_new(root, "action", json_stringn(action.data(), action.size()));
  if (info_hash != nullptr) json_object_set_new(root, "info_hash", jstr(*info_hash));
  return dump(root);
}

}  // namespace shoal::worker::webtorrent
