// worker/ws_handshake.hpp — server side of the WebSocket opening handshake (RFC 6455 section
// 4.2). The front-end buffers the bytes a client sends before its first frame and calls
// parse_handshake on them: `incomplete` means read more, `accepted` means write `response`
// (101 Switching Protocols) and hand the bytes after `consumed` to a ws::Session, `rejected`
// means write `response` (400 or 426 with a text body) and close.
// Pure functions over caller-owned memory: no I/O, no shm. SHA-1 and base64 come from OpenSSL
// (EVP digest, EVP_EncodeBlock), not hand-written code.
// Sources: RFC 6455 sections 1.3 (the accept key), 4.2.1 (client request), 4.2.2 (server reply),
// 4.4 (426 with Sec-WebSocket-Version: 13); RFC 9112 section 2 (header block ends at CRLF CRLF).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shoal::worker::ws {

inline constexpr size_t kDefaultMaxHandshakeBytes = 8192;  // whole request header block, bytes
inline constexpr size_t kAcceptKeyChars = 28;              // base64 of a 20-byte SHA-1

enum class HandshakeStatus : uint8_t { incomplete, accepted, rejected };

// Why a handshake was rejected; handshake_error_text gives the client-facing reason.
enum class HandshakeError : uint8_t {
  none,
  too_large,            // no CRLF CRLF within max_bytes                       (400)
  bad_request_line,     // not "GET <target> HTTP/1.1"                          (400)
  not_found,            // path other than "/" or "/announce" (query allowed)   (404)
  missing_upgrade,      // no "Upgrade: websocket" (RFC 6455 4.2.1 item 3)      (426)
  missing_connection,   // "Connection" lacks the "upgrade" token (item 4)      (400)
  bad_version,          // Sec-WebSocket-Version absent or not 13 (item 6)      (426)
  missing_key,          // no Sec-WebSocket-Key (item 5)                        (400)
  bad_key,              // key is not base64 of exactly 16 bytes (item 5)       (400)
  bad_header,           // a header line without ':' or a repeated key          (400)
};

// A static NUL-terminated reason for err.
const char* handshake_error_text(HandshakeError err);

struct HandshakeResult {
  HandshakeStatus status = HandshakeStatus::incomplete;
  HandshakeError error = HandshakeError::none;
  size_t consumed = 0;   // bytes of the header block (incl. CRLF CRLF); 0 while incomplete
  std::string response;  // full HTTP response to write (accepted or rejected), else empty
};

// Parses the client's opening handshake from the first bytes of a connection. `buffered` is
// everything received so far; more may follow the header block (the first frames), which the
// caller keeps. max_bytes bounds the header block (too_large once it is exceeded without a
// CRLF CRLF). Header names are matched case-insensitively, Connection as a token list.
HandshakeResult parse_handshake(std::string_view buffered,
                                size_t max_bytes = kDefaultMaxHandshakeBytes);

// Sec-WebSocket-Accept for a client key (RFC 6455 section 4.2.2 item 5.4):
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28 characters.
std::string accept_key(std::string_view client_key);

}  // namespace shoal::worker::ws
