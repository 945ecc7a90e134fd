// tools/ws/wt_messages.cpp — WebTorrent messages of the WS load tool (jansson); see the header.
#include "tools/ws/wt_messages.hpp"

#include <jansson.h>

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

json_t* binary(const Id& id) {
  std::string s = latin1_to_utf8(id.data(), id.size());
  return json_stringn(s.data(), s.size());
}

std::string dump(json_t* j) {
  char* text = json_dumps(j, JSON_COMPACT);
  std::string out = text != nullptr ? text : "";
  free(text);
  json_decref(j);
  return out;
}

json_t* sdp_object(const char* type, const std::string& sdp) {
  json_t* o = json_object();
  json_object_set_new_nocheck(o, "type", json_string(type));
  json_object_set_new_nocheck(o, "sdp", json_stringn(sdp.data(), sdp.size()));
  return o;
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

bool read_id(json_t* o, const char* key, Id* out) {
  json_t* v = json_object_get(o, key);
  return json_is_string(v) && utf8_to_latin1({json_string_value(v), json_string_length(v)}, out->data(), 20);
}

bool read_int(json_t* o, const char* key, int64_t* out) {
  json_t* v = json_object_get(o, key);
  if (!json_is_integer(v)) return false;
  *out = json_integer_value(v);
  return true;
}

/// Reads {type: want, sdp: string} at key into *sdp; false if absent or malformed.
bool read_sdp(json_t* o, const char* key, const char* want, std::string* sdp) {
  json_t* v = json_object_get(o, key);
  json_t* type = json_object_get(v, "type");
  json_t* s = json_object_get(v, "sdp");
  if (!json_is_object(v) || !json_is_string(type) || strcmp(json_string_value(type), want) != 0 || !json_is_string(s))
    return false;
  sdp->assign(json_string_value(s), json_string_length(s));
  return true;
}

void classify(json_t* root, Reply* r) {
  json_t* failure = json_object_get(root, "failure reason");
  if (failure != nullptr) {
    if (!json_is_string(failure)) return void(r->why = "failure reason is not a string");
    r->failure = json_string_value(failure);
    r->has_info_hash = read_id(root, "info_hash", &r->info_hash);
    return void(r->kind = Kind::error);
  }
  json_t* action = json_object_get(root, "action");
  if (!json_is_string(action)) return void(r->why = "no action");
  if (strcmp(json_string_value(action), "scrape") == 0) return void(r->kind = Kind::scrape_reply);
  if (strcmp(json_string_value(action), "announce") != 0) return void(r->why = "unknown action");
  if (!(r->has_info_hash = read_id(root, "info_hash", &r->info_hash))) return void(r->why = "bad info_hash");
  bool offer = json_object_get(root, "offer") != nullptr, answer = json_object_get(root, "answer") != nullptr;
  if (offer || answer) {
    if (offer && answer) return void(r->why = "both offer and answer");
    if (!read_id(root, "peer_id", &r->peer_id)) return void(r->why = "relayed message: bad peer_id");
    if (!read_id(root, "offer_id", &r->offer_id)) return void(r->why = "relayed message: bad offer_id");
    if (!read_sdp(root, offer ? "offer" : "answer", offer ? "offer" : "answer", &r->sdp))
      return void(r->why = "relayed message: bad offer/answer object");
    return void(r->kind = offer ? Kind::offer : Kind::answer);
  }
  if (!read_int(root, "complete", &r->complete) || !read_int(root, "incomplete", &r->incomplete) ||
      r->complete < 0 || r->incomplete < 0)
    return void(r->why = "announce reply: complete/incomplete missing or negative");
  if (!read_int(root, "interval", &r->interval) || r->interval <= 0)
    return void(r->why = "announce reply: interval missing or not positive");
  r->kind = Kind::announce_reply;
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
      return false;  // a code point > 255 (or not UTF-8: jansson has checked that)
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

Ids::~Ids() {
  for (json_t* j : offer_json_) json_decref(j);
  for (json_t* j : answer_json_) json_decref(j);
}

std::string Ids::encode_announce(const Id& info_hash, const Id& peer_id, const char* event, int64_t left,
                                 const std::vector<Id>& offer_ids) const {
  json_t* o = json_object();
  json_object_set_new_nocheck(o, "action", json_string("announce"));
  json_object_set_new_nocheck(o, "info_hash", binary(info_hash));
  json_object_set_new_nocheck(o, "peer_id", binary(peer_id));
  json_object_set_new_nocheck(o, "numwant", json_integer(json_int_t(offer_ids.size())));
  json_object_set_new_nocheck(o, "uploaded", json_integer(0));
  json_object_set_new_nocheck(o, "downloaded", json_integer(0));
  json_object_set_new_nocheck(o, "left", json_integer(left));
  if (event != nullptr) json_object_set_new_nocheck(o, "event", json_string(event));
  json_t* arr = json_array();
  for (const Id& id : offer_ids) {
    json_t* e = json_object();
    json_object_set_nocheck(e, "offer", offer_json_[offer_slot(id)]);
    json_object_set_new_nocheck(e, "offer_id", binary(id));
    json_array_append_new(arr, e);
  }
  json_object_set_new_nocheck(o, "offers", arr);
  return dump(o);
}

std::string Ids::encode_answer(const Id& info_hash, uint32_t conn, const Id& to_peer_id, const Id& offer_id) const {
  json_t* o = json_object();
  json_object_set_new_nocheck(o, "action", json_string("announce"));
  json_object_set_new_nocheck(o, "info_hash", binary(info_hash));
  json_object_set_new_nocheck(o, "peer_id", binary(peer_id(conn)));
  json_object_set_new_nocheck(o, "to_peer_id", binary(to_peer_id));
  json_object_set_new_nocheck(o, "offer_id", binary(offer_id));
  json_object_set_nocheck(o, "answer", answer_json_[answer_slot(offer_id, conn)]);
  return dump(o);
}

Reply parse_reply(std::string_view text) {
  Reply r;
  json_error_t err;
  json_t* root = json_loadb(text.data(), text.size(), JSON_ALLOW_NUL, &err);
  if (root == nullptr) {
    r.why = std::string("not JSON: ") + err.text;
    return r;
  }
  if (json_is_object(root)) {
    classify(root, &r);
  } else {
    r.why = "not a JSON object";
  }
  json_decref(root);
  return r;
}

}  // namespace shoal_load::wt
