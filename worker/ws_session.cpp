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
  size_t n = std::min(len, s->src_n_);
  if (n == 0) return -1;  // wslay_frame_recv then returns WSLAY_ERR_WANT_READ
  std::memcpy(buf, s->src_, n);
  s->src_ += n, s->src_n_ -= n, s->served_ += n;
  return static_cast<ssize_t>(n);
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
    served_ = consumed_ = 0;
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
  src_ = nullptr, src_n_ = 0;
}

void Session::feed(std::string_view bytes) { feed(bytes.data(), bytes.size(), &collect, &messages_); }

// One piece of a frame's payload from wslay_frame_recv (unmasked; the first piece of a frame
// also carries its header fields, checked here before any payload is kept).
void Session::on_chunk(const void* iocb, MessageSink sink, void* ctx) {
  const auto& io = *static_cast<const wslay_frame_iocb*>(iocb);
  std::string_view piece(reinterpret_cast<const char*>(io.data), io.data_length);
  if (!in_frame_) {
    uint8_t opcode = io.opcode;
    bool control = opcode & 0x8;
    if (io.rsv != 0) return fail(kCloseProtocolError, "reserved bits set");
    if (!io.mask) return fail(kCloseProtocolError, "client frames must be masked");
    if ((opcode > kBinary && opcode < kClose) || opcode > kPong) return fail(kCloseProtocolError, "unknown opcode");
    if (control && (!io.fin || io.payload_length > 125)) return fail(kCloseProtocolError, "malformed control frame");
    if (!control) {
      if (opcode == kContinuation && frag_opcode_ == 0) return fail(kCloseProtocolError, "continuation without a message");
      if (opcode != kContinuation && frag_opcode_ != 0) return fail(kCloseProtocolError, "new message inside a fragmented one");
      uint64_t total = io.payload_length + (opcode == kContinuation && frag_opcode_ == kText ? frag_.size() : 0);
      if (total > max_message_bytes_) return fail(kCloseTooBig, "message too big");
    }
    consumed_ += header_bytes(io.payload_length, io.mask);
    cur_opcode_ = opcode, cur_fin_ = io.fin;
    frame_left_ = io.payload_length;
    whole_ = io.data_length == io.payload_length;
    in_frame_ = true;
    if (opcode == kBinary) {  // answered at once; the payload (and continuations) are dropped
      close(kCloseUnsupported, "binary messages are not supported");
      if (!io.fin) frag_opcode_ = kBinary;
    }
  }
  consumed_ += piece.size();
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
  if (released_ || failed_ || close_sent_ || close_received_ || in_frame_ || served_ != consumed_ ||
      frag_opcode_ != 0 || out_pos_ < out_.size() || !messages_.empty())
    return false;
  if (rctx_) wslay_frame_context_free(rctx_), rctx_ = nullptr;
  served_ = consumed_ = 0;
  std::string().swap(frag_);
  std::string().swap(ctrl_);
  std::string().swap(out_);
  out_pos_ = 0;
  released_ = true;
  return true;
}

}  // namespace shoal::worker::ws
