// worker/tls_stream.hpp — the TLS side of one server connection whose socket I/O the caller does
// itself (the WebSocket front-end's wss connections). OpenSSL's record layer reads ciphertext
// from the bytes the caller received and writes ciphertext into a buffer of this object (a BIO
// of its own, BIO_meth_new), so that:
//   - one recv() of up to the caller's buffer size feeds every record in it (no second read()
//     that only learns EAGAIN, as SSL_read on a socket BIO does under edge-triggered epoll);
//   - everything encrypted in one loop pass (several records, the handshake, session tickets)
//     leaves with one send(), instead of one write() per record.
// Not thread-safe; one per connection. TLS itself (versions, suites, certificate) comes from the
// SSL_CTX (worker/tls.hpp). The client role serves the bench's generator (tools/ws_load), whose
// connections want the same: one recv() per readable socket, one send() per pass.
#pragma once
#include <openssl/ssl.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace shoal::worker {

class TlsStream {
 public:
  // What a read step found.
  enum class Status { ok, want_more, closed };

  enum class Role { server, client };

  // Takes ownership of `ssl` (nullptr-safe: then every call fails), the server side of the
  // connection or (Role::client) the client side, whose first handshake() call writes the
  // ClientHello to pending_out(). Starts in idle mode (see set_busy).
  explicit TlsStream(SSL* ssl, Role role = Role::server);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* ssl() const { return ssl_; }
  bool ready() const { return ready_; }  // the handshake has finished

  // Bytes received from the socket, for the steps below to decrypt; end_input() after the last
  // step of this batch (bytes of an unfinished record are kept for the next batch).
  void begin_input(const char* data, size_t n);
  void end_input();

  // Drives the handshake with the input given so far: ok once it has finished (also when it
  // finished earlier), want_more while it needs more bytes, closed if it failed.
  Status handshake();

  // Decrypts application data into buf[0..cap): ok with *n > 0, want_more when the input holds
  // no further complete record, closed on the peer's close_notify or a TLS error.
  Status read(char* buf, size_t cap, size_t* n);

  // Encrypts `plain` (after the handshake) into the pending ciphertext; false on a TLS error.
  bool write(std::string_view plain);

  // Ciphertext waiting to be sent (handshake messages, tickets, encrypted data), and its removal
  // once sent.
  std::string_view pending_out() const { return std::string_view(out_).substr(out_pos_); }
  void consume_out(size_t n);

  // Busy mode keeps OpenSSL's record buffers (~34 KiB) and this object's output buffer between
  // reads and writes; idle mode (the start, and after a connection has been quiet) frees them
  // whenever they are empty (SSL_MODE_RELEASE_BUFFERS), so an idle connection holds none.
  void set_busy(bool busy);
  bool busy() const { return busy_; }

 private:
  static int bio_write(BIO* b, const char* data, int len);
  static int bio_read(BIO* b, char* data, int len);
  static long bio_ctrl(BIO* b, int cmd, long num, void* ptr);
  static BIO_METHOD* bio_method();

  SSL* ssl_;
  bool ready_ = false;
  bool busy_ = false;
  const char* in_ = nullptr;  // input not yet taken by OpenSSL (points into the caller's bytes or stash_)
  size_t in_n_ = 0;
  bool in_stash_ = false;     // in_ points into stash_
  std::string stash_;         // input of an unfinished batch (rare: OpenSSL takes all it is given)
  std::string out_;           // ciphertext to send, from out_pos_
  size_t out_pos_ = 0;
};

}  // namespace shoal::worker
