// worker/connection_id.cpp — BEP 15 connection ids as a two-block AES-128 CBC-MAC (OpenSSL).
// Runs in every socket worker; holds one EVP_CIPHER_CTX (ECB, no padding, key set once) and
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

ConnectionIds::ConnectionIds(const uint8_t key[16]) {
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw std::runtime_error("connection ids: EVP_CIPHER_CTX_new failed");
  if (EVP_EncryptInit_ex(ctx_, EVP_aes_128_ecb(), nullptr, key, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx_, 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    ctx_ = nullptr;
    throw std::runtime_error("connection ids: AES-128-ECB key setup failed");
  }
}

ConnectionIds::~ConnectionIds() { EVP_CIPHER_CTX_free(ctx_); }

bool ConnectionIds::tag(int family, const uint8_t* addr, uint32_t bucket, uint8_t out[8]) {
  uint8_t block1[16];
  uint8_t block2[16] = {};
  mac_address_block(family, addr, block1, &block2[4]);
  block2[0] = uint8_t(bucket >> 24);
  block2[1] = uint8_t(bucket >> 16);
  block2[2] = uint8_t(bucket >> 8);
  block2[3] = uint8_t(bucket);
  // ECB without padding on exactly one block: Update emits 16 bytes, Final nothing, and the
  // context can be reused for the next block without re-keying.
  uint8_t c1[16], c2[16];
  int n1 = 0, n2 = 0;
  if (EVP_EncryptUpdate(ctx_, c1, &n1, block1, 16) != 1 || n1 != 16) return false;
  for (int i = 0; i < 16; i++) c1[i] ^= block2[i];
  if (EVP_EncryptUpdate(ctx_, c2, &n2, c1, 16) != 1 || n2 != 16) return false;
  std::memcpy(out, c2, 8);
  return true;
}

uint64_t ConnectionIds::make(int family, const uint8_t* addr, uint32_t now_s) {
  uint8_t canon[16];
  int canon_family = canonical_address(family, addr, canon);
  if (canon_family == AF_UNSPEC) return 0;
  uint8_t t[8];
  if (!tag(canon_family, canon, now_s / kConnectionIdBucketSeconds, t)) return 0;
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
  uint32_t bucket = now_s / kConnectionIdBucketSeconds;
  uint32_t previous = bucket ? bucket - 1 : bucket;
  // The current bucket first: most ids are younger than a bucket, and the previous one costs a
  // second MAC only then. Whether the second MAC ran tells a client only how old its own id
  // is, which it knows; each comparison is constant-time (CRYPTO_memcmp).
  uint8_t mac[8];
  if (tag(canon_family, canon, bucket, mac) && CRYPTO_memcmp(given, mac, 8) == 0) return true;
  return previous != bucket && tag(canon_family, canon, previous, mac) && CRYPTO_memcmp(given, mac, 8) == 0;
}

}  // namespace shoal::worker
