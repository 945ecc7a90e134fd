// tools/ws/wt_messages.cpp — WebTorrent messages of the WS load tool (simdjson parses; templates
// write); see the header.
#include "tools/ws/wt_messages.hpp"

#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shoal_load::wt {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint32_t get32(const Id& id, size_t at) {
  uint32_t v;
  memcpy(&v, id.data() + at, 4);
  return v;
}

void put32(Id& id, size_t at, uint32_t v) { memcpy(id.data() + at, &v, 4); }

constexpr char kPeerPrefix[] = "-WL0100-";

std::string sdp_object(const char* type, const std::string& sdp) {
  std::string o = "{\"type\":";
  append_json_string(&o, type);
  o += ",\"sdp\":";
  append_json_string(&o, sdp);
  o += '}';
  return o;
}

void append_int(std::string* out, int64_t v) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
  out->append(buf, size_t(n));
}

/// A browser data-channel SDP in shape: session id, a host candidate, ICE credentials and a
/// DTLS fingerprint derived from seed.
std::string make_sdp(uint64_t seed, bool offer) {
  static const char kAlpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint64_t r[8];
  for (int i = 0; i < 8; ++i) r[i] = seed = mix(seed);
  char ufrag[5], pwd[25], fp[32 * 3 + 1];  // + 1: the last snprintf writes its NUL after "XX:"
  for (int i = 0; i < 4; ++i) ufrag[i] = kAlpha[(r[1] >> (6 * i)) & 63];
  for (int i = 0; i < 24; ++i) pwd[i] = kAlpha[(r[2 + i / 10] >> (6 * (i % 10))) & 63];
  ufrag[4] = pwd[24] = '\0';
  for (int i = 0; i < 32; ++i) snprintf(fp + 3 * i, 4, "%02X:", unsigned((r[4 + i / 8] >> (8 * (i % 8))) & 255));
  fp[32 * 3 - 1] = '\0';
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "v=0\r\no=- %llu 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
                   "a=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n"
                   "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
                   "a=candidate:%u 1 udp 2113937151 %08llx-%04x-4%03x-a%03x-%012llx.local %u typ host "
                   "generation 0 network-cost 999\r\n"
                   "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\n"
                   "a=setup:%s\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
                   (unsigned long long)(r[0] >> 1), unsigned(r[1] >> 32), (unsigned long long)(r[2] >> 32),
                   unsigned(r[3] & 0xffff), unsigned((r[3] >> 16) & 0xfff), unsigned((r[3] >> 28) & 0xfff),
                   (unsigned long long)(r[3] >> 16 & 0xffffffffffffull), unsigned(49152 + (r[0] & 0x3fff)),
                   ufrag, pwd, fp, offer ? "actpass" : "active");
  return std::string(buf, size_t(n));
}

}  // namespace

std::string latin1_to_utf8(const uint8_t* bytes, size_t n) {
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] < 0x80) {
      s += char(bytes[i]);
    } else {
      s += char(0xc0 | (bytes[i] >> 6));
      s += char(0x80 | (bytes[i] & 0x3f));
    }
  }
  return s;
}

bool utf8_to_latin1(std::string_view u, uint8_t* out, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    uint8_t c = uint8_t(u[i]);
    if (k == n) return false;
    if (c < 0x80) {
      out[k++] = c;
    } else if ((c == 0xc2 || c == 0xc3) && i + 1 < u.size() && (uint8_t(u[i + 1]) & 0xc0) == 0x80) {
      out[k++] = uint8_t((c & 0x1f) << 6 | (uint8_t(u[++i]) & 0x3f));
    } else {
      return false;  // a code point > 255 (or not UTF-8: simdjson has checked that)
    }
  }
  return k == n;
}

Id Ids::peer_id(uint32_t conn) const {
  Id id{};
  memcpy(id.data(), kPeerPrefix, 8);
  put32(id, 8, conn);
  uint64_t tag = mix(key_ ^ 0x7065657200000000ull ^ conn);
  memcpy(id.data() + 12, &tag, 8);
  return id;
}

int64_t Ids::peer_conn(const Id& id) const {
  if (memcmp(id.data(), kPeerPrefix, 8) != 0) return -1;
  uint32_t conn = get32(id, 8);
  return peer_id(conn) == id ? int64_t(conn) : -1;
}

Id Ids::offer_id(uint32_t conn, uint32_t seq, uint32_t torrent) const {
  Id id{};
  put32(id, 0, conn), put32(id, 4, seq), put32(id, 8, torrent);
  uint64_t tag = mix(key_ ^ (uint64_t(conn) << 32 | seq) ^ mix(torrent));
  memcpy(id.data() + 12, &tag, 8);
  return id;
}

bool Ids::offer_parts(const Id& id, uint32_t* conn, uint32_t* seq, uint32_t* torrent) const {
  *conn = get32(id, 0), *seq = get32(id, 4), *torrent = get32(id, 8);
  return offer_id(*conn, *seq, *torrent) == id;
}

Ids::Ids(uint64_t key) : key_(key) {
  for (size_t i = 0; i < kSdpPool; ++i) {
    offers_.push_back(make_sdp(mix(key ^ 0x6f66666572ull ^ i), true));
    answers_.push_back(make_sdp(mix(key ^ 0x616e73776572ull ^ i), false));
    offer_json_.push_back(sdp_object("offer", offers_.back()));
    answer_json_.push_back(sdp_object("answer", answers_.back()));
  }
}

void Ids::encode_announce(std::string* out, const Id& info_hash, const Id& peer_id, const char* event, int64_t left,
                          const Id* offer_ids, size_t offers) const {
  std::string& o = *out;
  o.assign("{\"action\":\"announce\",\"info_hash\":");
  append_binary(&o, info_hash);
  o += ",\"peer_id\":";
  append_binary(&o, peer_id);
  o += ",\"numwant\":";
  append_int(&o, int64_t(offers));
  o += ",\"uploaded\":0,\"downloaded\":0,\"left\":";
  append_int(&o, left);
  if (event != nullptr) {
    o += ",\"event\":";
    append_json_string(&o, event);
  }
  o += ",\"offers\":[";
  for (size_t i = 0; i < offers; ++i) {
    o += i == 0 ? "{\"offer\":" : ",{\"offer\":";
    o += offer_json_[offer_slot(offer_ids[i])];
    o += ",\"offer_id\":";
    append_binary(&o, offer_ids[i]);
    o += '}';
  }
  o += "]}";
}

void Ids::encode_answer(std::string* out, const Id& info_hash, uint32_t conn, const Id& to_peer_id, const Id& offer_id) const {
  std::string& o = *out;
  o.assign("{\"action\":\"announce\",\"info_hash\":");
  append_binary(&o, info_hash);
  o += ",\"peer_id\":";
  append_binary(&o, peer_id(conn));
  o += ",\"to_peer_id\":";
  append_binary(&o, to_peer_id);
  o += ",\"offer_id\":";
  append_binary(&o, offer_id);
  o += ",\"answer\":";
  o += answer_json_[answer_slot(offer_id, conn)];
  o += '}';
}

void append_json_string(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    uint8_t c = uint8_t(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default: {
        char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out->append(u, 6);
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

namespace {

// Each byte of a binary string as JSON text (see append_binary), built once: ids are written
// three or four times per message, and escaping them a byte at a time was ~3 % of the generator.
struct IdChar {
  uint8_t len;
  char text[7];
};
struct IdTable {
  IdChar c[256];
  IdTable() : c{} {
    for (int b = 0; b < 256; ++b) {
      std::string t;
      uint8_t byte = uint8_t(b);
      append_json_string(&t, latin1_to_utf8(&byte, 1));
      t = t.substr(1, t.size() - 2);  // without the quotes
      c[b].len = uint8_t(t.size());
      memcpy(c[b].text, t.data(), t.size());
    }
  }
};
const IdTable kIdText;

}  // namespace

void append_binary(std::string* out, const Id& id) {
  char text[2 + 6 * sizeof(Id)];
  size_t n = 0;
  text[n++] = '"';
  for (uint8_t b : id) {
    memcpy(text + n, kIdText.c[b].text, 6);  // the whole entry; len bytes count
    n += kIdText.c[b].len;
  }
  text[n++] = '"';
  out->append(text, n);
}

namespace {

namespace od = simdjson::ondemand;

// A binary string value: 20 code points <= 255.
bool id_of(od::value v, Id* out) {
  std::string_view s;
  return v.get_string().get(s) == simdjson::SUCCESS && utf8_to_latin1(s, out->data(), out->size());
}

// raw_json() runs to the next structural character: without the whitespace before it.
std::string_view trim_ws(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return raw;
}

}  // namespace

Reply parse_reply(std::string_view text) {
  Reply r;
  static thread_local od::parser parser;      // reused: it keeps its buffers
  static thread_local std::vector<char> buf;  // the message with simdjson's padding after it
  if (buf.size() < text.size() + simdjson::SIMDJSON_PADDING) buf.resize(text.size() + simdjson::SIMDJSON_PADDING);
  memcpy(buf.data(), text.data(), text.size());
  memset(buf.data() + text.size(), 0, simdjson::SIMDJSON_PADDING);
  od::document doc;
  od::object root;
  if (auto err = parser.iterate(buf.data(), text.size(), buf.size()).get(doc); err != simdjson::SUCCESS)
    return r.why = std::string("not JSON: ") + simdjson::error_message(err), r;
  if (doc.get_object().get(root) != simdjson::SUCCESS) return r.why = "not a JSON object", r;
  std::string_view act;
  bool has_action = false, has_failure = false, offer = false, answer = false, bad_int = false;
  bool peer_id_ok = false, offer_id_ok = false, bad_object = false;
  for (auto f : root) {
    std::string_view key;
    od::value v;
    if (f.unescaped_key().get(key) != simdjson::SUCCESS || f.value().get(v) != simdjson::SUCCESS)
      return r.why = "not JSON: malformed object", r;
    if (key == "action") {
      has_action = v.get_string().get(act) == simdjson::SUCCESS;
    } else if (key == "failure reason") {
      std::string_view s;
      if (v.get_string().get(s) != simdjson::SUCCESS) return r.why = "failure reason is not a string", r;
      r.failure = std::string(s), has_failure = true;
    } else if (key == "info_hash") {
      r.has_info_hash = id_of(v, &r.info_hash);
    } else if (key == "peer_id") {
      peer_id_ok = id_of(v, &r.peer_id);
    } else if (key == "offer_id") {
      offer_id_ok = id_of(v, &r.offer_id);
    } else if (key == "offer" || key == "answer") {
      (key == "offer" ? offer : answer) = true;
      od::object o;
      std::string_view raw;
      if (v.get_object().get(o) != simdjson::SUCCESS || o.raw_json().get(raw) != simdjson::SUCCESS) bad_object = true;
      else r.sdp_json = trim_ws(raw);
    } else if (key == "complete" || key == "incomplete" || key == "interval") {
      int64_t n;
      if (v.get_int64().get(n) != simdjson::SUCCESS) bad_int = true;
      else (key == "complete" ? r.complete : key == "incomplete" ? r.incomplete : r.interval) = n;
    }  // other keys: skipped (On Demand steps over the value)
  }
  // After the object: nothing but whitespace (simdjson 3.0's document has no at_end(); its
  // current_location() is out of bounds there).
  if (const char* at; doc.current_location().get(at) == simdjson::SUCCESS)
    return r.why = "not JSON: content after the object", r;
  if (has_failure) return r.kind = Kind::error, r;
  if (!has_action) return r.why = "no action", r;
  if (act == "scrape") return r.kind = Kind::scrape_reply, r;
  if (act != "announce") return r.why = "unknown action", r;
  if (!r.has_info_hash) return r.why = "bad info_hash", r;
  if (offer || answer) {
    if (offer && answer) return r.why = "both offer and answer", r;
    if (!peer_id_ok) return r.why = "relayed message: bad peer_id", r;  // missing or malformed
    if (!offer_id_ok) return r.why = "relayed message: bad offer_id", r;
    if (bad_object) return r.why = "relayed message: bad offer/answer object", r;
    return r.kind = offer ? Kind::offer : Kind::answer, r;
  }
  if (bad_int || r.complete < 0 || r.incomplete < 0)
    return r.why = "announce reply: complete/incomplete missing or negative", r;
  if (r.interval <= 0) return r.why = "announce reply: interval missing or not positive", r;
  return r.kind = Kind::announce_reply, r;
}

bool same_sdp_object(std::string_view object_json, std::string_view expected_json, std::string_view type,
                     std::string_view sdp) {
  if (object_json == expected_json) return true;
  static thread_local simdjson::dom::parser parser;
  simdjson::dom::object o;
  std::string_view t, s;
  return parser.parse(object_json.data(), object_json.size()).get(o) == simdjson::SUCCESS &&
         o["type"].get(t) == simdjson::SUCCESS && t == type && o["sdp"].get(s) == simdjson::SUCCESS && s == sdp;
}

}  // namespace shoal_load::wt
