// worker/udp_codec.hpp — BEP 15 (UDP tracker) request parser and reply encoders, plus the
// BEP 41 URLData option reader. Runs in the socket worker, on every received datagram.
// Pure functions over caller-owned buffers: no allocation, no exceptions, no shared state, and
// no shm access. The parser is total: any byte string is accepted as input and nothing beyond
// `len` is ever read. All multi-byte wire integers are big-endian (network order).
// Sources: BEP 15 (bittorrent.org/beps/bep_0015.html), BEP 41 (bep_0041.html, UDP tracker
// protocol extensions: the options after byte 98 of an announce).
#pragma once
#include <cstddef>
#include <cstdint>

namespace shoal::worker::udp {

// BEP 15: the connection_id field of every connect request (bytes 00 00 04 17 27 10 19 80).
inline constexpr uint64_t kProtocolId = 0x41727101980ull;

// Wire sizes in bytes (BEP 15).
inline constexpr size_t kHeaderBytes = 16;            // connection_id + action + transaction
inline constexpr size_t kConnectRequestBytes = 16;
inline constexpr size_t kAnnounceRequestBytes = 98;   // minimum; BEP 41 options may follow
inline constexpr size_t kInfoHashBytes = 20;
inline constexpr size_t kConnectResponseBytes = 16;
inline constexpr size_t kAnnounceHeaderBytes = 20;    // then compact peers
inline constexpr size_t kPeerBytesV4 = 6;             // 4-byte address + u16 port
inline constexpr size_t kPeerBytesV6 = 18;            // 16-byte address + u16 port
inline constexpr size_t kScrapeHeaderBytes = 8;
inline constexpr size_t kScrapeEntryBytes = 12;
inline constexpr size_t kErrorHeaderBytes = 8;        // then the message, no length, no NUL
inline constexpr uint32_t kMaxUdpScrapeHashes = 74;   // 8 + 12·74 = 896 B (docs/hardening.md A10)

// BEP 15 action field. `error` is server → client only; a client sending it is unknown_action.
// The parser stores the raw u32, so values outside the enum can appear with unknown_action.
enum class Action : uint32_t { connect = 0, announce = 1, scrape = 2, error = 3 };

enum class ParseError : uint8_t {
  none,             // the matching member of ParsedRequest is filled in
  too_short,        // < 16 bytes, or an announce < 98 bytes
  bad_protocol_id,  // connect whose first 8 bytes are not kProtocolId
  unknown_action,   // action 3 (error) or > 3 (including opentracker's old v6 announce, 4)
  no_info_hashes,   // scrape with no complete 20-byte info_hash (16..35 bytes)
  bad_event,        // announce event not in 0..3
  bad_port,         // announce port 0
};

// BEP 15 connect request (16 bytes).
struct ConnectRequest {
  uint32_t transaction;  // raw 4 bytes as received (memcpy, network order); echo unchanged
};

// BEP 15 announce request (≥ 98 bytes). Pointers point into the caller's datagram buffer.
struct AnnounceRequest {
  uint64_t connection_id;  // bytes 0..8, decoded big-endian
  uint32_t transaction;    // bytes 12..16, raw (network order)
  const uint8_t* info_hash;  // bytes 16..36, 20 bytes
  const uint8_t* peer_id;    // bytes 36..56, 20 bytes
  int64_t downloaded;        // bytes 56..64
  int64_t left;              // bytes 64..72; 0 → seeder
  int64_t uploaded;          // bytes 72..80
  uint32_t event;            // bytes 80..84; 0 none, 1 completed, 2 started, 3 stopped
  uint32_t ip;               // bytes 84..88, host order; 0 = packet source (shoal ignores it)
  uint32_t key;              // bytes 88..92, host order
  int32_t numwant;           // bytes 92..96; < 0 (BEP 15: -1) → default, 0 → none (caller caps)
  uint16_t port;             // bytes 96..98, host order; never 0 when error == none
  const uint8_t* options;    // BEP 41 options: bytes 98..len (nullptr when empty)
  size_t options_len;
};

// BEP 15 scrape request (16 + 20·n bytes).
struct ScrapeRequest {
  uint64_t connection_id;      // decoded big-endian
  uint32_t transaction;        // raw (network order)
  const uint8_t* info_hashes;  // `count` consecutive 20-byte hashes, starting at byte 16
  uint32_t count;              // 1..max_scrape_hashes when error == none
};

// Result of parse_request(). Only the member matching `action` is meaningful, and only when
// error == none; the header fields are valid whenever has_transaction is true.
struct ParsedRequest {
  Action action;           // raw action field when len ≥ 16; Action::error when len < 16
  ParseError error;
  bool has_transaction;    // len ≥ 16: transaction/connection_id/action were decoded
  uint32_t transaction;    // raw (network order), 0 when !has_transaction
  uint64_t connection_id;  // big-endian decoded, 0 when !has_transaction
  ConnectRequest connect;
  AnnounceRequest announce;
  ScrapeRequest scrape;
};

// Parses one client datagram (BEP 15). Never reads data[len] or beyond; data may be nullptr
// when len == 0. Rules:
//   len < 16                          → too_short (has_transaction false)
//   action 0: first 8 bytes ≠ kProtocolId → bad_protocol_id; bytes after 16 are ignored
//   action 1: len < 98 → too_short; event > 3 → bad_event; port 0 → bad_port;
//             bytes 98..len are BEP 41 options, accepted unparsed (see parse_bep41_url_data)
//   action 2: count = (len − 16) / 20, a trailing partial hash is ignored; count == 0 →
//             no_info_hashes; count is capped at max_scrape_hashes (extra hashes ignored,
//             as aquatic does); max_scrape_hashes == 0 makes every scrape no_info_hashes
//   action 3 or > 3                   → unknown_action
// The connection id is NOT checked here (see worker/connection_id.hpp).
ParsedRequest parse_request(const uint8_t* data, size_t len, uint32_t max_scrape_hashes);

// BEP 41: reads the options after byte 98 of an announce and concatenates every URLData (0x02)
// payload into out[0..cap) (the path + query of the announce URL, e.g. "/announce?x"; not
// NUL-terminated). EndOfOptions (0x00) stops; NOP (0x01) is skipped; any other type is
// treated as type + length byte + payload and skipped (BEP 41 defines only types 0-2;
// unknown types are skipped rather than failed, as qBittorrent and other clients send them). Running out of bytes ends the list normally between options.
// Returns false when an option is truncated (a length byte or payload past `len`) or when the
// URL data would exceed `cap`; *out_len is always set to the bytes written so far.
bool parse_bep41_url_data(const uint8_t* options, size_t len, char* out, size_t cap, size_t* out_len);

// Encoders. Each writes big-endian fields to `out`, which must have room for the stated size,
// and returns the bytes written. `transaction` is the raw value from ParsedRequest and is
// copied byte-exact.

// BEP 15 connect response: action 0, transaction, connection_id. Writes 16 bytes.
size_t encode_connect(uint8_t* out, uint32_t transaction, uint64_t connection_id);

// BEP 15 announce response header: action 1, transaction, interval (s), leechers, seeders.
// Writes 20 bytes; the caller appends compact peers of the requester's transport family
// (6 bytes each for IPv4, 18 for IPv6), at most max_udp_peers(family) of them.
size_t encode_announce_header(uint8_t* out, uint32_t transaction, uint32_t interval, uint32_t leechers,
                              uint32_t seeders);

// BEP 15 scrape response header: action 2, transaction. Writes 8 bytes.
size_t encode_scrape_header(uint8_t* out, uint32_t transaction);

// BEP 15 scrape response entry, one per requested hash in request order. Writes 12 bytes.
size_t encode_scrape_entry(uint8_t* out, uint32_t seeders, uint32_t completed, uint32_t leechers);

// BEP 15 error: action 3, transaction, then `msg` without NUL (msg may be nullptr = empty).
// Writes min(cap, 8 + strlen(msg)) bytes, truncating the message; returns 0 (writes nothing)
// when cap < 8.
size_t encode_error(uint8_t* out, size_t cap, uint32_t transaction, const char* msg);

// Most peers one announce reply may carry so it fits one unfragmented datagram on any path:
// AF_INET 200 (20 + 6·200 = 1220 B, within the 1500-byte Ethernet MTU), AF_INET6 67
// (20 + 18·67 = 1226 B ≤ 1280 − 40 IPv6 − 8 UDP header bytes: RFC 8200 section 5 guarantees
// only a 1280-byte MTU); 0 for other families.
size_t max_udp_peers(int family);

}  // namespace shoal::worker::udp
