// tests/unit/connection_id_test.cpp — unit tests for worker/connection_id (BEP 15 connection ids).
// Runs in the unit test binary only; touches no shm or sockets. STYLE lesson 19: test the values
// derived (validity window, address and key binding, agreement between socket workers), and check
// the MAC against an independent computation (OpenSSL AES-128-CBC with a zero IV), not only
// against itself.
#include "worker/connection_id.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <cstring>
#include <random>
#include <stdexcept>

namespace shoal::worker {
namespace {

const uint8_t kKey[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                          0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
const uint8_t kOtherKey[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                               0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3d};  // last bit differs

struct Addr {
  int family;
  uint8_t bytes[16];
};
Addr v4(const char* s) {
  Addr a{AF_INET, {}};
  EXPECT_EQ(inet_pton(AF_INET, s, a.bytes), 1) << s;
  return a;
}
Addr v6(const char* s) {
  Addr a{AF_INET6, {}};
  EXPECT_EQ(inet_pton(AF_INET6, s, a.bytes), 1) << s;
  return a;
}

uint64_t make(ConnectionIds& ids, const Addr& a, uint32_t now) { return ids.make(a.family, a.bytes, now); }
bool valid(ConnectionIds& ids, uint64_t id, const Addr& a, uint32_t now) { return ids.valid(id, a.family, a.bytes, now); }

// The id by an independent route: CBC-MAC = last block of AES-128-CBC(zero IV) over the input.
uint64_t reference_id(const uint8_t key[16], const uint8_t block1[16], uint32_t bucket, uint8_t family_byte) {
  uint8_t in[32] = {};
  std::memcpy(in, block1, 16);
  in[16] = uint8_t(bucket >> 24);
  in[17] = uint8_t(bucket >> 16);
  in[18] = uint8_t(bucket >> 8);
  in[19] = uint8_t(bucket);
  in[20] = family_byte;
  uint8_t iv[16] = {}, out[32];
  int n = 0;
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  EXPECT_EQ(EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), nullptr, key, iv), 1);
  EVP_CIPHER_CTX_set_padding(c, 0);
  EXPECT_EQ(EVP_EncryptUpdate(c, out, &n, in, 32), 1);
  EXPECT_EQ(n, 32);
  EVP_CIPHER_CTX_free(c);
  uint64_t id = 0;
  for (int i = 16; i < 24; i++) id = id << 8 | out[i];
  return id;
}

TEST(ConnectionId, MatchesIndependentCbcMac) {
  ConnectionIds ids(kKey);
  Addr a = v4("192.0.2.7");
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
  EXPECT_EQ(make(ids, a, 1000), reference_id(kKey, mapped, 1000 / 120, 4));
  Addr b = v6("2001:db8::1");
  EXPECT_EQ(make(ids, b, 7 * 120), reference_id(kKey, b.bytes, 7, 6));
}

TEST(ConnectionId, AcceptedInSameAndNextBucketRejectedTwoLater) {
  ConnectionIds ids(kKey);
  Addr a = v4("198.51.100.20");
  uint64_t id = make(ids, a, 1000);  // bucket 8 = [960, 1080)
  EXPECT_TRUE(valid(ids, id, a, 1000));
  EXPECT_TRUE(valid(ids, id, a, 1079));
  EXPECT_TRUE(valid(ids, id, a, 1080));   // bucket 9
  EXPECT_TRUE(valid(ids, id, a, 1199));
  EXPECT_FALSE(valid(ids, id, a, 1200));  // bucket 10
  EXPECT_FALSE(valid(ids, id, a, 1000 + 100000));
  EXPECT_FALSE(valid(ids, id, a, 959));   // an id from the future is not accepted
  EXPECT_FALSE(valid(ids, id, a, 0));
}

// BEP 15: a tracker should accept an id for 2 minutes after sending it. For every second of a
// few buckets: accepted for the next 120 s, and never 240 s later.
TEST(ConnectionId, WindowIsAtLeast120AndUnder240Seconds) {
  ConnectionIds ids(kKey);
  Addr a = v6("2001:db8:1:2::99");
  for (uint32_t t = 0; t < 4 * 120; t++) {
    uint64_t id = make(ids, a, t);
    EXPECT_TRUE(valid(ids, id, a, t + 120)) << t;
    EXPECT_FALSE(valid(ids, id, a, t + 240)) << t;
  }
}

TEST(ConnectionId, BoundToAddress) {
  ConnectionIds ids(kKey);
  Addr a = v4("203.0.113.1"), b = v4("203.0.113.2"), c = v6("2001:db8::1"), d = v6("2001:db8::2");
  EXPECT_NE(make(ids, a, 500), make(ids, b, 500));
  EXPECT_NE(make(ids, c, 500), make(ids, d, 500));
  EXPECT_FALSE(valid(ids, make(ids, a, 500), b, 500));  // replayed from another IP
  EXPECT_FALSE(valid(ids, make(ids, c, 500), d, 500));
  // Same low 4 bytes, different family: ::cb00:7101 (IPv4-compatible, not mapped) is not 203.0.113.1.
  Addr compat = v6("::203.0.113.1");
  EXPECT_NE(make(ids, a, 500), make(ids, compat, 500));
  EXPECT_FALSE(valid(ids, make(ids, a, 500), compat, 500));
}

TEST(ConnectionId, BoundToBucket) {
  ConnectionIds ids(kKey);
  Addr a = v4("203.0.113.1");
  EXPECT_EQ(make(ids, a, 120), make(ids, a, 239));
  EXPECT_NE(make(ids, a, 239), make(ids, a, 240));
}

TEST(ConnectionId, DifferentKeyDifferentIds) {
  ConnectionIds ids(kKey), other(kOtherKey);
  Addr a = v4("10.1.2.3");
  uint64_t id = make(ids, a, 1000);
  EXPECT_NE(id, make(other, a, 1000));
  EXPECT_FALSE(valid(other, id, a, 1000));
  EXPECT_TRUE(valid(ids, id, a, 1000));
}

// Two socket workers hold separate objects made from the same shm key: ids must agree.
TEST(ConnectionId, SameKeySameIdsAcrossWorkers) {
  ConnectionIds worker1(kKey), worker2(kKey);
  for (const Addr& a : {v4("10.0.0.1"), v4("255.255.255.255"), v6("2001:db8::42"), v6("::")}) {
    for (uint32_t t : {0u, 1u, 119u, 120u, 86400u, 0xffffffffu}) {
      uint64_t id = make(worker1, a, t);
      EXPECT_EQ(id, make(worker2, a, t));
      EXPECT_TRUE(valid(worker2, id, a, t));
    }
  }
}

TEST(ConnectionId, Ipv4AndMappedIpv6AreTheSameClient) {
  ConnectionIds ids(kKey);
  Addr a = v4("127.0.0.1"), m = v6("::ffff:127.0.0.1");
  EXPECT_EQ(make(ids, a, 777), make(ids, m, 777));
  EXPECT_TRUE(valid(ids, make(ids, a, 777), m, 777));
  EXPECT_TRUE(valid(ids, make(ids, m, 777), a, 777));
}

TEST(ConnectionId, CanonicalAddress) {
  uint8_t out[16];
  Addr m = v6("::ffff:192.0.2.33");
  ASSERT_EQ(canonical_address(AF_INET6, m.bytes, out), AF_INET);
  EXPECT_EQ(std::memcmp(out, v4("192.0.2.33").bytes, 4), 0);
  Addr a = v4("192.0.2.33");
  ASSERT_EQ(canonical_address(AF_INET, a.bytes, out), AF_INET);
  EXPECT_EQ(std::memcmp(out, a.bytes, 4), 0);
  Addr g = v6("2001:db8::ffff:1");
  ASSERT_EQ(canonical_address(AF_INET6, g.bytes, out), AF_INET6);
  EXPECT_EQ(std::memcmp(out, g.bytes, 16), 0);
  Addr almost = v6("::fffe:192.0.2.33");
  EXPECT_EQ(canonical_address(AF_INET6, almost.bytes, out), AF_INET6);
  EXPECT_EQ(canonical_address(AF_UNIX, a.bytes, out), AF_UNSPEC);
}

TEST(ConnectionId, UnknownFamilyNeverValid) {
  ConnectionIds ids(kKey);
  uint8_t addr[16] = {1, 2, 3, 4};
  EXPECT_EQ(ids.make(AF_UNIX, addr, 100), 0u);
  EXPECT_FALSE(ids.valid(0, AF_UNIX, addr, 100));
}

// docs/hardening.md A2, scaled down: random ids from one source are never accepted.
TEST(ConnectionId, RandomIdsRejected) {
  ConnectionIds ids(kKey);
  Addr a = v4("198.51.100.77");
  uint64_t real = make(ids, a, 5000);
  std::mt19937_64 rng(0x5eed);
  int accepted = 0;
  for (int i = 0; i < 100000; i++) {
    uint64_t id = rng();
    if (id == real) continue;
    accepted += valid(ids, id, a, 5000);
  }
  EXPECT_EQ(accepted, 0);
  EXPECT_FALSE(valid(ids, 0, a, 5000));
  EXPECT_FALSE(valid(ids, 0x41727101980ull, a, 5000));  // the protocol magic (bittorrent-tracker's id)
}

// ---- several nodes: shared keys, wall-clock buckets, skew, rotation (issue 14) ----------------

namespace cluster {

const uint8_t kKeys[2][16] = {{0x10, 0x21, 0x32, 0x43, 0x54, 0x65, 0x76, 0x87, 0x98, 0xa9, 0xba, 0xcb, 0xdc, 0xed, 0xfe, 0x0f},
                              {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}};
const uint8_t kUnknown[1][16] = {{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}};
constexpr uint32_t kWall = 1765000000;  // a wall-clock time (2025-12-06), seconds since the epoch

// Two nodes with the same key file and wall time make the same ids and accept each other's.
TEST(ConnectionIdCluster, SameKeyAndWallTimeAgreeAcrossNodes) {
  ConnectionIds a(kKeys, 1, 10), b(kKeys, 1, 10);
  for (const Addr& addr : {v4("192.0.2.1"), v6("2001:db8::7")}) {
    for (uint32_t t = kWall; t < kWall + 3 * 120; t += 7) {
      uint64_t id = make(a, addr, t);
      EXPECT_EQ(id, make(b, addr, t)) << t;
      EXPECT_TRUE(valid(b, id, addr, t)) << t;
      EXPECT_TRUE(valid(a, make(b, addr, t), addr, t)) << t;
    }
  }
  // The ids are the single-key object's ids: adding a skew changes what is accepted, not the id.
  ConnectionIds single(kKeys[0]);
  EXPECT_EQ(make(a, v4("192.0.2.1"), kWall), make(single, v4("192.0.2.1"), kWall));
}

// A node whose clock is up to `skew` seconds ahead of or behind another: every id it makes is
// accepted by the other from the moment it is made until 120 s later (in the maker's time), and
// never 240 + 2·skew seconds later.
TEST(ConnectionIdCluster, ClockDifferenceWithinSkewKeepsTheWholeLifetime) {
  const uint32_t skew = 10;
  ConnectionIds maker(kKeys, 1, skew), checker(kKeys, 1, skew);
  Addr addr = v4("198.51.100.9");
  for (uint32_t t = kWall; t < kWall + 2 * 120; t++) {  // the checker's clock
    for (int d = -int(skew); d <= int(skew); d += 5) {  // the maker's clock is t + d
      uint64_t id = make(maker, addr, uint32_t(int64_t(t) + d));
      EXPECT_TRUE(valid(checker, id, addr, t)) << t << " " << d;
      EXPECT_TRUE(valid(checker, id, addr, t + 120)) << t << " " << d;
      EXPECT_FALSE(valid(checker, id, addr, t + 240 + 2 * skew)) << t << " " << d;
    }
  }
}

// Exact edges with skew 10: an id of the next bucket is accepted once now + 10 reaches it; an id
// of bucket b is refused once now − 10 is two buckets later. Without skew both edges are the
// bucket edges.
TEST(ConnectionIdCluster, SkewAcceptedWithinTheWindowAndRefusedBeyond) {
  ConnectionIds skewed(kKeys, 1, 10), exact(kKeys, 1, 0);
  Addr addr = v4("203.0.113.50");
  const uint32_t b = kWall / 120;           // this bucket starts at b * 120
  uint64_t next = make(skewed, addr, (b + 1) * 120);  // made in the next bucket: a clock ahead
  EXPECT_TRUE(valid(skewed, next, addr, (b + 1) * 120 - 10));
  EXPECT_FALSE(valid(skewed, next, addr, (b + 1) * 120 - 11));
  EXPECT_FALSE(valid(exact, next, addr, (b + 1) * 120 - 1));
  uint64_t old = make(skewed, addr, b * 120);  // made in bucket b: accepted through bucket b+1
  EXPECT_TRUE(valid(exact, old, addr, (b + 2) * 120 - 1));
  EXPECT_FALSE(valid(exact, old, addr, (b + 2) * 120));
  EXPECT_TRUE(valid(skewed, old, addr, (b + 2) * 120 + 9));
  EXPECT_FALSE(valid(skewed, old, addr, (b + 2) * 120 + 10));
  // Two buckets ahead is beyond any skew up to 60 s.
  ConnectionIds widest(kKeys, 1, 60);
  EXPECT_FALSE(valid(widest, make(widest, addr, (b + 2) * 120), addr, b * 120 + 119));
  ConnectionIds clamped(kKeys, 1, 1000);  // clamped to kMaxConnectionIdSkew
  EXPECT_FALSE(valid(clamped, make(clamped, addr, (b + 2) * 120), addr, b * 120 + 119));
}

// Rotation: a node holding [new, old] makes ids with the new key and accepts both; a node still
// on [old] accepts the old ids only; a key neither holds is refused.
TEST(ConnectionIdCluster, PreviousKeyAcceptedUnknownKeyRefused) {
  const uint8_t old_only[1][16] = {{0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c}};
  ConnectionIds before(old_only, 1, 10), rotated(kKeys, 2, 10), stranger(kUnknown, 1, 10);
  for (const Addr& addr : {v4("10.9.8.7"), v6("2001:db8:5::5")}) {
    uint64_t old_id = make(before, addr, kWall);
    uint64_t new_id = make(rotated, addr, kWall);
    EXPECT_NE(old_id, new_id);
    EXPECT_TRUE(valid(rotated, old_id, addr, kWall + 60));
    EXPECT_TRUE(valid(rotated, new_id, addr, kWall + 60));
    EXPECT_FALSE(valid(before, new_id, addr, kWall));
    EXPECT_FALSE(valid(rotated, make(stranger, addr, kWall), addr, kWall));
    EXPECT_FALSE(valid(stranger, new_id, addr, kWall));
    EXPECT_FALSE(valid(rotated, old_id, addr, kWall + 240 + 20));  // the previous key does not extend the lifetime
  }
}

// set_keys re-keys in place (the socket worker on SIGHUP); a bad count keeps the keys in force.
TEST(ConnectionIdCluster, SetKeysRotatesInPlaceAndRefusesABadCount) {
  ConnectionIds ids(kUnknown, 1, 0);
  Addr addr = v4("192.0.2.200");
  uint64_t unknown_id = make(ids, addr, kWall);
  EXPECT_FALSE(ids.set_keys(kKeys, 0));
  EXPECT_FALSE(ids.set_keys(kKeys, 3));
  EXPECT_EQ(ids.key_count(), 1u);
  EXPECT_TRUE(valid(ids, unknown_id, addr, kWall));
  ASSERT_TRUE(ids.set_keys(kKeys, 2));
  EXPECT_EQ(ids.key_count(), 2u);
  EXPECT_FALSE(valid(ids, unknown_id, addr, kWall));
  ConnectionIds reference(kKeys, 2, 0);
  EXPECT_EQ(make(ids, addr, kWall), make(reference, addr, kWall));
  EXPECT_THROW(ConnectionIds(kKeys, 0, 0), std::invalid_argument);
}

}  // namespace cluster

}  // namespace
}  // namespace shoal::worker
