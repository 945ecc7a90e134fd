// tests/unit/ws_session_test.cpp — unit tests for worker/ws_session (RFC 6455 section 5 framing
// server side, worker/ws_session.cpp). Client frames are built by hand here (masked, as RFC 6455 5.3
// requires of clients); the server's output frames are parsed back. Pure: no sockets.
#include "worker/ws_session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shoal::worker::ws {
namespace {

// One client frame: FIN bit, opcode, optional mask (RFC 6455 5.2), masking key `key` (4 bytes).
std::string frame(uint8_t opcode, const std::string& payload, bool fin = true, bool mask = true,
                  const char* key = "\x12\x34\x56\x78") {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  uint8_t m = mask ? 0x80 : 0;
  if (payload.size() < 126) {
    f += static_cast<char>(m | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(m | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(m | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xff);
  }
  if (mask) f.append(key, 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f += mask ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return f;
}

struct Frame {
  uint8_t first = 0;  // FIN | opcode
  std::string payload;
};

// Parses one unmasked server frame from the front of `out` (payloads < 64 KiB); removes it.
Frame next_frame(std::string& out) {
  Frame f;
  EXPECT_GE(out.size(), 2u);
  if (out.size() < 2) return f;
  f.first = static_cast<uint8_t>(out[0]);
  EXPECT_EQ(static_cast<uint8_t>(out[1]) & 0x80, 0) << "server frames are never masked";
  size_t len = static_cast<uint8_t>(out[1]) & 0x7f, pos = 2;
  if (len == 126) {
    len = (static_cast<uint8_t>(out[2]) << 8) | static_cast<uint8_t>(out[3]);
    pos = 4;
  }
  f.payload = out.substr(pos, len);
  out.erase(0, pos + len);
  return f;
}

uint16_t close_code(const Frame& f) {
  if (f.payload.size() < 2) return 0;
  return static_cast<uint16_t>((static_cast<uint8_t>(f.payload[0]) << 8) |
                               static_cast<uint8_t>(f.payload[1]));
}

TEST(WsSession, MaskedTextFrameIsDelivered) {
  Session s;
  ASSERT_TRUE(s.ok());
  s.feed(frame(0x1, R"({"action":"announce"})"));
  auto msgs = s.take_messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], R"({"action":"announce"})");
  EXPECT_TRUE(s.take_output().empty());
  EXPECT_FALSE(s.done());
}

TEST(WsSession, BytesFedOneAtATimeAndSeveralMessagesInOneFeed) {
  Session s;
  std::string two = frame(0x1, "first") + frame(0x1, std::string(300, 'x'));
  for (char c : two) s.feed(std::string(1, c));
  auto msgs = s.take_messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0], "first");
  EXPECT_EQ(msgs[1], std::string(300, 'x'));
}

TEST(WsSession, UnmaskedClientFrameGetsClose1002) {
  Session s;
  s.feed(frame(0x1, "hello", true, false));
  EXPECT_TRUE(s.take_messages().empty());
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseProtocolError);
  EXPECT_EQ(s.close_code_sent(), kCloseProtocolError);
}

// A valid message before an unmasked frame is still delivered; the unmasked frame ends the
// session (the check runs while the bytes are handed to wslay, frame by frame).
TEST(WsSession, UnmaskedFrameAfterAValidMessageGetsClose1002) {
  Session s;
  s.feed(frame(0x1, "first") + frame(0x1, "second", true, false) + frame(0x1, "third"));
  EXPECT_EQ(s.take_messages(), std::vector<std::string>{"first"});
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseProtocolError);
  EXPECT_TRUE(s.done());
}

// Payloads are unmasked 8 bytes at a time with the key carried across feeds: every split of
// frames with 7-, 16- and 64-bit lengths (RFC 6455 5.2), lengths that are not multiples of 4 or
// 8, and keys with zero and high bytes gives back the exact text.
TEST(WsSession, MaskedMessagesSplitAnywhereComeBackExact) {
  std::string small = "abc\xc3\xa9" "defgh", mid, big;
  for (size_t i = 0; i < 301; i++) mid += char('a' + i % 26);
  for (size_t i = 0; i < 70001; i++) big += char('A' + i % 23);
  std::string bytes = frame(0x1, small, true, true, "\xa1\x00\xff\x5c") + frame(0x9, "pi") +
                      frame(0x1, mid, true, true, "\x00\x00\x00\x01") + frame(0x1, big, true, true, "\x80\x7f\x01\xfe");
  const std::vector<std::string> want = {small, mid, big};
  for (size_t cut = 0; cut <= bytes.size(); cut += cut < 400 ? 1 : 997) {
    Session s(100000);
    s.feed(bytes.substr(0, cut));
    s.feed(bytes.substr(cut));
    ASSERT_EQ(s.take_messages(), want) << "split at " << cut;
    std::string out = s.take_output();
    EXPECT_EQ(next_frame(out).payload, "pi");
  }
  Session s(100000);  // pieces of 1..13 bytes
  for (size_t i = 0, k = 1; i < bytes.size(); i += k, k = k % 13 + 1) s.feed(bytes.substr(i, k));
  EXPECT_EQ(s.take_messages(), want);
}

TEST(WsSession, FragmentedMessageIsReassembledAroundAPing) {
  Session s;
  s.feed(frame(0x1, "{\"a\":", false));
  s.feed(frame(0x9, "p1"));  // control frames may come between fragments (RFC 6455 5.4)
  s.feed(frame(0x0, "1", false));
  EXPECT_TRUE(s.take_messages().empty());
  s.feed(frame(0x0, "}", true));
  auto msgs = s.take_messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0], "{\"a\":1}");
  std::string out = s.take_output();
  Frame pong = next_frame(out);
  EXPECT_EQ(pong.first, 0x8a);
  EXPECT_EQ(pong.payload, "p1");
}

TEST(WsSession, PingGetsPongWithSamePayload) {
  Session s;
  s.feed(frame(0x9, "are you there"));
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x8a);
  EXPECT_EQ(f.payload, "are you there");
  EXPECT_FALSE(s.done());
}

TEST(WsSession, ClientCloseIsEchoedAndSessionIsDone) {
  Session s;
  s.feed(frame(0x8, std::string("\x03\xe8", 2)));  // 1000
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseNormal);
  EXPECT_EQ(s.close_code_received(), kCloseNormal);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.send_text("late"));
}

TEST(WsSession, ServerCloseGoingAwayThenClientReply) {
  Session s;
  s.close(kCloseGoingAway, "draining");
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseGoingAway);
  EXPECT_EQ(f.payload.substr(2), "draining");
  EXPECT_FALSE(s.done());  // waits for the client's close
  EXPECT_FALSE(s.send_text("after close"));
  s.feed(frame(0x8, std::string("\x03\xe9", 2)));
  EXPECT_TRUE(s.done());
}

TEST(WsSession, OversizeMessageGetsClose1009) {
  Session s(100);
  s.feed(frame(0x1, std::string(101, 'a')));
  EXPECT_TRUE(s.take_messages().empty());
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseTooBig);
  // Also when the excess only shows up across fragments.
  Session t(100);
  t.feed(frame(0x1, std::string(60, 'a'), false));
  t.feed(frame(0x0, std::string(60, 'a'), true));
  EXPECT_TRUE(t.take_messages().empty());
  out = t.take_output();
  EXPECT_EQ(close_code(next_frame(out)), kCloseTooBig);
}

TEST(WsSession, BinaryMessageGetsClose1003) {
  Session s;
  s.feed(frame(0x2, "\x01\x02"));
  EXPECT_TRUE(s.take_messages().empty());
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x88);
  EXPECT_EQ(close_code(f), kCloseUnsupported);
}

TEST(WsSession, InvalidUtf8TextGetsClose1007) {
  Session s;
  s.feed(frame(0x1, "\xff\xfe"));
  EXPECT_TRUE(s.take_messages().empty());
  std::string out = s.take_output();
  EXPECT_EQ(close_code(next_frame(out)), kCloseBadPayload);
}

// wslay's frame layer reports a payload in pieces of at most its 4 KiB buffer; the message is
// assembled here and checked as UTF-8 once, also when a piece ends inside a character.
TEST(WsSession, MessageLongerThanWslaysBufferArrivesWhole) {
  std::string text;
  while (text.size() < 20000) text += "\xc3\xa9t\xc3\xa9 ";  // "été ": 2-byte characters
  std::string f = frame(0x1, text);
  Session s(64 * 1024);
  s.feed(f.substr(0, 5000));
  s.feed(f.substr(5000, 7001));
  s.feed(f.substr(12001));
  EXPECT_EQ(s.take_messages(), std::vector<std::string>{text});
  EXPECT_TRUE(s.take_output().empty());
  Session t(64 * 1024);
  std::string bad = text;
  bad[9000] = '\xff';
  t.feed(frame(0x1, bad));
  EXPECT_TRUE(t.take_messages().empty());
  std::string out = t.take_output();
  EXPECT_EQ(close_code(next_frame(out)), kCloseBadPayload);
  EXPECT_TRUE(t.done());
}

TEST(WsSession, PingFedOneByteAtATimeGetsItsPong) {
  Session s;
  std::string f = frame(0x9, "keepalive-1234");
  for (char c : f) s.feed(std::string(1, c));
  std::string out = s.take_output();
  Frame pong = next_frame(out);
  EXPECT_EQ(pong.first, 0x8a);
  EXPECT_EQ(pong.payload, "keepalive-1234");
}

// RFC 6455 5.2-5.5: each of these gets close 1002 and ends the session, whether the frame layer
// (wslay) or the session catches it.
TEST(WsSession, MalformedFramesGetClose1002) {
  std::string rsv = frame(0x1, "x");
  rsv[0] = static_cast<char>(rsv[0] | 0x40);
  std::string nonminimal = frame(0x1, std::string(130, 'a'));  // then its length rewritten: 5 in 2 bytes
  nonminimal = std::string("\x81\xfe\x00\x05", 4) + nonminimal.substr(4, 4) + std::string(5, 'a');
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"reserved bit", rsv},
      {"opcode 3", frame(0x3, "x")},
      {"opcode 0xb", frame(0xb, "x")},
      {"ping of 126 bytes", frame(0x9, std::string(126, 'p'))},
      {"fragmented ping", frame(0x9, "p", false)},
      {"continuation without a message", frame(0x0, "x")},
      {"new message inside a fragmented one", frame(0x1, "a", false) + frame(0x1, "b")},
      {"length not in its shortest form", nonminimal},
      {"close with a 1-byte payload", frame(0x8, "x")},
  };
  for (const auto& [name, bytes] : cases) {
    Session s;
    s.feed(bytes);
    EXPECT_TRUE(s.take_messages().empty()) << name;
    std::string out = s.take_output();
    Frame f = next_frame(out);
    EXPECT_EQ(f.first, 0x88) << name;
    EXPECT_EQ(close_code(f), kCloseProtocolError) << name;
    EXPECT_TRUE(s.done()) << name;
    s.feed(frame(0x1, "after"));
    EXPECT_TRUE(s.take_messages().empty()) << name << ": bytes after the error are dropped";
  }
}

TEST(WsSession, SendTextProducesOneUnmaskedTextFrame) {
  Session s;
  std::string body(200, 'r');
  ASSERT_TRUE(s.send_text(body));
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.first, 0x81);
  EXPECT_EQ(f.payload, body);
  EXPECT_TRUE(out.empty());
}

// Idle connections give their buffers back (issue 10, memory per idle connection): never
// inside a frame, a fragmented message or a close; the next bytes are read
// on as if nothing happened.
TEST(WsSession, IdleContextIsReleasedOnlyBetweenMessagesAndComesBack) {
  Session s;
  s.feed(frame(0x1, "one"));
  ASSERT_EQ(s.take_messages().size(), 1u);
  std::string whole = frame(0x1, "two");
  s.feed(whole.substr(0, 3));  // half a frame
  EXPECT_FALSE(s.release_if_idle()) << "inside a frame";
  s.feed(whole.substr(3));
  ASSERT_EQ(s.take_messages(), std::vector<std::string>{"two"});
  s.feed(frame(0x1, "thr", false));
  EXPECT_FALSE(s.release_if_idle()) << "inside a fragmented message";
  s.feed(frame(0x0, "ee", true));
  ASSERT_EQ(s.take_messages(), std::vector<std::string>{"three"});
  EXPECT_TRUE(s.release_if_idle());
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(s.done()) << "released is not closed";
  EXPECT_FALSE(s.release_if_idle()) << "already released";
  s.feed(frame(0x1, "four"));
  EXPECT_EQ(s.take_messages(), std::vector<std::string>{"four"});
  EXPECT_TRUE(s.release_if_idle());
  ASSERT_TRUE(s.send_text("reply"));  // sending brings it back too
  std::string out = s.take_output();
  Frame f = next_frame(out);
  EXPECT_EQ(f.payload, "reply");
  s.close(kCloseGoingAway);
  EXPECT_FALSE(s.release_if_idle()) << "closing";
  EXPECT_EQ(s.close_code_sent(), kCloseGoingAway);
}


// A message encoded straight into the output (begin_text/end_text) is framed byte for byte as
// send_text (libwslay) frames it, at every length encoding (RFC 6455 5.2: 7 bits, 16, 64), also
// behind other queued frames; after close nothing more is accepted.
TEST(WsSession, TextEncodedInPlaceIsFramedAsSendTextFramesIt) {
  for (size_t n : {size_t(0), size_t(1), size_t(125), size_t(126), size_t(700), size_t(65535), size_t(65536), size_t(70000)}) {
    std::string text(n, 'x');
    for (size_t i = 0; i < n; i++) text[i] = char('a' + i % 26);
    Session a(1 << 20), b(1 << 20);
    a.send_text("first"), b.send_text("first");
    ASSERT_TRUE(a.send_text(text));
    std::string* out = b.begin_text();
    ASSERT_NE(out, nullptr);
    out->append(text);
    b.end_text();
    b.send_text("after");
    a.send_text("after");
    EXPECT_EQ(a.take_output(), b.take_output()) << n << " bytes";
  }
  Session s;
  s.close(kCloseNormal);
  EXPECT_EQ(s.begin_text(), nullptr);
}

}  // namespace
}  // namespace shoal::worker::ws
