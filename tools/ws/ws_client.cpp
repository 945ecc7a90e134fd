// tools/ws/ws_client.cpp — one client WebSocket connection over a bufferevent (plain or
// OpenSSL), RFC 6455 opening handshake, libwslay client framing; see the header.
#include "tools/ws/ws_client.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include <cerrno>
#include <cstring>
#include <strings.h>

namespace shoal_load::ws {

namespace {

constexpr size_t kMaxHandshakeReply = 16384;
constexpr size_t kMaxMessage = 1 << 20;
constexpr char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 section 1.3

uint64_t splitmix(uint64_t* s) {
  uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string base64(const unsigned char* data, size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, int(n));
  out.resize(size_t(len));
  return out;
}

}  // namespace

bool parse_url(std::string_view text, Url* out, std::string* error) {
  Url u;
  std::string_view rest;
  if (text.substr(0, 5) == "ws://") {
    rest = text.substr(5), u.port = 80;
  } else if (text.substr(0, 6) == "wss://") {
    rest = text.substr(6), u.tls = true, u.port = 443;
  } else {
    return *error = "the URL must start with ws:// or wss://", false;
  }
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  std::string_view port;
  if (!hostport.empty() && hostport[0] == '[') {
    size_t e = hostport.find(']');
    if (e == std::string_view::npos) return *error = "unclosed [ in the URL", false;
    u.host = std::string(hostport.substr(1, e - 1)), u.v6 = true;
    if (e + 1 < hostport.size()) {
      if (hostport[e + 1] != ':') return *error = "junk after ] in the URL", false;
      port = hostport.substr(e + 2);
    }
  } else {
    size_t c = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, c));
    if (c != std::string_view::npos) port = hostport.substr(c + 1);
  }
  if (!port.empty()) {
    unsigned long p = 0;
    for (char ch : port) {
      if (ch < '0' || ch > '9' || (p = p * 10 + unsigned(ch - '0')) > 65535) return *error = "bad port", false;
    }
    if (p == 0) return *error = "bad port", false;
    u.port = uint16_t(p);
  }
  std::string lit = u.host == "localhost" ? "127.0.0.1" : u.host;
  if (u.v6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&u.addr);
    if (inet_pton(AF_INET6, lit.c_str(), &a6->sin6_addr) != 1 || !IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
      return *error = "only 127.0.0.0/8, [::1] and localhost are allowed", false;
    a6->sin6_family = AF_INET6, a6->sin6_port = htons(u.port), u.addr_len = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&u.addr);
    if (inet_pton(AF_INET, lit.c_str(), &a4->sin_addr) != 1 || (ntohl(a4->sin_addr.s_addr) >> 24) != 127)
      return *error = "only 127.0.0.0/8, [::1] and localhost are allowed", false;
    a4->sin_family = AF_INET, a4->sin_port = htons(u.port), u.addr_len = sizeof *a4;
  }
  *out = std::move(u);
  return true;
}

SSL_CTX* make_tls_context(bool insecure, const std::string& cafile, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return *error = "SSL_CTX_new failed", nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_default_verify_paths(ctx);
  if (!cafile.empty() && SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1) {
    SSL_CTX_free(ctx);
    return *error = "cannot load CA file " + cafile, nullptr;
  }
  return ctx;
}

Client::Client(event_base* base, SSL_CTX* tls, Handler* handler, uint32_t id, uint64_t mask_seed)
    : base_(base), tls_(tls), handler_(handler), id_(id), mask_state_(mask_seed) {}

Client::~Client() { close(); }

void Client::close() {
  if (bev_ != nullptr) bufferevent_free(bev_);  // BEV_OPT_CLOSE_ON_FREE: fd (and SSL) too
  if (ctx_ != nullptr) wslay_event_context_free(ctx_);
  bev_ = nullptr, ctx_ = nullptr, state_ = State::idle;
  inbox_.clear();
}

bool Client::start(const Url& url, const sockaddr* source, socklen_t source_len, std::string* error) {
  close();
  close_code_ = 0;
  int fd = socket(url.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return *error = std::string("socket: ") + strerror(errno), false;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source != nullptr) {  // the port is chosen at connect() from the 4-tuple: more ports
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, source, source_len) < 0) {
      *error = std::string("bind: ") + strerror(errno);
      return ::close(fd), false;
    }
  }
  if (tls_ != nullptr) {
    SSL* ssl = SSL_new(tls_);
    if (url.v6 || url.host.find_first_not_of("0123456789.") == std::string::npos) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host == "localhost" ? "127.0.0.1" : url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
      SSL_set1_host(ssl, url.host.c_str());
    }
    bev_ = bufferevent_openssl_socket_new(base_, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev_ != nullptr) bufferevent_openssl_set_allow_dirty_shutdown(bev_, 1);
  } else {
    bev_ = bufferevent_socket_new(base_, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (bev_ == nullptr) return ::close(fd), *error = "bufferevent_new failed", false;
  // libevent connects the bound socket and reports a refused or failed connect as an event.
  if (bufferevent_socket_connect(bev_, reinterpret_cast<const sockaddr*>(&url.addr), int(url.addr_len)) != 0) {
    *error = std::string("connect: ") + strerror(errno);
    return close(), false;
  }

  wslay_event_callbacks cb{};
  cb.recv_callback = &Client::wslay_recv;
  cb.send_callback = &Client::wslay_send;
  cb.genmask_callback = &Client::wslay_genmask;
  cb.on_msg_recv_callback = &Client::wslay_msg;
  if (wslay_event_context_client_init(&ctx_, &cb, this) != 0) return close(), *error = "wslay: no memory", false;
  wslay_event_config_set_max_recv_msg_length(ctx_, kMaxMessage);

  unsigned char key[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = splitmix(&mask_state_);
    memcpy(key + i, &r, 8);
  }
  std::string key64 = base64(key, sizeof key);
  std::string concat = key64 + kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(concat.data()), concat.size(), digest);
  accept_ = base64(digest, sizeof digest);
  std::string host = url.v6 ? "[" + url.host + "]" : url.host;
  std::string req = "GET " + url.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(url.port) +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key64 +
                    "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  bufferevent_setcb(bev_, &Client::read_cb, nullptr, &Client::event_cb, this);
  bufferevent_write(bev_, req.data(), req.size());  // sent once connected (and TLS is up)
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  state_ = State::connecting;
  return true;
}

size_t Client::pending_output() const {
  return bev_ != nullptr ? evbuffer_get_length(bufferevent_get_output(bev_)) : 0;
}

void Client::read_cb(bufferevent*, void* self) { static_cast<Client*>(self)->on_read(); }

void Client::event_cb(bufferevent*, short what, void* self) { static_cast<Client*>(self)->on_event(what); }

void Client::on_event(short what) {
  if (what & BEV_EVENT_CONNECTED) return;  // TLS handshake done; the request is already queued
  if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
  char detail[160] = "connection closed";
  unsigned long ssl_err = tls_ != nullptr ? bufferevent_get_openssl_error(bev_) : 0;
  if (ssl_err != 0 && ERR_GET_LIB(ssl_err) != 0) {  // lib 0: a system call's, not OpenSSL's
    ERR_error_string_n(ssl_err, detail, sizeof detail);
  } else if ((what & BEV_EVENT_ERROR) && EVUTIL_SOCKET_ERROR() != 0) {
    snprintf(detail, sizeof detail, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  }
  fail(state_ == State::open ? CloseCause::disconnected : CloseCause::connect_failed, detail);
}

void Client::fail(CloseCause cause, const char* detail) {
  close();
  handler_->on_close(*this, cause, detail);
}

bool Client::finish_handshake() {
  evbuffer* in = bufferevent_get_input(bev_);
  evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, nullptr);
  if (end.pos < 0) {
    if (evbuffer_get_length(in) > kMaxHandshakeReply) fail(CloseCause::handshake_failed, "reply headers too long");
    return false;
  }
  std::string head(size_t(end.pos) + 4, '\0');
  evbuffer_remove(in, head.data(), head.size());
  const char* why = nullptr;
  if (head.compare(0, 13, "HTTP/1.1 101 ") != 0) {
    why = "reply is not 101 Switching Protocols";
  } else {
    why = "Sec-WebSocket-Accept missing or wrong";
    for (size_t p = head.find("\r\n"); p != std::string::npos && p + 2 < head.size(); p = head.find("\r\n", p + 2)) {
      const char* line = head.c_str() + p + 2;
      if (strncasecmp(line, "sec-websocket-accept:", 21) != 0) continue;
      size_t v = p + 2 + 21, e = head.find("\r\n", v);
      while (v < e && head[v] == ' ') ++v;
      while (e > v && head[e - 1] == ' ') --e;
      if (head.compare(v, e - v, accept_) == 0) why = nullptr;
      break;
    }
  }
  if (why != nullptr) {
    std::string msg = std::string(why) + ": " + head.substr(0, head.find("\r\n"));
    fail(CloseCause::handshake_failed, msg.c_str());
    return false;
  }
  state_ = State::open;
  handler_->on_open(*this);
  return state_ == State::open;  // the handler may have closed it
}

void Client::on_read() {
  if (state_ == State::connecting && !finish_handshake()) return;
  if (state_ != State::open) return;
  int rv = wslay_event_recv(ctx_);
  std::vector<std::string> msgs;
  msgs.swap(inbox_);
  for (const std::string& m : msgs) {
    handler_->on_message(*this, m);
    if (state_ != State::open) return;  // closed by the handler
  }
  if (rv != 0) return fail(CloseCause::disconnected, "WebSocket framing error from the server");
  flush();
}

void Client::flush() {
  if (ctx_ == nullptr) return;
  if (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) != 0) {
    return fail(CloseCause::disconnected, "wslay send failed");
  }
  if (!wslay_event_want_read(ctx_) && !wslay_event_want_write(ctx_)) {
    close_code_ = wslay_event_get_close_received(ctx_) ? wslay_event_get_status_code_received(ctx_) : 0;
    char detail[64];
    snprintf(detail, sizeof detail, "server sent close %u", unsigned(close_code_));
    fail(CloseCause::server_closed, detail);
  }
}

bool Client::send_text(std::string_view text) {
  if (state_ != State::open || wslay_event_get_close_sent(ctx_)) return false;
  wslay_event_msg msg{WSLAY_TEXT_FRAME, reinterpret_cast<const uint8_t*>(text.data()), text.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return false;
  flush();
  return true;
}

ssize_t Client::wslay_recv(wslay_event_context* ctx, uint8_t* buf, size_t len, int, void* self) {
  auto* c = static_cast<Client*>(self);
  int n = evbuffer_remove(bufferevent_get_input(c->bev_), buf, len);
  if (n <= 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  return n;
}

ssize_t Client::wslay_send(wslay_event_context* ctx, const uint8_t* data, size_t len, int, void* self) {
  if (bufferevent_write(static_cast<Client*>(self)->bev_, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return ssize_t(len);
}

int Client::wslay_genmask(wslay_event_context*, uint8_t* buf, size_t len, void* self) {
  auto* c = static_cast<Client*>(self);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t r = splitmix(&c->mask_state_);
    memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
  }
  return 0;
}

void Client::wslay_msg(wslay_event_context*, const wslay_event_on_msg_recv_arg* arg, void* self) {
  // Ping and close are answered by wslay; a binary message is kept so the owner counts it.
  if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    static_cast<Client*>(self)->inbox_.emplace_back(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
  }
}

}  // namespace shoal_load::ws
