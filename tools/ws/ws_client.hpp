// tools/ws/ws_client.hpp — the client side of one WebSocket connection for the load tools
// (tools/ws_load.cpp): a TCP connection from a chosen source address, optionally TLS (OpenSSL
// through libevent's bufferevent_openssl), the RFC 6455 section 4.1 opening handshake (GET with
// Upgrade, Sec-WebSocket-Key; the reply must be 101 with the matching Sec-WebSocket-Accept),
// then framing by libwslay's event API in client mode (every frame masked, RFC 6455 5.3; ping
// answered with pong and a close frame with a close, by wslay).
//
// Single-threaded, on the caller's event_base. A Client is reusable: after close() (or after the
// handler heard on_close) start() connects again. Handler callbacks run from libevent callbacks;
// on_message may call send_text() and close(); messages are delivered after wslay has finished
// reading, so closing from a callback is safe. Loopback targets only (parse_url refuses others).
#pragma once
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct bufferevent;
struct wslay_event_context;
struct wslay_event_on_msg_recv_arg;

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

/// TLS client context for wss: TLS 1.2+, SSL_MODE_RELEASE_BUFFERS (idle connections keep no
/// buffers). insecure: no certificate check; else the system trust store plus cafile (may be
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
  virtual void on_message(Client& c, std::string_view text) = 0;  // one text message
  virtual void on_close(Client& c, CloseCause cause, const char* detail) = 0;
};

class Client {
 public:
  // tls: nullptr for ws://. id is the owner's tag (returned by id()). mask_seed seeds the
  // masking-key generator (RFC 6455 5.3 wants unpredictable keys from a browser; a load tool
  // needs only distinct ones).
  Client(event_base* base, SSL_CTX* tls, Handler* handler, uint32_t id, uint64_t mask_seed);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Connects to url from `source` (nullptr: any) and sends the upgrade request. False (with
  // *error) if the socket could not even be created; later failures come as on_close.
  bool start(const Url& url, const sockaddr* source, socklen_t source_len, std::string* error);

  // Queues one text message (one masked frame) and hands it to the socket. False if not open.
  bool send_text(std::string_view text);

  // Drops the connection at once (no close handshake); no on_close follows. Idempotent.
  void close();

  bool connecting() const { return state_ == State::connecting; }
  bool is_open() const { return state_ == State::open; }
  uint32_t id() const { return id_; }
  uint16_t close_code() const { return close_code_; }
  // Bytes queued for the socket and not yet written (TLS: before encryption).
  size_t pending_output() const;

 private:
  enum class State : uint8_t { idle, connecting, open };
  void on_read();
  void on_event(short what);
  bool finish_handshake();
  void fail(CloseCause cause, const char* detail);
  void flush();
  static void read_cb(bufferevent* bev, void* self);
  static void event_cb(bufferevent* bev, short what, void* self);
  static ssize_t wslay_recv(wslay_event_context* ctx, uint8_t* buf, size_t len, int flags, void* self);
  static ssize_t wslay_send(wslay_event_context* ctx, const uint8_t* data, size_t len, int flags, void* self);
  static int wslay_genmask(wslay_event_context* ctx, uint8_t* buf, size_t len, void* self);
  static void wslay_msg(wslay_event_context* ctx, const wslay_event_on_msg_recv_arg* arg, void* self);

  event_base* base_;
  SSL_CTX* tls_;
  Handler* handler_;
  uint32_t id_;
  uint64_t mask_state_;
  State state_ = State::idle;
  bufferevent* bev_ = nullptr;
  wslay_event_context* ctx_ = nullptr;
  std::string accept_;                 // the Sec-WebSocket-Accept the server must send
  std::vector<std::string> inbox_;     // messages decoded by the current wslay_event_recv
  uint16_t close_code_ = 0;
};

}  // namespace shoal_load::ws
