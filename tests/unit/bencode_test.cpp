// tests/unit/bencode_test.cpp — unit tests for worker/bencode.hpp (BencodeWriter).
// Runs in the unit test binary only; touches no shm, sockets or files. Expected bodies are
// hand-written bencode (BEP 3) compared byte for byte; the overflow tests put a canary after
// `cap` to show that nothing is ever written past it.
#include "worker/bencode.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <string>

namespace shoal::worker::http {
namespace {

std::string body(const char* buf, size_t n) { return std::string(buf, n); }

TEST(BencodeWriter, EmptyContainers) {
  char buf[16];
  BencodeWriter w(buf, sizeof(buf));
  w.list_begin();
  w.dict_begin();
  w.dict_end();
  w.list_begin();
  w.list_end();
  w.list_end();
  EXPECT_EQ(body(buf, w.finish()), "ldelee");
}

TEST(BencodeWriter, IntegersAreExact) {
  char buf[128];
  BencodeWriter w(buf, sizeof(buf));
  w.list_begin();
  for (int64_t v : {int64_t(0), int64_t(-1), int64_t(42), INT64_MAX, INT64_MIN}) w.integer(v);
  w.list_end();
  EXPECT_EQ(body(buf, w.finish()),
            "li0ei-1ei42ei9223372036854775807ei-9223372036854775808ee");
}

TEST(BencodeWriter, StringsAreLengthPrefixedAndBinarySafe) {
  char buf[64];
  BencodeWriter w(buf, sizeof(buf));
  const char bin[] = {'\0', '\xff', ':', 'e'};
  w.list_begin();
  w.string("spam");
  w.string("");
  w.string(nullptr, 0);
  w.string(bin, sizeof(bin));
  w.list_end();
  EXPECT_EQ(body(buf, w.finish()), std::string("l4:spam0:0:4:\0\xff:ee", 18));
}

TEST(BencodeWriter, DictWithSortedKeysAndNesting) {
  char buf[128];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("cow");
  w.string("moo");
  w.key("peers");
  w.list_begin();
  w.dict_begin();
  w.key("ip");
  w.string("1.2.3.4");
  w.key("port");
  w.integer(6881);
  w.dict_end();
  w.list_end();
  w.key("peers6");  // a proper prefix ("peers") sorts first
  w.string("");
  w.key("spam");
  w.string("eggs");
  w.dict_end();
  EXPECT_EQ(body(buf, w.finish()), "d3:cow3:moo5:peersld2:ip7:1.2.3.44:porti6881eee6:peers60:4:spam4:eggse");
}

TEST(BencodeWriter, ExactFitSucceeds) {
  char buf[12];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("a");
  w.integer(12345);
  w.dict_end();
  EXPECT_FALSE(w.overflow());
  EXPECT_EQ(body(buf, w.finish()), "d1:ai12345ee");
}

TEST(BencodeWriter, OverflowIsStickyAndNeverWritesPastCap) {
  for (size_t cap = 0; cap < 12; ++cap) {
    char buf[32];
    std::memset(buf, '#', sizeof(buf));
    BencodeWriter w(buf, cap);
    w.dict_begin();
    w.key("a");
    w.integer(12345);
    w.dict_end();
    EXPECT_TRUE(w.overflow()) << cap;
    EXPECT_EQ(w.finish(), 0u) << cap;
    EXPECT_LE(w.size(), cap);
    for (size_t i = cap; i < sizeof(buf); ++i) ASSERT_EQ(buf[i], '#') << "cap " << cap << " byte " << i;
  }
}

TEST(BencodeWriter, ItemsAreWrittenWholeOrNotAtAll) {
  char buf[8];
  BencodeWriter w(buf, sizeof(buf));
  w.list_begin();      // 1 byte
  w.string("abcdef");  // "6:abcdef" = 8 bytes: does not fit, nothing written
  EXPECT_TRUE(w.overflow());
  EXPECT_EQ(w.size(), 1u);
  w.integer(1);        // would fit, but overflow is sticky
  EXPECT_EQ(w.size(), 1u);
}

TEST(BencodeWriter, UnclosedContainerGivesZero) {
  char buf[16];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("a");
  w.integer(1);
  EXPECT_FALSE(w.overflow());
  EXPECT_EQ(w.finish(), 0u);
}

TEST(BencodeWriter, NullBufferWithZeroCapOverflows) {
  BencodeWriter w(nullptr, 0);
  w.string(nullptr, 0);
  EXPECT_TRUE(w.overflow());
  EXPECT_EQ(w.finish(), 0u);
}

TEST(BencodeWriterDeathTest, UnsortedKeyAssertsInDebug) {
  char buf[64];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("peers");
  w.string("");
  EXPECT_DEBUG_DEATH(w.key("interval"), "sorted order");
}

TEST(BencodeWriterDeathTest, DuplicateKeyAssertsInDebug) {
  char buf[64];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("a");
  w.integer(1);
  EXPECT_DEBUG_DEATH(w.key("a"), "sorted order");
}

TEST(BencodeWriter, KeyOrderIsPerDict) {
  // "z" in the outer dict does not constrain the keys of a nested dict.
  char buf[64];
  BencodeWriter w(buf, sizeof(buf));
  w.dict_begin();
  w.key("z");
  w.dict_begin();
  w.key("a");
  w.integer(1);
  w.dict_end();
  w.dict_end();
  EXPECT_EQ(body(buf, w.finish()), "d1:zd1:ai1eee");
}

TEST(BencodeWriterDeathTest, MisuseAssertsInDebugAndFailsInRelease) {
  char buf[64];
  EXPECT_DEBUG_DEATH(
      {
        BencodeWriter w(buf, sizeof(buf));
        w.list_begin();
        w.dict_end();
        EXPECT_TRUE(w.overflow());
        EXPECT_EQ(w.finish(), 0u);
      },
      "unbalanced");
  EXPECT_DEBUG_DEATH(
      {
        BencodeWriter w(buf, sizeof(buf));
        for (int i = 0; i <= BencodeWriter::kMaxDepth; ++i) w.list_begin();
        EXPECT_TRUE(w.overflow());
      },
      "nesting");
}

}  // namespace
}  // namespace shoal::worker::http
