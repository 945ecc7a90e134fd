// worker/webtorrent_codec.cpp — WebTorrent tracker messages (JSON over WebSocket); see the header.
#include "worker/webtorrent_codec.hpp"

#include <simdjson.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace shoal::worker::webtorrent {
namespace {

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

// Checks an offer/answer object; its text is filled in by keep_sdp_text once the whole message
// is known to be valid.
std::string get_sdp(const object& obj, const char* key) {
  element v;
  if (!field(obj, key, &v)) return std::string("missing ") + key;
  if (!v.is_object()) return std::string(key) + " must be an object";
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
    return get_sdp(root, "answer");
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
    if (auto e = get_sdp(ob, "offer"); !e.empty()) return e;
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

// {"action":"announce","info_hash","peer_id","offer_id",<key>:<sdp>} with the SDP spliced in.
void append_relayed(std::string& out, const Id& info_hash, const Id& peer_id, const Id& offer_id,
                    std::string_view key, std::string_view sdp_json) {
  out.append(R"({"action":"announce","info_hash":)");
  append_binary(out, info_hash);
  out.append(R"(,"peer_id":)");
  append_binary(out, peer_id);
  out.append(R"(,"offer_id":)");
  append_binary(out, offer_id);
  out.append(",\"").append(key).append("\":").append(sdp_json).push_back('}');
}

// Fills in the text of each offer (or the answer) of a valid announce message: the object as
// the client wrote it, found by simdjson's On Demand API (object::raw_json) in the same padded
// bytes the DOM parser has validated (so it is valid JSON, and its keys are not duplicated at
// the levels that were checked). Relaying the client's own text costs one copy of the offers (into
// Announce::sdp_text, one buffer per announce, kept until the swarm worker has chosen the
// targets) and none for an answer (a view, relayed at
// once); writing it anew from the DOM meant escaping every SDP again (~10% of the socket
// worker). If On Demand does
// not agree (it should not happen), the DOM writes it (append_compact). Returns "" or the reason
// the message is refused (an object over kMaxSdpJsonBytes).
// raw_json() runs to the next structural character: without the whitespace after the '}'.
std::string_view trim_ws(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return raw;
}

// The offers' (or the answer's) text found from the structural index the DOM parse has just
// built (simdjson's stage 1: the offset of every '{', '}', '[', ']', ',', ':' and of the first
// byte of every scalar and string outside strings), so that the message is not indexed a second
// time by On Demand (which cost ~5 % of the socket worker): in a valid document, a value that
// starts with '{' or '[' ends at the structural that brings the nesting back to its level. Keys
// are matched as written ("offer", "answer", "offers", without escapes); a message it does not
// make out (say, a key written with a \u escape) goes to On Demand. The index is
// dom::parser::implementation, a public member that simdjson marks private "for benchmarking
// access" (simdjson 3.0 and later keep it). Fills r as keep_sdp_text does; false if not found.
bool sdp_from_structurals(const simdjson::dom::parser& p, const char* buf, ParseResult& r) {
  if (!p.implementation) return false;
  const uint32_t* at = p.implementation->structural_indexes.get();
  const uint32_t n = p.implementation->n_structural_indexes;
  auto ch = [&](uint32_t i) { return buf[at[i]]; };
  // The structural after the value that starts at structural i.
  auto skip = [&](uint32_t i) -> uint32_t {
    if (ch(i) != '{' && ch(i) != '[') return i + 1;
    for (uint32_t depth = 0; i < n; i++) {
      char c = ch(i);
      if (c == '{' || c == '[') depth++;
      else if ((c == '}' || c == ']') && --depth == 0) return i + 1;
    }
    return n;
  };
  // The value of key `quoted` (with its quotes) in the object at structural o: its first and
  // one-past-last structural, or false.
  auto find = [&](uint32_t o, std::string_view quoted, uint32_t* v, uint32_t* end) {
    if (o >= n || ch(o) != '{') return false;
    for (uint32_t i = o + 1; i + 2 < n && ch(i) == '"' && ch(i + 1) == ':';) {
      uint32_t e = skip(i + 2);
      if (std::memcmp(buf + at[i], quoted.data(), quoted.size()) == 0) return *v = i + 2, *end = e, true;
      if (e >= n || ch(e) != ',') return false;
      i = e + 1;
    }
    return false;
  };
  auto text_of = [&](uint32_t v, uint32_t end) { return std::string_view(buf + at[v], at[end - 1] + 1 - at[v]); };
  uint32_t v, end;
  if (r.msg.action == Action::answer) {
    if (!find(0, "\"answer\"", &v, &end) || ch(v) != '{') return false;
    r.msg.answer.sdp_json = text_of(v, end);
    return true;
  }
  std::vector<Offer>& offers = r.msg.announce.offers;
  std::string& text = r.msg.announce.sdp_text;
  if (!find(0, "\"offers\"", &v, &end) || ch(v) != '[') return false;
  text.clear();
  size_t k = 0;
  for (uint32_t i = v + 1; i < end - 1 && k < offers.size(); k++) {
    uint32_t ov, oend;
    if (!find(i, "\"offer\"", &ov, &oend) || ch(ov) != '{') return false;
    std::string_view raw = text_of(ov, oend);
    if (text.empty()) text.reserve(at[end - 1] - at[v]);  // every offer fits: one allocation
    offers[k].sdp_at = uint32_t(text.size()), offers[k].sdp_len = uint32_t(raw.size());
    text.append(raw);
    i = skip(i);
    if (ch(i) == ',') i++;
  }
  return k == offers.size();
}

std::string keep_sdp_text(const simdjson::dom::parser& dom, const object& root, const char* padded, size_t len,
                          size_t capacity, ParseResult& r) {
  static thread_local simdjson::ondemand::parser od;
  namespace ond = simdjson::ondemand;
  bool answer = r.msg.action == Action::answer;
  std::vector<Offer>& offers = r.msg.announce.offers;
  std::string& text = r.msg.announce.sdp_text;
  bool raw_ok = sdp_from_structurals(dom, padded, r);
  ond::document d;
  if (!raw_ok && od.iterate(padded, len, capacity).get(d) == simdjson::SUCCESS) {
    raw_ok = true;
    if (answer) {
      ond::object o;
      std::string_view raw;
      raw_ok = d.find_field_unordered("answer").get_object().get(o) == simdjson::SUCCESS &&
               o.raw_json().get(raw) == simdjson::SUCCESS;
      if (raw_ok) r.msg.answer.sdp_json = trim_ws(raw);  // a view into `padded`
    } else {
      ond::array list;
      size_t k = 0;
      text.clear();
      text.reserve(len);  // the offers' texts fit in the message: one allocation
      raw_ok = d.find_field_unordered("offers").get_array().get(list) == simdjson::SUCCESS;
      for (auto item : list) {
        ond::object ob, o;
        std::string_view raw;
        if (!raw_ok || k >= offers.size() || item.get_object().get(ob) != simdjson::SUCCESS ||
            ob.find_field_unordered("offer").get_object().get(o) != simdjson::SUCCESS ||
            o.raw_json().get(raw) != simdjson::SUCCESS) {
          raw_ok = false;
          break;
        }
        raw = trim_ws(raw);
        offers[k].sdp_at = uint32_t(text.size()), offers[k++].sdp_len = uint32_t(raw.size());
        text.append(raw);
      }
      raw_ok = raw_ok && k == offers.size();
    }
  }
  if (!raw_ok) {  // the DOM's view, written compactly
    element v;
    if (answer) {
      static thread_local std::string answer_text;  // the view points here until the next parse_message
      answer_text.clear();
      if (field(root, "answer", &v)) append_compact(answer_text, v);
      r.msg.answer.sdp_json = answer_text;
    } else {
      size_t k = 0;
      text.clear();
      if (field(root, "offers", &v))
        for (element item : simdjson::dom::array(v)) {
          element o;
          size_t at = text.size();
          if (field(object(item), "offer", &o)) append_compact(text, o);
          offers[k].sdp_at = uint32_t(at), offers[k++].sdp_len = uint32_t(text.size() - at);
        }
    }
  }
  if (answer) return r.msg.answer.sdp_json.size() > kMaxSdpJsonBytes ? "answer too large" : "";
  for (const Offer& o : offers)
    if (o.sdp_len > kMaxSdpJsonBytes) return "offer too large";
  return {};
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
  // The message in a buffer with simdjson's padding, which both of its parsers need.
  static thread_local std::vector<char> padded;
  if (padded.size() < text.size() + simdjson::SIMDJSON_PADDING) padded.resize(text.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(padded.data(), text.data(), text.size());
  std::memset(padded.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  element doc;
  if (auto err = parser.parse(padded.data(), text.size(), false).get(doc); err != simdjson::SUCCESS) {
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
    if (r.error.empty() && (r.msg.action == Action::answer || !r.msg.announce.offers.empty()))
      r.error = keep_sdp_text(parser, root, padded.data(), text.size(), padded.size(), r);
  } else {
    r.msg.action = Action::scrape;
    r.error = parse_scrape(root, r);
  }
  return r;
}

namespace {

// The offset of the first byte at or after `i` that a JSON string must escape ('"', '\\' or
// below 0x20), or s.size(). 16 bytes at a time with SSE2 (every x86-64 has it), 8 at a time
// otherwise (SWAR: the high bit of each such byte is set in `hit`).
size_t next_special(std::string_view s, size_t i) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), max_ctl = _mm_set1_epi8(0x1f);
  for (; i + 16 <= s.size(); i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, max_ctl), v);  // v <= 0x1f, unsigned
    __m128i hit = _mm_or_si128(ctl, _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (int mask = _mm_movemask_epi8(hit); mask != 0) return i + size_t(__builtin_ctz(unsigned(mask)));
  }
#endif
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, s.data() + i, 8);
    constexpr uint64_t k01 = 0x0101010101010101ull, k80 = 0x8080808080808080ull;
    uint64_t q = v ^ (k01 * '"'), b = v ^ (k01 * '\\');
    uint64_t hit = (((v - k01 * 0x20) & ~v) | ((q - k01) & ~q) | ((b - k01) & ~b)) & k80;
    if (hit != 0) break;  // the byte loop below finds it
  }
  for (; i < s.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == '"' || c == '\\') return i;
  }
  return i;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 16);  // one allocation for an SDP (a few escapes fit)
  out.push_back('"');
  size_t run = 0;  // start of the bytes not copied yet
  for (size_t i = next_special(s, 0); i < s.size(); i = next_special(s, run)) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default: {
        const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out.append(u, 6);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

namespace {

// Each byte of a binary string as the JSON text of its code point (see the header): the
// escapes append_json_string writes for U+0000..U+001F, '"' and '\\', the byte itself for other
// ASCII, two UTF-8 bytes for U+0080..U+00FF. Built once: ids are written in every reply and
// relayed message (3 per offer or answer), and byte-by-byte escaping was ~3 % of the worker.
struct BinaryChar {
  uint8_t len;
  char text[6];
};
struct BinaryTable {
  BinaryChar c[256];
  constexpr BinaryTable() : c{} {
    constexpr char hex[] = "0123456789abcdef";
    for (int b = 0; b < 256; b++) {
      BinaryChar& e = c[b];
      auto put = [&e](char ch) { e.text[e.len++] = ch; };
      switch (b) {
        case '"': put('\\'), put('"'); break;
        case '\\': put('\\'), put('\\'); break;
        case '\n': put('\\'), put('n'); break;
        case '\r': put('\\'), put('r'); break;
        case '\t': put('\\'), put('t'); break;
        case '\b': put('\\'), put('b'); break;
        case '\f': put('\\'), put('f'); break;
        default:
          if (b < 0x20) put('\\'), put('u'), put('0'), put('0'), put(hex[b >> 4]), put(hex[b & 15]);
          else if (b < 0x80) put(char(b));
          else put(char(0xc0 | (b >> 6))), put(char(0x80 | (b & 0x3f)));  // 110000xx 10xxxxxx
      }
    }
  }
};
constexpr BinaryTable kBinary;

}  // namespace

void append_binary(std::string& out, const Id& id) {
  char text[2 + 6 * kIdBytes];
  size_t n = 0;
  text[n++] = '"';
  for (uint8_t b : id) {
    const BinaryChar& e = kBinary.c[b];
    std::memcpy(text + n, e.text, 6);  // the whole entry; only len bytes count
    n += e.len;
  }
  text[n++] = '"';
  out.append(text, n);
}

// Appends v as compact JSON text. (simdjson::minify does the same, but escapes string text one
// character at a time: an SDP is ~600 bytes with ~20 escapes, and every offer and answer is
// written once.) Numbers come out as simdjson read them (to_chars: the shortest text that reads
// back as the same value).
void append_compact(std::string& out, const element& v) {
  char num[32];
  switch (v.type()) {
    case simdjson::dom::element_type::OBJECT: {
      out.push_back('{');
      bool first = true;
      for (auto kv : object(v)) {
        if (!first) out.push_back(',');
        first = false;
        append_json_string(out, kv.key);
        out.push_back(':');
        append_compact(out, kv.value);
      }
      out.push_back('}');
      return;
    }
    case simdjson::dom::element_type::ARRAY: {
      out.push_back('[');
      bool first = true;
      for (element e : simdjson::dom::array(v)) {
        if (!first) out.push_back(',');
        first = false;
        append_compact(out, e);
      }
      out.push_back(']');
      return;
    }
    case simdjson::dom::element_type::STRING: return append_json_string(out, std::string_view(v));
    case simdjson::dom::element_type::INT64:
      out.append(num, size_t(std::to_chars(num, num + sizeof num, int64_t(v)).ptr - num));
      return;
    case simdjson::dom::element_type::UINT64:
      out.append(num, size_t(std::to_chars(num, num + sizeof num, uint64_t(v)).ptr - num));
      return;
    case simdjson::dom::element_type::DOUBLE: {  // stays a fraction: 1e3 -> 1000.0, not 1000
      std::string_view t(num, size_t(std::to_chars(num, num + sizeof num, double(v)).ptr - num));
      out.append(t);
      if (t.find_first_of(".eE") == std::string_view::npos) out.append(".0");
      return;
    }
    case simdjson::dom::element_type::BOOL: out.append(bool(v) ? "true" : "false"); return;
    case simdjson::dom::element_type::NULL_VALUE: out.append("null"); return;
  }
}

namespace {
void append_uint(std::string& out, uint64_t v) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}
}  // namespace

void append_announce_reply(std::string& out, const Id& info_hash, uint32_t interval_s, uint32_t complete,
                           uint32_t incomplete) {
  out.append(R"({"action":"announce","info_hash":)");
  append_binary(out, info_hash);
  out.append(R"(,"interval":)");
  append_uint(out, interval_s);
  out.append(R"(,"complete":)");
  append_uint(out, complete);
  out.append(R"(,"incomplete":)");
  append_uint(out, incomplete);
  out.push_back('}');
}

void append_relayed_offer(std::string& out, const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                          std::string_view sdp_json) {
  append_relayed(out, info_hash, from_peer_id, offer_id, "offer", sdp_json);
}

void append_relayed_answer(std::string& out, const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                           std::string_view sdp_json) {
  append_relayed(out, info_hash, from_peer_id, offer_id, "answer", sdp_json);
}

std::string encode_announce_reply(const Id& info_hash, uint32_t interval_s, uint32_t complete,
                                  uint32_t incomplete) {
  std::string out;
  append_announce_reply(out, info_hash, interval_s, complete, incomplete);
  return out;
}

std::string encode_relayed_offer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                 std::string_view sdp_json) {
  std::string out;
  append_relayed_offer(out, info_hash, from_peer_id, offer_id, sdp_json);
  return out;
}

std::string encode_relayed_answer(const Id& info_hash, const Id& from_peer_id, const Id& offer_id,
                                  std::string_view sdp_json) {
  std::string out;
  append_relayed_answer(out, info_hash, from_peer_id, offer_id, sdp_json);
  return out;
}

std::string encode_scrape_reply(const std::vector<ScrapeEntry>& entries) {
  std::string out = R"({"action":"scrape","files":{)";
  for (size_t i = 0; i < entries.size(); ++i) {
    const ScrapeEntry& e = entries[i];
    bool repeated = false;  // one key per torrent (a scrape may name one twice); n <= kMaxScrapeHashes
    for (size_t j = 0; j < i && !repeated; ++j) repeated = entries[j].info_hash == e.info_hash;
    if (repeated) continue;
    if (out.back() != '{') out.push_back(',');
    append_binary(out, e.info_hash);
    out.append(R"(:{"complete":)");
    append_uint(out, e.complete);
    out.append(R"(,"incomplete":)");
    append_uint(out, e.incomplete);
    out.append(R"(,"downloaded":)");
    append_uint(out, e.downloaded);
    out.push_back('}');
  }
  out.append("}}");
  return out;
}

std::string encode_error(std::string_view reason, std::string_view action, const Id* info_hash) {
  std::string out = R"({"failure reason":)";
  append_json_string(out, reason);
  if (!action.empty()) {
    out.append(R"(,"action":)");
    append_json_string(out, action);
  }
  if (info_hash != nullptr) {
    out.append(R"(,"info_hash":)");
    append_binary(out, *info_hash);
  }
  out.push_back('}');
  return out;
}

}  // namespace shoal::worker::webtorrent
