// tests/unit/cluster_transfers_test.cpp — the pieces of issue 14's deploy transfers on every node
// and of the stopped deltas kept across an outage, without NATS: the transfer message codec
// (worker/cluster_transfers.hpp: round trip, every refusal) and StoppedMemory
// (worker/cluster_stopped.hpp: keeps only stopped deltas, forgets by age, bounded).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "shm/cluster_ws.hpp"
#include "worker/cluster_stopped.hpp"
#include "worker/cluster_transfers.hpp"

namespace shoal::worker {
namespace {

TEST(ClusterTransfers, MessagesRoundTrip) {
  uint8_t ih[20];
  for (int i = 0; i < 20; i++) ih[i] = uint8_t(0xa0 + i);
  std::vector<uint8_t> add = encode_transfer_message(kTransferMsgAdd, 0x0102, ih, 0x0000018c01020304ull, "d4:infode");
  ASSERT_EQ(add.size(), kTransferMsgHeaderBytes + 9);
  EXPECT_EQ(std::string(add.begin(), add.begin() + 8), std::string("SHTF\x02\x01\x01\x02", 8));
  EXPECT_EQ(std::string(add.begin() + 28, add.begin() + 36), std::string("\x00\x00\x01\x8c\x01\x02\x03\x04", 8));
  TransferMessage m;
  std::string why;
  ASSERT_TRUE(decode_transfer_message(add.data(), add.size(), &m, &why)) << why;
  EXPECT_EQ(m.op, kTransferMsgAdd);
  EXPECT_EQ(m.node_id, 0x0102);
  EXPECT_EQ(0, std::memcmp(m.info_hash, ih, 20));
  EXPECT_EQ(m.time_ms, 0x0000018c01020304ull);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.torrent), m.torrent_len), "d4:infode");
  std::vector<uint8_t> ask = encode_transfer_message(kTransferMsgAsk, 9, nullptr, 0, "");
  ASSERT_TRUE(decode_transfer_message(ask.data(), ask.size(), &m, &why)) << why;
  EXPECT_EQ(m.op, kTransferMsgAsk);
  EXPECT_EQ(m.torrent_len, 0u);
}

// A version 1 message (a node not yet upgraded: 28-byte header, no time) still reads, time 0.
TEST(ClusterTransfers, Version1MessagesReadWithoutATime) {
  uint8_t ih[20] = {7};
  std::vector<uint8_t> v2 = encode_transfer_message(kTransferMsgAdd, 5, ih, 123456, "d4:infode");
  std::vector<uint8_t> v1(v2.begin(), v2.begin() + 28);
  v1[4] = 1;
  v1.insert(v1.end(), v2.begin() + 36, v2.end());
  TransferMessage m;
  std::string why;
  ASSERT_TRUE(decode_transfer_message(v1.data(), v1.size(), &m, &why)) << why;
  EXPECT_EQ(m.node_id, 5);
  EXPECT_EQ(m.time_ms, 0u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.torrent), m.torrent_len), "d4:infode");
}

TEST(ClusterTransfers, BadMessagesAreRefusedWithAReason) {
  uint8_t ih[20] = {1};
  auto refused = [](std::vector<uint8_t> b, const std::string& want) {
    TransferMessage m;
    std::string why;
    EXPECT_FALSE(decode_transfer_message(b.data(), b.size(), &m, &why));
    EXPECT_EQ(why, want);
  };
  std::vector<uint8_t> good = encode_transfer_message(kTransferMsgRemove, 3, ih, 1000, "");
  refused(std::vector<uint8_t>(good.begin(), good.begin() + 27), "shorter than the 28-byte header");
  refused(std::vector<uint8_t>(good.begin(), good.end() - 1), "shorter than the 36-byte header");
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[at] = v;
    return b;
  };
  refused(with(0, 'X'), "bad magic");
  refused(with(4, 3), "version 3 is not supported");
  refused(with(5, 9), "unknown op 9");
  std::vector<uint8_t> zero = with(6, 0);
  zero[7] = 0;
  refused(zero, "node_id 0");
  refused(encode_transfer_message(kTransferMsgAdd, 3, ih, 1000, ""), "an add without a .torrent");
  std::vector<uint8_t> tail = good;
  tail.push_back(0);
  refused(tail, "bytes after the header of a remove or ask");
}

shm::Delta with_flags(uint8_t flags, uint8_t tag) {
  shm::Delta d{};
  d.family = 4;
  d.flags = flags;
  d.addr[3] = tag;
  return d;
}

TEST(StoppedMemory, KeepsStoppedDeltasForTenSecondsOfConnectedTime) {
  StoppedMemory mem;
  shm::Delta batch[3] = {with_flags(shm::kDeltaSeeder, 1), with_flags(shm::kDeltaStopped, 2), with_flags(0, 3)};
  EXPECT_EQ(mem.note(batch, 3, 1000), 0u);
  ASSERT_EQ(mem.size(), 1u);  // only the stopped one
  EXPECT_EQ(mem.all()[0].addr[3], 2);
  mem.prune(1000 + kStoppedKeepMs);  // exactly 10 s: still kept
  EXPECT_EQ(mem.size(), 1u);
  shm::Delta later = with_flags(shm::kDeltaStopped, 4);
  mem.note(&later, 1, 5000);
  mem.prune(1001 + kStoppedKeepMs);  // the first is older than 10 s, the second is not
  ASSERT_EQ(mem.size(), 1u);
  EXPECT_EQ(mem.all()[0].addr[3], 4);
}

// The WebTorrent memory also keeps process-gone records (sync_worker: kDeltaStopped | kDeltaWsGone).
TEST(StoppedMemory, KeepsTheFlagsOfItsMask) {
  StoppedMemory mem;
  shm::Delta batch[3] = {with_flags(shm::kDeltaWsGone, 1), with_flags(shm::kDeltaStopped, 2), with_flags(shm::kDeltaSeeder, 3)};
  mem.note(batch, 3, 1000, shm::kDeltaStopped | shm::kDeltaWsGone);
  ASSERT_EQ(mem.size(), 2u);
  EXPECT_EQ(mem.all()[0].addr[3], 1);
  EXPECT_EQ(mem.all()[1].addr[3], 2);
  StoppedMemory bt;
  bt.note(batch, 3, 1000);  // the default: stopped only
  ASSERT_EQ(bt.size(), 1u);
  EXPECT_EQ(bt.all()[0].addr[3], 2);
}

TEST(StoppedMemory, IsBoundedDroppingTheOldest) {
  StoppedMemory mem;
  std::vector<shm::Delta> many(kStoppedKeepMax + 5, with_flags(shm::kDeltaStopped, 0));
  for (size_t i = 0; i < many.size(); i++) many[i].addr[3] = uint8_t(i);
  EXPECT_EQ(mem.note(many.data(), many.size(), 1), 5u);
  EXPECT_EQ(mem.size(), kStoppedKeepMax);
  EXPECT_EQ(mem.all()[0].addr[3], uint8_t(5));
}

}  // namespace
}  // namespace shoal::worker
