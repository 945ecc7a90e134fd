// tools/ws/ws_client.cpp — client WebSocket connections on an edge-triggered epoll loop (plain
// or OpenSSL), RFC 6455 opening handshake and framing; see the header.
#include "tools/ws/ws_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <endian.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <unistd.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <strings.h>

namespace shoal_load::ws {

namespace {

constexpr size_t kMaxHandshakeReply = 16384;
constexpr size_t kMaxMessage = 1 << 20;
constexpr size_t kReadChunk = 64 * 1024;  // read room per pass over one connection's socket
constexpr uint8_t kText = 0x1, kBinary = 0x2, kContinuation = 0x0, kClose = 0x8, kPing = 0x9, kPong = 0xa;

// The loop's buffers: bytes read (recv_buf, when not batched), decrypted (plain_buf), and an
// unfinished frame joined with what follows it (scratch); a connection keeps only the bytes of
// an unfinished frame between reads (most keep nothing: 16,000 of them fit).
std::vector<char> g_recv_buf(kReadChunk), g_plain_buf(kReadChunk), g_scratch;
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
  // TLS 1.3 suites in a browser's order (Chrome and Firefox offer AES-128-GCM first; OpenSSL's
  // default puts AES-256-GCM first). Servers that honour the client's order (shoald, node) pick it.
  SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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

Client::Client(Loop* loop, SSL_CTX* tls, Handler* handler, uint32_t id, uint64_t mask_seed)
    : loop_(loop), tls_(tls), handler_(handler), id_(id), mask_state_(mask_seed) {}

Client::~Client() { close(); }

void Client::close() {
  if (state_ != State::idle) ++gen_;  // batched operations of this connection are void now
  tls_io_.reset();
  if (fd_ >= 0) ::close(fd_);  // leaves the epoll set with it
  fd_ = -1, state_ = State::idle, frag_opcode_ = 0;
  in_.clear(), out_.clear(), frag_.clear();
  in_pos_ = out_pos_ = 0;
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
  if (connect(fd, reinterpret_cast<const sockaddr*>(&url.addr), url.addr_len) < 0 && errno != EINPROGRESS) {
    *error = std::string("connect: ") + strerror(errno);
    return ::close(fd), false;
  }
  fd_ = fd;
  if (tls_ != nullptr) {
    SSL* ssl = SSL_new(tls_);
    if (ssl == nullptr) return close(), *error = "SSL_new failed", false;
    if (url.v6 || url.host.find_first_not_of("0123456789.") == std::string::npos) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host == "localhost" ? "127.0.0.1" : url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, url.host.c_str());
      SSL_set1_host(ssl, url.host.c_str());
    }
    // The socket I/O stays ours (one recv() per readable socket, batched with the others; one
    // send() per pass): OpenSSL reads and writes memory (worker::TlsStream, client role).
    tls_io_ = std::make_unique<shoal::worker::TlsStream>(ssl, shoal::worker::TlsStream::Role::client);
    if (tls_io_->ssl() == nullptr) return close(), *error = "TLS setup failed", false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;  // once: edge-triggered, never changed
  ev.data.ptr = this;
  if (epoll_ctl(loop_->ep_, EPOLL_CTL_ADD, fd, &ev) < 0) {
    *error = std::string("epoll_ctl: ") + strerror(errno);
    return close(), false;
  }

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
  out_ = "GET " + url.path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(url.port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key64 +
         "\r\nSec-WebSocket-Version: 13\r\n\r\n";  // written once connected (and TLS is up)
  state_ = State::connecting;
  return true;
}

void Client::fail(CloseCause cause, const char* detail) {
  close();
  handler_->on_close(*this, cause, detail);
}

// The TCP connect has finished (or failed): starts the TLS handshake (its ClientHello goes at
// the end of this pass) or, for ws://, lets the upgrade request go. False if it failed.
bool Client::progress_connect() {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) return fail(CloseCause::connect_failed, strerror(err)), false;
  if (tls_io_ != nullptr) {
    state_ = State::tls_handshake;
    if (tls_io_->handshake() == shoal::worker::TlsStream::Status::closed) return fail_tls(), false;
  } else {
    state_ = State::upgrading;
  }
  loop_->want_flush(this);
  return true;
}

void Client::fail_io(const char* detail) {
  fail(state_ == State::open ? CloseCause::disconnected : CloseCause::connect_failed, detail);
}

void Client::fail_tls() {
  char detail[160] = "TLS handshake failed";
  if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, detail, sizeof detail);
  fail_io(detail);
}

bool Client::on_events(uint32_t events) {
  if (state_ == State::idle) return false;
  if (state_ == State::connecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return false;
    if (!progress_connect()) return false;
  }
  if ((events & EPOLLOUT) && pending_output() != 0) loop_->want_flush(this);  // room after EAGAIN
  return (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
}

void Client::read_all() {
  // Until a read leaves the socket empty (shorter than the buffer: edge-triggered, new bytes
  // bring a new event), EAGAIN, or the end of the connection.
  ssize_t n;
  do n = recv(fd_, g_recv_buf.data(), g_recv_buf.size(), 0);
  while (took_recv(g_recv_buf.data(), n, n < 0 ? errno : 0, g_recv_buf.size()));
}

bool Client::took_recv(const char* data, ssize_t n, int err, size_t cap) {
  if (n > 0) {
    uint32_t gen = gen_;
    return on_input(data, size_t(n)) && gen_ == gen && size_t(n) == cap;
  }
  if (n < 0 && (err == EAGAIN || err == EINTR)) return false;
  fail_io(n == 0 ? "connection closed" : strerror(err));
  return false;
}

bool Client::on_input(const char* data, size_t n) {
  if (tls_io_ == nullptr) return feed_plain(data, n);
  using St = shoal::worker::TlsStream::Status;
  shoal::worker::TlsStream* t = tls_io_.get();
  uint32_t gen = gen_;
  t->begin_input(data, n);
  St st = St::ok;
  if (state_ == State::tls_handshake) {
    st = t->handshake();
    if (st == St::ok) state_ = State::upgrading;  // the upgrade request may go now
  }
  size_t got = 0;
  while (st == St::ok && (st = t->read(g_plain_buf.data(), g_plain_buf.size(), &got)) == St::ok) {
    if (!feed_plain(g_plain_buf.data(), got) || gen_ != gen) return false;  // t is gone with the connection
  }
  t->end_input();
  if (st == St::closed) return fail_tls(), false;
  if (pending_output() != 0) loop_->want_flush(this);  // handshake bytes, the upgrade request
  return true;
}

// Plaintext from the connection: joined to an unfinished frame kept from before, read, and
// what is unfinished kept. False if the connection ended.
bool Client::feed_plain(const char* data, size_t n) {
  size_t used = 0;
  if (in_pos_ == in_.size()) {  // nothing kept: read in place
    in_.clear(), in_pos_ = 0;
    if (!consume(data, n, &used)) return false;
    in_.assign(data + used, n - used);
    return true;
  }
  std::vector<char>& s = g_scratch;
  size_t len = in_.size() - in_pos_;
  if (s.size() < len + n) s.resize(len + n);
  memcpy(s.data(), in_.data() + in_pos_, len);
  memcpy(s.data() + len, data, n);
  len += n;
  in_.clear(), in_pos_ = 0;
  if (!consume(s.data(), len, &used)) return false;
  in_.assign(s.data() + used, len - used);
  return true;
}

// The 101 reply, then frames; *used: the bytes of data taken. False if the connection ended.
bool Client::consume(const char* data, size_t len, size_t* used) {
  *used = 0;
  if (state_ == State::upgrading) {
    std::string_view head(data, len);
    size_t end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (len > kMaxHandshakeReply) return fail(CloseCause::handshake_failed, "reply headers too long"), false;
      return true;
    }
    if (!finish_handshake(head.substr(0, end + 4))) return false;
    *used = end + 4;
  }
  if (state_ != State::open) return true;
  return read_frames(data, len, used);
}

bool Client::finish_handshake(std::string_view head) {
  const char* why = nullptr;
  if (head.substr(0, 13) != "HTTP/1.1 101 ") {
    why = "reply is not 101 Switching Protocols";
  } else {
    why = "Sec-WebSocket-Accept missing or wrong";
    for (size_t p = head.find("\r\n"); p != std::string_view::npos && p + 2 < head.size(); p = head.find("\r\n", p + 2)) {
      std::string_view line = head.substr(p + 2);
      if (line.size() < 21 || strncasecmp(line.data(), "sec-websocket-accept:", 21) != 0) continue;
      size_t v = p + 2 + 21, e = head.find("\r\n", v);
      while (v < e && head[v] == ' ') ++v;
      while (e > v && head[e - 1] == ' ') --e;
      if (head.substr(v, e - v) == accept_) why = nullptr;
      break;
    }
  }
  if (why != nullptr) {
    std::string msg = std::string(why) + ": " + std::string(head.substr(0, head.find("\r\n")));
    fail(CloseCause::handshake_failed, msg.c_str());
    return false;
  }
  state_ = State::open;
  handler_->on_open(*this);
  return state_ == State::open;  // the handler may have closed it
}

// Frames from data[*used..len) (RFC 6455 5.2); an unfinished frame stays for the next read.
bool Client::read_frames(const char* data, size_t len, size_t* used) {
  size_t p = *used;
  while (len - p >= 2) {
    uint8_t b0 = uint8_t(data[p]), b1 = uint8_t(data[p + 1]);
    bool fin = b0 & 0x80;
    uint8_t opcode = b0 & 0x0f;
    size_t hdr = 2;
    uint64_t n = b1 & 0x7f;
    if (n == 126) hdr += 2;
    else if (n == 127) hdr += 8;
    if (len - p < hdr) break;
    if (n == 126) {
      uint16_t v;
      memcpy(&v, data + p + 2, 2);
      n = be16toh(v);
    } else if (n == 127) {
      uint64_t v;
      memcpy(&v, data + p + 2, 8);
      n = be64toh(v);
    }
    const char* bad = nullptr;
    if (b0 & 0x70) bad = "WebSocket frame with RSV bits set";
    else if (b1 & 0x80) bad = "masked frame from the server";
    else if (n > kMaxMessage) bad = "WebSocket message too long";
    else if (opcode >= 0x8 && (!fin || n > 125)) bad = "malformed control frame";
    if (bad != nullptr) return fail(CloseCause::disconnected, bad), false;
    if (len - p - hdr < n) break;
    const char* payload = data + p + hdr;
    p += hdr + size_t(n);
    *used = p;
    switch (opcode) {
      case kText:
      case kBinary:
        if (frag_opcode_ != 0) return fail(CloseCause::disconnected, "new message inside a fragmented one"), false;
        if (!fin) {
          frag_.assign(payload, n), frag_opcode_ = opcode;
          continue;
        }
        handler_->on_message(*this, std::string_view(payload, n), opcode == kBinary);
        break;
      case kContinuation:
        if (frag_opcode_ == 0) return fail(CloseCause::disconnected, "continuation without a message"), false;
        if (frag_.size() + n > kMaxMessage) return fail(CloseCause::disconnected, "WebSocket message too long"), false;
        frag_.append(payload, n);
        if (!fin) continue;
        {
          std::string msg = std::move(frag_);
          uint8_t op = frag_opcode_;
          frag_.clear(), frag_opcode_ = 0;
          handler_->on_message(*this, msg, op == kBinary);
        }
        break;
      case kClose: {
        uint16_t code = 1005;  // RFC 6455 7.1.5: no status code present
        if (n >= 2) code = uint16_t(uint8_t(payload[0]) << 8 | uint8_t(payload[1]));
        close_code_ = code;
        uint8_t echo[2] = {uint8_t(code >> 8), uint8_t(code)};
        queue_frame(kClose, echo, n >= 2 ? 2 : 0);
        flush();
        if (state_ == State::idle) return false;
        char detail[64];
        snprintf(detail, sizeof detail, "server sent close %u", unsigned(code));
        fail(CloseCause::server_closed, detail);
        return false;
      }
      case kPing:
        queue_frame(kPong, payload, n);
        continue;
      case kPong:
        continue;
      default:
        return fail(CloseCause::disconnected, "unknown WebSocket opcode"), false;
    }
    if (state_ != State::open) return false;  // closed by the handler
  }
  return true;
}

// One masked frame (RFC 6455 5.2, 5.3) appended to the output.
void Client::queue_frame(uint8_t opcode, const void* payload, size_t n) {
  size_t at = out_.size();
  size_t hdr = 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + 4;
  out_.resize(at + hdr + n);
  char* h = out_.data() + at;
  h[0] = char(0x80 | opcode);
  if (n < 126) {
    h[1] = char(0x80 | n);
  } else if (n < 65536) {
    h[1] = char(0x80 | 126);
    uint16_t v = htobe16(uint16_t(n));
    memcpy(h + 2, &v, 2);
  } else {
    h[1] = char(0x80 | 127);
    uint64_t v = htobe64(n);
    memcpy(h + 2, &v, 8);
  }
  uint32_t key = uint32_t(splitmix(&mask_state_));
  memcpy(h + hdr - 4, &key, 4);
  uint64_t key8 = uint64_t(key) << 32 | key;  // the key repeats every 4 bytes
  const char* src = static_cast<const char*>(payload);
  char* dst = h + hdr;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= key8;
    memcpy(dst + i, &v, 8);
  }
  for (; i < n; ++i) dst[i] = char(src[i] ^ h[hdr - 4 + (i & 3)]);
}

bool Client::send_text(std::string_view text) {
  if (state_ != State::open) return false;
  if (tls_io_ != nullptr && !tls_io_->busy()) tls_io_->set_busy(true);  // keeps its buffers while it talks
  queue_frame(kText, text.data(), text.size());
  loop_->want_flush(this);
  return true;
}

size_t Client::pending_output() const {
  return out_.size() - out_pos_ + (tls_io_ != nullptr ? tls_io_->pending_out().size() : 0);
}

bool Client::next_output(std::string_view* out) {
  *out = {};
  if (state_ == State::idle || state_ == State::connecting) return true;
  if (tls_io_ == nullptr) {
    *out = std::string_view(out_).substr(out_pos_);
    return true;
  }
  // Frames (and the upgrade request) are encrypted once the handshake is done, and only while
  // no ciphertext is waiting for the socket.
  if (tls_io_->ready() && out_pos_ < out_.size() && tls_io_->pending_out().empty()) {
    if (!tls_io_->write(std::string_view(out_).substr(out_pos_))) return fail_tls(), false;
    out_.clear(), out_pos_ = 0;
  }
  *out = tls_io_->pending_out();
  return true;
}

Client::Sent Client::took_sent(ssize_t n, int err, size_t len) {
  if (n < 0) {
    if (err == EAGAIN || err == EINTR) return Sent::partial;  // the rest at the next EPOLLOUT edge
    fail_io("write failed");
    return Sent::failed;
  }
  if (tls_io_ != nullptr) {
    tls_io_->consume_out(size_t(n));
  } else if ((out_pos_ += size_t(n)) == out_.size()) {
    out_.clear(), out_pos_ = 0;
  }
  return size_t(n) == len ? Sent::all : Sent::partial;
}

bool Client::flush() {
  for (;;) {
    std::string_view out;
    if (!next_output(&out)) return false;
    if (out.empty()) return true;
    ssize_t r = send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    Sent sent = took_sent(r, r < 0 ? errno : 0, out.size());
    if (sent != Sent::all) return sent != Sent::failed;
  }
}

}  // namespace shoal_load::ws
