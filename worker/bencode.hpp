// worker/bencode.hpp — bencode writer (BEP 3, "bencoding") into a fixed caller buffer, used by
// the HTTP tracker codec (worker/http_codec.cpp) to build announce, scrape and failure bodies.
// Runs in the socket worker on every HTTP reply; header-only. No allocation, no exceptions, no
// shm. Each item (integer, string, key, container byte) is written whole or not at all, and
// overflow is sticky: after the first item that does not fit nothing more is written and
// finish() returns 0, so a caller can never send a truncated body.
// Dict keys MUST be written by the caller in strictly increasing raw byte order (BEP 3: "keys
// must be strings and appear in sorted order (sorted as raw strings, not alphanumerics)"). Debug
// builds assert it; release builds trust the caller.
#pragma once
#include <cassert>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace shoal::worker::http {

// Usage:  BencodeWriter w(buf, cap); w.dict_begin(); w.key("interval"); w.integer(1800);
//         w.dict_end(); size_t n = w.finish();   // "d8:intervali1800ee", or 0
class BencodeWriter {
 public:
  // Deepest container nesting supported. Deeper nesting is a caller bug: it asserts in debug
  // builds and marks the writer failed (overflow() true) in release builds.
  static constexpr int kMaxDepth = 8;

  // buf may be nullptr only when cap == 0. Nothing is NUL-terminated.
  BencodeWriter(char* buf, size_t cap) : buf_(buf), cap_(cap) {}

  void dict_begin() { open('d', kDict); }
  void list_begin() { open('l', kList); }
  void dict_end() { close(kDict); }
  void list_end() { close(kList); }

  // A dict key: "<len>:<bytes>". Must be greater (raw bytes, memcmp order; a proper prefix is
  // smaller) than the previous key of the same dict; asserted in debug builds.
  void key(std::string_view k) {
    assert(depth_ > 0 && stack_[depth_ - 1].kind == kDict && "key() outside a dict");
    assert(key_is_after_last(k) && "bencode dict keys must be written in sorted order");
    size_t at = write_string(k.data(), k.size());
    if (!overflow_ && depth_ > 0) {
      stack_[depth_ - 1].last_key_off = at;
      stack_[depth_ - 1].last_key_len = k.size();
      stack_[depth_ - 1].has_key = true;
    }
  }

  // "i<decimal>e"; INT64_MIN and 0 ("i0e") are written correctly, never "-0".
  void integer(int64_t v) {
    char tmp[24];
    tmp[0] = 'i';
    char* end = std::to_chars(tmp + 1, tmp + sizeof(tmp) - 1, v).ptr;
    *end++ = 'e';
    put(tmp, size_t(end - tmp));
  }

  // A byte string "<len>:<bytes>"; bytes may be binary and may be nullptr when len == 0.
  void string(const void* bytes, size_t len) { write_string(bytes, len); }
  void string(std::string_view s) { write_string(s.data(), s.size()); }

  size_t size() const { return len_; }  // bytes written so far
  // True once an item did not fit in cap (or the writer was misused: nesting deeper than
  // kMaxDepth, or an end that does not match the open container).
  bool overflow() const { return overflow_; }
  // Length of the finished body: every container closed and nothing overflowed; else 0.
  size_t finish() const { return (overflow_ || depth_ != 0) ? 0 : len_; }

 private:
  enum Kind : uint8_t { kDict, kList };
  struct Level {
    Kind kind;
    bool has_key;
    size_t last_key_off;  // where the previous key's bytes sit in buf_
    size_t last_key_len;
  };

  // Appends n bytes or, when they do not fit, nothing (and sets overflow_).
  bool put(const void* p, size_t n) {
    if (overflow_) return false;
    if (n > cap_ - len_) {
      overflow_ = true;
      return false;
    }
    if (n != 0) std::memcpy(buf_ + len_, p, n);
    len_ += n;
    return true;
  }

  // Writes "<len>:<bytes>" as one item; returns the offset of the payload bytes.
  size_t write_string(const void* bytes, size_t len) {
    char hdr[24];
    char* end = std::to_chars(hdr, hdr + sizeof(hdr) - 1, len).ptr;
    *end++ = ':';
    size_t hdr_len = size_t(end - hdr);
    if (overflow_ || hdr_len > cap_ - len_ || len > cap_ - len_ - hdr_len) {
      overflow_ = true;
      return len_;
    }
    put(hdr, hdr_len);
    size_t at = len_;
    put(bytes, len);
    return at;
  }

  void open(char c, Kind kind) {
    assert(depth_ < kMaxDepth && "bencode nesting deeper than kMaxDepth");
    if (depth_ >= kMaxDepth) {
      overflow_ = true;
      return;
    }
    stack_[depth_++] = Level{kind, false, 0, 0};
    put(&c, 1);
  }

  void close(Kind kind) {
    assert(depth_ > 0 && stack_[depth_ - 1].kind == kind && "unbalanced bencode end");
    if (depth_ == 0 || stack_[depth_ - 1].kind != kind) {
      overflow_ = true;
      return;
    }
    --depth_;
    put("e", 1);
  }

  // Debug check: k sorts strictly after the previous key of the innermost dict. Not checkable
  // (and reported true) once overflowed, since that key may not be in the buffer.
  bool key_is_after_last(std::string_view k) const {
    if (overflow_ || depth_ == 0 || !stack_[depth_ - 1].has_key) return true;
    const Level& l = stack_[depth_ - 1];
    size_t n = k.size() < l.last_key_len ? k.size() : l.last_key_len;
    int c = n == 0 ? 0 : std::memcmp(k.data(), buf_ + l.last_key_off, n);
    return c > 0 || (c == 0 && k.size() > l.last_key_len);
  }

  char* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool overflow_ = false;
  int depth_ = 0;
  Level stack_[kMaxDepth] = {};
};

}  // namespace shoal::worker::http
