// worker/ws_frontend_io.cpp — the WebTorrent front-end's socket I/O (see ws_frontend.cpp for
// the design): reading (with ws.io_uring, every connection that became readable in a loop pass
// in one system call, while the request rings have room; else one recv() loop each), the TLS
// and frames under the bytes read, and the writes of a pass (batched the same way).
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "worker/ws_frontend_impl.hpp"
#include "worker/ws_handshake.hpp"

namespace shoal::worker {

// ---- reading ------------------------------------------------------------------------------

void WsFrontend::on_io(evutil_socket_t, short what, void* arg) {
  auto* c = static_cast<WsConn*>(arg);
  WsFrontend* self = c->owner;
  // An error or hang-up comes as both; the read finds it. Write readiness matters only to a
  // connection whose last write would have blocked. With io_uring the read waits for on_read,
  // later in this loop pass, with every other connection that became readable.
  if (what & EV_READ) {
    if (self->batch_) {
      if (!c->read_queued) {
        c->read_queued = true;
        self->readable_.push_back(c->token);
        event_active(self->read_ev_, EV_TIMEOUT, 0);  // a no-op while it is active already
      }
    } else if (!self->read_conn(c)) {
      return;
    }
  }
  if ((what & EV_WRITE) && has_output(c) && !c->dirty) self->flush_conn(c);
}

bool WsFrontend::has_output(const WsConn* c) {
  return !c->session->output().empty() || (c->tls_io && !c->tls_io->pending_out().empty());
}

bool WsFrontend::read_conn(WsConn* c) {
  char* buf = read_buf_.data();
  bool eof = false;
  for (;;) {
    ssize_t n = recv(c->fd, buf, read_buf_.size(), 0);
    if (n <= 0) {
      eof = n == 0 || (errno != EAGAIN && errno != EINTR);
      break;
    }
    if (!take_input(c, buf, size_t(n))) {
      eof = true;
      break;
    }
    // A read that filled less than the buffer left the socket empty (edge-triggered: new bytes
    // bring a new event). TLS too: the records it brought are all decrypted above.
    if (size_t(n) < read_buf_.size()) break;
  }
  return after_input(c, eof);
}

bool WsFrontend::take_input(WsConn* c, char* data, size_t n) {
  if (!c->tls_io) return read_bytes(c, data, n), true;
  return read_tls(c, data, n);
}

bool WsFrontend::after_input(WsConn* c, bool eof) {
  if (c->tls_io && !c->tls_io->pending_out().empty()) mark_dirty(c);  // handshake, tickets
  if (relay_) relay_->flush();
  path_->flush();
  if (eof) {  // the client's FIN, a reset or a TLS error: the connection is over
    if (c->state == WsConn::State::handshake) shm::count(counters_, shm::Counter::ws_handshake_failures);
    free_conn(c);
    return false;
  }
  return true;
}

// Every connection that became readable in this loop pass: one recv() each, all in one system
// call (IoBatch), then each one's bytes as read_conn takes them.
void WsFrontend::on_read(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<WsFrontend*>(arg);
  std::vector<uint32_t> tokens;
  tokens.swap(self->readable_);
  size_t i = 0;
  for (; i < tokens.size(); ++i) {
    if (self->batched_.size() % kReadGroup == 0) {  // a new group: room for what it may bring?
      if (!self->batched_.empty()) self->recv_batch();
      if (!self->path_->has_room_everywhere(kReadRoom)) break;
    }
    WsConn* c = self->find(tokens[i]);
    if (!c || !c->read_queued) continue;
    c->read_queued = false;
    if (!self->batch_ || !self->batch_->ok()) {
      self->read_conn(c);
      continue;
    }
    size_t k = self->batched_.size();
    self->batch_->add_recv(c->fd, self->read_slots_.data() + k * kReadSlot, kReadSlot, uint32_t(k));
    self->batched_.push_back({c->token, kReadSlot});
  }
  if (!self->batched_.empty()) self->recv_batch();
  if (i < tokens.size()) {  // the rings are nearly full: the rest once responses drained them
    self->reads_waiting_ = true;
    self->readable_.insert(self->readable_.begin(), tokens.begin() + long(i), tokens.end());
    return;
  }
  if (self->readable_.empty()) self->readable_.swap(tokens), self->readable_.clear();  // keep the capacity
}

void WsFrontend::recv_batch() {
  batch_->submit(batch_results_);
  for (const IoBatch::Result& r : batch_results_) {
    WsConn* c = find(batched_[r.tag].token);
    if (!c) continue;
    if (r.res == IoBatch::kNotIssued || r.res == -EINTR) {
      read_conn(c);
    } else if (r.res > 0) {
      bool ok = take_input(c, read_slots_.data() + size_t(r.tag) * kReadSlot, size_t(r.res));
      // A full slot: the socket may hold more (edge-triggered: no new event for it).
      if (after_input(c, !ok) && size_t(r.res) == kReadSlot) read_conn(c);
    } else if (r.res != -EAGAIN) {  // 0: the client's FIN; else a reset
      after_input(c, true);
    }
  }
  batched_.clear();
}

bool WsFrontend::read_tls(WsConn* c, const char* data, size_t n) {
  TlsStream& t = *c->tls_io;
  t.begin_input(data, n);
  TlsStream::Status st = t.handshake();
  size_t got = 0;
  while (st == TlsStream::Status::ok && (st = t.read(plain_buf_.data(), plain_buf_.size(), &got)) == TlsStream::Status::ok)
    read_bytes(c, plain_buf_.data(), got);
  t.end_input();
  return st != TlsStream::Status::closed;
}

void WsFrontend::read_bytes(WsConn* c, char* data, size_t n) {
  shm::count(counters_, shm::Counter::ws_bytes_in, n);
  c->last_ms = now_ms();
  if (c->state == WsConn::State::handshake) read_handshake(c, std::string_view(data, n));
  else if (c->state == WsConn::State::open) read_frames(c, data, n);
  else if (c->framed && !c->half_closed) c->session->feed(data, n, &on_message, c);  // closing: only the peer's close frame matters
  if (c->state == WsConn::State::closing && !c->session->output().empty()) mark_dirty(c);
}

void WsFrontend::read_handshake(WsConn* c, std::string_view bytes) {
  c->handshake.append(bytes);
  ws::HandshakeResult h = ws::parse_handshake(c->handshake);
  if (h.status == ws::HandshakeStatus::incomplete) return;
  c->session->append_raw(h.response);
  mark_dirty(c);
  if (h.status == ws::HandshakeStatus::rejected) {
    shm::count(counters_, shm::Counter::ws_handshake_failures);
    c->state = WsConn::State::closing;
    c->closing_ms = now_ms();
    return;  // finished once the reply is out
  }
  std::string rest = c->handshake.substr(h.consumed);
  std::string().swap(c->handshake);
  c->state = WsConn::State::open;
  c->framed = true;
  if (!rest.empty()) read_frames(c, rest.data(), rest.size());
}

void WsFrontend::on_message(void* conn, std::string_view text) {
  auto* c = static_cast<WsConn*>(conn);
  if (c->state != WsConn::State::open) return;
  if (c->tls_io && !c->tls_io->busy()) c->tls_io->set_busy(true);  // keeps its TLS buffers while it talks
  shm::count(c->owner->counters_, shm::Counter::ws_messages_in);
  c->owner->handle_message(c, text);
}

void WsFrontend::read_frames(WsConn* c, char* data, size_t n) {
  c->session->feed(data, n, &on_message, c);
  if (!c->session->output().empty()) mark_dirty(c);  // pong, close, replies
  if (c->state == WsConn::State::open && c->session->done()) {  // the peer closed, or broke the protocol
    c->state = WsConn::State::closing;
    c->closing_ms = now_ms();
  }
}

// ---- writing ------------------------------------------------------------------------------

bool WsFrontend::send_text(WsConn* c, std::string_view text) {
  if (c->state != WsConn::State::open || !c->session->send_text(text)) return false;
  return queued_text(c);
}

std::string* WsFrontend::begin_text(WsConn* c) {
  return c->state == WsConn::State::open ? c->session->begin_text() : nullptr;
}

bool WsFrontend::end_text(WsConn* c) {
  c->session->end_text();
  return queued_text(c);
}

bool WsFrontend::queued_text(WsConn* c) {
  shm::count(counters_, shm::Counter::ws_messages_out);
  mark_dirty(c);
  // A client that does not read its messages is closed rather than buffered without bound.
  if (c->session->output().size() > 4 * size_t(cfg_.ws_max_message_bytes)) {
    start_close(c, ws::kClosePolicy, "not reading");
    return false;
  }
  return true;
}

void WsFrontend::mark_dirty(WsConn* c) {
  if (c->dirty) return;
  c->dirty = true;
  if (dirty_.empty()) event_add(flush_deadline_, &kMaxWriteDelay);
  dirty_.push_back(c->token);
  event_active(flush_ev_, EV_TIMEOUT, 0);  // a no-op while it is active already
}

// Every connection with output writes it, once, when the loop finds no socket ready any more:
// flush_ev_ has the low priority, so while clients keep sending, what they sent is read (and
// answered, relayed) first, and a connection gets the messages of several loop passes in one
// write (one TLS record, one TCP segment): over wss, with 5 offers and 5 answers per announce,
// ~2.2 sends per announce instead of ~3.3 and ~12 % less CPU per announce. A loop that never
// runs out of ready sockets still writes every kMaxWriteDelay (flush_deadline_). With io_uring
// (worker/io_batch.hpp) the sends leave in one system call: first every connection's bytes are
// made ready (wss: its frames encrypted), then sent together, then each result is taken as
// flush_conn takes send()'s.
void WsFrontend::on_flush(evutil_socket_t, short, void* arg) {  // flush_ev_ and flush_deadline_
  static_cast<WsFrontend*>(arg)->flush_pass();
}

void WsFrontend::flush_pass() {
  event_del(flush_deadline_);
  std::vector<uint32_t> tokens;
  tokens.swap(dirty_);
  IoBatch* batch = batch_ && batch_->ok() ? batch_.get() : nullptr;
  for (uint32_t t : tokens) {
    WsConn* c = find(t);
    if (!c || !c->dirty) continue;  // freed meanwhile
    c->dirty = false;
    if (!batch) {
      flush_conn(c);
      continue;
    }
    std::string_view out;
    if (!next_output(c, &out)) continue;  // freed
    if (out.empty()) {
      maybe_finish(c);
      continue;
    }
    if (batch->full()) send_batch();
    batch->add(c->fd, out.data(), out.size(), uint32_t(batched_.size()));
    batched_.push_back({c->token, out.size()});
  }
  if (batch) send_batch();
  if (dirty_.empty()) dirty_.swap(tokens), dirty_.clear();  // keep the capacity
}

void WsFrontend::send_batch() {
  batch_->submit(batch_results_);
  for (const IoBatch::Result& r : batch_results_) {
    const Batched& b = batched_[r.tag];
    WsConn* c = find(b.token);  // each connection is in a batch once; none is freed meanwhile
    if (!c) continue;
    if (r.res == IoBatch::kNotIssued) {
      flush_conn(c);
      continue;
    }
    if (took_sent(c, r.res < 0 ? -1 : ssize_t(r.res), r.res < 0 ? -r.res : 0, b.len) == Sent::all)
      flush_conn(c);  // (wss) frames held while ciphertext waited, then maybe_finish
  }
  batched_.clear();
}

bool WsFrontend::next_output(WsConn* c, std::string_view* out) {
  *out = c->session->output();
  TlsStream* t = c->tls_io.get();
  if (!t) return true;
  // Every frame waiting is encrypted into the connection's ciphertext, sent with the
  // handshake's or tickets' bytes in one send(); while ciphertext is still waiting for the
  // socket, frames stay framed (the "not reading" cap counts them).
  if (t->ready() && !out->empty() && t->pending_out().empty()) {
    if (!t->write(*out)) {
      free_conn(c);
      return false;
    }
    shm::count(counters_, shm::Counter::ws_bytes_out, uint64_t(out->size()));
    c->session->consume_output(out->size());
  }
  *out = t->pending_out();
  return true;
}

WsFrontend::Sent WsFrontend::took_sent(WsConn* c, ssize_t n, int err, size_t len) {
  if (n < 0) {
    if (err == EAGAIN || err == EINTR) return Sent::partial;  // the rest at the next write event
    free_conn(c);
    return Sent::freed;
  }
  if (c->tls_io) {
    c->tls_io->consume_out(size_t(n));
  } else {
    shm::count(counters_, shm::Counter::ws_bytes_out, uint64_t(n));
    c->session->consume_output(size_t(n));
  }
  return size_t(n) == len ? Sent::all : Sent::partial;  // partial: the rest at the next write event
}

bool WsFrontend::flush_conn(WsConn* c) {
  for (;;) {
    std::string_view out;
    if (!next_output(c, &out)) return false;
    if (out.empty()) break;
    ssize_t n = send(c->fd, out.data(), out.size(), MSG_NOSIGNAL);
    Sent r = took_sent(c, n, n < 0 ? errno : 0, out.size());
    if (r != Sent::all) return r != Sent::freed;
  }
  maybe_finish(c);
  return true;
}

}  // namespace shoal::worker
