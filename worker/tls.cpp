// worker/tls.cpp — see tls.hpp. Server contexts for HTTPS: protocol floor, cipher policy,
// certificate loading with errors that name the file, and the reload swap. Runs at socket-worker
// start, on SIGHUP in socket workers, and once in the supervisor (start-up check, `shoald -t`).
#include "worker/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace shoal::worker {
namespace {

// Mozilla server-side TLS "intermediate" configuration (version 5.7), TLS 1.2 part: forward
// secrecy and AEAD only. TLS 1.3 suites are OpenSSL's defaults, which are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// The most specific OpenSSL error queued (the last one), as text; clears the queue.
std::string openssl_error() {
  unsigned long last = 0, e;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

// "" when `path` can be opened for reading, else "cannot open: <strerror>".
std::string open_problem(const std::string& path) {
  FILE* f = fopen(path.c_str(), "r");
  if (!f) return std::string("cannot open: ") + strerror(errno);
  fclose(f);
  return "";
}

bool fail(std::string* why, const char* setting, const std::string& path, const std::string& problem) {
  if (why) *why = std::string(setting) + " " + path + ": " + problem;
  return false;
}

// Applies the protocol and cipher policy; false (with *why) if OpenSSL refuses it.
bool apply_policy(SSL_CTX* ctx, const std::string& ciphersuites, std::string* why) {
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_PRIORITIZE_CHACHA);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);  // idle keep-alive connections hold no buffers
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    if (why) *why = "TLS policy: " + openssl_error();
    return false;
  }
  if (SSL_CTX_set_ciphersuites(ctx, ciphersuites.c_str()) != 1) {
    if (why) *why = "https.ciphersuites \"" + ciphersuites + "\": no TLS 1.3 suite OpenSSL knows (" + openssl_error() + ")";
    return false;
  }
  return true;
}

bool load_files(SSL_CTX* ctx, const std::string& cert, const std::string& key, std::string* why) {
  if (cert.empty()) return fail(why, "https.certificate", "\"\"", "no file configured");
  if (key.empty()) return fail(why, "https.private_key", "\"\"", "no file configured");
  std::string problem = open_problem(cert);
  if (!problem.empty()) return fail(why, "https.certificate", cert, problem);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return fail(why, "https.certificate", cert, "not a PEM certificate: " + openssl_error());
  problem = open_problem(key);
  if (!problem.empty()) return fail(why, "https.private_key", key, problem);
  FILE* f = fopen(key.c_str(), "r");
  EVP_PKEY* pkey = f ? PEM_read_PrivateKey(f, nullptr, nullptr, nullptr) : nullptr;
  if (f) fclose(f);
  if (!pkey) return fail(why, "https.private_key", key, "not a PEM private key: " + openssl_error());
  bool matches = SSL_CTX_use_PrivateKey(ctx, pkey) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(pkey);
  ERR_clear_error();
  if (!matches) return fail(why, "https.private_key", key, "does not match https.certificate " + cert);
  return true;
}

}  // namespace

SSL_CTX* tls_make_server_context(const std::string& certificate, const std::string& private_key,
                                 std::string* why, const std::string& ciphersuites) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    if (why) *why = "SSL_CTX_new: " + openssl_error();
    return nullptr;
  }
  if (!apply_policy(ctx, ciphersuites, why) || !load_files(ctx, certificate, private_key, why)) {
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return nullptr;
  }
  return ctx;
}

std::string tls_check_config(const conf::Config& cfg) {
  if (!cfg.https_enabled && !cfg.wss_enabled) return "";
  std::string why;
  SSL_CTX* ctx = tls_make_server_context(cfg.https_certificate, cfg.https_private_key, &why, cfg.https_ciphersuites);
  if (!ctx) return why;
  SSL_CTX_free(ctx);
  return "";
}

TlsContext::TlsContext(std::string certificate, std::string private_key, std::string ciphersuites)
    : certificate_(std::move(certificate)), private_key_(std::move(private_key)), ciphersuites_(std::move(ciphersuites)) {
  std::string why;
  ctx_ = tls_make_server_context(certificate_, private_key_, &why, ciphersuites_);
  if (!ctx_) throw std::runtime_error(why);
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

SSL* TlsContext::new_ssl() { return SSL_new(ctx_); }

bool TlsContext::reload(std::string* why) {
  SSL_CTX* fresh = tls_make_server_context(certificate_, private_key_, why, ciphersuites_);
  if (!fresh) return false;
  SSL_CTX_free(ctx_);  // drops our reference; open connections' SSL objects hold their own
  ctx_ = fresh;
  return true;
}

std::string TlsContext::fingerprint() const {
  X509* cert = SSL_CTX_get0_certificate(ctx_);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) return "?";
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; i++) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

}  // namespace shoal::worker
