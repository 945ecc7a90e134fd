// tests/unit/udp_codec_test.cpp — unit tests for worker/udp_codec (BEP 15 parser/encoders, BEP 41).
// Runs in the unit test binary only; touches no shm, sockets or files. Packets are hand-written
// hex from the BEP 15 tables; every parse runs on an exact-size heap copy so that, under ASan,
// any read past `len` fails the test.
#include "worker/udp_codec.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace shoal::worker::udp {
namespace {

using Bytes = std::vector<uint8_t>;

// "00 0a ff" → {0x00, 0x0a, 0xff}; spaces ignored.
Bytes hex(const std::string& s) {
  Bytes out;
  int hi = -1;
  for (char c : s) {
    if (c == ' ' || c == '\n') continue;
    int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (v < 0) ADD_FAILURE() << "bad hex char " << c;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(uint8_t(hi << 4 | v));
      hi = -1;
    }
  }
  EXPECT_EQ(hi, -1) << "odd hex length";
  return out;
}

Bytes ascii(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// An exact-size heap copy of a datagram (ASan catches any read past its end); pointers in the
// parse result stay valid while it lives.
struct Datagram {
  Datagram(const Bytes& b, size_t len) : buf(new uint8_t[len]), len(len) {
    if (len) std::memcpy(buf.get(), b.data(), len);
  }
  explicit Datagram(const Bytes& b) : Datagram(b, b.size()) {}
  ParsedRequest parse(uint32_t max_hashes = kMaxUdpScrapeHashes) const { return parse_request(buf.get(), len, max_hashes); }
  std::unique_ptr<uint8_t[]> buf;
  size_t len;
};

// Parses the first `len` bytes of `b` from an exact-size heap buffer. Result pointers dangle.
ParsedRequest parse_exact(const Bytes& b, size_t len, uint32_t max_hashes = kMaxUdpScrapeHashes) {
  return Datagram(b, len).parse(max_hashes);
}
ParsedRequest parse_all(const Bytes& b, uint32_t max_hashes = kMaxUdpScrapeHashes) {
  return parse_exact(b, b.size(), max_hashes);
}

uint32_t raw32(const Bytes& b) {
  uint32_t v;
  std::memcpy(&v, b.data(), 4);
  return v;
}

const Bytes kTrans = hex("a1 b2 c3 d4");  // transaction as it travels; must come back byte-exact

// BEP 15 announce, every field distinct and non-trivial (98 bytes).
Bytes announce_packet() {
  return hex(
      "11 22 33 44 55 66 77 88"                                      // connection_id
      "00 00 00 01"                                                  // action = announce
      "a1 b2 c3 d4"                                                  // transaction
      "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13"  // info_hash
      "a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af b0 b1 b2 b3"  // peer_id
      "00 00 00 00 00 00 10 00"                                      // downloaded = 4096
      "00 00 00 01 00 00 00 00"                                      // left = 2^32
      "ff ff ff ff ff ff ff fe"                                      // uploaded = -2
      "00 00 00 02"                                                  // event = started
      "c0 a8 00 01"                                                  // ip = 192.168.0.1
      "12 34 56 78"                                                  // key
      "ff ff ff ff"                                                  // numwant = -1
      "1a e1");                                                      // port = 6881
}

// ---- connect ----

TEST(UdpCodecConnect, RequestAndResponseByteExact) {
  Bytes req = hex("00 00 04 17 27 10 19 80  00 00 00 00  de ad be ef");
  ParsedRequest r = parse_all(req);
  EXPECT_EQ(r.error, ParseError::none);
  EXPECT_EQ(r.action, Action::connect);
  EXPECT_TRUE(r.has_transaction);
  EXPECT_EQ(r.connection_id, kProtocolId);
  EXPECT_EQ(r.connect.transaction, raw32(hex("de ad be ef")));

  uint8_t out[kConnectResponseBytes];
  ASSERT_EQ(encode_connect(out, r.connect.transaction, 0x0123456789abcdefull), 16u);
  EXPECT_EQ(Bytes(out, out + 16), hex("00 00 00 00  de ad be ef  01 23 45 67 89 ab cd ef"));
}

TEST(UdpCodecConnect, WrongProtocolId) {
  for (const char* id : {"00 00 00 00 00 00 00 00", "00 00 04 17 27 10 19 81", "80 19 10 27 17 04 00 00"}) {
    ParsedRequest r = parse_all(cat({hex(id), hex("00 00 00 00"), kTrans}));
    EXPECT_EQ(r.error, ParseError::bad_protocol_id) << id;
    EXPECT_TRUE(r.has_transaction);
    EXPECT_EQ(r.transaction, raw32(kTrans));
  }
}

TEST(UdpCodecConnect, TrailingBytesIgnored) {
  Bytes req = cat({hex("00 00 04 17 27 10 19 80 00 00 00 00"), kTrans, hex("ff ff ff")});
  EXPECT_EQ(parse_all(req).error, ParseError::none);
}

// ---- announce ----

TEST(UdpCodecAnnounce, AllFieldsDecoded) {
  Bytes p = announce_packet();
  ASSERT_EQ(p.size(), 98u);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[p.size()]);
  std::memcpy(buf.get(), p.data(), p.size());
  ParsedRequest r = parse_request(buf.get(), p.size(), kMaxUdpScrapeHashes);
  ASSERT_EQ(r.error, ParseError::none);
  EXPECT_EQ(r.action, Action::announce);
  const AnnounceRequest& a = r.announce;
  EXPECT_EQ(a.connection_id, 0x1122334455667788ull);
  EXPECT_EQ(r.connection_id, 0x1122334455667788ull);
  EXPECT_EQ(a.transaction, raw32(kTrans));
  EXPECT_EQ(a.info_hash, buf.get() + 16);
  EXPECT_EQ(a.peer_id, buf.get() + 36);
  EXPECT_EQ(a.info_hash[0], 0x00);
  EXPECT_EQ(a.info_hash[19], 0x13);
  EXPECT_EQ(a.peer_id[0], 0xa0);
  EXPECT_EQ(a.peer_id[19], 0xb3);
  EXPECT_EQ(a.downloaded, 4096);
  EXPECT_EQ(a.left, int64_t(1) << 32);
  EXPECT_EQ(a.uploaded, -2);
  EXPECT_EQ(a.event, 2u);
  EXPECT_EQ(a.ip, 0xc0a80001u);
  EXPECT_EQ(a.key, 0x12345678u);
  EXPECT_EQ(a.numwant, -1);
  EXPECT_EQ(a.port, 6881);
  EXPECT_EQ(a.options, nullptr);
  EXPECT_EQ(a.options_len, 0u);
}

TEST(UdpCodecAnnounce, ResponseHeaderByteExact) {
  uint8_t out[kAnnounceHeaderBytes];
  ASSERT_EQ(encode_announce_header(out, raw32(kTrans), 1800, 5, 7), 20u);
  EXPECT_EQ(Bytes(out, out + 20), hex("00 00 00 01  a1 b2 c3 d4  00 00 07 08  00 00 00 05  00 00 00 07"));
}

TEST(UdpCodecAnnounce, Bep41UrlDataSplitOverTwoOptions) {
  // URLData "/anno" + NOP + URLData "unce?x" + EndOfOptions + bytes after the end (ignored).
  Bytes opts = cat({hex("02 05"), ascii("/anno"), hex("01 02 06"), ascii("unce?x"), hex("00 ff 07")});
  Bytes p = cat({announce_packet(), opts});
  std::unique_ptr<uint8_t[]> buf(new uint8_t[p.size()]);
  std::memcpy(buf.get(), p.data(), p.size());
  ParsedRequest r = parse_request(buf.get(), p.size(), kMaxUdpScrapeHashes);
  ASSERT_EQ(r.error, ParseError::none);
  EXPECT_EQ(r.announce.port, 6881);
  EXPECT_EQ(r.announce.options, buf.get() + 98);
  ASSERT_EQ(r.announce.options_len, opts.size());

  char url[64];
  size_t n = 99;
  ASSERT_TRUE(parse_bep41_url_data(r.announce.options, r.announce.options_len, url, sizeof(url), &n));
  EXPECT_EQ(std::string(url, n), "/announce?x");
}

TEST(UdpCodecAnnounce, Bep41AnythingAfterByte98IsAccepted) {
  for (const Bytes& opts : {hex("ff"), hex("02"), hex("02 ff 41"), hex("00"), hex("01 01 01")}) {
    EXPECT_EQ(parse_all(cat({announce_packet(), opts})).error, ParseError::none);
  }
}

TEST(UdpCodecBep41, EdgeCases) {
  char out[16];
  size_t n = 99;
  EXPECT_TRUE(parse_bep41_url_data(nullptr, 0, out, sizeof(out), &n));
  EXPECT_EQ(n, 0u);

  struct Case {
    Bytes opts;
    bool ok;
    std::string url;
  };
  const Case cases[] = {
      {hex("01 01 00"), true, ""},                                  // NOPs, end
      {cat({hex("02 03"), ascii("/ab")}), true, "/ab"},             // ends without EndOfOptions
      {cat({hex("02 00 02 02"), ascii("/k")}), true, "/k"},         // zero-length URLData
      {cat({hex("7f 02 ff ff 02 02"), ascii("/z")}), true, "/z"},   // unknown type skipped by length
      {cat({hex("02 02"), ascii("/a"), hex("00 02 02"), ascii("xx")}), true, "/a"},  // stop at End
      {hex("02"), false, ""},                                       // length byte missing
      {cat({hex("02 05"), ascii("/an")}), false, ""},               // payload truncated
      {cat({hex("02 02"), ascii("/a"), hex("02 04"), ascii("bc")}), false, "/a"},  // second truncated
      {hex("7f 03 00"), false, ""},                                 // unknown type truncated
  };
  for (const Case& c : cases) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[c.opts.size()]);
    if (!c.opts.empty()) std::memcpy(buf.get(), c.opts.data(), c.opts.size());
    n = 99;
    EXPECT_EQ(parse_bep41_url_data(buf.get(), c.opts.size(), out, sizeof(out), &n), c.ok);
    EXPECT_EQ(std::string(out, n), c.url);
  }

  // Output capacity: exactly fits → ok; one byte over → false with what fitted.
  Bytes fits = cat({hex("02 04"), ascii("/abc"), hex("02 04"), ascii("defg")});
  EXPECT_TRUE(parse_bep41_url_data(fits.data(), fits.size(), out, 8, &n));
  EXPECT_EQ(std::string(out, n), "/abcdefg");
  EXPECT_FALSE(parse_bep41_url_data(fits.data(), fits.size(), out, 7, &n));
  EXPECT_EQ(std::string(out, n), "/abc");
}

TEST(UdpCodecAnnounce, EveryTruncationIsTooShortAndInBounds) {
  Bytes p = announce_packet();
  for (size_t len = 0; len < 98; len++) {
    ParsedRequest r = parse_exact(p, len);
    EXPECT_EQ(r.error, ParseError::too_short) << "len " << len;
    EXPECT_EQ(r.has_transaction, len >= 16) << "len " << len;
    if (len >= 16) {
      EXPECT_EQ(r.action, Action::announce);
      EXPECT_EQ(r.transaction, raw32(kTrans));  // an error reply could echo it
      EXPECT_EQ(r.connection_id, 0x1122334455667788ull);
    } else {
      EXPECT_EQ(r.transaction, 0u);
    }
  }
  EXPECT_EQ(parse_exact(p, 98).error, ParseError::none);
  EXPECT_EQ(parse_request(nullptr, 0, kMaxUdpScrapeHashes).error, ParseError::too_short);
}

TEST(UdpCodecAnnounce, Events) {
  for (uint8_t ev = 0; ev <= 3; ev++) {
    Bytes p = announce_packet();
    p[83] = ev;
    ParsedRequest r = parse_all(p);
    EXPECT_EQ(r.error, ParseError::none);
    EXPECT_EQ(r.announce.event, ev);
  }
  for (const char* ev : {"00 00 00 04", "ff ff ff ff", "01 00 00 00"}) {
    Bytes p = announce_packet();
    Bytes e = hex(ev);
    std::copy(e.begin(), e.end(), p.begin() + 80);
    EXPECT_EQ(parse_all(p).error, ParseError::bad_event) << ev;
  }
}

TEST(UdpCodecAnnounce, PortZeroRejected) {
  Bytes p = announce_packet();
  p[96] = p[97] = 0;
  EXPECT_EQ(parse_all(p).error, ParseError::bad_port);
  p[97] = 1;
  EXPECT_EQ(parse_all(p).error, ParseError::none);
  EXPECT_EQ(parse_all(p).announce.port, 1);
}

// ---- scrape ----

Bytes scrape_packet(size_t hashes, size_t extra_bytes = 0) {
  Bytes p = cat({hex("11 22 33 44 55 66 77 88 00 00 00 02"), kTrans});
  for (size_t i = 0; i < hashes; i++) p.insert(p.end(), 20, uint8_t(i + 1));
  p.insert(p.end(), extra_bytes, 0xee);
  return p;
}

TEST(UdpCodecScrape, ThreeHashesByteExact) {
  Bytes req = hex(
      "11 22 33 44 55 66 77 88  00 00 00 02  a1 b2 c3 d4"
      "aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa"
      "bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb bb"
      "cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc");
  ASSERT_EQ(req.size(), 76u);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[req.size()]);
  std::memcpy(buf.get(), req.data(), req.size());
  ParsedRequest r = parse_request(buf.get(), req.size(), kMaxUdpScrapeHashes);
  ASSERT_EQ(r.error, ParseError::none);
  EXPECT_EQ(r.action, Action::scrape);
  EXPECT_EQ(r.scrape.connection_id, 0x1122334455667788ull);
  EXPECT_EQ(r.scrape.transaction, raw32(kTrans));
  ASSERT_EQ(r.scrape.count, 3u);
  EXPECT_EQ(r.scrape.info_hashes, buf.get() + 16);
  EXPECT_EQ(r.scrape.info_hashes[0], 0xaa);
  EXPECT_EQ(r.scrape.info_hashes[20], 0xbb);
  EXPECT_EQ(r.scrape.info_hashes[59], 0xcc);

  uint8_t out[8 + 3 * 12];
  size_t n = encode_scrape_header(out, r.scrape.transaction);
  n += encode_scrape_entry(out + n, 10, 20, 30);
  n += encode_scrape_entry(out + n, 0, 0, 0);
  n += encode_scrape_entry(out + n, 0x01020304, 0xffffffff, 1);
  ASSERT_EQ(n, sizeof(out));
  EXPECT_EQ(Bytes(out, out + n), hex("00 00 00 02  a1 b2 c3 d4"
                                     "00 00 00 0a  00 00 00 14  00 00 00 1e"
                                     "00 00 00 00  00 00 00 00  00 00 00 00"
                                     "01 02 03 04  ff ff ff ff  00 00 00 01"));
}

TEST(UdpCodecScrape, HashCounts) {
  EXPECT_EQ(parse_all(scrape_packet(0)).error, ParseError::no_info_hashes);
  EXPECT_TRUE(parse_all(scrape_packet(0)).has_transaction);
  struct Case {
    size_t sent, expected;
  };
  for (Case c : {Case{1, 1}, Case{74, 74}, Case{75, 74}, Case{100, 74}}) {
    Datagram d(scrape_packet(c.sent));
    ParsedRequest r = d.parse();
    ASSERT_EQ(r.error, ParseError::none) << c.sent;
    EXPECT_EQ(r.scrape.count, c.expected) << c.sent;
    EXPECT_EQ(r.scrape.info_hashes[20 * (c.expected - 1)], uint8_t(c.expected));  // last kept hash
  }
  // A smaller configured cap; 0 refuses every scrape.
  EXPECT_EQ(parse_all(scrape_packet(10), 3).scrape.count, 3u);
  EXPECT_EQ(parse_all(scrape_packet(10), 0).error, ParseError::no_info_hashes);
}

TEST(UdpCodecScrape, PartialTrailingHashIgnored) {
  ParsedRequest r = parse_all(scrape_packet(1, 19));
  ASSERT_EQ(r.error, ParseError::none);
  EXPECT_EQ(r.scrape.count, 1u);
  for (size_t extra = 1; extra < 20; extra++) {
    EXPECT_EQ(parse_all(scrape_packet(0, extra)).error, ParseError::no_info_hashes) << extra;
  }
}

// ---- other actions, error replies, sizes ----

TEST(UdpCodec, UnknownActions) {
  for (uint32_t action : {3u, 4u, 5u, 0x80000000u, 0xffffffffu}) {
    for (size_t extra : {0, 82, 100}) {  // 16 bytes, announce-sized, v6-announce-sized
      Bytes p = cat({hex("00 00 04 17 27 10 19 80"),
                     Bytes{uint8_t(action >> 24), uint8_t(action >> 16), uint8_t(action >> 8), uint8_t(action)},
                     kTrans});
      p.insert(p.end(), extra, 0x01);
      ParsedRequest r = parse_all(p);
      EXPECT_EQ(r.error, ParseError::unknown_action) << action;
      EXPECT_EQ(uint32_t(r.action), action);
      EXPECT_TRUE(r.has_transaction);
      EXPECT_EQ(r.transaction, raw32(kTrans));
    }
  }
}

TEST(UdpCodec, ErrorByteExactAndTruncated) {
  uint8_t out[64];
  size_t n = encode_error(out, sizeof(out), raw32(kTrans), "Port can't be 0");
  EXPECT_EQ(Bytes(out, out + n), cat({hex("00 00 00 03 a1 b2 c3 d4"), ascii("Port can't be 0")}));
  EXPECT_EQ(n, 8u + 15u);

  std::memset(out, 0x5a, sizeof(out));
  n = encode_error(out, 12, raw32(kTrans), "Connection ID missmatch.");
  EXPECT_EQ(Bytes(out, out + n), cat({hex("00 00 00 03 a1 b2 c3 d4"), ascii("Conn")}));
  EXPECT_EQ(out[12], 0x5a);  // nothing written past cap

  EXPECT_EQ(encode_error(out, 8, raw32(kTrans), "x"), 8u);
  EXPECT_EQ(encode_error(out, 8, raw32(kTrans), nullptr), 8u);
  std::memset(out, 0x5a, sizeof(out));
  EXPECT_EQ(encode_error(out, 7, raw32(kTrans), "x"), 0u);
  EXPECT_EQ(out[0], 0x5a);
}

TEST(UdpCodec, MaxPeersFitOneDatagram) {
  EXPECT_EQ(max_udp_peers(AF_INET), 200u);
  EXPECT_EQ(max_udp_peers(AF_INET6), 67u);
  EXPECT_EQ(max_udp_peers(AF_UNIX), 0u);
  EXPECT_EQ(kAnnounceHeaderBytes + kPeerBytesV4 * max_udp_peers(AF_INET), 1220u);
  // RFC 8200 section 5: every IPv6 link carries 1280 bytes; less the IPv6 and UDP headers.
  EXPECT_EQ(kAnnounceHeaderBytes + kPeerBytesV6 * max_udp_peers(AF_INET6), 1226u);
  EXPECT_LE(kAnnounceHeaderBytes + kPeerBytesV6 * max_udp_peers(AF_INET6), 1280u - 40u - 8u);
  EXPECT_GT(kAnnounceHeaderBytes + kPeerBytesV6 * (max_udp_peers(AF_INET6) + 1), 1280u - 40u - 8u);
  EXPECT_EQ(kScrapeHeaderBytes + kScrapeEntryBytes * kMaxUdpScrapeHashes, 896u);
}

// Random datagrams of every length up to 200 (and a header that picks each action): the parser
// never reads out of bounds (ASan) and its result is internally consistent.
TEST(UdpCodec, RandomInputIsTotalAndConsistent) {
  std::mt19937_64 rng(15);
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = rng() % 200;
    Bytes p(len);
    for (auto& b : p) b = uint8_t(rng());
    if (len >= 12 && (iter & 1)) {
      p[8] = p[9] = p[10] = 0;
      p[11] = uint8_t(iter % 5);
    }
    Datagram d(p, len);
    ParsedRequest r = d.parse(74);
    EXPECT_EQ(r.has_transaction, len >= 16);
    if (r.error != ParseError::none) continue;
    switch (r.action) {
      case Action::connect:
        EXPECT_EQ(r.connection_id, kProtocolId);
        break;
      case Action::announce:
        EXPECT_GE(len, 98u);
        EXPECT_LE(r.announce.event, 3u);
        EXPECT_NE(r.announce.port, 0);
        EXPECT_EQ(r.announce.options_len, len - 98);
        {
          char url[600];
          size_t n = 0;
          parse_bep41_url_data(r.announce.options, r.announce.options_len, url, sizeof(url), &n);
          EXPECT_LE(n, r.announce.options_len);
        }
        break;
      case Action::scrape:
        EXPECT_GE(r.scrape.count, 1u);
        EXPECT_LE(r.scrape.count, 74u);
        EXPECT_LE(16 + 20 * size_t(r.scrape.count), len);
        break;
      default:
        ADD_FAILURE() << "accepted action " << uint32_t(r.action);
    }
  }
}

}  // namespace
}  // namespace shoal::worker::udp
