// worker/tls.hpp — TLS for the HTTPS tracker: builds OpenSSL server contexts from the configured
// certificate and key, and swaps in a new one on SIGHUP without touching open connections (each
// SSL object holds its own reference to the context it was made from). Runs in socket workers
// (and in the supervisor for the start-up check and `shoald -t`); touches no shared memory.
// Policy (docs/hardening.md A16): TLS 1.2 minimum, Mozilla "intermediate" ciphers for TLS 1.2 (ECDHE
// with AES-GCM or ChaCha20-Poly1305 only), the TLS 1.3 suites of https.ciphersuites, no
// renegotiation, no compression. The server's order of preference decides the suite
// (SSL_OP_CIPHER_SERVER_PREFERENCE), except that a client listing ChaCha20-Poly1305 first (one
// without AES instructions, e.g. many phones) gets it (SSL_OP_PRIORITIZE_CHACHA), as nginx and
// Cloudflare configure it: OpenSSL-based clients (node's TLS among them) list AES-256-GCM first,
// and AES-128-GCM costs ~30 % less CPU per byte with AES-NI (10 AES rounds instead of 14).
#pragma once
#include <openssl/ssl.h>

#include <string>

#include "conf/config.hpp"

namespace shoal::worker {

// The default of https.ciphersuites: AES-128-GCM first (cheapest with AES-NI), then ChaCha20 and
// AES-256-GCM (RFC 8446 section 9.1: TLS_AES_128_GCM_SHA256 is the one every TLS 1.3 peer has).
inline constexpr const char* kDefaultTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";

// Builds a server context and loads `certificate` (PEM chain, server certificate first) and
// `private_key` (PEM), checking that they match. Returns nullptr on failure with *why set to one
// line naming the setting and the file, e.g.
//   "https.certificate /etc/shoal/cert.pem: cannot open: No such file or directory".
// The caller owns the result (SSL_CTX_free).
// `ciphersuites`: TLS 1.3 suites in the server's order of preference (https.ciphersuites,
// OpenSSL's SSL_CTX_set_ciphersuites syntax); a list OpenSSL refuses fails with *why naming the
// setting.
SSL_CTX* tls_make_server_context(const std::string& certificate, const std::string& private_key,
                                 std::string* why, const std::string& ciphersuites = kDefaultTls13Suites);

// The check `shoald -t` and start-up run: "" when https is off or its certificate and key load;
// otherwise the problem, as tls_make_server_context words it.
std::string tls_check_config(const conf::Config& cfg);

// A socket worker's current server context. Not thread-safe (one per process).
class TlsContext {
 public:
  // Loads the files; throws std::runtime_error with tls_make_server_context's message.
  TlsContext(std::string certificate, std::string private_key, std::string ciphersuites = kDefaultTls13Suites);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A new server-side SSL for one connection, from the current context; nullptr if OpenSSL
  // cannot allocate one. The caller owns it (bufferevent_openssl frees it with the connection).
  SSL* new_ssl();

  // Re-reads the same files into a new context and makes it current for new connections.
  // Connections already open keep theirs. On failure keeps the current context, sets *why and
  // returns false.
  bool reload(std::string* why);

  // SHA-256 fingerprint of the current certificate as lowercase hex, for log lines.
  std::string fingerprint() const;

 private:
  std::string certificate_, private_key_, ciphersuites_;
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace shoal::worker
