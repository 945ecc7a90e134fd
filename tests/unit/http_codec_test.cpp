// tests/unit/http_codec_test.cpp — unit tests for worker/http_codec (HTTP tracker query parsing
// and bencoded replies; BEP 3, 7, 23, 48). Runs in the unit test binary only; touches no shm,
// sockets or files. Every parser call runs on an exact-size heap copy of the input, so under
// ASan any read past the end fails the test. Expected reply bodies are hand-written bencode.
#include "worker/http_codec.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace shoal::worker::http {
namespace {

// An exact-size heap copy of a query (no NUL after it, unlike std::string).
struct Exact {
  explicit Exact(const std::string& s) : n(s.size()), p(new char[s.size() ? s.size() : 1]) {
    std::memcpy(p.get(), s.data(), s.size());
  }
  std::string_view sv() const { return std::string_view(p.get(), n); }
  size_t n;
  std::unique_ptr<char[]> p;
};

ParseError announce(const std::string& q, AnnounceParams* a) { return parse_announce(Exact(q).sv(), a); }

std::string bytes_of(const uint8_t* b, size_t n) { return std::string(reinterpret_cast<const char*>(b), n); }

// all: every byte as %XX upper-case, as transmission escapes binary params; else unreserved
// bytes literal and the rest %xx lower-case, as libtorrent escapes.
std::string escape(const std::string& raw, bool all) {
  const char* hx = all ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    if (!all && (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')) {
      out += char(c);
      continue;
    }
    out += {'%', hx[c >> 4], hx[c & 15]};
  }
  return out;
}
std::string escape_all(const std::string& raw) { return escape(raw, true); }
std::string escape_some(const std::string& raw) { return escape(raw, false); }

// A hash holding the bytes that matter to a URL parser: NUL, space, '+', '%', '&', '=', 0xff.
const std::string kHash("\x00\x20\x2b\x25\x26\x3d\xff\x10\x80\x7f" "ABCDEFGHIJ", 20);
const std::string kPeerTr = "-TR4050-a1b2c3d4e5f6";
const std::string kPeerQb("-qB4630-\x01\xfek8hj0wgej6", 20);

std::string valid_query() {
  return "info_hash=" + escape_all(kHash) + "&peer_id=" + escape_some(kPeerTr) + "&port=51413";
}

// ---------------------------------------------------------------- percent_decode

TEST(HttpPercentDecode, EveryByteValueRoundTripsUpperAndLowerHex) {
  std::string upper, lower;
  for (int b = 0; b < 256; ++b) {
    char u[4], l[4];
    std::snprintf(u, sizeof(u), "%%%02X", b);
    std::snprintf(l, sizeof(l), "%%%02x", b);
    upper += u;
    lower += l;
    uint8_t out[1];
    size_t n = 9;
    ASSERT_TRUE(percent_decode(Exact(u).sv(), out, 1, &n)) << b;
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(out[0], b);
    ASSERT_TRUE(percent_decode(Exact(l).sv(), out, 1, &n)) << b;
    EXPECT_EQ(out[0], b);
  }
  for (const std::string* s : {&upper, &lower}) {
    uint8_t out[256];
    size_t n = 0;
    ASSERT_TRUE(percent_decode(Exact(*s).sv(), out, sizeof(out), &n));
    ASSERT_EQ(n, 256u);
    for (int b = 0; b < 256; ++b) EXPECT_EQ(out[b], b);
  }
}

TEST(HttpPercentDecode, MixedLiteralEscapedAndPlus) {
  uint8_t out[32];
  size_t n = 0;
  ASSERT_TRUE(percent_decode(Exact("a%41b+c%2Bd%20").sv(), out, sizeof(out), &n));
  EXPECT_EQ(bytes_of(out, n), "aAb c+d ");
  ASSERT_TRUE(percent_decode(Exact("\xc3\xa9=&").sv(), out, sizeof(out), &n));  // raw bytes pass through
  EXPECT_EQ(bytes_of(out, n), "\xc3\xa9=&");
  ASSERT_TRUE(percent_decode(Exact("").sv(), nullptr, 0, &n));
  EXPECT_EQ(n, 0u);
}

TEST(HttpPercentDecode, BadEscapesFail) {
  for (const char* bad : {"%", "%4", "%zz", "%4g", "%g4", "abc%", "ab%4", "%%41", "% 41", "%-1"}) {
    uint8_t out[16];
    size_t n = 99;
    EXPECT_FALSE(percent_decode(Exact(bad).sv(), out, sizeof(out), &n)) << bad;
    EXPECT_LE(n, 3u) << bad;
  }
  uint8_t out[16];
  size_t n = 0;
  EXPECT_FALSE(percent_decode(Exact("ab%zzcd").sv(), out, sizeof(out), &n));
  EXPECT_EQ(bytes_of(out, n), "ab");  // bytes before the failure
}

TEST(HttpPercentDecode, OverflowFailsAtCap) {
  uint8_t out[4];
  size_t n = 0;
  EXPECT_TRUE(percent_decode(Exact("%41BCD").sv(), out, 4, &n));
  EXPECT_EQ(n, 4u);
  EXPECT_FALSE(percent_decode(Exact("%41BCDE").sv(), out, 4, &n));
  EXPECT_EQ(bytes_of(out, n), "ABCD");
}

// ---------------------------------------------------------------- QueryIterator, targets, routes

struct Pair {
  std::string key, value;
  bool has_value;
  bool operator==(const Pair&) const = default;
};

std::vector<Pair> pairs_of(const std::string& q) {
  Exact e(q);
  QueryIterator it(e.sv());
  QueryParam p;
  std::vector<Pair> out;
  while (it.next(&p)) out.push_back({std::string(p.key), std::string(p.value), p.has_value});
  return out;
}

TEST(HttpQueryIterator, EmptyValuesMissingEqualsAndRepeats) {
  std::vector<Pair> want = {{"a", "1", true}, {"b", "", true}, {"c", "", false},
                            {"d", "x=y", true}, {"", "v", true}, {"a", "2", true}};
  EXPECT_EQ(pairs_of("a=1&b=&c&&d=x=y&=v&a=2&"), want);
  EXPECT_TRUE(pairs_of("").empty());
  EXPECT_TRUE(pairs_of("&&&").empty());
  EXPECT_EQ(pairs_of("x"), (std::vector<Pair>{{"x", "", false}}));
}

TEST(HttpSplitTarget, PathAndQuery) {
  struct Case { const char* target; const char* path; const char* query; };
  const Case cases[] = {
      {"/announce?info_hash=x&port=1", "/announce", "info_hash=x&port=1"}, {"/scrape", "/scrape", ""},
      {"/announce?", "/announce", ""}, {"/a?b?c", "/a", "b?c"}, {"/a?b=1#frag", "/a", "b=1"}, {"", "", ""},
  };
  for (const Case& c : cases) {
    Exact target(c.target);
    std::string_view path, query;
    split_target(target.sv(), &path, &query);
    EXPECT_EQ(path, c.path) << c.target;
    EXPECT_EQ(query, c.query) << c.target;
  }
}

TEST(HttpRouteOf, LastSegmentDecides) {
  struct Case { const char* path; Route route; };
  const Case cases[] = {
      {"/announce", Route::announce},  {"/x/announce", Route::announce}, {"/announce.php", Route::announce},
      {"announce", Route::announce},   {"/x/announcer", Route::announce}, {"/t/announce.php", Route::announce},
      {"/announce?info_hash=x", Route::announce},  {"/scrape", Route::scrape},  {"/x/scrape", Route::scrape},
      {"/scrape.php", Route::scrape},  {"/announce/", Route::unknown},   {"/announce/passkey", Route::unknown},
      {"/scrape/x", Route::unknown},   {"/", Route::unknown},  {"", Route::unknown},  {"/Announce", Route::unknown},
      {"/ann", Route::unknown},        {"/stats", Route::unknown},
  };
  for (const Case& c : cases) EXPECT_EQ(route_of(Exact(c.path).sv()), c.route) << c.path;
}

// ---------------------------------------------------------------- parse_announce

TEST(HttpAnnounce, TransmissionShapedQuery) {
  std::string q = "info_hash=" + escape_all(kHash) + "&peer_id=" + kPeerTr +
                  "&port=51413&uploaded=0&downloaded=0&left=1048576&numwant=80&key=4B1A7C2D"
                  "&compact=1&supportcrypto=1&requirecrypto=1&ipv6=2001%3Adb8%3A%3A1&event=started";
  AnnounceParams a;
  ASSERT_EQ(announce(q, &a), ParseError::none);
  EXPECT_EQ(bytes_of(a.info_hash, 20), kHash);
  EXPECT_EQ(bytes_of(a.peer_id, 20), kPeerTr);
  EXPECT_EQ(a.port, 51413);
  EXPECT_EQ(a.uploaded, 0u);
  EXPECT_EQ(a.downloaded, 0u);
  EXPECT_TRUE(a.has_left);
  EXPECT_EQ(a.left, 1048576u);
  EXPECT_EQ(a.numwant, 80);
  EXPECT_EQ(bytes_of(a.key, a.key_len), "4B1A7C2D");
  EXPECT_TRUE(a.compact);
  EXPECT_FALSE(a.no_peer_id);
  EXPECT_EQ(a.event, shm::Event::started);
}

TEST(HttpAnnounce, LibtorrentShapedQueryIgnoresIpParams) {
  std::string q = "info_hash=" + escape_some(kHash) + "&peer_id=" + escape_some(kPeerQb) +
                  "&port=6881&uploaded=1024&downloaded=2048&left=0&corrupt=0&key=A8D3F2E1"
                  "&event=completed&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0"
                  "&ip=1.2.3.4&ipv4=5.6.7.8&ipv6=%zz";
  AnnounceParams a;
  ASSERT_EQ(announce(q, &a), ParseError::none);
  EXPECT_EQ(bytes_of(a.info_hash, 20), kHash);
  EXPECT_EQ(bytes_of(a.peer_id, 20), kPeerQb);
  EXPECT_EQ(a.port, 6881);
  EXPECT_EQ(a.uploaded, 1024u);
  EXPECT_EQ(a.downloaded, 2048u);
  EXPECT_TRUE(a.has_left);
  EXPECT_EQ(a.left, 0u);  // seeder
  EXPECT_EQ(a.event, shm::Event::completed);
  EXPECT_EQ(a.numwant, 200);
  EXPECT_TRUE(a.no_peer_id);
}

TEST(HttpAnnounce, Aria2ShapedQuery) {
  std::string peer("A2-1-36-0-\x9a\x01\xff\x00\x7e\x20\x2b\x25\x26\x3d", 20);
  std::string q = "info_hash=" + escape_all(kHash) + "&peer_id=" + escape_all(peer) +
                  "&uploaded=0&downloaded=0&left=4096&compact=1&key=aBcDeFgH&event=stopped"
                  "&numwant=50&no_peer_id=1&port=6881&supportcrypto=1&trackerid=xyz";
  AnnounceParams a;
  ASSERT_EQ(announce(q, &a), ParseError::none);
  EXPECT_EQ(bytes_of(a.peer_id, 20), peer);
  EXPECT_EQ(a.event, shm::Event::stopped);
  EXPECT_EQ(a.port, 6881);
  EXPECT_EQ(a.left, 4096u);
  EXPECT_EQ(a.numwant, 50);
}

TEST(HttpAnnounce, DefaultsWhenOptionalParamsAbsent) {
  AnnounceParams a;
  ASSERT_EQ(announce(valid_query(), &a), ParseError::none);
  EXPECT_FALSE(a.has_left);
  EXPECT_NE(a.left, 0u);  // absent left is never a seeder
  EXPECT_EQ(a.uploaded, 0u);
  EXPECT_EQ(a.downloaded, 0u);
  EXPECT_EQ(a.event, shm::Event::none);
  EXPECT_EQ(a.numwant, -1);
  EXPECT_TRUE(a.compact);
  EXPECT_FALSE(a.no_peer_id);
  EXPECT_EQ(a.key_len, 0);
}

TEST(HttpAnnounce, EventStrings) {
  struct Case { const char* param; shm::Event event; };
  const Case ok[] = {{"&event=started", shm::Event::started},  {"&event=completed", shm::Event::completed},
            {"&event=stopped", shm::Event::stopped},  {"&event=", shm::Event::none},
            {"&event", shm::Event::none},             {"&event=paused", shm::Event::none},
            {"&event=%73tarted", shm::Event::started}};
  for (const Case& c : ok) {
    AnnounceParams a;
    EXPECT_EQ(announce(valid_query() + c.param, &a), ParseError::none) << c.param;
    EXPECT_EQ(a.event, c.event) << c.param;
  }
  for (const char* bad : {"&event=start", "&event=STARTED", "&event=update", "&event=started+",
                          "&event=%zz", "&event=completedcompletedcompleted"}) {
    AnnounceParams a;
    EXPECT_EQ(announce(valid_query() + bad, &a), ParseError::invalid_event) << bad;
  }
}

TEST(HttpAnnounce, CompactAndNoPeerId) {
  AnnounceParams a;
  ASSERT_EQ(announce(valid_query() + "&compact=0", &a), ParseError::none);
  EXPECT_FALSE(a.compact);
  ASSERT_EQ(announce(valid_query() + "&compact=1&no_peer_id=0", &a), ParseError::none);
  EXPECT_TRUE(a.compact);
  EXPECT_FALSE(a.no_peer_id);
  ASSERT_EQ(announce(valid_query() + "&no_peer_id", &a), ParseError::none);
  EXPECT_TRUE(a.no_peer_id);
  // Compared after percent-decoding, like every other parameter (issue 12): %30 is "0".
  ASSERT_EQ(announce(valid_query() + "&compact=%30&no_peer_id=%30", &a), ParseError::none);
  EXPECT_FALSE(a.compact);
  EXPECT_FALSE(a.no_peer_id);
  ASSERT_EQ(announce(valid_query() + "&compact=%31", &a), ParseError::none);
  EXPECT_TRUE(a.compact);
}

TEST(HttpAnnounce, NumwantHugeAndNegative) {
  struct Case { const char* text; int value; };
  const Case cases[] = {{"0", 0}, {"50", 50}, {"-1", -1}, {"-5", -5}, {"2147483647", INT_MAX}, {"2147483648", INT_MAX},
               {"4294967295", INT_MAX}, {"99999999999999999999999", INT_MAX}, {"-2147483648", INT_MIN},
               {"-99999999999", INT_MIN}};
  for (const Case& c : cases) {
    AnnounceParams a;
    ASSERT_EQ(announce(valid_query() + "&numwant=" + c.text, &a), ParseError::none) << c.text;
    EXPECT_EQ(a.numwant, c.value) << c.text;
  }
  for (const char* bad : {"", "-", "abc", "5x", "+5", "--1", "1.5", "%zz"}) {
    AnnounceParams a;
    EXPECT_EQ(announce(valid_query() + "&numwant=" + bad, &a), ParseError::invalid_numwant) << bad;
  }
}

TEST(HttpAnnounce, ByteCountsSaturateAndRejectNonDigits) {
  AnnounceParams a;
  ASSERT_EQ(announce(valid_query() + "&uploaded=18446744073709551615&downloaded=18446744073709551616"
                                      "&left=%31%32",
                     &a),
            ParseError::none);
  EXPECT_EQ(a.uploaded, UINT64_MAX);
  EXPECT_EQ(a.downloaded, UINT64_MAX);  // saturated
  EXPECT_EQ(a.left, 12u);               // %-escaped digits decode first
  struct Case { const char* param; ParseError error; };
  const Case bad[] = {{"&uploaded=-1", ParseError::invalid_uploaded},    {"&uploaded=", ParseError::invalid_uploaded},
             {"&downloaded=1e3", ParseError::invalid_downloaded}, {"&downloaded", ParseError::invalid_downloaded},
             {"&left=+1", ParseError::invalid_left},            {"&left=0x10", ParseError::invalid_left},
             {"&left=000000000000000000000000000000001", ParseError::invalid_left}};  // > 32 digits
  for (const Case& c : bad) EXPECT_EQ(announce(valid_query() + c.param, &a), c.error) << c.param;
}

TEST(HttpAnnounce, PortRange) {
  AnnounceParams a;
  std::string base = "info_hash=" + escape_all(kHash) + "&peer_id=" + kPeerTr;
  ASSERT_EQ(announce(base + "&port=1", &a), ParseError::none);
  EXPECT_EQ(a.port, 1);
  ASSERT_EQ(announce(base + "&port=65535", &a), ParseError::none);
  EXPECT_EQ(a.port, 65535);
  ASSERT_EQ(announce(base + "&port=00080", &a), ParseError::none);
  EXPECT_EQ(a.port, 80);
  for (const char* bad : {"0", "65536", "99999999999999999999999", "-1", "", "http", "80 "}) {
    EXPECT_EQ(announce(base + "&port=" + bad, &a), ParseError::invalid_port) << bad;
  }
  EXPECT_EQ(announce(base + "&port", &a), ParseError::invalid_port);
  EXPECT_EQ(announce(base, &a), ParseError::missing_port);
}

TEST(HttpAnnounce, InfoHashAndPeerIdErrors) {
  std::string peer = "&peer_id=" + kPeerTr + "&port=1";
  std::string hash = "info_hash=" + escape_all(kHash) + "&port=1";
  struct Case { std::string query; ParseError error; };
  const Case cases[] = {
      {peer.substr(1), ParseError::missing_info_hash},
      {"info_hash=" + escape_all(kHash.substr(0, 19)) + peer, ParseError::invalid_info_hash},
      {"info_hash=" + escape_all(kHash + "x") + peer, ParseError::invalid_info_hash},
      {"info_hash=" + escape_all(kHash).substr(1) + peer, ParseError::invalid_info_hash},  // bad escape
      {"info_hash=" + escape_all(kHash + kHash) + peer, ParseError::invalid_info_hash},
      {"info_hash=" + peer, ParseError::invalid_info_hash},
      {"info_hash" + peer, ParseError::invalid_info_hash},
      {"info_hash=" + escape_all(kHash) + "&info_hash=" + escape_all(kHash) + peer,
       ParseError::repeated_info_hash},
      {"info_hash=x&info_hash=" + escape_all(kHash) + peer, ParseError::invalid_info_hash},
      {hash, ParseError::missing_peer_id},
      {hash + "&peer_id=short", ParseError::invalid_peer_id},
      {hash + "&peer_id=" + kPeerTr + "X", ParseError::invalid_peer_id},
      {hash + "&peer_id=", ParseError::invalid_peer_id},
      {hash + "&peer_id=%GG" + kPeerTr.substr(1), ParseError::invalid_peer_id},
      {"", ParseError::missing_info_hash},
  };
  for (const Case& c : cases) {
    AnnounceParams a;
    EXPECT_EQ(announce(c.query, &a), c.error) << c.query;
  }
}

TEST(HttpAnnounce, RepeatedKeysLastWinsExceptInfoHash) {
  AnnounceParams a;
  ASSERT_EQ(announce(valid_query() + "&port=7000&numwant=5&numwant=9&event=started&event=stopped"
                                     "&peer_id=" + escape_all(kPeerQb),
                     &a),
            ParseError::none);
  EXPECT_EQ(a.port, 7000);
  EXPECT_EQ(a.numwant, 9);
  EXPECT_EQ(a.event, shm::Event::stopped);
  EXPECT_EQ(bytes_of(a.peer_id, 20), kPeerQb);
}

TEST(HttpAnnounce, UnknownAndMalformedUnknownParamsAreIgnored) {
  AnnounceParams a;
  EXPECT_EQ(announce("%zz=1&foo=%&=x&&" + valid_query() + "&supportcrypto&corrupt=0&ip=%&ipv4&ipv6=::1",
                     &a),
            ParseError::none);
  // Param names are %-decoded before matching.
  EXPECT_EQ(announce(valid_query() + "&%6eumwant=7", &a), ParseError::none);
  EXPECT_EQ(a.numwant, 7);
}

TEST(HttpAnnounce, KeyIsTruncatedTo100BytesAndMalformedKeyDropped) {
  AnnounceParams a;
  std::string long_key(150, 'k');
  long_key[99] = 'Z';
  ASSERT_EQ(announce(valid_query() + "&key=" + long_key, &a), ParseError::none);
  ASSERT_EQ(a.key_len, 100);
  EXPECT_EQ(bytes_of(a.key, a.key_len), long_key.substr(0, 100));
  ASSERT_EQ(announce(valid_query() + "&key=%zz", &a), ParseError::none);
  EXPECT_EQ(a.key_len, 0);
  ASSERT_EQ(announce(valid_query() + "&key=a+b%00", &a), ParseError::none);
  EXPECT_EQ(bytes_of(a.key, a.key_len), std::string("a b\0", 4));
}

TEST(HttpAnnounce, EveryPrefixOfAValidQueryIsTotal) {
  std::string q = valid_query() + "&uploaded=10&downloaded=20&left=30&event=started&numwant=80&key=abc";
  for (size_t n = 0; n <= q.size(); ++n) {
    AnnounceParams a;
    ParseError e = announce(q.substr(0, n), &a);
    bool has_port = q.substr(0, n).find("&port=5") != std::string::npos;
    if (e == ParseError::none) {
      EXPECT_TRUE(has_port) << n;
    }
    EXPECT_STRNE(error_message(e), "unknown error");
  }
}

TEST(HttpAnnounce, RandomInputsNeverCrash) {
  std::mt19937 rng(12345);
  static const char kAlphabet[] = "%&=+0123456789abcdefABCDEFinfo_hashpeer_idportleftevent\x00\xff";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string q(rng() % 200, ' ');
    for (char& c : q) c = alphabet[rng() % alphabet.size()];
    if (i % 4 == 0) q = valid_query() + "&" + q;
    AnnounceParams a;
    ParseError e = announce(q, &a);
    accepted += e == ParseError::none;
    uint8_t hashes[4][kInfoHashBytes];
    size_t count = 99;
    ParseError s = parse_scrape(Exact(q).sv(), hashes, 4, &count);
    EXPECT_LE(count, 4u);
    if (s != ParseError::none) {
      EXPECT_TRUE(s == ParseError::invalid_info_hash || s == ParseError::full_scrape);
    }
  }
  EXPECT_GT(accepted, 0);  // the valid prefix plus junk params is often still a valid announce
}

// ---------------------------------------------------------------- parse_scrape

std::string hash_n(int i) {
  std::string h = kHash;
  h[19] = char(i);
  h[18] = char(i >> 8);
  return h;
}

TEST(HttpScrape, ZeroHashesIsAFullScrapeError) {
  uint8_t hashes[4][kInfoHashBytes];
  size_t count = 7;
  for (const char* q : {"", "foo=bar", "&&", "info_hashx=1"}) {
    EXPECT_EQ(parse_scrape(Exact(q).sv(), hashes, 4, &count), ParseError::full_scrape) << q;
    EXPECT_EQ(count, 0u);
  }
  EXPECT_STREQ(error_message(ParseError::full_scrape), "full scrape is not allowed");
}

TEST(HttpScrape, OneAndThreeHashesInRequestOrder) {
  uint8_t hashes[8][kInfoHashBytes];
  size_t count = 0;
  ASSERT_EQ(parse_scrape(Exact("info_hash=" + escape_some(hash_n(1))).sv(), hashes, 8, &count),
            ParseError::none);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(bytes_of(hashes[0], 20), hash_n(1));
  std::string q = "info_hash=" + escape_all(hash_n(3)) + "&x=1&info_hash=" + escape_all(hash_n(1)) +
                  "&info_hash=" + escape_some(hash_n(3));
  ASSERT_EQ(parse_scrape(Exact(q).sv(), hashes, 8, &count), ParseError::none);
  ASSERT_EQ(count, 3u);  // duplicates kept
  EXPECT_EQ(bytes_of(hashes[0], 20), hash_n(3));
  EXPECT_EQ(bytes_of(hashes[1], 20), hash_n(1));
  EXPECT_EQ(bytes_of(hashes[2], 20), hash_n(3));
}

TEST(HttpScrape, HundredHashesAreCapped) {
  std::string q;
  for (int i = 0; i < 100; ++i) q += (i ? "&info_hash=" : "info_hash=") + escape_all(hash_n(i));
  uint8_t hashes[kDefaultMaxScrapeHashes][kInfoHashBytes];
  size_t count = 0;
  ASSERT_EQ(parse_scrape(Exact(q).sv(), hashes, kDefaultMaxScrapeHashes, &count), ParseError::none);
  ASSERT_EQ(count, kDefaultMaxScrapeHashes);
  for (size_t i = 0; i < count; ++i) EXPECT_EQ(bytes_of(hashes[i], 20), hash_n(int(i)));
  // A bad hash past the cap is still an error; max_hashes 0 admits nothing.
  EXPECT_EQ(parse_scrape(Exact(q + "&info_hash=abc").sv(), hashes, kDefaultMaxScrapeHashes, &count),
            ParseError::invalid_info_hash);
  EXPECT_EQ(parse_scrape(Exact(q).sv(), nullptr, 0, &count), ParseError::full_scrape);
  EXPECT_EQ(count, 0u);
}

TEST(HttpScrape, InvalidHashes) {
  uint8_t hashes[4][kInfoHashBytes];
  size_t count = 0;
  for (std::string bad : {"info_hash=" + escape_all(kHash.substr(0, 19)), "info_hash=" + escape_all(kHash + "x"),
                          std::string("info_hash"), std::string("info_hash="),
                          "info_hash=" + escape_all(kHash) + "&info_hash=%zz"}) {
    EXPECT_EQ(parse_scrape(Exact(bad).sv(), hashes, 4, &count), ParseError::invalid_info_hash) << bad;
  }
}

// ---------------------------------------------------------------- encoders

std::string encode(const AnnounceReply& r) {
  char buf[2048];
  size_t n = encode_announce(buf, sizeof(buf), r);
  EXPECT_NE(n, 0u);
  // Any smaller buffer fails cleanly, with nothing written past it.
  for (size_t cap : {size_t(0), n / 2, n - 1}) {
    char small[2048];
    std::memset(small, '#', sizeof(small));
    EXPECT_EQ(encode_announce(small, cap, r), 0u) << cap;
    for (size_t i = cap; i < n; ++i) EXPECT_EQ(small[i], '#');
  }
  return std::string(buf, n);
}

// complete 5, incomplete 3, downloaded 7, interval 1800, min interval 900.
AnnounceReply reply(const uint8_t* p4, size_t n4, const uint8_t* p6, size_t n6, bool compact = true) {
  return AnnounceReply{5, 3, 7, 1800, 900, p4, n4, p6, n6, compact, /*no_peer_id=*/false};
}

const uint8_t kV4[] = {1, 2, 3, 4, 0x1a, 0xe1, 10, 0, 0, 1, 0xc8, 0xd5};  // 1.2.3.4:6881 10.0.0.1:51413
const uint8_t kV6[] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x01, 0xbb};  // [2001:db8::1]:443
const std::string kHead = "d8:completei5e10:downloadedi7e10:incompletei3e8:intervali1800e12:min intervali900e";

TEST(HttpEncodeAnnounce, CompactV4) {
  EXPECT_EQ(encode(reply(kV4, 2, nullptr, 0)), kHead + "5:peers12:" + bytes_of(kV4, 12) + "e");
}

TEST(HttpEncodeAnnounce, CompactV4AndV6) {
  EXPECT_EQ(encode(reply(kV4, 2, kV6, 1)),
            kHead + "5:peers12:" + bytes_of(kV4, 12) + "6:peers618:" + bytes_of(kV6, 18) + "e");
  // peers is always present; peers6 only when it has entries.
  EXPECT_EQ(encode(reply(nullptr, 0, kV6, 1)), kHead + "5:peers0:6:peers618:" + bytes_of(kV6, 18) + "e");
  EXPECT_EQ(encode(reply(nullptr, 0, nullptr, 0)), kHead + "5:peers0:e");
}

TEST(HttpEncodeAnnounce, NonCompactIsAListOfDictsWithoutPeerId) {
  EXPECT_EQ(encode(reply(kV4, 2, kV6, 1, /*compact=*/false)),
            kHead + "5:peersld2:ip7:1.2.3.44:porti6881eed2:ip8:10.0.0.14:porti51413eed2:ip11:2001:db8::1"
                    "4:porti443eeee");
  AnnounceReply r = reply(kV4, 1, nullptr, 0, false);
  r.no_peer_id = true;  // no effect: peer ids are never stored, so never sent
  EXPECT_EQ(encode(r), kHead + "5:peersld2:ip7:1.2.3.44:porti6881eeee");
  EXPECT_EQ(encode(reply(nullptr, 0, nullptr, 0, false)), kHead + "5:peerslee");
}

TEST(HttpEncodeFailure, ByteExact) {
  char buf[128];
  size_t n = encode_failure(buf, sizeof(buf), error_message(ParseError::missing_info_hash));
  EXPECT_EQ(std::string(buf, n), "d14:failure reason17:missing info_hashe");
  n = encode_failure(buf, sizeof(buf), nullptr);
  EXPECT_EQ(std::string(buf, n), "d14:failure reason0:e");
  EXPECT_EQ(encode_failure(buf, 20, "this does not fit in twenty bytes"), 0u);
}

TEST(HttpEncodeScrape, SortedDeduplicatedByteExact) {
  std::string h_hi(20, '\xf0'), h_mid(20, 'm'), h_lo(20, '\x01');
  ScrapeEntry e[4] = {{{}, 1, 2, 3}, {{}, 4, 5, 6}, {{}, 7, 8, 9}, {{}, 70, 80, 90}};
  const std::string* hashes[4] = {&h_hi, &h_lo, &h_mid, &h_mid};  // e[3] duplicates e[2]
  for (int i = 0; i < 4; ++i) std::memcpy(e[i].info_hash, hashes[i]->data(), 20);
  char buf[512];
  size_t n = encode_scrape(buf, sizeof(buf), e, 4);
  std::string want = "d5:filesd20:" + h_lo + "d8:completei4e10:downloadedi5e10:incompletei6ee" + "20:" + h_mid +
                     "d8:completei7e10:downloadedi8e10:incompletei9ee" + "20:" + h_hi +
                     "d8:completei1e10:downloadedi2e10:incompletei3eeee";
  EXPECT_EQ(std::string(buf, n), want);
  EXPECT_EQ(encode_scrape(buf, n - 1, e, 4), 0u);
  EXPECT_EQ(encode_scrape(buf, n, e, 4), n);
}

TEST(HttpEncodeScrape, EmptyAndTooMany) {
  char buf[64];
  size_t n = encode_scrape(buf, sizeof(buf), nullptr, 0);
  EXPECT_EQ(std::string(buf, n), "d5:filesdee");
  std::vector<ScrapeEntry> many(kMaxScrapeEntries + 1);
  EXPECT_EQ(encode_scrape(buf, sizeof(buf), many.data(), many.size()), 0u);
}

TEST(HttpEncodeScrape, ManyEntriesComeOutSorted) {
  std::vector<ScrapeEntry> e(kMaxScrapeEntries);
  std::mt19937 rng(7);
  for (ScrapeEntry& x : e) {
    for (uint8_t& b : x.info_hash) b = uint8_t(rng());
  }
  std::vector<char> buf(64 * 1024);
  size_t n = encode_scrape(buf.data(), buf.size(), e.data(), e.size());
  ASSERT_NE(n, 0u);
  // Walk the body: each key follows "20:" right after a closing 'e' of the previous entry.
  std::string body(buf.data(), n), prev;
  size_t pos = std::strlen("d5:filesd");
  for (size_t i = 0; i < e.size(); ++i) {
    ASSERT_EQ(body.substr(pos, 3), "20:");
    std::string key = body.substr(pos + 3, 20);
    EXPECT_LT(prev, key);
    prev = key;
    pos = body.find("ee", pos + 23) + 2;
  }
}

TEST(HttpErrorMessage, EveryErrorHasDistinctText) {
  std::vector<std::string> seen;
  for (int i = 0; i <= int(ParseError::full_scrape); ++i) {
    std::string m = error_message(ParseError(i));
    EXPECT_FALSE(m.empty());
    for (const std::string& s : seen) EXPECT_NE(s, m);
    seen.push_back(m);
  }
  EXPECT_STREQ(error_message(ParseError(200)), "unknown error");
}

}  // namespace
}  // namespace shoal::worker::http
