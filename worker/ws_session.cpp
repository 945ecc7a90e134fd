// worker/ws_session.cpp — WebSocket framing over libwslay (RFC 6455 section 5); see the header.
#include "worker/ws_session.hpp"

#include <wslay/wslay.h>

#include <cstring>
#include <utility>

namespace shoal::worker::ws {

ssize_t Session::on_recv(wslay_event_context* ctx, uint8_t* buf, size_t len, int, void* self) {
  auto* s = static_cast<Session*>(self);
  size_t avail = s->in_.size() - s->in_pos_;
  if (avail == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = avail < len ? avail : len;
  std::memcpy(buf, s->in_.data() + s->in_pos_, n);
  s->in_pos_ += n;
  return static_cast<ssize_t>(n);
}

ssize_t Session::on_send(wslay_event_context*, const uint8_t* data, size_t len, int, void* self) {
  static_cast<Session*>(self)->out_.append(reinterpret_cast<const char*>(data), len);
  return static_cast<ssize_t>(len);
}

void Session::on_msg(wslay_event_context* ctx, const wslay_event_on_msg_recv_arg* arg,
                     void* self) {
  auto* s = static_cast<Session*>(self);
  // Ping, pong and close are answered by wslay itself; only data messages reach us.
  if (arg->opcode == WSLAY_TEXT_FRAME) {
    s->messages_.emplace_back(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
  } else if (arg->opcode == WSLAY_BINARY_FRAME) {
    static constexpr char kReason[] = "binary messages are not supported";
    wslay_event_queue_close(ctx, kCloseUnsupported, reinterpret_cast<const uint8_t*>(kReason),
                            sizeof kReason - 1);
  }
}

void Session::on_frame_start(wslay_event_context*, const wslay_event_on_frame_recv_start_arg* arg, void* self) {
  auto* s = static_cast<Session*>(self);
  s->in_frame_ = true;
  if (arg->opcode < 0x8) s->fragmented_ = !arg->fin;  // data or continuation frame; control frames interleave
  // Its size on the wire (RFC 6455 5.2): 2 bytes, the extended length (2 bytes for 126..65535,
  // 8 above), the 4-byte masking key of a client frame, the payload. A client that encodes a
  // length longer than needed makes this too small: its connection is then never released.
  uint64_t n = arg->payload_length;
  s->frame_bytes_ = 2 + (n < 126 ? 0 : n < 65536 ? 2 : 8) + 4 + n;
}

void Session::on_frame_end(wslay_event_context*, void* self) {
  auto* s = static_cast<Session*>(self);
  s->in_frame_ = false;
  s->framed_ += s->frame_bytes_;
}

bool Session::init() {
  wslay_event_callbacks cb{};
  cb.recv_callback = &Session::on_recv;
  cb.send_callback = &Session::on_send;
  cb.on_msg_recv_callback = &Session::on_msg;
  cb.on_frame_recv_start_callback = &Session::on_frame_start;
  cb.on_frame_recv_end_callback = &Session::on_frame_end;
  wslay_event_context_ptr ctx = nullptr;
  if (wslay_event_context_server_init(&ctx, &cb, this) != 0) return false;
  ctx_ = ctx;
  wslay_event_config_set_max_recv_msg_length(ctx_, max_message_bytes_);
  return true;
}

// The context is made when the first bytes come or go (ensure): a connection that only
// opened costs no wslay buffers.
Session::Session(size_t max_message_bytes) : released_(true), max_message_bytes_(max_message_bytes) {}

bool Session::ensure() {
  if (!released_) return ctx_ != nullptr;
  released_ = false;
  return init();
}

bool Session::release_if_idle() {
  // Every byte fed belongs to a completed frame: nothing (not even half a header) is inside wslay.
  if (ctx_ == nullptr || released_ || failed_ || in_frame_ || fragmented_ || fed_ != framed_) return false;
  if (in_pos_ != in_.size() || !out_.empty() || !messages_.empty()) return false;
  if (wslay_event_get_close_sent(ctx_) || wslay_event_get_close_received(ctx_) ||
      wslay_event_get_queued_msg_count(ctx_) != 0)
    return false;
  wslay_event_context_free(ctx_);
  ctx_ = nullptr;
  released_ = true;
  std::string().swap(in_);
  std::string().swap(out_);
  in_pos_ = 0;
  return true;
}

Session::~Session() {
  if (ctx_ != nullptr) wslay_event_context_free(ctx_);
}

void Session::pump() {
  if (ctx_ == nullptr || failed_) return;
  // wslay_event_recv reads until the recv callback would block; on a protocol error it has
  // already queued the close frame (1002, 1007 or 1009) and stops reading.
  if (wslay_event_want_read(ctx_) && wslay_event_recv(ctx_) != 0) failed_ = true;
  if (wslay_event_want_write(ctx_) && wslay_event_send(ctx_) != 0) failed_ = true;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
}

void Session::feed(std::string_view bytes) {
  if (!ensure() || !wslay_event_get_read_enabled(ctx_)) return;
  fed_ += bytes.size();
  in_.append(bytes);
  pump();
}

bool Session::send_text(std::string_view text) {
  if (!ensure() || wslay_event_get_close_sent(ctx_)) return false;
  wslay_event_msg msg{WSLAY_TEXT_FRAME, reinterpret_cast<const uint8_t*>(text.data()),
                      text.size()};
  if (wslay_event_queue_msg(ctx_, &msg) != 0) return false;
  pump();
  return true;
}

void Session::close(uint16_t code, std::string_view reason) {
  if (!ensure() || wslay_event_get_close_sent(ctx_)) return;
  if (reason.size() > 123) reason = reason.substr(0, 123);
  wslay_event_queue_close(ctx_, code, reinterpret_cast<const uint8_t*>(reason.data()),
                          reason.size());
  pump();
}

std::vector<std::string> Session::take_messages() { return std::exchange(messages_, {}); }

std::string Session::take_output() { return std::exchange(out_, {}); }

bool Session::done() const {
  if (released_) return false;  // idle, open
  if (ctx_ == nullptr || failed_) return true;
  return !wslay_event_want_read(ctx_) && !wslay_event_want_write(ctx_);
}

uint16_t Session::close_code_sent() const {
  if (ctx_ == nullptr || !wslay_event_get_close_sent(ctx_)) return 0;  // (none while released)
  return wslay_event_get_status_code_sent(ctx_);
}

uint16_t Session::close_code_received() const {
  if (ctx_ == nullptr || !wslay_event_get_close_received(ctx_)) return 0;
  return wslay_event_get_status_code_received(ctx_);
}

}  // namespace shoal::worker::ws
