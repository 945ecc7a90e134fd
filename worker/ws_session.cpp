// worker/ws_session.cpp — WebSocket framing, server side (RFC 6455 section 5); see the header.
#include "worker/ws_session.hpp"

#include <endian.h>
#include <simdjson.h>

#include <cstring>
#include <utility>

namespace shoal::worker::ws {

namespace {

constexpr uint8_t kContinuation = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xa;

// XORs payload with the 4-byte masking key (RFC 6455 5.3), 8 bytes at a time.
void unmask(char* p, size_t n, const uint8_t key[4]) {
  uint32_t k32;
  std::memcpy(&k32, key, 4);
  uint64_t k64 = uint64_t(k32) << 32 | k32;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= k64;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

void collect(void* ctx, std::string_view text) {
  static_cast<std::vector<std::string>*>(ctx)->emplace_back(text);
}

}  // namespace

Session::Session(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

// One unmasked frame: FIN + opcode byte, the length (RFC 6455 5.2), payload a then b.
void Session::queue_frame(uint8_t first, std::string_view a, std::string_view b) {
  size_t n = a.size() + b.size();
  char h[10];
  size_t hn = 2;
  h[0] = static_cast<char>(first);
  if (n < 126) {
    h[1] = static_cast<char>(n);
  } else if (n < 65536) {
    h[1] = 126;
    uint16_t v = htobe16(static_cast<uint16_t>(n));
    std::memcpy(h + 2, &v, 2);
    hn = 4;
  } else {
    h[1] = 127;
    uint64_t v = htobe64(n);
    std::memcpy(h + 2, &v, 8);
    hn = 10;
  }
  out_.append(h, hn).append(a).append(b);
  released_ = false;
}

bool Session::send_text(std::string_view text) {
  if (close_sent_) return false;
  queue_frame(0x80 | kText, text);
  return true;
}

void Session::close(uint16_t code, std::string_view reason) {
  if (close_sent_) return;
  if (reason.size() > 123) reason = reason.substr(0, 123);
  char c[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  queue_frame(0x80 | kClose, std::string_view(c, 2), reason);
  close_sent_ = true;
  code_sent_ = code;
}

// The client broke the protocol: close with `code`, read nothing more.
void Session::fail(uint16_t code, std::string_view reason) {
  close(code, reason);
  failed_ = true;
  read_enabled_ = false;
}

void Session::feed(char* data, size_t n, MessageSink sink, void* ctx) {
  if (!read_enabled_ || n == 0) return;
  released_ = false;
  if (in_.empty()) {  // the common case: frames parsed where they were read
    size_t used = parse(data, n, sink, ctx);
    if (read_enabled_ && used < n) in_.assign(data + used, n - used);
    return;
  }
  in_.append(data, n);
  size_t used = parse(in_.data(), in_.size(), sink, ctx);
  if (!read_enabled_) in_.clear();
  else in_.erase(0, used);
}

void Session::feed(std::string_view bytes) {
  if (!read_enabled_ || bytes.empty()) return;
  released_ = false;
  in_.append(bytes);
  size_t used = parse(in_.data(), in_.size(), &collect, &messages_);
  if (!read_enabled_) in_.clear();
  else in_.erase(0, used);
}

// Frames from data[0..n); returns the bytes of the complete frames taken.
size_t Session::parse(char* data, size_t n, MessageSink sink, void* ctx) {
  size_t p = 0;
  while (read_enabled_ && n - p >= 2) {
    uint8_t b0 = static_cast<uint8_t>(data[p]), b1 = static_cast<uint8_t>(data[p + 1]);
    bool fin = b0 & 0x80;
    uint8_t opcode = b0 & 0x0f;
    bool control = opcode & 0x8;
    uint64_t len = b1 & 0x7f;
    if (b0 & 0x70) return fail(kCloseProtocolError, "reserved bits set"), p;
    if (!(b1 & 0x80)) return fail(kCloseProtocolError, "client frames must be masked"), p;
    if ((opcode > kBinary && opcode < kClose) || opcode > kPong) return fail(kCloseProtocolError, "unknown opcode"), p;
    if (control && (!fin || len > 125)) return fail(kCloseProtocolError, "malformed control frame"), p;
    size_t hdr = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0) + 4;
    if (n - p < hdr) break;
    if (len == 126) {
      uint16_t v;
      std::memcpy(&v, data + p + 2, 2);
      len = be16toh(v);
    } else if (len == 127) {
      uint64_t v;
      std::memcpy(&v, data + p + 2, 8);
      len = be64toh(v);
      if (len >> 63) return fail(kCloseProtocolError, "frame length out of range"), p;
    }
    if (!control) {
      if (opcode == kContinuation && frag_opcode_ == 0) return fail(kCloseProtocolError, "continuation without a message"), p;
      if (opcode != kContinuation && frag_opcode_ != 0) return fail(kCloseProtocolError, "new message inside a fragmented one"), p;
      uint64_t total = len + (opcode == kContinuation && frag_opcode_ == kText ? frag_.size() : 0);
      if (total > max_message_bytes_) return fail(kCloseTooBig, "message too big"), p;
    }
    if (n - p - hdr < len) break;  // the rest of this frame has not come yet
    char* payload = data + p + hdr;
    unmask(payload, size_t(len), reinterpret_cast<const uint8_t*>(data + p + hdr - 4));
    p += hdr + size_t(len);
    std::string_view body(payload, size_t(len));
    switch (opcode) {
      case kClose: {
        if (len == 1) return fail(kCloseProtocolError, "malformed close frame"), p;
        close_received_ = true;
        read_enabled_ = false;
        code_received_ = kCloseNoStatus;
        if (len >= 2) code_received_ = uint16_t(uint8_t(payload[0]) << 8 | uint8_t(payload[1]));
        if (!close_sent_) {  // echo the code (none if none came)
          if (len >= 2) close(code_received_);
          else queue_frame(0x80 | kClose, {}), close_sent_ = true, code_sent_ = kCloseNoStatus;
        }
        return p;
      }
      case kPing:
        if (!close_sent_) queue_frame(0x80 | kPong, body);
        break;
      case kPong:
        break;
      case kBinary:
        close(kCloseUnsupported, "binary messages are not supported");
        if (!fin) frag_opcode_ = kBinary;  // its continuation frames are dropped
        break;
      case kText:
        if (!fin) {
          frag_.assign(body);
          frag_opcode_ = kText;
          break;
        }
        if (!simdjson::validate_utf8(body.data(), body.size())) return fail(kCloseBadPayload, "text is not UTF-8"), p;
        sink(ctx, body);
        break;
      case kContinuation:
        if (frag_opcode_ == kText) frag_.append(body);
        if (!fin) break;
        if (frag_opcode_ == kText) {
          std::string msg = std::exchange(frag_, {});
          frag_opcode_ = 0;
          if (!simdjson::validate_utf8(msg.data(), msg.size())) return fail(kCloseBadPayload, "text is not UTF-8"), p;
          sink(ctx, msg);
        }
        frag_opcode_ = 0;
        break;
    }
  }
  return p;
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
  if (released_ || failed_ || close_sent_ || close_received_ || !in_.empty() || frag_opcode_ != 0 ||
      out_pos_ < out_.size() || !messages_.empty())
    return false;
  std::string().swap(in_);
  std::string().swap(frag_);
  std::string().swap(out_);
  out_pos_ = 0;
  released_ = true;
  return true;
}

}  // namespace shoal::worker::ws
