// tests/unit/io_batch_test.cpp — worker::IoBatch: the sends of a pass in one io_uring_enter
// reach each socket whole and in order, a full socket answers -EAGAIN at once (never blocks the
// worker), a closed peer or a bad descriptor gives send()'s error, tags map results back.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include "worker/io_batch.hpp"

using shoal::worker::IoBatch;

namespace {

struct Pair {
  int a = -1, b = -1;  // a: the worker's side (non-blocking), b: the client's
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    a = sv[0], b = sv[1];
    fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK);
    fcntl(b, F_SETFL, fcntl(b, F_GETFL) | O_NONBLOCK);
  }
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
  std::string drain() const {
    std::string got;
    char buf[65536];
    for (ssize_t n; (n = read(b, buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
    return got;
  }
};

std::map<uint32_t, int> by_tag(const std::vector<IoBatch::Result>& rs) {
  std::map<uint32_t, int> m;
  for (const auto& r : rs) EXPECT_TRUE(m.emplace(r.tag, r.res).second) << "tag " << r.tag << " twice";
  return m;
}

#define NEED_RING(batch) \
  if (!(batch).ok()) GTEST_SKIP() << "io_uring unavailable here: " << (batch).why()

}  // namespace

TEST(IoBatch, EverySocketGetsItsBytesInOneSubmit) {
  IoBatch batch(8);
  NEED_RING(batch);
  Pair p[5];
  std::vector<std::string> text;
  for (int i = 0; i < 5; ++i) text.push_back(std::string(100 + 1000 * i, char('a' + i)));
  for (uint32_t i = 0; i < 5; ++i) batch.add(p[i].a, text[i].data(), text[i].size(), 40 + i);
  EXPECT_EQ(batch.queued(), 5u);
  std::vector<IoBatch::Result> rs;
  batch.submit(rs);
  EXPECT_EQ(batch.queued(), 0u);
  auto m = by_tag(rs);
  ASSERT_EQ(m.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(m[40 + i], int(text[i].size()));
    EXPECT_EQ(p[i].drain(), text[i]);
  }
  // The ring is reused: a second pass works the same.
  batch.add(p[0].a, "next", 4, 7);
  batch.submit(rs);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].tag, 7u);
  EXPECT_EQ(rs[0].res, 4);
  EXPECT_EQ(p[0].drain(), "next");
}

TEST(IoBatch, FullSocketAnswersEagainAtOnceOthersStillSend) {
  IoBatch batch(4);
  NEED_RING(batch);
  Pair full, ok;
  std::string chunk(65536, 'x');
  while (send(full.a, chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  batch.add(full.a, "more", 4, 1);
  batch.add(ok.a, "hello", 5, 2);
  std::vector<IoBatch::Result> rs;
  batch.submit(rs);  // returns: a full socket must not make the worker wait
  auto m = by_tag(rs);
  EXPECT_EQ(m[1], -EAGAIN);
  EXPECT_EQ(m[2], 5);
  EXPECT_EQ(ok.drain(), "hello");
  EXPECT_TRUE(batch.ok());
}

TEST(IoBatch, ClosedPeerAndBadDescriptorGiveSendsErrors) {
  IoBatch batch(4);
  NEED_RING(batch);
  Pair gone;
  close(gone.b), gone.b = -1;
  batch.add(gone.a, "lost", 4, 1);   // EPIPE, and no SIGPIPE kills the test (MSG_NOSIGNAL)
  batch.add(-1, "bad", 3, 2);
  std::vector<IoBatch::Result> rs;
  batch.submit(rs);
  auto m = by_tag(rs);
  EXPECT_EQ(m[1], -EPIPE);
  EXPECT_EQ(m[2], -EBADF);
  EXPECT_TRUE(batch.ok());  // errors of single sends do not retire the ring
}

TEST(IoBatch, FullBatchAndEmptySubmit) {
  IoBatch batch(4);
  NEED_RING(batch);
  std::vector<IoBatch::Result> rs{{1, 1}};
  batch.submit(rs);  // nothing queued: no results, no system call needed
  EXPECT_TRUE(rs.empty());
  Pair p;
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(batch.full());
    batch.add(p.a, "ab", 2, i);
  }
  EXPECT_TRUE(batch.full());
  batch.submit(rs);
  EXPECT_EQ(rs.size(), 4u);
  EXPECT_EQ(p.drain(), "abababab");
}

TEST(IoBatch, ReceivesInOneSubmitEmptySocketAnswersEagainClosedPeerZero) {
  IoBatch batch(8);
  NEED_RING(batch);
  Pair data, empty, gone;
  ASSERT_EQ(write(data.b, "reply", 5), 5);
  close(gone.b), gone.b = -1;
  char buf[3][64];
  batch.add_recv(data.a, buf[0], sizeof buf[0], 1);
  batch.add_recv(empty.a, buf[1], sizeof buf[1], 2);
  batch.add_recv(gone.a, buf[2], sizeof buf[2], 3);
  std::vector<IoBatch::Result> rs;
  batch.submit(rs);  // returns: an empty socket must not make the worker wait
  auto m = by_tag(rs);
  EXPECT_EQ(m[1], 5);
  EXPECT_EQ(std::string(buf[0], 5), "reply");
  EXPECT_EQ(m[2], -EAGAIN);
  EXPECT_EQ(m[3], 0);  // the peer's FIN
}
