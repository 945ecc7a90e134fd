// conf/conn_id_key_file.cpp — see conn_id_key_file.hpp. Hex digits and decoding are OpenSSL's
// (OPENSSL_hexchar2int, OPENSSL_hexstr2buf_ex), the fingerprint is OpenSSL's SHA-256.
#include "conf/conn_id_key_file.hpp"
#include "conf/line_text.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace shoal::conf {
namespace {

constexpr size_t kMaxFileBytes = 65536;
constexpr size_t kKeyHexDigits = 32;



KeyFileResult failed(const std::string& where, const std::string& why) {
  KeyFileResult r;
  r.error = where + ": " + why;
  return r;
}

}  // namespace

KeyFileResult parse_key_file(const std::string& text, const std::string& name) {
  KeyFileResult r;
  size_t line_no = 0;
  for (size_t pos = 0; pos <= text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    std::string where = name + ":" + std::to_string(line_no);
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    size_t b = 0, e = line.size();
    while (b < e && is_space(line[b])) ++b;
    while (e > b && is_space(line[e - 1])) --e;
    if (b == e) continue;
    for (size_t i = b; i < e; i++)
      if (OPENSSL_hexchar2int(uint8_t(line[i])) < 0)
        return failed(where, "not a hex digit " + quote_char(uint8_t(line[i])) + " at column " + std::to_string(i + 1));
    if (e - b != kKeyHexDigits)
      return failed(where, "expected 32 hex digits (16 bytes), got " + std::to_string(e - b));
    if (r.count == kMaxKeyFileKeys) return failed(where, "more than 2 keys (the current key and the previous one)");
    std::string hex = line.substr(b, e - b);
    size_t len = 0;
    if (OPENSSL_hexstr2buf_ex(r.keys[r.count], 16, &len, hex.c_str(), '\0') != 1 || len != 16)
      return failed(where, "cannot decode the key");
    static const uint8_t kZero[16] = {};
    if (std::memcmp(r.keys[r.count], kZero, 16) == 0) return failed(where, "the key is all zeros");
    r.count++;
  }
  if (r.count == 0) return failed(name, "no key (a line of 32 hex digits: openssl rand -hex 16)");
  return r;
}

KeyFileResult load_key_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return failed(path, std::string("cannot open: ") + strerror(errno));
  struct stat sb{};
  std::string why;
  if (fstat(fd, &sb) != 0) {
    why = std::string("cannot stat: ") + strerror(errno);
  } else if (!S_ISREG(sb.st_mode)) {
    why = "not a regular file";
  } else if (sb.st_mode & 0007) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", unsigned(sb.st_mode & 07777));
    why = std::string("permissions ") + mode + " are too open: the key file must not be accessible by others (chmod o-rwx " +
          path + ")";
  } else if (size_t(sb.st_size) > kMaxFileBytes) {
    why = "larger than " + std::to_string(kMaxFileBytes) + " bytes: not a key file";
  }
  std::string text;
  if (why.empty()) {
    char buf[4096];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        why = std::string("cannot read: ") + strerror(errno);
        break;
      }
      if (n == 0) break;
      text.append(buf, size_t(n));
      if (text.size() > kMaxFileBytes) {
        why = "larger than " + std::to_string(kMaxFileBytes) + " bytes: not a key file";
        break;
      }
    }
  }
  close(fd);
  if (!why.empty()) return failed(path, why);
  KeyFileResult r = parse_key_file(text, path);
  OPENSSL_cleanse(text.data(), text.size());
  return r;
}

std::string key_fingerprint(const uint8_t key[16]) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(key, 16, digest);
  char out[9];
  snprintf(out, sizeof out, "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  return out;
}

std::string check_key_file_config(const Config& cfg) {
  if (cfg.udp_connection_id_key_file.empty()) return "";
  KeyFileResult r = load_key_file(cfg.udp_connection_id_key_file);
  if (!r.ok()) return "udp.connection_id_key_file " + r.error;
  return "";
}

}  // namespace shoal::conf
