// worker/udp_codec.cpp — BEP 15 request parser / reply encoders and the BEP 41 URLData reader.
// Runs in the socket worker on every datagram; touches only the caller's buffers (no shm, no
// allocation, no exceptions). Every read is preceded by a length check against `len`; the
// big-endian integers go through shm/byte_order.hpp (Boost.Endian).
#include "worker/udp_codec.hpp"

#include <sys/socket.h>

#include <cstring>

#include "shm/byte_order.hpp"

namespace shoal::worker::udp {
namespace {

uint32_t load_raw32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void store_raw32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

// Announce field offsets (BEP 15, the announce request table).
constexpr size_t kOffInfoHash = 16, kOffPeerId = 36, kOffDownloaded = 56, kOffLeft = 64,
                 kOffUploaded = 72, kOffEvent = 80, kOffIp = 84, kOffKey = 88, kOffNumwant = 92,
                 kOffPort = 96;

constexpr uint8_t kOptEnd = 0x00, kOptNop = 0x01, kOptUrlData = 0x02;  // BEP 41 option types

void parse_announce(const uint8_t* d, size_t len, ParsedRequest* r) {
  if (len < kAnnounceRequestBytes) {
    r->error = ParseError::too_short;
    return;
  }
  AnnounceRequest& a = r->announce;
  a.connection_id = r->connection_id;
  a.transaction = r->transaction;
  a.info_hash = d + kOffInfoHash;
  a.peer_id = d + kOffPeerId;
  a.downloaded = int64_t(be::get64(d + kOffDownloaded));
  a.left = int64_t(be::get64(d + kOffLeft));
  a.uploaded = int64_t(be::get64(d + kOffUploaded));
  a.event = be::get32(d + kOffEvent);
  a.ip = be::get32(d + kOffIp);
  a.key = be::get32(d + kOffKey);
  a.numwant = int32_t(be::get32(d + kOffNumwant));
  a.port = be::get16(d + kOffPort);
  a.options_len = len - kAnnounceRequestBytes;
  a.options = a.options_len ? d + kAnnounceRequestBytes : nullptr;
  if (a.event > 3) {
    r->error = ParseError::bad_event;
  } else if (a.port == 0) {
    r->error = ParseError::bad_port;  // aquatic: "Port can't be 0" (docs/hardening.md A20)
  }
}

void parse_scrape(const uint8_t* d, size_t len, uint32_t max_scrape_hashes, ParsedRequest* r) {
  ScrapeRequest& s = r->scrape;
  s.connection_id = r->connection_id;
  s.transaction = r->transaction;
  size_t n = (len - kHeaderBytes) / kInfoHashBytes;  // trailing partial hash dropped
  if (n > max_scrape_hashes) n = max_scrape_hashes;  // extra hashes ignored (docs/hardening.md A10)
  if (n == 0) {
    r->error = ParseError::no_info_hashes;  // no full scrapes over UDP
    return;
  }
  s.info_hashes = d + kHeaderBytes;
  s.count = uint32_t(n);
}

}  // namespace

ParsedRequest parse_request(const uint8_t* data, size_t len, uint32_t max_scrape_hashes) {
  ParsedRequest r{};
  r.action = Action::error;
  if (data == nullptr || len < kHeaderBytes) {
    r.error = ParseError::too_short;
    return r;
  }
  r.has_transaction = true;
  r.connection_id = be::get64(data);
  uint32_t action = be::get32(data + 8);
  r.action = static_cast<Action>(action);  // fixed underlying type: any u32 is representable
  r.transaction = load_raw32(data + 12);
  switch (action) {
    case uint32_t(Action::connect):
      r.connect.transaction = r.transaction;
      if (r.connection_id != kProtocolId) r.error = ParseError::bad_protocol_id;
      break;
    case uint32_t(Action::announce):
      parse_announce(data, len, &r);
      break;
    case uint32_t(Action::scrape):
      parse_scrape(data, len, max_scrape_hashes, &r);
      break;
    default:
      r.error = ParseError::unknown_action;
      break;
  }
  return r;
}

bool parse_bep41_url_data(const uint8_t* options, size_t len, char* out, size_t cap, size_t* out_len) {
  size_t written = 0;
  bool ok = true;
  size_t i = 0;
  while (i < len) {
    uint8_t type = options[i++];
    if (type == kOptEnd) break;
    if (type == kOptNop) continue;
    if (i >= len) {  // length byte missing
      ok = false;
      break;
    }
    size_t opt_len = options[i++];
    if (opt_len > len - i) {  // payload truncated
      ok = false;
      break;
    }
    if (type == kOptUrlData) {
      if (opt_len > cap - written) {
        ok = false;
        break;
      }
      if (opt_len) std::memcpy(out + written, options + i, opt_len);
      written += opt_len;
    }
    i += opt_len;
  }
  if (out_len) *out_len = written;
  return ok;
}

size_t encode_connect(uint8_t* out, uint32_t transaction, uint64_t connection_id) {
  be::put32(out, uint32_t(Action::connect));
  store_raw32(out + 4, transaction);
  be::put64(out + 8, connection_id);
  return kConnectResponseBytes;
}

size_t encode_announce_header(uint8_t* out, uint32_t transaction, uint32_t interval, uint32_t leechers,
                              uint32_t seeders) {
  be::put32(out, uint32_t(Action::announce));
  store_raw32(out + 4, transaction);
  be::put32(out + 8, interval);
  be::put32(out + 12, leechers);
  be::put32(out + 16, seeders);
  return kAnnounceHeaderBytes;
}

size_t encode_scrape_header(uint8_t* out, uint32_t transaction) {
  be::put32(out, uint32_t(Action::scrape));
  store_raw32(out + 4, transaction);
  return kScrapeHeaderBytes;
}

size_t encode_scrape_entry(uint8_t* out, uint32_t seeders, uint32_t completed, uint32_t leechers) {
  be::put32(out, seeders);
  be::put32(out + 4, completed);
  be::put32(out + 8, leechers);
  return kScrapeEntryBytes;
}

size_t encode_error(uint8_t* out, size_t cap, uint32_t transaction, const char* msg) {
  if (cap < kErrorHeaderBytes) return 0;
  be::put32(out, uint32_t(Action::error));
  store_raw32(out + 4, transaction);
  size_t n = msg ? strnlen(msg, cap - kErrorHeaderBytes) : 0;
  if (n) std::memcpy(out + kErrorHeaderBytes, msg, n);
  return kErrorHeaderBytes + n;
}

size_t max_udp_peers(int family) {
  if (family == AF_INET) return 200;
  if (family == AF_INET6) return 67;
  return 0;
}

}  // namespace shoal::worker::udp
