// tests/unit/http_frontend_test.cpp — the pure parts of the HTTP/HTTPS front-end: trusted-proxy
// address blocks (conf/cidr.cpp), forwarding-header parsing (worker/http_peer.cpp), the
// connection and pending-request tables and their reply tokens (worker/http_pending.hpp), the
// http/https configuration checks, and TLS context building and reload (worker/tls.cpp).
// In-process only: no sockets, no shared memory; certificates are made with the OpenSSL API into
// a mkdtemp directory under /tmp.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "conf/config.hpp"
#include "worker/http_peer.hpp"
#include "worker/http_pending.hpp"
#include "worker/tls.hpp"

namespace shoal {
namespace {

using worker::http::ForwardedResult;
using worker::http::kNone;
using worker::http::PeerAddress;

std::vector<std::string> errors_of(const std::string& text) {
  std::vector<std::string> out;
  for (const conf::ConfigError& e : conf::load_config_text(text, "t.conf").errors) out.push_back(e.to_string());
  return out;
}

using Lines = std::vector<std::string>;

PeerAddress v4(const char* text) {
  PeerAddress a;
  a.family = AF_INET;
  inet_pton(AF_INET, text, a.addr);
  return a;
}

PeerAddress v6(const char* text) {
  PeerAddress a;
  a.family = AF_INET6;
  inet_pton(AF_INET6, text, a.addr);
  return a;
}

bool same(const PeerAddress& a, const PeerAddress& b) {
  return a.family == b.family && memcmp(a.addr, b.addr, a.family == AF_INET ? 4 : 16) == 0;
}

std::vector<conf::Cidr> blocks(std::initializer_list<const char*> texts) {
  std::vector<conf::Cidr> out;
  for (const char* t : texts) {
    conf::Cidr c;
    EXPECT_TRUE(conf::parse_cidr(t, &c, nullptr)) << t;
    out.push_back(c);
  }
  return out;
}

// ---- CIDR blocks --------------------------------------------------------------------------------

TEST(HttpCidr, ParsesAndClearsHostBits) {
  conf::Cidr c;
  ASSERT_TRUE(conf::parse_cidr("10.1.2.3/8", &c, nullptr));
  EXPECT_EQ(c.family, AF_INET);
  EXPECT_EQ(c.prefix, 8);
  EXPECT_EQ(c.addr[0], 10);
  EXPECT_EQ(c.addr[1] | c.addr[2] | c.addr[3], 0);
  ASSERT_TRUE(conf::parse_cidr("127.0.0.1", &c, nullptr));
  EXPECT_EQ(c.prefix, 32);
  ASSERT_TRUE(conf::parse_cidr("fd00::1/8", &c, nullptr));
  EXPECT_EQ(c.family, AF_INET6);
  EXPECT_EQ(c.addr[0], 0xfd);
  EXPECT_EQ(c.addr[15], 0);
  ASSERT_TRUE(conf::parse_cidr("::ffff:192.168.0.0/112", &c, nullptr));  // mapped: an IPv4 block
  EXPECT_EQ(c.family, AF_INET);
  EXPECT_EQ(c.prefix, 16);
  ASSERT_TRUE(conf::parse_cidr("0.0.0.0/0", &c, nullptr));
  EXPECT_TRUE(conf::cidr_contains(c, AF_INET, v4("203.0.113.9").addr));
}

TEST(HttpCidr, RejectsBadText) {
  const std::pair<const char*, const char*> cases[] = {
      {"10.0.0.0/33", "bad prefix length \"33\" (must be 0 to 32)"},
      {"::/129", "bad prefix length \"129\" (must be 0 to 128)"},
      {"10.0.0.0/", "bad prefix length \"\" (must be 0 to 32)"},
      {"10.0.0.0/-1", "bad prefix length \"-1\" (must be 0 to 32)"},
      {"10.0.0/8", "not a numeric IPv4 or IPv6 address: \"10.0.0\""},
      {"proxy.example/32", "not a numeric IPv4 or IPv6 address: \"proxy.example\""},
      {"", "not a numeric IPv4 or IPv6 address: \"\""},
  };
  for (const auto& [text, expected] : cases) {
    conf::Cidr c;
    std::string why;
    EXPECT_FALSE(conf::parse_cidr(text, &c, &why)) << text;
    EXPECT_EQ(why, expected) << text;
  }
}

TEST(HttpCidr, ContainsAtPrefixBoundaries) {
  auto b = blocks({"192.168.4.0/22"});
  EXPECT_TRUE(conf::cidr_contains(b[0], AF_INET, v4("192.168.4.0").addr));
  EXPECT_TRUE(conf::cidr_contains(b[0], AF_INET, v4("192.168.7.255").addr));
  EXPECT_FALSE(conf::cidr_contains(b[0], AF_INET, v4("192.168.8.0").addr));
  EXPECT_FALSE(conf::cidr_contains(b[0], AF_INET, v4("192.168.3.255").addr));
  EXPECT_FALSE(conf::cidr_contains(b[0], AF_INET6, v6("::1").addr));  // families never mix
  auto b6 = blocks({"2001:db8:abcd::/47"});
  EXPECT_TRUE(conf::cidr_contains(b6[0], AF_INET6, v6("2001:db8:abcd:1::5").addr));
  EXPECT_FALSE(conf::cidr_contains(b6[0], AF_INET6, v6("2001:db8:abce::5").addr));
}

// ---- forwarding headers -------------------------------------------------------------------------

TEST(HttpPeer, ParsesAddressForms) {
  PeerAddress a;
  ASSERT_TRUE(worker::http::parse_address_text(" 192.0.2.7 ", &a));
  EXPECT_TRUE(same(a, v4("192.0.2.7")));
  ASSERT_TRUE(worker::http::parse_address_text("192.0.2.7:8080", &a));
  EXPECT_TRUE(same(a, v4("192.0.2.7")));
  ASSERT_TRUE(worker::http::parse_address_text("2001:db8::1", &a));
  EXPECT_TRUE(same(a, v6("2001:db8::1")));
  ASSERT_TRUE(worker::http::parse_address_text("[2001:db8::1]:443", &a));
  EXPECT_TRUE(same(a, v6("2001:db8::1")));
  ASSERT_TRUE(worker::http::parse_address_text("::ffff:198.51.100.2", &a));  // canonical: IPv4
  EXPECT_TRUE(same(a, v4("198.51.100.2")));
  for (const char* bad : {"", "unknown", "1.2.3", "1.2.3.4:", "1.2.3.4:x", "[::1", "[::1]x", "fe80::1%eth0",
                          "1.2.3.4 5.6.7.8", "1.2.3.4:123456", "a.b.c.d"}) {
    EXPECT_FALSE(worker::http::parse_address_text(bad, &a)) << bad;
  }
}

TEST(HttpPeer, TakesRightMostUntrustedAddress) {
  auto trusted = blocks({"10.0.0.0/8", "::1"});
  PeerAddress out;
  EXPECT_EQ(worker::http::peer_from_forwarded("203.0.113.5", trusted, &out), ForwardedResult::ok);
  EXPECT_TRUE(same(out, v4("203.0.113.5")));
  // A client-supplied left part is ignored; the proxies' own hops are skipped.
  EXPECT_EQ(worker::http::peer_from_forwarded("6.6.6.6, 203.0.113.5, 10.1.1.1,10.2.2.2", trusted, &out),
            ForwardedResult::ok);
  EXPECT_TRUE(same(out, v4("203.0.113.5")));
  EXPECT_EQ(worker::http::peer_from_forwarded("garbage, 2001:db8::9", trusted, &out), ForwardedResult::ok);
  EXPECT_TRUE(same(out, v6("2001:db8::9")));
  // Every hop trusted (a request from the proxy host itself): the left-most.
  EXPECT_EQ(worker::http::peer_from_forwarded("10.9.9.9, ::1", trusted, &out), ForwardedResult::ok);
  EXPECT_TRUE(same(out, v4("10.9.9.9")));
}

TEST(HttpPeer, MissingAndMalformedHeaders) {
  auto trusted = blocks({"127.0.0.1"});
  PeerAddress out;
  EXPECT_EQ(worker::http::peer_from_forwarded("", trusted, &out), ForwardedResult::missing);
  EXPECT_EQ(worker::http::peer_from_forwarded(" , ,", trusted, &out), ForwardedResult::missing);
  EXPECT_EQ(worker::http::peer_from_forwarded("unknown", trusted, &out), ForwardedResult::malformed);
  EXPECT_EQ(worker::http::peer_from_forwarded("1.2.3.4, bogus", trusted, &out), ForwardedResult::malformed);
  EXPECT_EQ(worker::http::peer_from_forwarded("bogus, 127.0.0.1", trusted, &out), ForwardedResult::malformed);
}

// ---- tables and tokens --------------------------------------------------------------------------

TEST(HttpPending, PoolFillsReleasesAndExpiresInOrder) {
  worker::http::TimedPool<int> pool(3);
  uint32_t a = pool.acquire(100), b = pool.acquire(200), c = pool.acquire(300);
  EXPECT_NE(a, kNone);
  EXPECT_EQ(pool.acquire(400), kNone);  // full
  EXPECT_EQ(pool.used(), 3u);
  EXPECT_EQ(pool.expired(99), kNone);
  EXPECT_EQ(pool.expired(100), a);
  pool.untime(a);  // busy but not timed: never expires
  EXPECT_EQ(pool.expired(1000), b);
  pool.retime(b, 500);  // to the back
  EXPECT_EQ(pool.expired(1000), c);
  pool.release(c);
  pool.release(c);  // idempotent
  EXPECT_EQ(pool.expired(1000), b);
  EXPECT_EQ(pool.expired(499), kNone);
  pool.release(b);
  EXPECT_EQ(pool.expired(UINT64_MAX), kNone);
  EXPECT_EQ(pool.used(), 1u);
  EXPECT_TRUE(pool.busy(a));
  EXPECT_FALSE(pool.timed(a));
  uint32_t d = pool.acquire(600);
  EXPECT_NE(d, kNone);
  EXPECT_EQ(pool[d], 0);  // reset on acquire
  pool.release(a);
  pool.release(d);
  EXPECT_EQ(pool.used(), 0u);
}

TEST(HttpPending, TokenStopsMatchingOnceTheSlotIsReleased) {
  worker::http::PendingTable<int> t(2, 7 << 20);
  uint32_t i = kNone;
  uint64_t tok = t.acquire(10, &i);
  ASSERT_NE(tok, 0u);
  EXPECT_EQ(t.lookup(tok), i);
  t.release(i);
  EXPECT_EQ(t.lookup(tok), kNone);  // answered already: a late or duplicate response is ignored
  uint32_t j = kNone;
  uint64_t tok2 = t.acquire(20, &j);
  EXPECT_EQ(j, i);          // same slot reused ...
  EXPECT_NE(tok2, tok);     // ... under a new generation
  EXPECT_EQ(t.lookup(tok), kNone);
  EXPECT_EQ(t.lookup(tok2), j);
  EXPECT_EQ(t.lookup(0), kNone);  // UDP's conn value never matches
  EXPECT_EQ(t.lookup(uint64_t(99)), kNone);  // index out of range
  uint32_t k = kNone;
  EXPECT_NE(t.acquire(30, &k), 0u);
  EXPECT_EQ(t.acquire(40, &k), 0u);  // full
  EXPECT_EQ(k, kNone);
}

TEST(HttpPending, PreviousProcessTokensDoNotMatch) {
  worker::http::PendingTable<int> old_process(4, 1u << 20), new_process(4, 2u << 20);
  uint32_t i = kNone, j = kNone;
  uint64_t old_tok = old_process.acquire(1, &i);
  new_process.acquire(1, &j);
  ASSERT_EQ(i, j);
  EXPECT_EQ(new_process.lookup(old_tok), kNone);
  worker::http::PendingTable<int> zero(1, 0);  // generation 0 is skipped: tokens are never 0
  EXPECT_NE(zero.acquire(1, &i), 0u);
}

// ---- configuration ------------------------------------------------------------------------------

TEST(HttpConfig, DefaultsKeepHttpOff) {
  conf::LoadResult r = conf::load_config_text(conf::default_config_text(), "shoal.conf");
  ASSERT_TRUE(r.ok());
  const conf::Config& c = r.config;
  EXPECT_FALSE(c.http_enabled);
  EXPECT_FALSE(c.https_enabled);
  ASSERT_EQ(c.http_listen.size(), 2u);
  EXPECT_EQ(c.http_listen[0].text, "0.0.0.0:6969");
  EXPECT_EQ(c.https_listen[1].text, "[::]:6970");
  EXPECT_EQ(c.http_max_connections, conf::Config{}.http_max_connections);
  EXPECT_EQ(c.http_idle_timeout, 15u);
  EXPECT_EQ(c.http_max_header_bytes, 4096u);
  EXPECT_EQ(c.http_max_scrape_hashes, 64u);
  EXPECT_TRUE(c.http_real_ip_header.empty());
  EXPECT_TRUE(c.http_trusted_proxies.empty());
}

TEST(HttpConfig, CrossChecks) {
  EXPECT_EQ(errors_of("https: { enabled = true; };"),
            (Lines{"t.conf:1: https.certificate: must name a PEM file while https.enabled is true",
                   "t.conf:1: https.private_key: must name a PEM file while https.enabled is true"}));
  EXPECT_EQ(errors_of("http: {\n enabled = true;\n listen = [ ];\n};"),
            Lines{"t.conf:3: http.listen: must list at least one address while http.enabled is true"});
  EXPECT_EQ(errors_of("http: { real_ip_header = \"X-Real-IP\"; };"),
            Lines{"t.conf:1: http.real_ip_header: is read only from http.trusted_proxies, which is "
                  "empty; list the proxies"});
  EXPECT_EQ(errors_of("http: { listen = [ \"127.0.0.1:80\" ]; };\nhttps: { listen = [ \"127.0.0.1:80\" ]; };"),
            Lines{"t.conf:2: https.listen: \"127.0.0.1:80\" is in both http.listen and https.listen"});
  EXPECT_EQ(errors_of("ws: { listen = [ \"127.0.0.1:81\" ]; };\nwss: { listen = [ \"127.0.0.1:81\" ]; };"),
            Lines{"t.conf:2: wss.listen: \"127.0.0.1:81\" is in both ws.listen and wss.listen"});
  EXPECT_EQ(errors_of("wss: { enabled = true; listen = [ \"127.0.0.1:82\" ]; };"),
            (Lines{"t.conf:1: https.certificate: must name a PEM file while wss.enabled is true",
                   "t.conf:1: https.private_key: must name a PEM file while wss.enabled is true"}));
  EXPECT_EQ(errors_of("udp: { enabled = false; };\nws: { enabled = true; listen = [ \"127.0.0.1:83\" ]; };"), Lines{});
  EXPECT_EQ(errors_of("http: { real_ip_header = \"X Forwarded\"; trusted_proxies = [ \"::1\" ]; };"),
            Lines{"t.conf:1: http.real_ip_header: must be an HTTP header name such as "
                  "\"X-Forwarded-For\", got \"X Forwarded\""});
  EXPECT_EQ(errors_of("http: { max_scrape_hashes = 75; };"),
            Lines{"t.conf:1: http.max_scrape_hashes: must be between 1 and 74, got 75"});
}

TEST(HttpConfig, TrustedProxiesReportEachBadElement) {
  EXPECT_EQ(errors_of("http: { trusted_proxies = (\n \"10.0.0.0/8\",\n \"10.0.0.0/40\",\n 5 ); };"),
            (Lines{"t.conf:3: http.trusted_proxies: \"10.0.0.0/40\": bad prefix length \"40\" (must be 0 "
                   "to 32)",
                   "t.conf:4: http.trusted_proxies: element 3: expected a string, got an integer"}));
  conf::LoadResult r = conf::load_config_text(
      "http: { real_ip_header = \"X-Forwarded-For\"; trusted_proxies = [ \"127.0.0.1\", \"fd00::/8\" ]; };", "t");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.config.http_trusted_proxies.size(), 2u);
  EXPECT_EQ(r.config.http_trusted_proxies[1].text, "fd00::/8");
  EXPECT_EQ(r.config.http_real_ip_header, "X-Forwarded-For");
}

// ---- TLS ----------------------------------------------------------------------------------------

class HttpTls : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // Writes a fresh self-signed P-256 certificate and key; returns {cert path, key path}.
  std::pair<std::string, std::string> make_pair(const std::string& name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, key, EVP_sha256());
    std::string cert = dir_ + "/" + name + ".crt", priv = dir_ + "/" + name + ".key";
    FILE* f = fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(priv.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return {cert, priv};
  }

  std::string dir_;
};

TEST_F(HttpTls, ContextPolicy) {
  auto [cert, key] = make_pair("a");
  std::string why;
  SSL_CTX* ctx = worker::tls_make_server_context(cert, key, &why);
  ASSERT_NE(ctx, nullptr) << why;
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
  EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
  EXPECT_TRUE(SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    EXPECT_TRUE(SSL_CIPHER_is_aead(c)) << SSL_CIPHER_get_name(c);  // no CBC, RC4, 3DES
  }
  SSL_CTX_free(ctx);
}

TEST_F(HttpTls, LoadErrorsNameTheFile) {
  auto [cert, key] = make_pair("a");
  auto [cert2, key2] = make_pair("b");
  std::string garbage = dir_ + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  std::string why;
  EXPECT_EQ(worker::tls_make_server_context(dir_ + "/none.pem", key, &why), nullptr);
  EXPECT_EQ(why, "https.certificate " + dir_ + "/none.pem: cannot open: No such file or directory");
  EXPECT_EQ(worker::tls_make_server_context(garbage, key, &why), nullptr);
  EXPECT_EQ(why.rfind("https.certificate " + garbage + ": not a PEM certificate: ", 0), 0u) << why;
  EXPECT_EQ(worker::tls_make_server_context(cert, garbage, &why), nullptr);
  EXPECT_EQ(why.rfind("https.private_key " + garbage + ": not a PEM private key: ", 0), 0u) << why;
  EXPECT_EQ(worker::tls_make_server_context(cert, key2, &why), nullptr);
  EXPECT_EQ(why, "https.private_key " + key2 + ": does not match https.certificate " + cert);
  conf::Config cfg;
  cfg.https_enabled = true;
  cfg.https_certificate = cert;
  cfg.https_private_key = key;
  EXPECT_EQ(worker::tls_check_config(cfg), "");
  cfg.https_private_key = key2;
  EXPECT_NE(worker::tls_check_config(cfg), "");
}

TEST_F(HttpTls, ReloadSwapsOrKeepsTheContext) {
  auto [cert, key] = make_pair("a");
  std::string live_cert = dir_ + "/live.crt", live_key = dir_ + "/live.key";
  ASSERT_EQ(std::system(("cp '" + cert + "' '" + live_cert + "' && cp '" + key + "' '" + live_key + "'").c_str()), 0);
  worker::TlsContext tls(live_cert, live_key);
  SSL* before = tls.new_ssl();  // an "open connection" made from the first context
  ASSERT_NE(before, nullptr);
  std::string first = tls.fingerprint();
  auto [cert2, key2] = make_pair("b");
  ASSERT_EQ(std::system(("cp '" + cert2 + "' '" + live_cert + "' && cp '" + key2 + "' '" + live_key + "'").c_str()), 0);
  std::string why;
  ASSERT_TRUE(tls.reload(&why)) << why;
  std::string second = tls.fingerprint();
  EXPECT_NE(first, second);
  std::ofstream(live_cert) << "broken\n";
  EXPECT_FALSE(tls.reload(&why));
  EXPECT_EQ(tls.fingerprint(), second);  // kept
  EXPECT_NE(SSL_get_certificate(before), nullptr);  // the old connection's context is still alive
  SSL_free(before);
  EXPECT_THROW(worker::TlsContext(dir_ + "/missing.crt", live_key), std::runtime_error);
}

}  // namespace
}  // namespace shoal
