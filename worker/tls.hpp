// worker/tls.hpp — TLS for the HTTPS tracker: builds OpenSSL server contexts from the configured
// certificate and key, and swaps in a new one on SIGHUP without touching open connections (each
// SSL object holds its own reference to the context it was made from). Runs in socket workers
// (and in the supervisor for the start-up check and `shoald -t`); touches no shared memory.
// Policy (docs/hardening.md A16): TLS 1.2 minimum, Mozilla "intermediate" ciphers for TLS 1.2 (ECDHE
// with AES-GCM or ChaCha20-Poly1305 only), OpenSSL's TLS 1.3 suites, no renegotiation, no
// compression.
#pragma once
#include <openssl/ssl.h>

#include <string>

#include "conf/config.hpp"

namespace shoal::worker {

// Builds a server context and loads `certificate` (PEM chain, server certificate first) and
// `private_key` (PEM), checking that they match. Returns nullptr on failure with *why set to one
// line naming the setting and the file, e.g.
//   "https.certificate /etc/shoal/cert.pem: cannot open: No such file or directory".
// The caller owns the result (SSL_CTX_free).
SSL_CTX* tls_make_server_context(const std::string& certificate, const std::string& private_key,
                                 std::string* why);

// The check `shoald -t` and start-up run: "" when https is off or its certificate and key load;
// otherwise the problem, as tls_make_server_context words it.
std::string tls_check_config(const conf::Config& cfg);

// A socket worker's current server context. Not thread-safe (one per process).
class TlsContext {
 public:
  // Loads the files; throws std::runtime_error with tls_make_server_context's message.
  TlsContext(std::string certificate, std::string private_key);
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
  std::string certificate_, private_key_;
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace shoal::worker
