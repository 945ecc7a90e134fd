// tests/unit/tls_stream_test.cpp — worker::TlsStream (the wss connections' TLS) against an
// OpenSSL client in memory: handshake, data both ways whole and a byte at a time, close_notify,
// and the suite the server's preference (https.ciphersuites) picks for clients in different orders.
#include "worker/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "worker/tls.hpp"

namespace shoal {
namespace {

using worker::TlsStream;

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shoal-tls-stream-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("t"), -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, key, EVP_sha256());
    cert_ = dir_ + "/t.crt", key_ = dir_ + "/t.key";
    FILE* f = fopen(cert_.c_str(), "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key_.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
  }
  void TearDown() override {
    if (client_) SSL_free(client_);
    if (cctx_) SSL_CTX_free(cctx_);
    if (sctx_) SSL_CTX_free(sctx_);
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // A server stream and an in-memory client offering `client_suites` (TLS 1.3 only).
  void start(const char* client_suites, const std::string& server_suites = worker::kDefaultTls13Suites) {
    std::string why;
    sctx_ = worker::tls_make_server_context(cert_, key_, &why, server_suites);
    ASSERT_NE(sctx_, nullptr) << why;
    server_ = std::make_unique<TlsStream>(SSL_new(sctx_));
    cctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(cctx_, TLS1_3_VERSION);
    ASSERT_EQ(SSL_CTX_set_ciphersuites(cctx_, client_suites), 1);
    client_ = SSL_new(cctx_);
    to_client_ = BIO_new(BIO_s_mem()), from_client_ = BIO_new(BIO_s_mem());
    SSL_set_bio(client_, to_client_, from_client_);
    SSL_set_connect_state(client_);
  }

  // Moves the client's pending bytes to the server (in pieces of `piece` bytes, 0 = whole),
  // runs the server's handshake and reads, and returns the plaintext the server read.
  std::string client_to_server(size_t piece = 0) {
    char* data = nullptr;
    long n = BIO_get_mem_data(from_client_, &data);
    std::string bytes(data, size_t(n));
    (void)BIO_reset(from_client_);
    std::string plain;
    for (size_t at = 0; at < bytes.size() || at == 0;) {
      size_t len = piece ? std::min(piece, bytes.size() - at) : bytes.size();
      server_->begin_input(bytes.data() + at, len);
      at += len;
      TlsStream::Status st = server_->handshake();
      char buf[4096];
      size_t got = 0;
      while (st == TlsStream::Status::ok && (st = server_->read(buf, sizeof buf, &got)) == TlsStream::Status::ok)
        plain.append(buf, got);
      server_->end_input();
      last_status_ = st;
      if (bytes.empty()) break;
    }
    return plain;
  }

  // Moves the server's ciphertext to the client.
  void server_to_client() {
    std::string_view out = server_->pending_out();
    BIO_write(to_client_, out.data(), int(out.size()));
    server_->consume_out(out.size());
  }

  // Runs the handshake to its end (client and server).
  void handshake() {
    for (int i = 0; i < 4 && !(server_->ready() && SSL_is_init_finished(client_)); i++) {
      SSL_do_handshake(client_);
      client_to_server();
      server_to_client();
    }
    ASSERT_TRUE(server_->ready());
    ASSERT_TRUE(SSL_is_init_finished(client_));
  }

  std::string dir_, cert_, key_;
  SSL_CTX *sctx_ = nullptr, *cctx_ = nullptr;
  std::unique_ptr<TlsStream> server_;
  SSL* client_ = nullptr;
  BIO *to_client_ = nullptr, *from_client_ = nullptr;
  TlsStream::Status last_status_ = TlsStream::Status::ok;
};

TEST_F(TlsStreamTest, DataBothWaysAndCloseNotify) {
  start("TLS_AES_128_GCM_SHA256");
  handshake();
  std::string msg(40000, 'x');  // more than two records
  for (size_t i = 0; i < msg.size(); i++) msg[i] = char('a' + i % 26);
  ASSERT_EQ(SSL_write(client_, msg.data(), int(msg.size())), int(msg.size()));
  EXPECT_EQ(client_to_server(), msg);
  EXPECT_EQ(last_status_, TlsStream::Status::want_more);

  server_->set_busy(true);
  ASSERT_TRUE(server_->write("hello"));
  ASSERT_TRUE(server_->write(msg));
  EXPECT_GT(server_->pending_out().size(), msg.size());  // both in the one buffer, sent at once
  server_to_client();
  EXPECT_TRUE(server_->pending_out().empty());
  std::string got(msg.size() + 5, '\0');
  size_t n = 0;
  while (n < got.size()) {
    int r = SSL_read(client_, got.data() + n, int(got.size() - n));
    ASSERT_GT(r, 0);
    n += size_t(r);
  }
  EXPECT_EQ(got, "hello" + msg);

  SSL_shutdown(client_);
  EXPECT_EQ(client_to_server(), "");
  EXPECT_EQ(last_status_, TlsStream::Status::closed);
}

TEST_F(TlsStreamTest, RecordsSplitAcrossReadsAreKept) {
  start("TLS_AES_128_GCM_SHA256");
  handshake();
  std::string msg = "a message in pieces";
  ASSERT_EQ(SSL_write(client_, msg.data(), int(msg.size())), int(msg.size()));
  ASSERT_EQ(SSL_write(client_, msg.data(), int(msg.size())), int(msg.size()));
  EXPECT_EQ(client_to_server(7), msg + msg);  // 7-byte reads: every record arrives in pieces
  EXPECT_EQ(last_status_, TlsStream::Status::want_more);
}

TEST_F(TlsStreamTest, ClientRoleTalksToTheServerRole) {
  std::string why;
  sctx_ = worker::tls_make_server_context(cert_, key_, &why);
  ASSERT_NE(sctx_, nullptr) << why;
  cctx_ = SSL_CTX_new(TLS_client_method());
  TlsStream server(SSL_new(sctx_)), client(SSL_new(cctx_), TlsStream::Role::client);
  // Moves one side's ciphertext to the other and runs its handshake and reads.
  auto pass = [](TlsStream& from, TlsStream& to) {
    std::string bytes(from.pending_out());
    from.consume_out(bytes.size());
    to.begin_input(bytes.data(), bytes.size());
    std::string plain;
    TlsStream::Status st = to.handshake();
    char buf[4096];
    size_t got = 0;
    while (st == TlsStream::Status::ok && (st = to.read(buf, sizeof buf, &got)) == TlsStream::Status::ok)
      plain.append(buf, got);
    to.end_input();
    return plain;
  };
  EXPECT_EQ(client.handshake(), TlsStream::Status::want_more);
  EXPECT_FALSE(client.pending_out().empty());  // the ClientHello
  for (int i = 0; i < 3 && !(client.ready() && server.ready()); i++) {
    pass(client, server);
    pass(server, client);
  }
  ASSERT_TRUE(client.ready());
  ASSERT_TRUE(server.ready());
  ASSERT_TRUE(client.write("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(pass(client, server), "GET / HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(server.write("HTTP/1.1 101 Switching Protocols\r\n\r\n"));
  EXPECT_EQ(pass(server, client), "HTTP/1.1 101 Switching Protocols\r\n\r\n");
}

TEST_F(TlsStreamTest, GarbageIsAnErrorNotACrash) {
  start("TLS_AES_128_GCM_SHA256");
  BIO_write(from_client_, "GET / HTTP/1.1\r\n\r\n", 18);
  EXPECT_EQ(client_to_server(), "");
  EXPECT_EQ(last_status_, TlsStream::Status::closed);
}

TEST_F(TlsStreamTest, ServerOrderPicksAes128ForAnAes256FirstClient) {
  start("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");  // OpenSSL's own order
  handshake();
  EXPECT_STREQ(SSL_get_cipher_name(server_->ssl()), "TLS_AES_128_GCM_SHA256");
  EXPECT_STREQ(SSL_get_cipher_name(client_), "TLS_AES_128_GCM_SHA256");
}

TEST_F(TlsStreamTest, AChaChaFirstClientGetsChaCha) {
  start("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");  // a client without AES instructions
  handshake();
  EXPECT_STREQ(SSL_get_cipher_name(client_), "TLS_CHACHA20_POLY1305_SHA256");
}

TEST_F(TlsStreamTest, ConfiguredSuitesAreUsedAndBadOnesRefused) {
  start("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
  handshake();
  EXPECT_STREQ(SSL_get_cipher_name(client_), "TLS_AES_256_GCM_SHA384");
  std::string why;
  EXPECT_EQ(worker::tls_make_server_context(cert_, key_, &why, "TLS_NO_SUCH_SUITE"), nullptr);
  EXPECT_EQ(why.rfind("https.ciphersuites \"TLS_NO_SUCH_SUITE\": ", 0), 0u) << why;
}

}  // namespace
}  // namespace shoal
