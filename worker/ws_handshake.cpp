// worker/ws_handshake.cpp — WebSocket opening handshake (RFC 6455 section 4.2); see the header.
#include "worker/ws_handshake.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace shoal::worker::ws {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 1.3

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` holds `token` (case-insensitive; RFC 9110 5.6.1).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Decodes standard base64 with padding and returns the byte count, or -1 if malformed.
int base64_decoded_size(std::string_view key) {
  if (key.empty() || key.size() % 4 != 0 || key.size() > 64) return -1;
  unsigned char out[64];
  int n = EVP_DecodeBlock(out, reinterpret_cast<const unsigned char*>(key.data()),
                          static_cast<int>(key.size()));
  if (n < 0) return -1;
  // EVP_DecodeBlock counts padding as zero bytes: subtract it.
  if (key.back() == '=') --n;
  if (key.size() >= 2 && key[key.size() - 2] == '=') --n;
  return n;
}

int status_of(HandshakeError err) {
  switch (err) {
    case HandshakeError::not_found: return 404;
    case HandshakeError::missing_upgrade:
    case HandshakeError::bad_version: return 426;
    default: return 400;
  }
}

HandshakeResult reject(HandshakeError err, size_t consumed) {
  HandshakeResult r;
  r.status = HandshakeStatus::rejected;
  r.error = err;
  r.consumed = consumed;
  int code = status_of(err);
  const char* reason = code == 404 ? "Not Found" : code == 426 ? "Upgrade Required" : "Bad Request";
  std::string body = std::string(handshake_error_text(err)) + "\n";
  r.response = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  // RFC 6455 4.4: a server that does not speak the client's version names the one it speaks.
  if (code == 426) r.response += "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  r.response += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + body;
  return r;
}

}  // namespace

const char* handshake_error_text(HandshakeError err) {
  switch (err) {
    case HandshakeError::none: return "ok";
    case HandshakeError::too_large: return "handshake too large";
    case HandshakeError::bad_request_line: return "expected GET <path> HTTP/1.1";
    case HandshakeError::not_found: return "WebSocket path must be / or /announce";
    case HandshakeError::missing_upgrade: return "missing Upgrade: websocket";
    case HandshakeError::missing_connection: return "Connection header lacks upgrade";
    case HandshakeError::bad_version: return "Sec-WebSocket-Version must be 13";
    case HandshakeError::missing_key: return "missing Sec-WebSocket-Key";
    case HandshakeError::bad_key: return "Sec-WebSocket-Key must be base64 of 16 bytes";
    case HandshakeError::bad_header: return "malformed or repeated header";
  }
  return "bad handshake";
}

std::string accept_key(std::string_view client_key) {
  std::string in(client_key);
  in += kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(in.data(), in.size(), digest, &len, EVP_sha1(), nullptr) != 1) return {};
  char out[kAcceptKeyChars + 1];
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out), digest, static_cast<int>(len));
  return std::string(out, static_cast<size_t>(n));
}

HandshakeResult parse_handshake(std::string_view buffered, size_t max_bytes) {
  size_t end = buffered.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > max_bytes) {
    if (buffered.size() >= max_bytes) return reject(HandshakeError::too_large, buffered.size());
    return {};
  }
  const size_t consumed = end + 4;
  std::string_view block = buffered.substr(0, end + 2);  // each line ends with CRLF

  size_t eol = block.find("\r\n");
  std::string_view line = block.substr(0, eol);
  block.remove_prefix(eol + 2);
  // RFC 6455 4.2.1 item 1: "GET", HTTP/1.1 or higher.
  if (line.substr(0, 4) != "GET ") return reject(HandshakeError::bad_request_line, consumed);
  line.remove_prefix(4);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || line.substr(sp + 1) != "HTTP/1.1")
    return reject(HandshakeError::bad_request_line, consumed);
  std::string_view path = line.substr(0, sp);
  path = path.substr(0, path.find('?'));
  if (path != "/" && path != "/announce") return reject(HandshakeError::not_found, consumed);

  bool upgrade = false, connection = false, version_seen = false, version_ok = false;
  std::string_view key;
  bool key_seen = false;
  while (!block.empty()) {
    eol = block.find("\r\n");
    line = block.substr(0, eol);
    block.remove_prefix(eol + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return reject(HandshakeError::bad_header, consumed);
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "upgrade")) {
      upgrade = upgrade || has_token(value, "websocket");
    } else if (iequals(name, "connection")) {
      connection = connection || has_token(value, "upgrade");
    } else if (iequals(name, "sec-websocket-version")) {
      if (version_seen) return reject(HandshakeError::bad_header, consumed);
      version_seen = true;
      version_ok = value == "13";
    } else if (iequals(name, "sec-websocket-key")) {
      if (key_seen) return reject(HandshakeError::bad_header, consumed);
      key_seen = true;
      key = value;
    }
  }
  if (!upgrade) return reject(HandshakeError::missing_upgrade, consumed);
  if (!connection) return reject(HandshakeError::missing_connection, consumed);
  if (!version_ok) return reject(HandshakeError::bad_version, consumed);
  if (!key_seen) return reject(HandshakeError::missing_key, consumed);
  if (base64_decoded_size(key) != 16) return reject(HandshakeError::bad_key, consumed);

  HandshakeResult r;
  r.status = HandshakeStatus::accepted;
  r.consumed = consumed;
  r.response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: " + accept_key(key) + "\r\n\r\n";
  return r;
}

}  // namespace shoal::worker::ws
