// worker/tls_stream.cpp — see tls_stream.hpp. The BIO is a source/sink of our own: its read
// callback serves the bytes given to begin_input(), its write callback appends to out_.
#include "worker/tls_stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstring>

namespace shoal::worker {

namespace {

// SSL_get_error needs an empty error queue before each TLS call. ERR_clear_error resets all 16
// slots of the thread's queue every time (0.7 % of the socket worker over wss, one call per record
// read or written); the queue is nearly always empty, which ERR_peek_error sees at once.
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

BIO_METHOD* TlsStream::bio_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shoal tls stream");
    BIO_meth_set_write(bm, &TlsStream::bio_write);
    BIO_meth_set_read(bm, &TlsStream::bio_read);
    BIO_meth_set_ctrl(bm, &TlsStream::bio_ctrl);
    return bm;
  }();
  return m;
}

int TlsStream::bio_write(BIO* b, const char* data, int len) {
  auto* s = static_cast<TlsStream*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  s->out_.append(data, size_t(len));
  return len;
}

int TlsStream::bio_read(BIO* b, char* data, int len) {
  auto* s = static_cast<TlsStream*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (s->in_n_ == 0) {
    BIO_set_retry_read(b);  // SSL_ERROR_WANT_READ: the caller brings more bytes
    return -1;
  }
  size_t n = std::min(s->in_n_, size_t(len > 0 ? len : 0));
  std::memcpy(data, s->in_, n);
  s->in_ += n, s->in_n_ -= n;
  return int(n);
}

long TlsStream::bio_ctrl(BIO* b, int cmd, long, void*) {
  auto* s = static_cast<TlsStream*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // written bytes are in out_ already
    case BIO_CTRL_PENDING:
      return long(s->in_n_);
    case BIO_CTRL_WPENDING:
      return 0;
    default:
      return 0;
  }
}

TlsStream::TlsStream(SSL* ssl, Role role) : ssl_(ssl) {
  if (!ssl_) return;
  BIO* bio = BIO_new(bio_method());
  if (!bio) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one reference, for both directions
  if (role == Role::client) SSL_set_connect_state(ssl_);
  else SSL_set_accept_state(ssl_);
  SSL_set_read_ahead(ssl_, 1);  // take whole batches of records from the input, not header then body
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);  // frees the BIO too
}

void TlsStream::begin_input(const char* data, size_t n) {
  if (!stash_.empty()) {
    stash_.append(data, n);
    in_ = stash_.data(), in_n_ = stash_.size(), in_stash_ = true;
  } else {
    in_ = data, in_n_ = n, in_stash_ = false;
  }
}

void TlsStream::end_input() {
  if (in_stash_) stash_.erase(0, stash_.size() - in_n_);
  else if (in_n_ != 0) stash_.assign(in_, in_n_);
  if (stash_.empty() && stash_.capacity() != 0) std::string().swap(stash_);
  in_ = nullptr, in_n_ = 0, in_stash_ = false;
}

TlsStream::Status TlsStream::handshake() {
  if (ready_) return Status::ok;
  if (!ssl_) return Status::closed;
  clear_errors();
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    ready_ = true;
    return Status::ok;
  }
  int e = SSL_get_error(ssl_, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? Status::want_more : Status::closed;
}

TlsStream::Status TlsStream::read(char* buf, size_t cap, size_t* n) {
  *n = 0;
  if (!ssl_) return Status::closed;
  clear_errors();
  int r = SSL_read(ssl_, buf, int(std::min<size_t>(cap, INT32_MAX)));
  if (r > 0) {
    *n = size_t(r);
    return Status::ok;
  }
  int e = SSL_get_error(ssl_, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? Status::want_more : Status::closed;
}

bool TlsStream::write(std::string_view plain) {
  if (!ssl_ || !ready_) return false;
  while (!plain.empty()) {  // without SSL_MODE_ENABLE_PARTIAL_WRITE one call writes it all
    clear_errors();
    int r = SSL_write(ssl_, plain.data(), int(std::min<size_t>(plain.size(), INT32_MAX)));
    if (r <= 0) return false;  // the BIO never blocks: any failure is a TLS error
    plain.remove_prefix(size_t(r));
  }
  return true;
}

void TlsStream::consume_out(size_t n) {
  out_pos_ += n;
  if (out_pos_ < out_.size()) return;
  out_pos_ = 0;
  if (busy_) out_.clear();  // keeps the capacity for the next pass
  else std::string().swap(out_);
}

void TlsStream::set_busy(bool busy) {
  if (busy == busy_ || !ssl_) return;
  busy_ = busy;
  if (busy) {
    SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
  } else {
    SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    SSL_free_buffers(ssl_);  // 0 (and nothing freed) while a buffer holds bytes: freed when it empties
    if (out_pos_ >= out_.size()) std::string().swap(out_), out_pos_ = 0;
  }
}

}  // namespace shoal::worker
