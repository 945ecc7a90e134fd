// Per-source token buckets (worker/source_limiter, issue 12 floods): a burst then the rate, each
// source on its own, an IPv6 /64 as one source, off when the rate is 0.
#include <gtest/gtest.h>

#include "worker/source_limiter.hpp"

namespace shoal::worker {
namespace {

int allowed(SourceLimiter& l, uint8_t family, const uint8_t* addr, int tries, uint64_t now_ms) {
  int n = 0;
  for (int i = 0; i < tries; i++) n += l.allow(family, addr, now_ms);
  return n;
}

TEST(SourceLimiter, BurstThenRate) {
  SourceLimiter l(100, 10);  // 100/s, bursts of 10
  uint8_t a[4] = {10, 0, 0, 1};
  EXPECT_EQ(allowed(l, 4, a, 50, 1000), 10);  // the burst
  EXPECT_EQ(allowed(l, 4, a, 50, 1050), 5);   // 50 ms at 100/s
  EXPECT_EQ(allowed(l, 4, a, 50, 1050), 0);
  EXPECT_EQ(allowed(l, 4, a, 50, 5000), 10);  // refilled up to the burst, no more
}

TEST(SourceLimiter, SourcesAreIndependentAndAnIPv6Slash64IsOne) {
  SourceLimiter l(1, 3);
  uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
  EXPECT_EQ(allowed(l, 4, a, 10, 0), 3);
  EXPECT_EQ(allowed(l, 4, b, 10, 0), 3);
  uint8_t x[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
  uint8_t y[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9};  // same /64
  uint8_t z[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};  // next /64
  EXPECT_EQ(allowed(l, 6, x, 2, 0), 2);
  EXPECT_EQ(allowed(l, 6, y, 10, 0), 1);
  EXPECT_EQ(allowed(l, 6, z, 10, 0), 3);
}

TEST(SourceLimiter, RateZeroAllowsEverything) {
  SourceLimiter l(0, 1);
  uint8_t a[4] = {10, 0, 0, 1};
  EXPECT_FALSE(l.enabled());
  EXPECT_EQ(allowed(l, 4, a, 1000, 0), 1000);
}

TEST(SourceLimiter, ManySourcesStayWithinTheTable) {
  SourceLimiter l(1, 1, 64);  // 64 slots: sources evict each other, memory stays fixed
  for (uint32_t i = 0; i < 10000; i++) {
    uint8_t a[4] = {10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)};
    l.allow(4, a, 0);
  }
  uint8_t a[4] = {10, 0, 0, 1};  // source 1, seen above: its own bucket (empty) or a fresh one
  EXPECT_LE(allowed(l, 4, a, 10, 0), 1);
}

}  // namespace
}  // namespace shoal::worker
