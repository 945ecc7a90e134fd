// worker/connection_id.cpp — BEP 15 connection ids as a two-block AES-128 CBC-MAC (OpenSSL).
// Runs in every socket worker; holds one EVP_CIPHER_CTX per key (ECB, no padding, key set once) and
// touches nothing else. Layout of the MAC input and the validity window: connection_id.hpp.
// AES itself is OpenSSL's; this file only chains the two blocks (c2 = E(E(block1) XOR block2)).
#include "worker/connection_id.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/socket.h>

#include <cstring>
#include <stdexcept>

namespace shoal::worker {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};  // ::ffff:0:0/96

// The MAC's block1 (16-byte address, IPv4 mapped) and family byte for a canonical address.
void mac_address_block(int canon_family, const uint8_t* canon_addr, uint8_t block1[16], uint8_t* family_byte) {
  if (canon_family == AF_INET) {
    std::memcpy(block1, kMappedPrefix, 12);
    std::memcpy(block1 + 12, canon_addr, 4);
    *family_byte = 4;
  } else {
    std::memcpy(block1, canon_addr, 16);
    *family_byte = 6;
  }
}

}  // namespace

int canonical_address(int family, const uint8_t* addr_in, uint8_t* addr_out16) {
  if (family == AF_INET) {
    std::memcpy(addr_out16, addr_in, 4);
    return AF_INET;
  }
  if (family == AF_INET6) {
    if (std::memcmp(addr_in, kMappedPrefix, 12) == 0) {
      std::memcpy(addr_out16, addr_in + 12, 4);
      return AF_INET;
    }
    std::memcpy(addr_out16, addr_in, 16);
    return AF_INET6;
  }
  return AF_UNSPEC;
}

namespace {

// A new AES-128-ECB context keyed with `key`, or nullptr.
EVP_CIPHER_CTX* new_context(const uint8_t key[16]) {
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  if (c == nullptr) return nullptr;
  if (EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), nullptr, key, nullptr) != 1 || EVP_CIPHER_CTX_set_padding(c, 0) != 1) {
    EVP_CIPHER_CTX_free(c);
    return nullptr;
  }
  return c;
}

}  // namespace

ConnectionIds::ConnectionIds(const uint8_t key[16]) : ConnectionIds(reinterpret_cast<const uint8_t(*)[16]>(key), 1, 0) {}

ConnectionIds::ConnectionIds(const uint8_t (*keys)[16], uint32_t count, uint32_t skew_s)
    : skew_(skew_s > kMaxConnectionIdSkew ? kMaxConnectionIdSkew : skew_s) {
  if (count == 0 || count > kMaxConnectionIdKeys) throw std::invalid_argument("connection ids: 1 or 2 keys");
  if (!set_keys(keys, count)) throw std::runtime_error("connection ids: AES-128-ECB key setup failed");
}

ConnectionIds::~ConnectionIds() {
  for (EVP_CIPHER_CTX* c : ctx_) EVP_CIPHER_CTX_free(c);
}

bool ConnectionIds::set_keys(const uint8_t (*keys)[16], uint32_t count) {
  if (count == 0 || count > kMaxConnectionIdKeys) return false;
  EVP_CIPHER_CTX* fresh[kMaxConnectionIdKeys] = {};
  for (uint32_t k = 0; k < count; k++) {
    fresh[k] = new_context(keys[k]);
    if (fresh[k] == nullptr) {
      for (EVP_CIPHER_CTX* c : fresh) EVP_CIPHER_CTX_free(c);
      return false;
    }
  }
  for (uint32_t k = 0; k < kMaxConnectionIdKeys; k++) {
    EVP_CIPHER_CTX_free(ctx_[k]);
    ctx_[k] = fresh[k];
  }
  count_ = count;
  return true;
}

// ECB without padding on exactly one block: Update emits 16 bytes, Final nothing, and the
// context can be reused for the next block without re-keying.
bool ConnectionIds::address_block(uint32_t k, int family, const uint8_t* addr, uint8_t c1[16], uint8_t* family_byte) {
  uint8_t block1[16];
  mac_address_block(family, addr, block1, family_byte);
  int n = 0;
  return EVP_EncryptUpdate(ctx_[k], c1, &n, block1, 16) == 1 && n == 16;
}

bool ConnectionIds::tag(uint32_t k, const uint8_t c1[16], uint8_t family_byte, uint32_t bucket, uint8_t out[8]) {
  uint8_t x[16];
  std::memcpy(x, c1, 16);
  x[0] ^= uint8_t(bucket >> 24);
  x[1] ^= uint8_t(bucket >> 16);
  x[2] ^= uint8_t(bucket >> 8);
  x[3] ^= uint8_t(bucket);
  x[4] ^= family_byte;  // block2 = bucket ‖ family ‖ zeros: the other bytes of c1 stay as they are
  uint8_t c2[16];
  int n = 0;
  if (EVP_EncryptUpdate(ctx_[k], c2, &n, x, 16) != 1 || n != 16) return false;
  std::memcpy(out, c2, 8);
  return true;
}

uint64_t ConnectionIds::make(int family, const uint8_t* addr, uint32_t now_s) {
  uint8_t canon[16];
  int canon_family = canonical_address(family, addr, canon);
  if (canon_family == AF_UNSPEC) return 0;
  uint8_t c1[16], fam, t[8];
  if (!address_block(0, canon_family, canon, c1, &fam) || !tag(0, c1, fam, now_s / kConnectionIdBucketSeconds, t))
    return 0;
  uint64_t id = 0;
  for (int i = 0; i < 8; i++) id = (id << 8) | t[i];  // big-endian: wire bytes == tag bytes
  return id;
}

bool ConnectionIds::valid(uint64_t id, int family, const uint8_t* addr, uint32_t now_s) {
  uint8_t canon[16];
  int canon_family = canonical_address(family, addr, canon);
  if (canon_family == AF_UNSPEC) return false;
  uint8_t given[8];
  for (int i = 0; i < 8; i++) given[i] = uint8_t(id >> (56 - 8 * i));
  // Buckets from the newest (now + skew) down to the one before (now − skew), never below 0.
  uint64_t newest = (uint64_t(now_s) + skew_) / kConnectionIdBucketSeconds;
  uint64_t early = now_s > skew_ ? (now_s - skew_) / kConnectionIdBucketSeconds : 0;
  uint64_t oldest = early ? early - 1 : 0;
  // Most ids are younger than a bucket and made with the current key: that costs two blocks.
  // Which MACs ran tells a client only how old its own id is and whether it predates a key
  // rotation, which it knows; each comparison is constant-time (CRYPTO_memcmp).
  for (uint32_t k = 0; k < count_; k++) {
    uint8_t c1[16], fam;
    if (!address_block(k, canon_family, canon, c1, &fam)) return false;
    for (uint64_t b = newest + 1; b-- > oldest;) {
      uint8_t mac[8];
      if (tag(k, c1, fam, uint32_t(b), mac) && CRYPTO_memcmp(given, mac, 8) == 0) return true;
    }
  }
  return false;
}

}  // namespace shoal::worker
