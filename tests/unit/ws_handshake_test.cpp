// tests/unit/ws_handshake_test.cpp — unit tests for worker/ws_handshake (RFC 6455 section 4.2
// opening handshake). Pure: no sockets, no shm.
#include "worker/ws_handshake.hpp"

#include <gtest/gtest.h>

#include <string>

namespace shoal::worker::ws {
namespace {

std::string request(const std::string& target, const std::string& extra_headers,
                    const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==",
                    const std::string& version = "13") {
  std::string r = "GET " + target + " HTTP/1.1\r\nHost: tracker.example\r\n";
  r += "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n";
  if (!key.empty()) r += "Sec-WebSocket-Key: " + key + "\r\n";
  if (!version.empty()) r += "Sec-WebSocket-Version: " + version + "\r\n";
  return r + extra_headers + "\r\n";
}

// RFC 6455 section 1.3: the example key and its accept value.
TEST(WsHandshake, AcceptKeyOfRfcExample) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, AcceptsAnnouncePathWithQueryAndKeepsFollowingBytes) {
  std::string req = request("/announce?x=1", "Origin: https://a.example\r\n");
  HandshakeResult r = parse_handshake(req + "\x81\x85", 8192);
  ASSERT_EQ(r.status, HandshakeStatus::accepted) << handshake_error_text(r.error);
  EXPECT_EQ(r.consumed, req.size());
  EXPECT_EQ(r.response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
}

TEST(WsHandshake, AcceptsRootPathAndCaseInsensitiveHeaders) {
  std::string req = "GET / HTTP/1.1\r\nupgrade: WebSocket\r\nCONNECTION: upgrade\r\n"
                    "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
  EXPECT_EQ(parse_handshake(req).status, HandshakeStatus::accepted);
}

TEST(WsHandshake, IncompleteUntilBlankLine) {
  std::string req = request("/", "");
  HandshakeResult r = parse_handshake(req.substr(0, req.size() - 2));
  EXPECT_EQ(r.status, HandshakeStatus::incomplete);
  EXPECT_TRUE(r.response.empty());
}

void expect_rejected(const std::string& req, HandshakeError err, const std::string& status_line,
                     size_t max = kDefaultMaxHandshakeBytes) {
  HandshakeResult r = parse_handshake(req, max);
  ASSERT_EQ(r.status, HandshakeStatus::rejected);
  EXPECT_EQ(r.error, err);
  EXPECT_EQ(r.response.substr(0, status_line.size()), status_line) << r.response;
  EXPECT_NE(r.response.find(handshake_error_text(err)), std::string::npos);
}

TEST(WsHandshake, RejectsWrongVersionWith426NamingVersion13) {
  std::string req = request("/", "", "dGhlIHNhbXBsZSBub25jZQ==", "8");
  expect_rejected(req, HandshakeError::bad_version, "HTTP/1.1 426 ");
  EXPECT_NE(parse_handshake(req).response.find("Sec-WebSocket-Version: 13\r\n"),
            std::string::npos);
  expect_rejected(request("/", "", "dGhlIHNhbXBsZSBub25jZQ==", ""), HandshakeError::bad_version,
                  "HTTP/1.1 426 ");
}

TEST(WsHandshake, RejectsMissingOrBadKey) {
  expect_rejected(request("/", "", ""), HandshakeError::missing_key, "HTTP/1.1 400 ");
  // 15 and 17 bytes once decoded, and not base64 at all.
  expect_rejected(request("/", "", "AAAAAAAAAAAAAAAAAAAA"), HandshakeError::bad_key,
                  "HTTP/1.1 400 ");
  expect_rejected(request("/", "", "AAAAAAAAAAAAAAAAAAAAAAA="), HandshakeError::bad_key,
                  "HTTP/1.1 400 ");
  expect_rejected(request("/", "", "!!!!!!!!!!!!!!!!!!!!!!=="), HandshakeError::bad_key,
                  "HTTP/1.1 400 ");
  expect_rejected(request("/", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
                  HandshakeError::bad_header, "HTTP/1.1 400 ");
}

TEST(WsHandshake, RejectsWrongPathMethodAndMissingUpgrade) {
  expect_rejected(request("/scrape", ""), HandshakeError::not_found, "HTTP/1.1 404 ");
  expect_rejected(request("/announcex", ""), HandshakeError::not_found, "HTTP/1.1 404 ");
  std::string post = request("/", "");
  post.replace(0, 3, "POST");
  expect_rejected(post, HandshakeError::bad_request_line, "HTTP/1.1 400 ");
  expect_rejected("GET / HTTP/1.1\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  HandshakeError::missing_upgrade, "HTTP/1.1 426 ");
  expect_rejected("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                  HandshakeError::missing_connection, "HTTP/1.1 400 ");
}

TEST(WsHandshake, RejectsTooLargeHeaderBlock) {
  std::string req = request("/", "X-Pad: " + std::string(200, 'a') + "\r\n");
  expect_rejected(req, HandshakeError::too_large, "HTTP/1.1 400 ", 128);
  // Without a blank line yet, but already past the cap: rejected, not "read more".
  expect_rejected(std::string(200, 'a'), HandshakeError::too_large, "HTTP/1.1 400 ", 128);
  EXPECT_EQ(parse_handshake(std::string(100, 'a'), 128).status, HandshakeStatus::incomplete);
}

}  // namespace
}  // namespace shoal::worker::ws
