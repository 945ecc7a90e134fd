// worker/ws_session.hpp — one WebSocket connection's framing (RFC 6455 section 5) after the
// opening handshake (worker/ws_handshake.hpp), server side.
//
// Frames are read and written by libwslay's frame API (wslay_frame_recv / wslay_frame_send: it
// parses and checks headers and cuts payloads into chunks); this class keeps what RFC 6455 asks
// above single frames: message assembly, the size cap, the rules wslay's frame layer leaves to
// its caller, and one UTF-8 check per message.
//
// Unmasking (RFC 6455 5.3) is done here, 8 bytes at a time, while wslay's receive callback copies
// the client's bytes into wslay's buffer: wslay 1.1 unmasks a byte per loop step (a modulo and a
// reload of its context per byte, ~1 ns/byte: about 5 us of an announce with 5 offers and their
// 5 answers), and it unmasks only frames whose header says masked. So the callback hands wslay
// each client frame as the same frame unmasked: the header with the MASK bit cleared and without
// the 4-byte masking key, then the payload XORed with that key. Reading a header's length
// (RFC 6455 5.2: 7 bits, or 16 or 64 after 126 or 127) is all this needs; wslay still parses and
// checks every header it is handed (control frame rules, minimal length encoding, 63 bits).
//
// How a front-end uses it (plain TCP or TLS alike; the session never touches a socket): bytes
// read from the connection go to feed(), which hands each complete text message to a sink as a
// view (into wslay's receive buffer when the message came in one piece: no copy of ours, no
// allocation per message); replies go in with send_text() (appended to the connection's output
// buffer by wslay's send callback, unmasked); the front-end writes output() to the connection
// and reports what went out with consume_output(). When done() is true the close
// handshake has finished (or the peer broke the protocol): write the last output, then close
// the socket. (feed(string_view) + take_messages() + take_output() are the same for callers
// that want copies: tests and fuzzing.)
//
// What is enforced (wslay's frame layer: control frames unfragmented and at most 125 bytes
// (5.5), minimal length encoding and a 63-bit length (5.2); this class: the rest):
//   - client frames must be masked (RFC 6455 5.1), RSV bits clear (5.2, no extension is
//     negotiated), opcodes known, control frames unfragmented and at most 125 bytes (5.5),
//     continuation frames only inside a fragmented message (5.4): else close 1002;
//   - messages longer than max_message_bytes get close 1009 (RFC 6455 7.4.1), also when the
//     excess only shows up across fragments;
//   - binary messages get close 1003 (unsupported data; WebTorrent trackers speak text);
//   - text that is not UTF-8 gets close 1007 (RFC 6455 8.1; checked by simdjson's SIMD
//     validator over the whole message, once);
//   - ping is answered with a pong carrying its payload (RFC 6455 5.5.2, 5.5.3);
//   - a close frame is answered with a close echoing its code (RFC 6455 5.5.1); after it, and
//     after a protocol error, further bytes are dropped.
// Not thread-safe; one Session per connection, owned by its socket worker.
#pragma once
#include <cstddef>
#include <cstdint>
#include <sys/types.h>
#include <string>
#include <string_view>
#include <vector>

struct wslay_frame_context;

namespace shoal::worker::ws {

inline constexpr size_t kDefaultMaxMessageBytes = 64 * 1024;  // one reassembled message

// RFC 6455 section 7.4.1 status codes used by the tracker.
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;      // drain / rolling restart
inline constexpr uint16_t kCloseProtocolError = 1002;  // unmasked or malformed frame
inline constexpr uint16_t kCloseUnsupported = 1003;    // binary message
inline constexpr uint16_t kCloseNoStatus = 1005;       // a close frame without a code (never sent)
inline constexpr uint16_t kCloseBadPayload = 1007;     // text not UTF-8
inline constexpr uint16_t kClosePolicy = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;         // message over the size cap
inline constexpr uint16_t kCloseInternal = 1011;       // out of memory for the frame context

class Session {
 public:
  // Called once per complete text message; the view is valid during the call only. The sink may
  // call send_text() and close() on this session, but must not destroy it.
  using MessageSink = void (*)(void* ctx, std::string_view text);

  // max_message_bytes: the largest reassembled message accepted, in bytes (> 0).
  explicit Session(size_t max_message_bytes = kDefaultMaxMessageBytes);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // False if a wslay frame context could not be allocated (out of memory): the connection then
  // got close 1011 and done() is true.
  bool ok() const { return !failed_ || code_sent_ != kCloseInternal; }

  // Decodes bytes received from the client: complete text messages go to sink(ctx, text),
  // automatic replies (pong, close) are queued. `data` is only read (wslay copies what it has
  // not parsed yet into its frame context, where an unfinished frame waits for the next call).
  // Bytes after the close handshake or a protocol error are dropped.
  void feed(const char* data, size_t n, MessageSink sink, void* ctx);
  // The same for a const buffer; messages are kept for take_messages().
  void feed(std::string_view bytes);

  // Queues one text message (one frame, unmasked as RFC 6455 5.1 requires of servers).
  // Returns false if the connection is closing (close sent).
  bool send_text(std::string_view text);
  // The same without a copy of the message: begin_text() returns the output buffer with room
  // for the frame header reserved, the caller appends the message text to it, then end_text()
  // writes the header (FIN, opcode text, no mask: RFC 6455 5.2) in front of what was appended.
  // begin_text() returns nullptr if the connection is closing (close sent). Nothing else may
  // touch the session between the two calls.
  std::string* begin_text();
  void end_text();
  // Queues bytes as they are (the opening handshake's reply, before any frame).
  void append_raw(std::string_view bytes) { out_.append(bytes), released_ = false; }

  // Starts the close handshake with `code` (RFC 6455 7.4.1) and an optional short reason
  // (at most 123 bytes, RFC 6455 5.5). Further send_text calls fail.
  void close(uint16_t code, std::string_view reason = {});

  // The complete text messages decoded by feed(string_view) so far, oldest first; forgotten.
  std::vector<std::string> take_messages();

  // The bytes to write to the client (frames), not yet consumed.
  std::string_view output() const { return std::string_view(out_).substr(out_pos_); }
  // n bytes of output() were written.
  void consume_output(size_t n);
  // output() as a string; the session forgets it.
  std::string take_output();

  // True when nothing more will be read or written: the close handshake is complete or the
  // client broke the protocol. The front-end writes output() and closes the socket.
  bool done() const { return failed_ || (close_sent_ && close_received_); }

  // Status code of the close frame sent / received, 0 if none yet (1005: received without one).
  uint16_t close_code_sent() const { return close_sent_ ? code_sent_ : 0; }
  uint16_t close_code_received() const { return close_received_ ? code_received_ : 0; }

  // Frees the wslay receive context (~4.2 KiB: its 4 KiB input buffer) and the buffers while the
  // connection is between messages: no frame or part of a header inside wslay, no fragmented
  // message in progress, nothing queued, no close begun. The next feed() makes a new context.
  // Returns whether it released anything (WebSocket connections are mostly idle between
  // announces: issue 10's memory per idle connection).
  bool release_if_idle();

 private:
  // wslay's recv callback (user_data: the Session): copies the bytes feed() has not handed out,
  // unmasked (serve()).
  static ssize_t recv_cb(uint8_t* buf, size_t len, int flags, void* user_data);
  // Copies at most len bytes of src_ to buf as wslay gets them: each frame's header without its
  // MASK bit and masking key, its payload unmasked. A header split across feeds waits in
  // unmask_.hdr. Stops (unmask_n_ = kUnmaskStopped) at a client frame without a mask.
  size_t serve(uint8_t* buf, size_t len);
  void on_chunk(const void* iocb, MessageSink sink, void* ctx);
  void end_frame(std::string_view body, MessageSink sink, void* ctx);
  void fail(uint16_t code, std::string_view reason);
  void queue_frame(uint8_t opcode, std::string_view payload);

  wslay_frame_context* rctx_ = nullptr;  // receive side; null before the first bytes and when idle
  const char* src_ = nullptr;            // bytes feed() has not handed to wslay yet
  size_t src_n_ = 0;
  // Bytes handed to wslay (as rewritten by serve()) that it has not reported yet as header or
  // payload of a frame: 0 when wslay holds nothing.
  int64_t unreported_ = 0;
  uint64_t frame_left_ = 0;  // payload bytes of the current frame not reported yet
  // serve()'s state: collecting a header (unmask_n_ < kUnmaskPayload: its bytes so far in hdr),
  // or handing out a payload (payload bytes left, and the masking key rotated so that its first
  // byte applies to the next payload byte).
  union {
    uint8_t hdr[14];
    struct {
      uint64_t left;
      uint32_t key;
    } pay;
  } unmask_{};
  bool in_frame_ = false;    // a frame's first payload chunk was reported, not its last
  bool whole_ = false;       // the current frame's payload came in one chunk (served as a view)
  uint8_t cur_opcode_ = 0, cur_fin_ = 0;
  std::string frag_;     // a text message being reassembled (unmasked): fragments, or one frame
                         // whose payload wslay reported in several chunks
  std::string ctrl_;     // a control frame's payload reported in several chunks (<= 125 bytes)
  std::string out_;      // frames produced; out_[out_pos_..] not yet written
  size_t out_pos_ = 0;
  size_t text_at_ = 0;   // begin_text(): where the reserved header starts in out_
  std::vector<std::string> messages_;  // feed(string_view)'s messages
  size_t max_message_bytes_;
  static constexpr uint8_t kUnmaskPayload = 0xff, kUnmaskStopped = 0xfe;
  uint8_t unmask_n_ = 0;     // header bytes in unmask_.hdr, or kUnmaskPayload / kUnmaskStopped
  uint8_t frag_opcode_ = 0;  // 0: no fragmented message; 1 text, 2 binary (dropped)
  bool read_enabled_ = true;
  bool failed_ = false;      // the client broke the protocol
  bool close_sent_ = false, close_received_ = false;
  bool released_ = true;     // no buffers held: before the first bytes, or freed while idle
  uint16_t code_sent_ = 0, code_received_ = 0;
};

}  // namespace shoal::worker::ws
