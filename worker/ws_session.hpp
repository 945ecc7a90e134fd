// worker/ws_session.hpp — one WebSocket connection's framing (RFC 6455 section 5) after the
// opening handshake (worker/ws_handshake.hpp), on libwslay's event API in server mode.
//
// How a front-end uses it (plain TCP bufferevent or TLS alike; the session never touches a
// socket): bytes read from the connection go to feed(); complete text messages come out of
// take_messages() (fragments reassembled by wslay, RFC 6455 5.4); replies go in with
// send_text(); after every feed()/send_text()/close() the front-end writes take_output() to
// the connection. When done() is true the close handshake has finished (or the peer broke the
// protocol): write the last output, then close the socket.
//
// What wslay and this class enforce:
//   - client frames must be masked (RFC 6455 5.1): an unmasked frame gets close 1002;
//   - messages longer than max_message_bytes get close 1009 (RFC 6455 7.4.1);
//   - binary messages get close 1003 (unsupported data; WebTorrent trackers speak text);
//   - text that is not UTF-8 gets close 1007 (wslay checks it, RFC 6455 8.1);
//   - ping is answered with a pong carrying its payload (RFC 6455 5.5.2, 5.5.3);
//   - a close frame is answered with a close echoing its code (RFC 6455 5.5.1).
// Not thread-safe; one Session per connection, owned by its socket worker.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

struct wslay_event_context;
struct wslay_event_on_msg_recv_arg;
struct wslay_event_on_frame_recv_start_arg;

namespace shoal::worker::ws {

inline constexpr size_t kDefaultMaxMessageBytes = 64 * 1024;  // one reassembled message

// RFC 6455 section 7.4.1 status codes used by the tracker.
inline constexpr uint16_t kCloseNormal = 1000;
inline constexpr uint16_t kCloseGoingAway = 1001;      // drain / rolling restart
inline constexpr uint16_t kCloseProtocolError = 1002;  // unmasked or malformed frame
inline constexpr uint16_t kCloseUnsupported = 1003;    // binary message
inline constexpr uint16_t kCloseBadPayload = 1007;     // text not UTF-8
inline constexpr uint16_t kClosePolicy = 1008;
inline constexpr uint16_t kCloseTooBig = 1009;         // message over the size cap

class Session {
 public:
  // max_message_bytes: the largest reassembled message accepted, in bytes (> 0).
  explicit Session(size_t max_message_bytes = kDefaultMaxMessageBytes);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // False once the wslay context could not be created (out of memory); it is created with the
  // first bytes fed or sent.
  bool ok() const { return ctx_ != nullptr || released_; }

  // Hands bytes received from the client to the decoder; runs wslay until they are used up
  // and queues any automatic reply (pong, close). Bytes after the close handshake are dropped.
  void feed(std::string_view bytes);

  // Queues one text message (one frame, unmasked as RFC 6455 5.1 requires of servers).
  // Returns false if the connection is closing (close sent) or out of memory.
  bool send_text(std::string_view text);

  // Starts the close handshake with `code` (RFC 6455 7.4.1) and an optional short reason
  // (at most 123 bytes, RFC 6455 5.5). Further send_text calls fail.
  void close(uint16_t code, std::string_view reason = {});

  // The complete text messages decoded so far, oldest first; the session forgets them.
  std::vector<std::string> take_messages();

  // The bytes to write to the client (frames); the session forgets them.
  std::string take_output();

  // True when nothing more will be read or written: the close handshake is complete or the
  // connection failed. The front-end writes take_output() and closes the socket.
  bool done() const;

  // Status code of the close frame sent / received, 0 if none yet.
  uint16_t close_code_sent() const;
  uint16_t close_code_received() const;

  // Frees the libwslay context (about 8.8 KB of fixed buffers) and the byte buffers while the
  // connection is between messages: no frame half received, no fragmented message in progress,
  // nothing queued or unread, no close begun. The next feed()/send_text()/close() makes a fresh
  // context, which is equivalent there. Returns whether it released anything. (WebSocket
  // connections are mostly idle between announces: issue 10's memory per idle connection.)
  bool release_if_idle();

 private:
  void pump();
  static ssize_t on_recv(wslay_event_context* ctx, uint8_t* buf, size_t len, int flags,
                         void* self);
  static ssize_t on_send(wslay_event_context* ctx, const uint8_t* data, size_t len, int flags,
                         void* self);
  static void on_msg(wslay_event_context* ctx, const wslay_event_on_msg_recv_arg* arg,
                     void* self);
  static void on_frame_start(wslay_event_context* ctx, const wslay_event_on_frame_recv_start_arg* arg,
                             void* self);
  static void on_frame_end(wslay_event_context* ctx, void* self);
  bool init();     // a fresh context; false when out of memory
  bool ensure();   // the context exists again after release_if_idle()

  wslay_event_context* ctx_ = nullptr;
  std::string in_;       // bytes fed but not yet read by wslay
  size_t in_pos_ = 0;
  std::string out_;      // frames produced, not yet taken
  std::vector<std::string> messages_;
  bool failed_ = false;  // wslay reported a fatal error
  bool released_ = false;   // no context now: before the first bytes, or freed while idle
  bool in_frame_ = false;   // a frame started and has not ended
  bool fragmented_ = false; // a data message's last frame had FIN = 0
  uint64_t fed_ = 0;        // bytes given to feed() since the handshake
  uint64_t framed_ = 0;     // of them, bytes of the frames wslay completed (header + payload)
  uint64_t frame_bytes_ = 0;  // size of the frame being received
  size_t max_message_bytes_;
};

}  // namespace shoal::worker::ws
