// worker/ws_frontend_impl.hpp — the WebTorrent front-end's class (private to worker/ws_*.cpp;
// API and behaviour: worker/ws_frontend.hpp). Connections: ws_frontend.cpp; their socket
// I/O: ws_frontend_io.cpp; messages, offers and answers: ws_messages.cpp.
#pragma once
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "worker/io_batch.hpp"
#include "worker/source_limiter.hpp"
#include "worker/tls.hpp"
#include "worker/tls_stream.hpp"
#include "worker/webtorrent_codec.hpp"
#include "worker/ws_frontend.hpp"
#include "worker/ws_session.hpp"

namespace shoal::worker {

namespace wt = webtorrent;

inline constexpr size_t kMaxSwarmsPerConn = 256;       // (info_hash, peer_id) pairs one connection holds
inline constexpr size_t kMaxAnnouncesInFlight = 16;    // per connection
inline constexpr uint64_t kCloseGraceMs = 2000;        // a closing connection's last chance to flush
inline constexpr size_t kMaxLeaveQueue = 1 << 16;      // stopped announces waiting for ring room
inline constexpr size_t kReadBuffer = 64 * 1024;  // one read() at most; a shorter read means the socket is empty
inline constexpr size_t kReadSlot = 16 * 1024;    // a batched receive's room (a full one is read on at once)
inline constexpr unsigned kBatchOps = 256;        // operations per io_uring submit
// Batched reads take at most kReadGroup connections at a time, and only while every request
// ring has room for kReadRoom more requests (a connection's read may hold up to
// kMaxAnnouncesInFlight announces): the rest wait in readable_ until responses have drained
// the rings to kReadRoomAfterWait free slots (after_responses), instead of getting "tracker
// busy" (TCP holds their bytes).
inline constexpr unsigned kReadGroup = 64;
inline constexpr uint64_t kReadRoom = uint64_t(kReadGroup) * kMaxAnnouncesInFlight;
inline constexpr uint64_t kReadRoomAfterWait = 1024;
// Output waits for the loop to find no socket ready (on_flush) at most about this long: 1 ms
// on libevent's timer clock (CLOCK_MONOTONIC_COARSE where the kernel has it: the timer fires up
// to one kernel tick early or late, 4 ms at HZ=250).
inline constexpr timeval kMaxWriteDelay{0, 1000};

class WsFrontend;

// One WebSocket connection.
struct WsConn {
  enum class State : uint8_t { handshake, open, closing };
  // A swarm the connection announced in: its peer there leaves when the connection closes.
  struct Swarm {
    wt::Id info_hash;
    wt::Id peer_id;
  };
  // An announce waiting for its swarm worker's reply, with the offers to forward then.
  struct Pending {
    uint32_t seq;
    wt::Id info_hash;
    wt::Id peer_id;
    bool stopped;
    std::vector<wt::Offer> offers;
    std::string sdp_text;  // the offers' texts (wt::Announce::sdp_text)
  };
  // An offer delivered to this connection, awaiting its answer.
  struct Delivered {
    wt::Id offer_id;
    wt::Id info_hash;
    wt::Id from_peer_id;
    RelayTarget from;
    uint64_t expires_ms;
  };

  WsFrontend* owner = nullptr;  // for the event callback
  uint32_t token = 0;
  int fd = -1;
  event* ev = nullptr;   // EV_READ | EV_WRITE | EV_ET | EV_PERSIST: added once, never changed
  std::unique_ptr<TlsStream> tls_io;  // wss: OpenSSL between the socket and the frames
  State state = State::handshake;
  bool tls = false;
  bool framed = false;       // the opening handshake succeeded: bytes are frames from now on
  bool dirty = false;        // in the front-end's list of connections with output to write
  bool read_queued = false;  // in the front-end's list of connections to read (io_uring)
  bool half_closed = false;  // closing: our side is shut down, waiting for the client's FIN
  uint8_t family = 4;  // of the client address
  uint8_t addr[16] = {};
  uint16_t port = 0;   // host order
  uint64_t source = 0; // source_key() of addr (worker/source_limiter.hpp)
  uint64_t created_ms = 0, last_ms = 0, closing_ms = 0;
  std::string handshake;                 // bytes of the opening handshake so far
  std::unique_ptr<ws::Session> session;  // framing, and the output buffer from the accept on
  std::vector<Swarm> swarms;
  std::vector<Pending> pending;
  std::vector<Delivered> delivered;      // oldest first, at most ws.max_pending_offers
  double relay_tokens = 0;               // bytes of offers/answers it may still have relayed
  uint64_t relay_refill_ms = 0;
  uint32_t next_seq = 1;
};

class WsFrontend final : public WsFrontendApi {
 public:
  WsFrontend(event_base* base, const conf::Config& cfg, RequestPath* path, shm::CounterBlock* counters,
             const std::vector<TcpListener>& listeners, WsIdentity self, std::unique_ptr<WsRelay> relay);
  ~WsFrontend() override;

  shm::Protocol protocol() const override { return shm::Protocol::ws; }
  PeerLimits peer_limits() const override { return {uint16_t(cfg_.ws_max_offers), uint16_t(cfg_.ws_max_offers)}; }
  void on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) override;
  void on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) override;
  void after_responses() override;
  void drain() override;
  bool idle() const override { return conns_.empty(); }
  uint64_t poll_relay() override;

 private:
  // ---- connections (ws_frontend.cpp)
  static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int len, void* arg);
  static void on_io(evutil_socket_t fd, short what, void* arg);
  static void on_flush(evutil_socket_t, short, void* arg);
  // Writes every connection's output, once (see on_flush).
  void flush_pass();
  static void on_read(evutil_socket_t, short, void* arg);
  static void on_sweep(evutil_socket_t, short, void* arg);
  static void on_hup(evutil_socket_t, short, void* arg);
  static void on_message(void* conn, std::string_view text);  // ws::Session's sink
  void accept_conn(evutil_socket_t fd, const sockaddr* sa, bool tls);
  // Reads until the socket has no more (edge-triggered); false if the connection was freed.
  bool read_conn(WsConn* c);
  // n bytes received from c's socket, decrypted (wss) and read; false on a TLS error.
  bool take_input(WsConn* c, char* data, size_t n);
  // After a connection's input: its handshake bytes queued, the pass's requests published; eof
  // (FIN, reset, TLS error) frees it. False if it was freed.
  bool after_input(WsConn* c, bool eof);
  // Receives the batch on_read queued and takes each connection's bytes.
  void recv_batch();
  void read_bytes(WsConn* c, char* data, size_t n);
  void read_handshake(WsConn* c, std::string_view bytes);
  void read_frames(WsConn* c, char* data, size_t n);
  // Sends one text message; false (and the connection is closing) if it cannot be sent.
  bool send_text(WsConn* c, std::string_view text);
  // The same, the message encoded straight into c's output buffer (no copy): begin_text()
  // returns the buffer to append the message's text to (nullptr if c is not open), end_text()
  // queues it; false (and the connection is closing) if it cannot be sent.
  std::string* begin_text(WsConn* c);
  bool end_text(WsConn* c);
  bool queued_text(WsConn* c);  // a message was queued: counts it, the write, the "not reading" cap
  // Queues c for the write at the end of this loop pass (one write per connection per pass).
  void mark_dirty(WsConn* c);
  // Writes c's output until done or EAGAIN; false if the connection was freed.
  bool flush_conn(WsConn* c);
  // The bytes c has to send now (wss: its waiting frames encrypted first); false if the
  // connection was freed (a TLS error).
  bool next_output(WsConn* c, std::string_view* out);
  // What a send of `len` bytes of next_output() did: n bytes sent, or n < 0 and errno `err`.
  enum class Sent { all, partial, freed };
  Sent took_sent(WsConn* c, ssize_t n, int err, size_t len);
  // Sends the batch on_flush queued and takes each result.
  void send_batch();
  // Whether c has bytes to write: frames, or (wss) ciphertext.
  static bool has_output(const WsConn* c);
  // wss: decrypts the n bytes just received and reads what they hold; false on a TLS error or
  // the client's close_notify.
  bool read_tls(WsConn* c, const char* data, size_t n);
  // Starts the close handshake (code per RFC 6455 7.4.1); the connection is freed once its
  // output is written or after kCloseGraceMs.
  void start_close(WsConn* c, uint16_t code, std::string_view reason);
  // A closing connection whose last bytes are out shuts down its sending side and waits (at
  // most kCloseGraceMs) for the client's FIN, reading and dropping what still arrives: closing
  // with unread input would send a RST that can destroy the close frame before it is read.
  void maybe_finish(WsConn* c);
  void free_conn(WsConn* c);  // its peers leave their swarms
  void leave_swarms(WsConn* c);
  void retry_leaves();
  WsConn* find(uint64_t token);
  uint64_t now_ms() const;

  // ---- messages (ws_messages.cpp)
  void handle_message(WsConn* c, std::string_view text);
  void handle_announce(WsConn* c, wt::Announce& a);
  void handle_answer(WsConn* c, const wt::Answer& a);
  void handle_scrape(WsConn* c, const wt::Scrape& s);
  void send_error(WsConn* c, std::string_view reason, std::string_view action, const wt::Id* info_hash);
  // Token bucket of relayed bytes (ws.relay_bytes_per_second, burst one second): takes n bytes.
  bool take_relay_budget(WsConn* c, size_t n);
  void forward(const RelayTarget& to, uint16_t kind, const RelayHead& head, std::string_view sdp);
  void deliver_offer(uint32_t token, const RelayHead& head, std::string_view sdp);
  void deliver_answer(uint32_t token, const RelayHead& head, std::string_view sdp);
  shm::ReplyContext context_of(const WsConn* c, uint32_t seq) const;

  event_base* base_;
  const conf::Config& cfg_;
  RequestPath* path_;
  shm::CounterBlock* counters_;
  WsIdentity self_;
  std::unique_ptr<WsRelay> relay_;
  std::unique_ptr<TlsContext> tls_;
  std::vector<evconnlistener*> listeners_;
  std::vector<evconnlistener*> tls_listeners_;  // of listeners_, the wss ones
  event* sweep_ = nullptr;
  event* hup_ = nullptr;
  event* flush_ev_ = nullptr;       // made active when a connection has output: runs once no socket is ready
  event* flush_deadline_ = nullptr; // armed when output starts waiting: writes it at the latest kMaxWriteDelay later
  std::vector<uint32_t> dirty_;     // tokens of connections with output to write
  event* read_ev_ = nullptr;        // made active when a connection is readable (io_uring): reads them all
  std::vector<uint32_t> readable_;  // tokens of connections to read
  bool reads_waiting_ = false;      // readable_ waits for room in the request rings (on_read)
  std::vector<char> read_slots_;    // batched receives' buffers, kReadSlot each
  std::unique_ptr<IoBatch> batch_;  // the pass's sends in one system call; null: one send() each
  struct Batched {
    uint32_t token;
    size_t len;
  };
  std::vector<Batched> batched_;    // the operations in batch_ (a pass's receives, or its sends), by tag
  std::vector<IoBatch::Result> batch_results_;
  std::vector<char> read_buf_;      // every connection reads into this one buffer
  std::vector<char> plain_buf_;     // wss: what TLS decrypts from read_buf_
  std::unordered_map<uint32_t, std::unique_ptr<WsConn>> conns_;
  uint32_t next_token_ = 1;
  uint32_t max_conns_;
  bool draining_ = false;
  struct Leave {
    wt::Id info_hash;
    wt::Id peer_id;
    uint32_t token;
  };
  std::vector<Leave> leave_queue_;  // stopped announces the rings had no room for
  SourceLimiter accept_limiter_;    // ws.per_source_accept_rate
  // Open connections per source (IPv4 address or IPv6 /64), for ws.max_connections_per_source.
  std::unordered_map<uint64_t, uint32_t> per_source_;
};

}  // namespace shoal::worker
