// The UDP send queue (worker/udp_io): replies of one length to one address go out as one UDP GSO
// message, and the receiving socket still reads one datagram per reply, each with its own bytes,
// in queue order within a destination; replies of other lengths or to other sockets are their
// own messages. A reply's tail (its peers) is sent from where it is, with or without GSO.
// Loopback sockets only.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "worker/udp_io.hpp"

namespace shoal::worker {
namespace {

struct Sock {
  int fd = -1;
  sockaddr_in addr{};
  Sock() {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~Sock() { close(fd); }
  // Every datagram waiting, as byte strings.
  std::vector<std::string> read_all() const {
    std::vector<std::string> out;
    char buf[2048];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) break;
      out.emplace_back(buf, size_t(n));
    }
    return out;
  }
};

void queue(SendQueue* q, const Sock& to, const std::string& bytes) {
  std::memcpy(q->next(), bytes.data(), bytes.size());
  q->push(bytes.size(), reinterpret_cast<const sockaddr*>(&to.addr), sizeof to.addr);
}

TEST(UdpSendQueue, EqualLengthsToOneAddressShareAMessageAndArriveAsSeparateDatagrams) {
  Sock from, a, b;
  auto q = std::make_unique<SendQueue>(from.fd);
  std::vector<std::string> to_a, to_b;
  for (int i = 0; i < 40; i++) {
    std::string r(20, char('a' + i % 26));
    r[0] = char(i);
    queue(q.get(), a, r);
    to_a.push_back(r);
    if (i % 4 == 0) {  // another length to the same address, and the same length elsewhere
      std::string longer(26, char(i)), other(20, char(100 + i));
      queue(q.get(), a, longer);
      queue(q.get(), b, other);
      to_b.push_back(other);
    }
  }
  size_t sent = 0;
  EXPECT_EQ(q->flush(&sent), 0u);
  EXPECT_EQ(sent, 40u + 10u + 10u);
  if (q->gso()) {  // Linux ≥ 4.18; older kernels refuse GSO and the queue sends singly
    EXPECT_EQ(q->last_messages(), 3u);  // (a, 20), (a, 26), (b, 20)
  }
  std::vector<std::string> got_a = a.read_all(), got_b = b.read_all();
  ASSERT_EQ(got_a.size(), 50u);
  std::vector<std::string> short_a;
  for (const std::string& d : got_a)
    if (d.size() == 20) short_a.push_back(d);
    else EXPECT_EQ(d.size(), 26u);
  EXPECT_EQ(short_a, to_a);  // every reply its own datagram, bytes and order kept
  EXPECT_EQ(got_b, to_b);
}

TEST(UdpSendQueue, AFullQueueFlushesItselfAndCountsEverything) {
  Sock from, a;
  auto q = std::make_unique<SendQueue>(from.fd);
  size_t total = kUdpSendBatch + 30;
  for (size_t i = 0; i < total; i++) queue(q.get(), a, std::string(20 + (i % 3) * 6, char(i)));
  size_t sent = 0;
  EXPECT_EQ(q->flush(&sent), 0u);
  EXPECT_EQ(sent, total);
  EXPECT_EQ(a.read_all().size(), total);
}

TEST(UdpSendQueue, WithoutGsoEveryDatagramIsItsOwnMessage) {
  Sock from, a;
  auto q = std::make_unique<SendQueue>(from.fd, false);
  for (int i = 0; i < 10; i++) queue(q.get(), a, std::string(20, char(i)));
  size_t sent = 0;
  EXPECT_EQ(q->flush(&sent), 0u);
  EXPECT_EQ(q->last_messages(), 10u);
  EXPECT_EQ(a.read_all().size(), 10u);
}

// Replies whose peers stay where they are (push with a tail: the response ring slot) arrive as
// the header then those bytes, in a GSO group and singly alike; the tails are not copied.
TEST(UdpSendQueue, TailsAreSentFromWhereTheyAre) {
  for (bool gso : {true, false}) {
    Sock from, a;
    auto q = std::make_unique<SendQueue>(from.fd, gso);
    std::vector<std::string> tails, want;
    for (int i = 0; i < 30; i++) tails.push_back(std::string(i % 2 ? 60 : 6 * size_t(i + 1), char('A' + i)));
    for (int i = 0; i < 30; i++) {
      std::string head(20, char(i));
      std::memcpy(q->next(), head.data(), head.size());
      q->push(head.size(), reinterpret_cast<const sockaddr*>(&a.addr), sizeof a.addr,
              reinterpret_cast<const uint8_t*>(tails[size_t(i)].data()), tails[size_t(i)].size());
      want.push_back(head + tails[size_t(i)]);
    }
    queue(q.get(), a, "no tail");
    want.push_back("no tail");
    size_t sent = 0;
    EXPECT_EQ(q->flush(&sent), 0u);
    EXPECT_EQ(sent, 31u);
    if (q->gso()) EXPECT_LT(q->last_messages(), 31u) << "the 80-byte replies share a message";
    std::vector<std::string> got = a.read_all();
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
}

}  // namespace
}  // namespace shoal::worker
