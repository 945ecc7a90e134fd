// tools/ws/ws_client.hpp — the client side of WebSocket connections for the load tools
// (tools/ws_load.cpp), built to cost the generator as little as possible per message: a
// non-blocking socket from a chosen source address on an edge-triggered epoll loop (Loop),
// optionally TLS (OpenSSL in memory through shoald's worker::TlsStream in its client role, the
// socket I/O staying the loop's), the RFC 6455 section 4.1 opening handshake
// (GET with Upgrade, Sec-WebSocket-Key; the reply must be 101 with the matching
// Sec-WebSocket-Accept), then RFC 6455 section 5 framing done here:
//   - every frame sent is one masked text frame (RFC 6455 5.3: a 32-bit key from a per-
//     connection splitmix64, XORed over the payload while it is copied into the output);
//   - frames received must be unmasked (5.1: a server never masks) and at most kMaxMessage;
//     fragments are reassembled (5.4); ping is answered with a pong carrying its payload
//     (5.5.2); a close frame is answered with a close echoing its code (5.5.1) and ends the
//     connection (CloseCause::server_closed).
// Text is handed over as received; the caller validates it (ws_load parses every message with
// simdjson, which also checks UTF-8, RFC 6455 8.1).
//
// Output is batched: send_text() appends a frame to the connection's buffer and Loop writes
// each connection's buffer once per loop pass (TLS: encrypted in one go). Input: each readable
// socket gets one recv() per pass (again while it fills the buffer), and messages are handed
// out as views into the buffer (no copy, no allocation per message). With io_uring (shoald's
// worker::IoBatch; off with the environment variable WS_LOAD_NO_IO_URING) the recv()s of a pass
// are one system call and its send()s another: a generator pays per system call as the tracker
// does, and one that costs more per announce than the tracker measures itself, not the tracker.
//
// Single-threaded. Handler callbacks run from Loop::run(); on_message may call send_text() and
// close(). Loopback targets only (parse_url refuses others).
#pragma once
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "worker/io_batch.hpp"
#include "worker/tls_stream.hpp"

namespace shoal_load::ws {

/// A ws:// or wss:// URL. Host: an IPv4 literal in 127.0.0.0/8, "[::1]" or "localhost"
/// (taken as 127.0.0.1); port defaults to 80 (ws) / 443 (wss); path defaults to "/".
struct Url {
  bool tls = false;
  std::string host;        // as written, without brackets (for Host and TLS checks)
  uint16_t port = 0;
  std::string path = "/";
  sockaddr_storage addr{};  // the resolved loopback address
  socklen_t addr_len = 0;
  bool v6 = false;
};

/// Parses `text` into *out; false with a message in *error if malformed or not loopback.
bool parse_url(std::string_view text, Url* out, std::string* error);

/// TLS client context for wss: TLS 1.2+, TLS 1.3 suites in a browser's order (AES-128-GCM
/// first), SSL_MODE_RELEASE_BUFFERS (idle connections keep no buffers). insecure: no certificate check; else the system trust store plus cafile (may be
/// empty). nullptr with a message in *error on failure.
SSL_CTX* make_tls_context(bool insecure, const std::string& cafile, std::string* error);

/// Why a connection ended (Handler::on_close).
enum class CloseCause : uint8_t {
  connect_failed,    // TCP connect or TLS handshake failed, or closed before the 101 reply
  handshake_failed,  // the HTTP reply was not a valid 101 upgrade
  server_closed,     // the server sent a close frame (code in Client::close_code())
  disconnected,      // EOF or socket error after the upgrade, or a framing error
};

class Client;

/// What the owner of a Client implements.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void on_open(Client& c) = 0;                            // upgrade accepted
  // One text (or binary: `binary` set) message; the view is valid during the call only.
  virtual void on_message(Client& c, std::string_view text, bool binary) = 0;
  virtual void on_close(Client& c, CloseCause cause, const char* detail) = 0;
};

/// The epoll loop the clients of one generator share. run() waits for I/O, hands it to the
/// clients, writes what they queued, and calls `tick` every tick_ns, until stop().
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  void run(uint64_t tick_ns, const std::function<void()>& tick);
  void stop() { stop_ = true; }

 private:
  friend class Client;
  void want_flush(Client* c);
  void flush_all();
  void send_batch();  // the queued sends in one system call, then each result
  void recv_batch();  // the queued receives in one system call, then each connection's bytes
  int ep_;
  bool stop_ = false;
  std::vector<Client*> dirty_;  // clients with output queued this pass
  // io_uring (worker/io_batch.hpp): every readable socket's recv() of a pass in one system call,
  // every send() of a pass in another; null where io_uring is unavailable (or
  // WS_LOAD_NO_IO_URING is set): one system call each.
  std::unique_ptr<shoal::worker::IoBatch> batch_;
  struct Op {
    Client* client;
    uint32_t gen;  // Client::gen_ when queued: a connection closed meanwhile ignores the result
    size_t len;
  };
  std::vector<Op> ops_;  // the queued operations, by tag
  std::vector<shoal::worker::IoBatch::Result> results_;
  std::vector<char> slots_;  // receive buffers, one slot per queued receive
};

class Client {
 public:
  // tls: nullptr for ws://. id is the owner's tag (returned by id()). mask_seed seeds the
  // masking-key generator (RFC 6455 5.3 wants unpredictable keys from a browser; a load tool
  // needs only distinct ones).
  Client(Loop* loop, SSL_CTX* tls, Handler* handler, uint32_t id, uint64_t mask_seed);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects to url from `source` (nullptr: any) and sends the upgrade request once connected.
  // False (with *error) if the socket could not even be created; later failures come as on_close.
  bool start(const Url& url, const sockaddr* source, socklen_t source_len, std::string* error);

  // Queues one text message (one masked frame); it is written at the end of this loop pass.
  // False if not open.
  bool send_text(std::string_view text);

  // Drops the connection at once (no close handshake); no on_close follows. Idempotent.
  void close();

  bool connecting() const { return state_ != State::idle && state_ != State::open; }
  bool is_open() const { return state_ == State::open; }
  uint32_t id() const { return id_; }
  uint16_t close_code() const { return close_code_; }
  // Bytes queued for the socket and not yet written (frames, and TLS ciphertext).
  size_t pending_output() const;

 private:
  friend class Loop;
  enum class State : uint8_t { idle, connecting, tls_handshake, upgrading, open };
  // An epoll event: finishes a connect; true if the socket should be read.
  bool on_events(uint32_t events);
  bool progress_connect();
  void fail_tls();       // a TLS error ends the connection (OpenSSL's reason as the detail)
  void read_all();       // reads until the socket is empty or the connection ended
  // What a recv() of up to cap bytes into data gave (n bytes, or n < 0 with errno err): the
  // bytes are read, or the connection ends. True if the socket may hold more (data was filled).
  bool took_recv(const char* data, ssize_t n, int err, size_t cap);
  void fail_io(const char* detail);  // fail() as disconnected once open, else connect_failed
  // Bytes read from the socket (TLS: decrypted first); false if the connection ended.
  bool on_input(const char* data, size_t n);
  bool feed_plain(const char* data, size_t n);
  bool consume(const char* data, size_t len, size_t* used);
  bool finish_handshake(std::string_view head);
  bool read_frames(const char* data, size_t len, size_t* used);
  void queue_frame(uint8_t opcode, const void* payload, size_t n);
  bool flush();          // writes the output (send() each); false if the connection ended
  // The bytes to send now (TLS: queued frames encrypted first); false if the connection ended.
  bool next_output(std::string_view* out);
  // What a send of len bytes of next_output() did: n sent, or n < 0 with errno err.
  enum class Sent { all, partial, failed };
  Sent took_sent(ssize_t n, int err, size_t len);
  void fail(CloseCause cause, const char* detail);

  Loop* loop_;
  SSL_CTX* tls_;
  Handler* handler_;
  uint32_t id_;
  uint64_t mask_state_;
  State state_ = State::idle;
  int fd_ = -1;
  uint32_t gen_ = 0;      // counts connections closed: tells a batched result of an old one
  std::unique_ptr<shoal::worker::TlsStream> tls_io_;  // wss: OpenSSL between socket and frames
  bool dirty_ = false;    // in the loop's flush list
  std::string accept_;    // the Sec-WebSocket-Accept the server must send
  std::string in_;        // bytes read, not yet used (in_[in_pos_..])
  size_t in_pos_ = 0;
  std::string out_;       // bytes to write (out_[out_pos_..])
  size_t out_pos_ = 0;
  std::string frag_;      // a fragmented message being reassembled
  uint8_t frag_opcode_ = 0;
  uint16_t close_code_ = 0;
};

}  // namespace shoal_load::ws
