// tests/unit/http_request_test.cpp — the HTTP/1.x request framing of the HTTP front-end
// (worker/http_request.cpp over the http_parser library): complete, incomplete and pipelined
// requests, keep-alive rules of HTTP/1.0 and 1.1, the configured real-IP header, and the
// refusals the front-end turns into 400 (malformed, oversize head), 413 (a body) and 501 (not
// GET). Pure: no sockets.
#include <gtest/gtest.h>

#include <string>

#include "worker/http_request.hpp"

namespace shoal {
namespace {

using worker::http::HttpRequest;
using worker::http::Scan;
using worker::http::scan_request;

Scan scan(const std::string& s, HttpRequest* r, size_t* used, size_t max_head = 4096,
          std::string_view header = "X-Forwarded-For") {
  return scan_request(s.data(), s.size(), max_head, header, r, used);
}

TEST(HttpRequest, CompleteGetGivesTargetAndLength) {
  std::string req = "GET /announce?info_hash=%01abc&port=1 HTTP/1.1\r\nHost: x\r\n\r\n";
  HttpRequest r;
  size_t used = 0;
  ASSERT_EQ(scan(req, &r, &used), Scan::complete);
  EXPECT_EQ(used, req.size());
  EXPECT_EQ(r.target, "/announce?info_hash=%01abc&port=1");
  EXPECT_EQ(r.minor, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.has_header);
}

TEST(HttpRequest, EveryPrefixIsIncompleteAndConsumesNothing) {
  std::string req = "GET /scrape?info_hash=a HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n";
  for (size_t n = 0; n < req.size(); n++) {
    HttpRequest r;
    size_t used = 99;
    EXPECT_EQ(scan(req.substr(0, n), &r, &used), Scan::incomplete) << n;
    EXPECT_EQ(used, 0u);
  }
}

TEST(HttpRequest, PipelinedRequestsAreFoundOneAfterAnother) {
  std::string a = "GET /announce?a=1 HTTP/1.1\r\n\r\n", b = "GET /scrape?b=2 HTTP/1.1\r\nConnection: close\r\n\r\n";
  std::string both = a + b + "GET /x HT";
  HttpRequest r;
  size_t used = 0;
  ASSERT_EQ(scan(both, &r, &used), Scan::complete);
  EXPECT_EQ(used, a.size());
  EXPECT_EQ(r.target, "/announce?a=1");
  std::string rest = both.substr(used);
  ASSERT_EQ(scan(rest, &r, &used), Scan::complete);
  EXPECT_EQ(used, b.size());
  EXPECT_EQ(r.target, "/scrape?b=2");
  EXPECT_FALSE(r.keep_alive);
  EXPECT_EQ(scan(rest.substr(used), &r, &used), Scan::incomplete);
}

TEST(HttpRequest, Http10KeepsAliveOnlyWhenAsked) {
  HttpRequest r;
  size_t used = 0;
  ASSERT_EQ(scan("GET / HTTP/1.0\r\n\r\n", &r, &used), Scan::complete);
  EXPECT_EQ(r.minor, 0);
  EXPECT_FALSE(r.keep_alive);
  ASSERT_EQ(scan("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r, &used), Scan::complete);
  EXPECT_TRUE(r.keep_alive);
  ASSERT_EQ(scan("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", &r, &used), Scan::complete);
  EXPECT_FALSE(r.keep_alive);
}

TEST(HttpRequest, ConfiguredHeaderIsMatchedCaseInsensitivelyLastOneWins) {
  HttpRequest r;
  size_t used = 0;
  // r.header views the request's bytes: they must outlive the check.
  const std::string req = "GET / HTTP/1.1\r\nx-forwarded-for: 1.1.1.1\r\nX-Real-IP: 9.9.9.9\r\n"
                          "X-FORWARDED-FOR: 2.2.2.2, 3.3.3.3\r\n\r\n";
  ASSERT_EQ(scan(req, &r, &used), Scan::complete);
  EXPECT_TRUE(r.has_header);
  EXPECT_EQ(r.header, "2.2.2.2, 3.3.3.3");
  ASSERT_EQ(scan("GET / HTTP/1.1\r\nX-Forwarded-Fo: 1.1.1.1\r\n\r\n", &r, &used), Scan::complete);
  EXPECT_FALSE(r.has_header);
  ASSERT_EQ(scan("GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n", &r, &used, 4096, ""), Scan::complete);
  EXPECT_FALSE(r.has_header);  // no header configured: none is read
}

TEST(HttpRequest, MalformedRequestsAreBadRequests) {
  HttpRequest r;
  size_t used = 0;
  for (std::string bad : {std::string("\x01\x02\x03 / HTTP/1.1\r\n\r\n"), std::string("GET / FTP/1.1\r\n\r\n"),
                          std::string("GET / HTTP/1.1\r\nNo colon here\r\n\r\n"),
                          std::string("GET / HTTP/2.0\r\n\r\n"), std::string("GET /a b c\r\n\r\n")}) {
    EXPECT_EQ(scan(bad, &r, &used), Scan::bad_request) << bad;
    EXPECT_EQ(used, 0u);
  }
}

TEST(HttpRequest, HeadLongerThanTheLimitIsABadRequestEvenBeforeItEnds) {
  HttpRequest r;
  size_t used = 0;
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n";
  EXPECT_EQ(scan(big, &r, &used), Scan::bad_request);
  EXPECT_EQ(scan(big.substr(0, 4100), &r, &used), Scan::bad_request);  // incomplete, already too long
  EXPECT_EQ(scan(std::string(8192, 'G'), &r, &used), Scan::bad_request);
  EXPECT_EQ(scan(big, &r, &used, 8192), Scan::complete);
  // Exactly at the limit is accepted.
  std::string fits = "GET / HTTP/1.1\r\nX: " + std::string(100 - 23, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 100u);
  EXPECT_EQ(scan(fits, &r, &used, 100), Scan::complete);
  EXPECT_EQ(scan(fits, &r, &used, 99), Scan::bad_request);
}

TEST(HttpRequest, BodiesAndOtherMethodsAreRefused) {
  HttpRequest r;
  size_t used = 0;
  EXPECT_EQ(scan("POST /announce HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", &r, &used), Scan::body_too_large);
  EXPECT_EQ(scan("GET /announce HTTP/1.1\r\nContent-Length: 1\r\n\r\n", &r, &used), Scan::body_too_large);
  EXPECT_EQ(scan("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &r, &used), Scan::body_too_large);
  EXPECT_EQ(scan("POST /announce HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r, &used), Scan::not_implemented);
  EXPECT_EQ(scan("HEAD /announce HTTP/1.1\r\n\r\n", &r, &used), Scan::not_implemented);
  EXPECT_EQ(scan("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r, &used), Scan::complete);
}

}  // namespace
}  // namespace shoal
