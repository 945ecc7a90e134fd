// tests/unit/webtorrent_codec_test.cpp — unit tests for worker/webtorrent_codec (the JSON
// messages of WebTorrent trackers as npm bittorrent-tracker's websocket client sends and reads
// them). Pure: no sockets, no shm.
#include "worker/webtorrent_codec.hpp"

#include <gtest/gtest.h>
#include <jansson.h>
#include <simdjson.h>

#include <string>

namespace shoal::worker::webtorrent {
namespace {

Id make_id(uint8_t first) {
  Id id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(first + i);
  return id;
}

// A binary string as it appears inside JSON quotes (raw UTF-8, a valid JSON string body as long
// as no byte is a quote, backslash or control character).
std::string js(const Id& id) { return encode_binary_string(id.data(), id.size()); }

const Id kHash = make_id(0x30);   // printable bytes only
const Id kPeer = make_id(0x41);
const Id kHigh = make_id(0xa0);   // bytes 0xa0..0xff+: code points U+00A0.. (two UTF-8 bytes)

std::string announce_json(const std::string& extra) {
  return R"({"action":"announce","info_hash":")" + js(kHash) + R"(","peer_id":")" + js(kPeer) +
         "\"" + extra + "}";
}

TEST(WebTorrentCodec, BinaryStringRoundTripAllBytes) {
  uint8_t all[256];
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  std::string s = encode_binary_string(all, 256);
  EXPECT_EQ(s.size(), 128u + 2 * 128u);
  uint8_t back[256];
  ASSERT_TRUE(decode_binary_string(s, back, 256));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(back), 256),
            std::string(reinterpret_cast<char*>(all), 256));
  // U+0100 (c4 80) is above 255; 19 or 21 characters are the wrong length.
  uint8_t out[20];
  EXPECT_FALSE(decode_binary_string(std::string(19, 'a') + "\xc4\x80", out, 20));
  EXPECT_FALSE(decode_binary_string(std::string(19, 'a'), out, 20));
  EXPECT_FALSE(decode_binary_string(std::string(21, 'a'), out, 20));
  EXPECT_TRUE(decode_binary_string(std::string(20, 'a'), out, 20));
}

TEST(WebTorrentCodec, ParsesAnnounceWithOffers) {
  std::string msg = announce_json(
      R"(,"numwant":5,"uploaded":1,"downloaded":2,"left":3,"event":"started","offers":[)"
      R"({"offer_id":")" + js(kHigh) + R"(","offer":{"type":"offer","sdp":"v=0\r\n"}}])");
  ParseResult r = parse_message(msg);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, Action::announce);
  const Announce& a = r.msg.announce;
  EXPECT_EQ(a.info_hash, kHash);
  EXPECT_EQ(a.peer_id, kPeer);
  EXPECT_EQ(a.numwant, 5);
  EXPECT_EQ(a.uploaded, 1);
  EXPECT_EQ(a.downloaded, 2);
  EXPECT_EQ(a.left, 3);
  EXPECT_EQ(a.event, Event::started);
  ASSERT_EQ(a.offers.size(), 1u);
  EXPECT_EQ(a.offers[0].offer_id, kHigh);
  EXPECT_EQ(a.sdp(a.offers[0]), R"({"type":"offer","sdp":"v=0\r\n"})");
}

TEST(WebTorrentCodec, EventAbsentNoneAndUnknown) {
  EXPECT_EQ(parse_message(announce_json("")).msg.announce.event, Event::none);
  EXPECT_EQ(parse_message(announce_json(R"(,"event":"none")")).msg.announce.event, Event::none);
  EXPECT_EQ(parse_message(announce_json(R"(,"event":"stopped")")).msg.announce.event,
            Event::stopped);
  EXPECT_EQ(parse_message(announce_json(R"(,"event":"paused")")).error, "unknown event");
  EXPECT_EQ(parse_message(announce_json(R"(,"event":3)")).error, "event must be a string");
}

TEST(WebTorrentCodec, ParsesAnswer) {
  Id offer_id = make_id(0x61);
  std::string msg = announce_json(R"(,"to_peer_id":")" + js(kHigh) + R"(","offer_id":")" +
                                  js(offer_id) + R"(","answer":{"type":"answer","sdp":"x"}})");
  msg.pop_back();  // announce_json closed the object already; the extra carried its own '}'
  ParseResult r = parse_message(msg);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, Action::answer);
  EXPECT_EQ(r.msg.answer.info_hash, kHash);
  EXPECT_EQ(r.msg.answer.peer_id, kPeer);
  EXPECT_EQ(r.msg.answer.to_peer_id, kHigh);
  EXPECT_EQ(r.msg.answer.offer_id, offer_id);
  EXPECT_EQ(r.msg.answer.sdp_json, R"({"type":"answer","sdp":"x"})");
}

TEST(WebTorrentCodec, ParsesScrapeStringOrArray) {
  ParseResult one = parse_message(R"({"action":"scrape","info_hash":")" + js(kHash) + "\"}");
  ASSERT_EQ(one.error, "");
  ASSERT_EQ(one.msg.scrape.info_hashes.size(), 1u);
  EXPECT_EQ(one.msg.scrape.info_hashes[0], kHash);
  ParseResult two = parse_message(R"({"action":"scrape","info_hash":[")" + js(kHash) + "\",\"" +
                                  js(kHigh) + "\"]}");
  ASSERT_EQ(two.error, "");
  ASSERT_EQ(two.msg.scrape.info_hashes.size(), 2u);
  EXPECT_EQ(two.msg.scrape.info_hashes[1], kHigh);
  EXPECT_NE(parse_message(R"({"action":"scrape"})").error, "");
  EXPECT_NE(parse_message(R"({"action":"scrape","info_hash":[]})").error, "");
  EXPECT_EQ(parse_message(R"({"action":"scrape","info_hash":[")" + js(kHash) + "\",7]}").error,
            "info_hash must be a string");
  EXPECT_EQ(parse_message(R"({"action":"scrape","info_hash":["abc"]})").error,
            "info_hash must be 20 characters, each U+0000..U+00FF");
}

TEST(WebTorrentCodec, ValidationErrorsNameTheProblem) {
  struct Case {
    std::string text, error;
  } cases[] = {
      {"{", "malformed JSON"},
      {"[1]", "message must be a JSON object"},
      {R"({"info_hash":"x"})", "missing action"},
      {R"({"action":1})", "action must be a string"},
      {R"({"action":"dance"})", "unknown action"},
      {R"({"action":"announce","peer_id":")" + js(kPeer) + "\"}", "missing info_hash"},
      {R"({"action":"announce","info_hash":")" + js(kHash) + "\"}", "missing peer_id"},
      {R"({"action":"announce","info_hash":5,"peer_id":")" + js(kPeer) + "\"}",
       "info_hash must be a string"},
      {R"({"action":"announce","info_hash":"short","peer_id":")" + js(kPeer) + "\"}",
       "info_hash must be 20 characters"},
      {R"({"action":"announce","info_hash":")" + std::string(19, 'a') + "\\u0100" +
           R"(","peer_id":")" + js(kPeer) + "\"}",
       "info_hash must be 20 characters"},
      {announce_json(R"(,"numwant":"5")"), "numwant must be a non-negative integer"},
      {announce_json(R"(,"left":-1)"), "left must be a non-negative integer"},
      {announce_json(R"(,"offers":{})"), "offers must be an array"},
      {announce_json(R"(,"offers":[{"offer":{}}])"), "missing offer_id"},
      {announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + "\"}]"), "missing offer"},
      {announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + R"(","offer":"sdp"}])"),
       "offer must be an object"},
  };
  for (const Case& c : cases) {
    ParseResult r = parse_message(c.text);
    EXPECT_EQ(r.error.substr(0, c.error.size()), c.error) << c.text << " -> " << r.error;
  }
}

TEST(WebTorrentCodec, ErrorKeepsActionAndInfoHashForTheReply) {
  ParseResult r = parse_message(R"({"action":"announce","info_hash":")" + js(kHash) + "\"}");
  ASSERT_NE(r.error, "");
  EXPECT_EQ(r.action_text, "announce");
  ASSERT_TRUE(r.has_info_hash);
  EXPECT_EQ(r.info_hash, kHash);
}

TEST(WebTorrentCodec, DuplicateKeysAreRefused) {
  EXPECT_EQ(parse_message(R"({"action":"scrape","action":"announce","info_hash":")" + js(kHash) + "\"}").error,
            "malformed JSON: duplicate key");
  EXPECT_EQ(parse_message(announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + R"(","offer_id":")" +
                                        js(kHigh) + R"(","offer":{}}])")).error,
            "malformed JSON: duplicate key");
}

// The whole message must be valid JSON, also the parts the tracker only relays (the offer and
// answer objects, kept as text) or does not read (unknown keys): an invalid escape, literal,
// number or trailing text anywhere is "malformed JSON", never relayed.
TEST(WebTorrentCodec, InvalidJsonAnywhereIsRefused) {
  auto offers = [](const std::string& offer) {
    return announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + R"(","offer":)" + offer + "}]");
  };
  auto answer = [](const std::string& obj) {
    return announce_json(R"(,"to_peer_id":")" + js(kHigh) + R"(","offer_id":")" + js(kHigh) + R"(","answer":)" + obj);
  };
  const std::string bad[] = {
      offers(R"({"type":"offer","sdp":"v=0\q"})"),             // not an escape
      offers(R"({"type":"offer","sdp":"v=0\u00g0"})"),         // \u without 4 hex digits
      offers(R"({"type":"offer","sdp":"v=0\u00e"})"),
      offers(R"({"type":"offer","sdp":"v=0","n":01})"),        // a number with a leading zero
      offers(R"({"type":"offer","sdp":"v=0","ok":tru})"),      // a broken literal
      offers(R"({"type":"offer","sdp":"v=0","x":[1,]})"),      // a trailing comma
      offers(R"({"type":"offer" "sdp":"v=0"})"),               // a missing comma
      answer(R"({"type":"answer","sdp":"a\x"})"),
      announce_json(R"(,"junk":"\a")"),                        // keys the tracker does not read
      announce_json(R"(,"junk":nul)"),
      announce_json(R"(,"junk":{"a":-})"),
      announce_json("") + " x",                                // after the object
      announce_json("") + "{}",
  };
  for (const std::string& text : bad)
    EXPECT_EQ(parse_message(text).error.substr(0, 14), "malformed JSON") << text;
  // Every escape RFC 8259 has is accepted, and the text relayed as written.
  std::string ok = R"({"type":"offer","sdp":"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"})";
  ParseResult r = parse_message(offers(ok));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.msg.announce.sdp(r.msg.announce.offers.at(0)), ok);
}

TEST(WebTorrentCodec, InvalidUtf8IsRejectedByTheParser) {
  std::string msg = announce_json("");
  msg.replace(msg.find("peer_id") + 10, 1, "\xff");
  EXPECT_EQ(parse_message(msg).error.substr(0, 14), "malformed JSON");
}

TEST(WebTorrentCodec, OversizeSdpAndTooManyOffersRefused) {
  std::string big = announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) +
                                  R"(","offer":{"sdp":")" + std::string(kMaxSdpJsonBytes, 'a') +
                                  "\"}}]");
  EXPECT_EQ(parse_message(big).error, "offer too large");
  std::string many = R"(,"offers":[)";
  for (size_t i = 0; i <= kMaxOffers; ++i)
    many += (i ? "," : "") + std::string(R"({"offer_id":")") + js(kHigh) + R"(","offer":{}})";
  EXPECT_EQ(parse_message(announce_json(many + "]")).error, "too many offers");
}

// What bittorrent-tracker's lib/client/websocket-tracker.js reads from a message: action,
// info_hash, interval, complete, incomplete, failure reason, offer+offer_id+peer_id,
// answer+offer_id+peer_id; scrape: files keyed by the binary info_hash.
TEST(WebTorrentCodec, AnnounceReplyExactJson) {
  EXPECT_EQ(encode_announce_reply(kHash, 120, 3, 4),
            R"({"action":"announce","info_hash":")" + js(kHash) +
                R"(","interval":120,"complete":3,"incomplete":4})");
}

TEST(WebTorrentCodec, RelayedOfferAndAnswerExactJsonAndParseBack) {
  Id offer_id = make_id(0x61);
  std::string sdp = R"({"type":"offer","sdp":"v=0"})";
  std::string off = encode_relayed_offer(kHash, kPeer, offer_id, sdp);
  EXPECT_EQ(off, R"({"action":"announce","info_hash":")" + js(kHash) + R"(","peer_id":")" +
                     js(kPeer) + R"(","offer_id":")" + js(offer_id) + R"(","offer":)" + sdp + "}");
  std::string ans = encode_relayed_answer(kHash, kHigh, offer_id, R"({"type":"answer","sdp":"a"})");
  json_error_t err;
  json_t* j = json_loads(ans.c_str(), 0, &err);
  ASSERT_NE(j, nullptr) << err.text;
  Id back;
  const char* pid = json_string_value(json_object_get(j, "peer_id"));
  ASSERT_NE(pid, nullptr);
  ASSERT_TRUE(decode_binary_string(pid, back.data(), back.size()));
  EXPECT_EQ(back, kHigh);
  EXPECT_STREQ(json_string_value(json_object_get(json_object_get(j, "answer"), "sdp")), "a");
  json_decref(j);
}

TEST(WebTorrentCodec, ScrapeReplyAndErrorRoundTrip) {
  std::string s = encode_scrape_reply({{kHigh, 1, 2, 3}});
  json_t* j = json_loads(s.c_str(), 0, nullptr);
  ASSERT_NE(j, nullptr);
  EXPECT_STREQ(json_string_value(json_object_get(j, "action")), "scrape");
  json_t* f = json_object_get(json_object_get(j, "files"), js(kHigh).c_str());
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(json_integer_value(json_object_get(f, "complete")), 1);
  EXPECT_EQ(json_integer_value(json_object_get(f, "incomplete")), 2);
  EXPECT_EQ(json_integer_value(json_object_get(f, "downloaded")), 3);
  json_decref(j);
  EXPECT_EQ(encode_error("unknown event", "announce", &kHash),
            R"({"failure reason":"unknown event","action":"announce","info_hash":")" + js(kHash) +
                "\"}");
  EXPECT_EQ(encode_error("malformed JSON", "", nullptr), R"({"failure reason":"malformed JSON"})");
}

// The writer escapes what RFC 8259 section 7 requires wherever it falls (it skips plain text 8
// bytes at a time): each special byte at every offset of a 20-byte text reads back unchanged.
TEST(WebTorrentCodec, JsonStringEscapesAtEveryOffset) {
  const std::string specials = std::string("\"\\\x01\x1f\n\r\t\b\f", 9) + std::string(1, '\0');
  for (char c : specials) {
    for (size_t at = 0; at < 20; ++at) {
      std::string text = "abcdefghijklmnopqrst";
      text.insert(at, 1, c);
      text += "\xc3\xa9";  // UTF-8 passes through as is
      std::string out;
      append_json_string(out, text);
      json_error_t err;
      json_t* j = json_loadb(out.data(), out.size(), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
      ASSERT_NE(j, nullptr) << "byte " << int(c) << " at " << at << ": " << err.text;
      EXPECT_EQ(std::string(json_string_value(j), json_string_length(j)), text) << "byte " << int(c) << " at " << at;
      json_decref(j);
    }
  }
}

// An offer (and an answer) object is relayed as the client wrote it, whatever it holds
// (whitespace, escapes, nested values, numbers as written).
TEST(WebTorrentCodec, OfferAndAnswerObjectsAreKeptAsSent) {
  std::string offer = R"({ "type" : "offer", "sdp" : "v=0\r\no=- 1 \"q\" \\ \u00e9\u0001", "n": [1, -2, 2.5, 1e3, true, null, {}] })";
  ParseResult r = parse_message(announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + R"(","offer":)" + offer +
                                              R"(},{"offer":{"type":"offer","sdp":"x"}, "offer_id":")" + js(kPeer) + "\"}]"));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.announce.offers.size(), 2u);
  EXPECT_EQ(r.msg.announce.sdp(r.msg.announce.offers[0]), offer);
  EXPECT_EQ(r.msg.announce.sdp(r.msg.announce.offers[1]), R"({"type":"offer","sdp":"x"})");
  EXPECT_EQ(r.msg.announce.offers[1].offer_id, kPeer);
  r = parse_message(announce_json(R"(,"to_peer_id":")" + js(kHigh) + R"(","offer_id":")" + js(kHigh) +
                                  R"(","answer":  {"sdp":"a\tb", "type":"answer"} )"));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, Action::answer);
  EXPECT_EQ(r.msg.answer.sdp_json, R"({"sdp":"a\tb", "type":"answer"})");
}

// The DOM writer (the fallback) keeps what the object means: jansson reads the same value.
TEST(WebTorrentCodec, CompactWriterKeepsTheValue) {
  std::string offer = R"({ "type" : "offer", "sdp" : "v=0\r\no=- 1 \"q\" \\ \u00e9\u0001", "n": [1, -2, 2.5, 1e3, true, null, {}] })";
  simdjson::dom::parser p;
  simdjson::dom::element e = p.parse(offer);
  std::string kept;
  append_compact(kept, e);
  EXPECT_EQ(kept.find(' '), kept.find("o=- 1") + 3) << "only the string's own spaces remain: " << kept;
  json_t* a = json_loads(offer.c_str(), 0, nullptr);
  json_t* b = json_loads(kept.c_str(), 0, nullptr);
  ASSERT_NE(b, nullptr) << kept;
  EXPECT_TRUE(json_equal(a, b)) << kept;
  json_decref(a);
  json_decref(b);
}

TEST(WebTorrentCodec, ByteZeroInBinaryStringRoundTrips) {
  Id zero{};
  std::string reply = encode_announce_reply(zero, 1, 0, 0);
  EXPECT_NE(reply.find("\\u0000"), std::string::npos);
  ParseResult r = parse_message(R"({"action":"scrape","info_hash":")" +
                                std::string(reply.substr(reply.find("info_hash") + 12, 120)
                                                .substr(0, 6 * 20)) + "\"}");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.msg.scrape.info_hashes.at(0), zero);
}

// The offer and answer texts are found from simdjson's structural index: brackets inside
// strings do not end them, nor do nested objects and arrays; keys after them are still read.
TEST(WebTorrentCodec, OfferTextsWithBracketsInStrings) {
  std::string offer = R"({"type":"offer","sdp":"a}]{[,:\"}","x":[[{}],{"y":"]"}]})";
  ParseResult r = parse_message(announce_json(R"(,"offers":[{"offer_id":")" + js(kHigh) + R"(","offer":)" + offer +
                                              R"(},{"offer_id":")" + js(kPeer) + R"(","offer":{"sdp":"]"}}])"));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.announce.offers.size(), 2u);
  EXPECT_EQ(r.msg.announce.sdp(r.msg.announce.offers[0]), offer);
  EXPECT_EQ(r.msg.announce.sdp(r.msg.announce.offers[1]), R"({"sdp":"]"})");
  r = parse_message(announce_json(R"(,"to_peer_id":")" + js(kHigh) + R"(","offer_id":")" + js(kHigh) +
                                  R"(","answer":{"sdp":"}{"} , "x":{})"));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, Action::answer);
  EXPECT_EQ(r.msg.answer.sdp_json, R"({"sdp":"}{"})");
}

}  // namespace
}  // namespace shoal::worker::webtorrent

TEST(WebTorrentCodec, SameIdComparesEveryByte) {
  shoal::worker::webtorrent::Id a{}, b{};
  for (size_t i = 0; i < a.size(); ++i) a[i] = b[i] = uint8_t(i * 37);
  EXPECT_TRUE(shoal::worker::webtorrent::same_id(a, b));
  for (size_t i = 0; i < a.size(); ++i) {
    b[i] ^= 0x80;
    EXPECT_FALSE(shoal::worker::webtorrent::same_id(a, b)) << "byte " << i;
    b[i] ^= 0x80;
  }
}

TEST(WebTorrentCodec, BinaryStringsDecodeExactlyAsEncoded) {
  // Every id of random bytes round-trips; every damaged form is refused.
  uint64_t x = 42;
  for (int round = 0; round < 2000; ++round) {
    uint8_t id[20];
    for (uint8_t& b : id) x = x * 6364136223846793005ull + 1442695040888963407ull, b = uint8_t(x >> 56);
    std::string s = shoal::worker::webtorrent::encode_binary_string(id, 20);
    uint8_t back[20];
    ASSERT_TRUE(shoal::worker::webtorrent::decode_binary_string(s, back, 20));
    ASSERT_EQ(0, memcmp(id, back, 20));
    EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string(s.substr(0, s.size() - 1), back, 20));
    EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string(s + "a", back, 20));
    size_t at = x % s.size();
    std::string bad = s;
    bad[at] = char(0xc4);  // a lead byte of U+0100.. or a lead where a continuation belongs
    EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string(bad, back, 20)) << round;
  }
  uint8_t out[2];
  EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string("a\xc3", out, 2));      // cut sequence
  EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string("\x80\x80", out, 2));   // continuation first
  EXPECT_FALSE(shoal::worker::webtorrent::decode_binary_string("\xc3" "a", out, 1));   // lead without continuation
  EXPECT_TRUE(shoal::worker::webtorrent::decode_binary_string("\xc3\xbf" "a", out, 2));
  EXPECT_EQ(out[0], 0xff);
  EXPECT_EQ(out[1], 'a');
}
