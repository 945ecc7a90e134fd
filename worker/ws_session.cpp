// worker/ws_session.cpp — WebSocket framing, server side (RFC 6455 section 5) over libwslay's
// frame API; see the header.
#include "worker/ws_session.hpp"

#include <simdjson.h>
#include <wslay/wslay.h>

#include <cstring>
#include <utility>

namespace shoal::worker::ws {

namespace {

constexpr uint8_t kContinuation = WSLAY_CONTINUATION_FRAME, kText = WSLAY_TEXT_FRAME,
                  kBinary = WSLAY_BINARY_FRAME, kClose = WSLAY_CONNECTION_CLOSE, kPing = WSLAY_PING,
                  kPong = WSLAY_PONG;

void collect(void* ctx, std::string_view text) {
  static_cast<std::vector<std::string>*>(ctx)->emplace_back(text);
}

ssize_t no_send(const uint8_t*, size_t, int, void*) { return -1; }
ssize_t no_recv(uint8_t*, size_t, int, void*) { return -1; }
int no_mask(uint8_t*, size_t, void*) { return -1; }  // server frames are never masked (RFC 6455 5.1)

// The send side is one wslay frame context per thread, shared by every session of the thread:
// wslay_frame_send keeps state between calls only when its send callback takes less than it is
// given, and this callback takes everything (it appends to the session's output buffer), so the
// context is back at "next header" after each call. Sessions hold no send context of their own.
struct Sender {
  wslay_frame_context_ptr ctx = nullptr;
  std::string* out = nullptr;  // the output buffer of the frame being sent
  ~Sender() {
    if (ctx) wslay_frame_context_free(ctx);
  }
};
thread_local Sender tl_sender;

ssize_t append_out(const uint8_t* data, size_t len, int, void* user_data) {
  static_cast<Sender*>(user_data)->out->append(reinterpret_cast<const char*>(data), len);
  return static_cast<ssize_t>(len);
}

// Header bytes of a client frame as wslay accepts it (minimal length encoding, RFC 6455 5.2).
uint64_t header_bytes(uint64_t payload_length, bool masked) {
  return 2 + (payload_length < 126 ? 0 : payload_length < 65536 ? 2 : 8) + (masked ? 4 : 0);
}

// A frame header's size in bytes from its second byte (RFC 6455 5.2): 2, then 2 or 8 bytes of
// extended payload length (7-bit length 126 or 127), then the 4-byte masking key if MASK is set.
size_t header_size(uint8_t byte1) {
  uint8_t len7 = byte1 & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (byte1 & 0x80 ? 4 : 0);
}

// The payload length a header states (RFC 6455 5.2: network byte order after 126 / 127).
uint64_t header_payload_length(const uint8_t* h) {
  uint64_t len = h[1] & 0x7f;
  size_t ext = len == 126 ? 2 : len == 127 ? 8 : 0;
  if (ext != 0) len = 0;
  for (size_t i = 0; i < ext; i++) len = len << 8 | h[2 + i];
  return len;
}

// dst[i] = src[i] XOR key byte (i mod 4) (RFC 6455 5.3), `key` holding the 4 key bytes in
// memory order; 8 bytes per step (both halves of the 64-bit word are the same 4 bytes).
void unmask_copy(uint8_t* dst, const char* src, size_t n, uint32_t key) {
  uint64_t key8 = uint64_t(key) << 32 | key;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, src + i, 8);
    w ^= key8;
    std::memcpy(dst + i, &w, 8);
  }
  uint8_t k[4];
  std::memcpy(k, &key, 4);
  for (; i < n; i++) dst[i] = uint8_t(src[i]) ^ k[i & 3];
}

// The key for the payload byte n bytes further on (its bytes rotated by n mod 4).
uint32_t advance_key(uint32_t key, size_t n) {
  uint8_t k[4], r[4];
  std::memcpy(k, &key, 4);
  for (size_t j = 0; j < 4; j++) r[j] = k[(j + n) & 3];
  std::memcpy(&key, r, 4);
  return key;
}

}  // namespace

Session::Session(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

Session::~Session() {
  if (rctx_) wslay_frame_context_free(rctx_);
}

// One unmasked frame (FIN set) with `payload`, through the thread's wslay send context.
void Session::queue_frame(uint8_t opcode, std::string_view payload) {
  Sender& s = tl_sender;
  if (!s.ctx) {
    static const wslay_frame_callbacks cb = {append_out, no_recv, no_mask};
    if (wslay_frame_context_init(&s.ctx, &cb, &s) != 0) return void(s.ctx = nullptr);
  }
  wslay_frame_iocb io{};
  io.fin = 1;
  io.opcode = opcode;
  io.mask = 0;
  io.payload_length = payload.size();
  io.data = reinterpret_cast<const uint8_t*>(payload.data());
  io.data_length = payload.size();
  s.out = &out_;
  released_ = false;
  if (wslay_frame_send(s.ctx, &io) < 0) {  // cannot happen with append_out; start afresh if it did
    wslay_frame_context_free(s.ctx);
    s.ctx = nullptr;
  }
  s.out = nullptr;
}

bool Session::send_text(std::string_view text) {
  if (close_sent_) return false;
  queue_frame(kText, text);
  return true;
}

// Room for the usual header: 2 bytes and a 16-bit length (payloads of 126..65535 bytes, RFC
// 6455 5.2); other lengths move the payload once in end_text() (short messages: errors).
constexpr size_t kTextHeaderRoom = 4;

std::string* Session::begin_text() {
  if (close_sent_) return nullptr;
  text_at_ = out_.size();
  out_.append(kTextHeaderRoom, '\0');
  released_ = false;
  return &out_;
}

void Session::end_text() {
  size_t start = text_at_ + kTextHeaderRoom;
  uint64_t n = out_.size() - start;
  // The header of an unmasked, unfragmented text frame (RFC 6455 5.2): FIN + opcode 1, then the
  // payload length in 7 bits, or 126 + 16 bits, or 127 + 64 bits (network byte order).
  uint8_t h[10] = {uint8_t(0x80 | kText)};
  size_t hn = 2;
  if (n < 126) {
    h[1] = uint8_t(n);
  } else if (n < 65536) {
    h[1] = 126, h[2] = uint8_t(n >> 8), h[3] = uint8_t(n);
    hn = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = uint8_t(n >> (56 - 8 * i));
    hn = 10;
  }
  if (hn < kTextHeaderRoom) out_.erase(text_at_, kTextHeaderRoom - hn);
  else if (hn > kTextHeaderRoom) out_.insert(text_at_, hn - kTextHeaderRoom, '\0');
  std::memcpy(&out_[text_at_], h, hn);
}

void Session::close(uint16_t code, std::string_view reason) {
  if (close_sent_) return;
  if (reason.size() > 123) reason = reason.substr(0, 123);
  char c[125] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  if (!reason.empty()) std::memcpy(c + 2, reason.data(), reason.size());
  queue_frame(kClose, std::string_view(c, 2 + reason.size()));
  close_sent_ = true;
  code_sent_ = code;
}

// The client broke the protocol: close with `code`, read nothing more.
void Session::fail(uint16_t code, std::string_view reason) {
  close(code, reason);
  failed_ = true;
  read_enabled_ = false;
}

ssize_t Session::recv_cb(uint8_t* buf, size_t len, int, void* user_data) {
  auto* s = static_cast<Session*>(user_data);
  size_t n = s->serve(buf, len);
  if (n == 0) return -1;  // wslay_frame_recv then returns WSLAY_ERR_WANT_READ
  s->unreported_ += int64_t(n);
  return static_cast<ssize_t>(n);
}

size_t Session::serve(uint8_t* buf, size_t len) {
  auto& u = unmask_;
  size_t put = 0;
  while (put < len && src_n_ > 0 && unmask_n_ != kUnmaskStopped) {
    if (unmask_n_ == kUnmaskPayload) {
      size_t k = std::min(len - put, src_n_);
      if (u.pay.left < k) k = size_t(u.pay.left);
      unmask_copy(buf + put, src_, k, u.pay.key);
      put += k, src_ += k, src_n_ -= k;
      u.pay.key = advance_key(u.pay.key, k);
      if ((u.pay.left -= k) == 0) unmask_n_ = 0;
      continue;
    }
    size_t need = unmask_n_ < 2 ? 2 : header_size(u.hdr[1]);
    while (unmask_n_ < need && src_n_ > 0) {
      u.hdr[unmask_n_++] = uint8_t(*src_++), src_n_--;
      if (unmask_n_ == 2) need = header_size(u.hdr[1]);
    }
    if (unmask_n_ < need) break;  // the rest of the header comes with the next feed
    if (!(u.hdr[1] & 0x80)) {     // a client frame without a mask (RFC 6455 5.1): frames before it count
      unmask_n_ = kUnmaskStopped;
      break;
    }
    size_t out = need - 4;
    // wslay asks with at least 4,088 bytes of room (it asks only when it holds less than a
    // header's 8): a header that does not fit follows a payload served in this call.
    if (len - put < out) break;
    uint64_t payload = header_payload_length(u.hdr);
    uint32_t key;
    std::memcpy(&key, u.hdr + out, 4);
    u.hdr[1] &= 0x7f;
    std::memcpy(buf + put, u.hdr, out);
    put += out;
    unmask_n_ = 0;
    if (payload != 0) {
      u.pay.left = payload;
      u.pay.key = key;
      unmask_n_ = kUnmaskPayload;
    }
  }
  return put;
}

void Session::feed(const char* data, size_t n, MessageSink sink, void* ctx) {
  if (!read_enabled_ || n == 0) return;
  released_ = false;
  if (!rctx_) {
    static const wslay_frame_callbacks cb = {no_send, &Session::recv_cb, no_mask};
    if (wslay_frame_context_init(&rctx_, &cb, this) != 0) {
      rctx_ = nullptr;
      return fail(kCloseInternal, "out of memory");
    }
    unreported_ = 0;
  }
  src_ = data, src_n_ = n;
  while (read_enabled_) {
    wslay_frame_iocb io{};
    ssize_t r = wslay_frame_recv(rctx_, &io);
    if (r == WSLAY_ERR_WANT_READ) break;
    if (r < 0) {  // WSLAY_ERR_PROTO: a long control frame, a fragmented one, a bad length
      fail(kCloseProtocolError, "malformed frame");
      break;
    }
    on_chunk(&io, sink, ctx);
  }
  if (read_enabled_ && unmask_n_ == kUnmaskStopped) fail(kCloseProtocolError, "client frames must be masked");
  src_ = nullptr, src_n_ = 0;
}

void Session::feed(std::string_view bytes) { feed(bytes.data(), bytes.size(), &collect, &messages_); }

// One piece of a frame's payload from wslay_frame_recv (unmasked by serve(); the first piece of
// a frame also carries its header fields, checked here before any payload is kept; its MASK bit
// is the one serve() cleared, which checked it).
void Session::on_chunk(const void* iocb, MessageSink sink, void* ctx) {
  const auto& io = *static_cast<const wslay_frame_iocb*>(iocb);
  std::string_view piece(reinterpret_cast<const char*>(io.data), io.data_length);
  if (!in_frame_) {
    uint8_t opcode = io.opcode;
    bool control = opcode & 0x8;
    if (io.rsv != 0) return fail(kCloseProtocolError, "reserved bits set");
    if ((opcode > kBinary && opcode < kClose) || opcode > kPong) return fail(kCloseProtocolError, "unknown opcode");
    if (control && (!io.fin || io.payload_length > 125)) return fail(kCloseProtocolError, "malformed control frame");
    if (!control) {
      if (opcode == kContinuation && frag_opcode_ == 0) return fail(kCloseProtocolError, "continuation without a message");
      if (opcode != kContinuation && frag_opcode_ != 0) return fail(kCloseProtocolError, "new message inside a fragmented one");
      uint64_t total = io.payload_length + (opcode == kContinuation && frag_opcode_ == kText ? frag_.size() : 0);
      if (total > max_message_bytes_) return fail(kCloseTooBig, "message too big");
    }
    unreported_ -= int64_t(header_bytes(io.payload_length, io.mask));
    cur_opcode_ = opcode, cur_fin_ = io.fin;
    frame_left_ = io.payload_length;
    whole_ = io.data_length == io.payload_length;
    in_frame_ = true;
    if (opcode == kBinary) {  // answered at once; the payload (and continuations) are dropped
      close(kCloseUnsupported, "binary messages are not supported");
      if (!io.fin) frag_opcode_ = kBinary;
    }
  }
  unreported_ -= int64_t(piece.size());
  frame_left_ -= piece.size();
  if (!whole_) {  // keep the piece: the frame's payload is assembled here
    if (cur_opcode_ & 0x8) ctrl_.append(piece);
    else if (cur_opcode_ == kText || (cur_opcode_ == kContinuation && frag_opcode_ == kText)) frag_.append(piece);
  }
  if (frame_left_ != 0) return;
  in_frame_ = false;
  if (whole_) return end_frame(piece, sink, ctx);
  if (cur_opcode_ & 0x8) return end_frame(std::exchange(ctrl_, {}), sink, ctx);
  end_frame({}, sink, ctx);
}

// A frame is complete: `body` is its payload when it came whole (or a control frame's).
void Session::end_frame(std::string_view body, MessageSink sink, void* ctx) {
  switch (cur_opcode_) {
    case kClose: {
      if (body.size() == 1) return fail(kCloseProtocolError, "malformed close frame");
      close_received_ = true;
      read_enabled_ = false;
      code_received_ = kCloseNoStatus;
      if (body.size() >= 2) code_received_ = uint16_t(uint8_t(body[0]) << 8 | uint8_t(body[1]));
      if (!close_sent_) {  // echo the code (none if none came)
        if (body.size() >= 2) close(code_received_);
        else queue_frame(kClose, {}), close_sent_ = true, code_sent_ = kCloseNoStatus;
      }
      return;
    }
    case kPing:
      if (!close_sent_) queue_frame(kPong, body);
      return;
    case kPong:
    case kBinary:
      return;
    case kText:
      if (!cur_fin_) {
        if (whole_) frag_.assign(body);
        frag_opcode_ = kText;
        return;
      }
      if (!whole_) body = frag_;  // one frame, reported by wslay in pieces
      break;
    case kContinuation:
      if (whole_ && frag_opcode_ == kText) frag_.append(body);
      if (!cur_fin_) return;
      if (frag_opcode_ != kText) return void(frag_opcode_ = 0);
      body = frag_;
      break;
  }
  frag_opcode_ = 0;
  if (!simdjson::validate_utf8(body.data(), body.size())) return fail(kCloseBadPayload, "text is not UTF-8");
  sink(ctx, body);
  frag_.clear();  // keeps its capacity for the next message in pieces (freed when idle)
}

std::vector<std::string> Session::take_messages() { return std::exchange(messages_, {}); }

void Session::consume_output(size_t n) {
  out_pos_ += n;
  if (out_pos_ >= out_.size()) out_.clear(), out_pos_ = 0;
}

std::string Session::take_output() {
  std::string out = out_.substr(out_pos_);
  out_.clear(), out_pos_ = 0;
  return out;
}

bool Session::release_if_idle() {
  if (released_ || failed_ || close_sent_ || close_received_ || in_frame_ || unreported_ != 0 || unmask_n_ != 0 ||
      frag_opcode_ != 0 || out_pos_ < out_.size() || !messages_.empty())
    return false;
  if (rctx_) wslay_frame_context_free(rctx_), rctx_ = nullptr;
  unreported_ = 0;
  std::string().swap(frag_);
  std::string().swap(ctrl_);
  std::string().swap(out_);
  out_pos_ = 0;
  released_ = true;
  return true;
}

}  // namespace shoal::worker::ws
