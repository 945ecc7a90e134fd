// tests/unit/ws_load_messages_test.cpp — tools/ws/wt_messages (the messages of the WebSocket
// load generator ws_load) against shoald's own WebTorrent codec (worker/webtorrent_codec):
// what ws_load sends, shoald parses to the same fields; what shoald sends, ws_load classifies
// and reads back; ws_load's self-checking ids reject tampering. Pure: no sockets, no shm.
#include "tools/ws/wt_messages.hpp"
#include "worker/webtorrent_codec.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace {

namespace wt = shoal_load::wt;
namespace codec = shoal::worker::webtorrent;

wt::Id make_id(uint8_t first) {
  wt::Id id;
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(first + 13 * i);  // bytes > 127 too
  return id;
}

const wt::Id kHash = make_id(0x00);

TEST(WsLoadMessages, BinaryStringsMatchShoaldsCodec) {
  uint8_t all[256];
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(wt::latin1_to_utf8(all, 256), codec::encode_binary_string(all, 256));
  uint8_t back[256];
  ASSERT_TRUE(wt::utf8_to_latin1(codec::encode_binary_string(all, 256), back, 256));
  EXPECT_EQ(0, memcmp(all, back, 256));
  uint8_t out[20];
  EXPECT_FALSE(wt::utf8_to_latin1(std::string(19, 'a') + "\xc4\x80", out, 20));  // U+0100 > 255
  EXPECT_FALSE(wt::utf8_to_latin1(std::string(19, 'a'), out, 20));
  EXPECT_FALSE(wt::utf8_to_latin1(std::string(21, 'a'), out, 20));
}

TEST(WsLoadMessages, IdsAsJsonMatchShoaldsCodecForEveryByte) {
  for (int first = 0; first < 256; first += 20) {  // every byte value, the control bytes and '"' '\\' too
    wt::Id id;
    codec::Id cid;
    for (size_t i = 0; i < id.size(); ++i) id[i] = cid[i] = static_cast<uint8_t>(first + i);
    std::string mine, shoalds;
    wt::append_binary(&mine, id);
    codec::append_binary(shoalds, cid);
    EXPECT_EQ(mine, shoalds) << "ids from byte " << first;
  }
}

TEST(WsLoadMessages, IdsCheckThemselves) {
  wt::Ids ids(42);
  EXPECT_EQ(ids.peer_conn(ids.peer_id(7)), 7);
  wt::Id forged = ids.peer_id(7);
  forged[19] ^= 1;
  EXPECT_EQ(ids.peer_conn(forged), -1);
  uint32_t conn, seq, torrent;
  wt::Id offer = ids.offer_id(3, 99, 512);
  ASSERT_TRUE(ids.offer_parts(offer, &conn, &seq, &torrent));
  EXPECT_EQ(conn, 3u);
  EXPECT_EQ(seq, 99u);
  EXPECT_EQ(torrent, 512u);
  offer[8] ^= 1;  // another torrent: the tag no longer matches
  EXPECT_FALSE(ids.offer_parts(offer, &conn, &seq, &torrent));
  EXPECT_GT(ids.offer_sdp(ids.offer_id(1, 2, 3)).size(), 450u);  // realistic size (~500 bytes)
  EXPECT_LT(ids.offer_sdp(ids.offer_id(1, 2, 3)).size(), 700u);
}

TEST(WsLoadMessages, ShoaldParsesTheAnnounceWithOffers) {
  wt::Ids ids(1);
  std::vector<wt::Id> offers = {ids.offer_id(5, 0, 9), ids.offer_id(5, 1, 9)};
  codec::ParseResult r = codec::parse_message(ids.encode_announce(kHash, ids.peer_id(5), "started", 0, offers));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, codec::Action::announce);
  const codec::Announce& a = r.msg.announce;
  EXPECT_EQ(a.info_hash, kHash);
  EXPECT_EQ(a.peer_id, ids.peer_id(5));
  EXPECT_EQ(a.numwant, 2);
  EXPECT_EQ(a.event, codec::Event::started);
  EXPECT_EQ(a.left, 0);
  ASSERT_EQ(a.offers.size(), 2u);
  EXPECT_EQ(a.offers[1].offer_id, offers[1]);

  // shoald relays the offer it kept; ws_load reads back the same ids and the SDP it sent.
  wt::Reply relayed = wt::parse_reply(codec::encode_relayed_offer(kHash, a.peer_id, a.offers[1].offer_id,
                                                                  a.sdp(a.offers[1])));
  ASSERT_EQ(relayed.kind, wt::Kind::offer) << relayed.why;
  EXPECT_EQ(relayed.info_hash, kHash);
  EXPECT_EQ(relayed.peer_id, ids.peer_id(5));
  EXPECT_EQ(relayed.offer_id, offers[1]);
  EXPECT_EQ(relayed.sdp_json, ids.offer_json(offers[1]));
  EXPECT_TRUE(wt::same_sdp_object(relayed.sdp_json, ids.offer_json(offers[1]), "offer", ids.offer_sdp(offers[1])));

  // Without an event the announce is a plain update.
  r = codec::parse_message(ids.encode_announce(kHash, ids.peer_id(5), nullptr, 1000, offers));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.msg.announce.event, codec::Event::none);
}

TEST(WsLoadMessages, ShoaldParsesTheAnswerAndRelaysItBack) {
  wt::Ids ids(1);
  wt::Id offer = ids.offer_id(2, 7, 11);
  codec::ParseResult r = codec::parse_message(ids.encode_answer(kHash, 8, ids.peer_id(2), offer));
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.msg.action, codec::Action::answer);
  const codec::Answer& a = r.msg.answer;
  EXPECT_EQ(a.peer_id, ids.peer_id(8));
  EXPECT_EQ(a.to_peer_id, ids.peer_id(2));
  EXPECT_EQ(a.offer_id, offer);
  wt::Reply back = wt::parse_reply(codec::encode_relayed_answer(kHash, a.peer_id, a.offer_id, a.sdp_json));
  ASSERT_EQ(back.kind, wt::Kind::answer) << back.why;
  EXPECT_EQ(back.peer_id, ids.peer_id(8));
  EXPECT_EQ(back.sdp_json, ids.answer_json(offer, 8));  // relayed as written
  EXPECT_TRUE(wt::same_sdp_object(back.sdp_json, ids.answer_json(offer, 8), "answer", ids.answer_sdp(offer, 8)));
  // Written anew (other key order) it still matches once parsed; another SDP or type does not.
  std::string sdp_text;
  wt::append_json_string(&sdp_text, ids.answer_sdp(offer, 8));
  std::string reordered = "{\"sdp\": " + sdp_text + ", \"type\": \"answer\"}";
  EXPECT_TRUE(wt::same_sdp_object(reordered, ids.answer_json(offer, 8), "answer", ids.answer_sdp(offer, 8)));
  EXPECT_FALSE(wt::same_sdp_object(reordered, ids.answer_json(offer, 8), "offer", ids.answer_sdp(offer, 8)));
  EXPECT_FALSE(wt::same_sdp_object(reordered, ids.answer_json(offer, 9), "answer", ids.answer_sdp(offer, 9)));
}

TEST(WsLoadMessages, ReadsShoaldsRepliesAndErrors) {
  wt::Reply r = wt::parse_reply(codec::encode_announce_reply(kHash, 120, 3, 4));
  ASSERT_EQ(r.kind, wt::Kind::announce_reply) << r.why;
  EXPECT_EQ(r.info_hash, kHash);
  EXPECT_EQ(r.complete, 3);
  EXPECT_EQ(r.incomplete, 4);
  EXPECT_EQ(r.interval, 120);
  r = wt::parse_reply(codec::encode_error("torrent not allowed", "announce", &kHash));
  ASSERT_EQ(r.kind, wt::Kind::error);
  EXPECT_EQ(r.failure, "torrent not allowed");
  EXPECT_TRUE(r.has_info_hash);
}

TEST(WsLoadMessages, FlagsWhatIsNotAValidReply) {
  EXPECT_EQ(wt::parse_reply("{").kind, wt::Kind::invalid);
  EXPECT_EQ(wt::parse_reply("[]").kind, wt::Kind::invalid);
  EXPECT_EQ(wt::parse_reply(R"({"action":"nope"})").kind, wt::Kind::invalid);
  std::string hash(20, 'h');  // a printable binary string, fit for a JSON literal
  // Negative counts, a missing interval, a short info_hash, an offer without its id.
  std::string base = R"({"action":"announce","info_hash":")" + hash + "\"";
  EXPECT_EQ(wt::parse_reply(base + R"(,"complete":-1,"incomplete":0,"interval":1})").kind, wt::Kind::invalid);
  EXPECT_EQ(wt::parse_reply(base + R"(,"complete":1,"incomplete":0})").kind, wt::Kind::invalid);
  EXPECT_EQ(wt::parse_reply(R"({"action":"announce","info_hash":"abc","complete":1,"incomplete":0,"interval":1})").kind,
            wt::Kind::invalid);
  wt::Reply r = wt::parse_reply(base + R"(,"peer_id":")" + hash + R"(","offer":{"type":"offer","sdp":"v=0"}})");
  EXPECT_EQ(r.kind, wt::Kind::invalid);
  EXPECT_EQ(r.why, "relayed message: bad offer_id");
  // Not one object: trailing content, an unclosed object, an offer that is not an object.
  EXPECT_EQ(wt::parse_reply(base + R"(,"complete":1,"incomplete":0,"interval":1} x)").kind, wt::Kind::invalid);
  EXPECT_EQ(wt::parse_reply(base + R"(,"complete":1,"incomplete":0,"interval":1)").kind, wt::Kind::invalid);
  // A bad peer_id is named as such, whatever the offer_id.
  r = wt::parse_reply(base + R"(,"peer_id":"short","offer_id":")" + hash + R"(","offer":{}})");
  EXPECT_EQ(r.why, "relayed message: bad peer_id");
  r = wt::parse_reply(base + R"(,"peer_id":")" + hash + R"(","offer_id":")" + hash + R"(","offer":"sdp"})");
  EXPECT_EQ(r.why, "relayed message: bad offer/answer object");
  EXPECT_EQ(wt::parse_reply(base + R"(,"complete":1,"incomplete":0,"interval":1})").kind, wt::Kind::announce_reply);
}

}  // namespace
