// worker/http_codec.hpp — HTTP tracker codec: query-string decoding, announce (BEP 3, BEP 7,
// BEP 23) and scrape (BEP 48) request parsing, and bencoded reply bodies. Runs in the socket
// worker on every HTTP request (called from the HTTP front-end; the HTTP framing (worker/http_request.hpp), header limits
// of docs/hardening.md A11 and the client address are the server's job, not this file's).
// Pure functions over caller-owned memory: no I/O, no allocation, no exceptions, no shm. Every
// parser is total: any byte string is valid input and nothing outside it is read.
// Sources: bittorrent.org BEP 3, 7, 23, 48;
// docs/hardening.md A5 (ignored ip params), A8 (numwant), A10 (no full scrape).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shm/messages.hpp"

namespace shoal::worker::http {

inline constexpr size_t kInfoHashBytes = 20;
inline constexpr size_t kPeerIdBytes = 20;
inline constexpr size_t kMaxKeyBytes = 100;          // `key` bytes kept (as aquatic)
inline constexpr size_t kPeerBytesV4 = 6;            // compact: 4-byte address + u16 port
inline constexpr size_t kPeerBytesV6 = 18;           // compact: 16-byte address + u16 port
inline constexpr size_t kDefaultMaxScrapeHashes = 64;  // docs/hardening.md A10 (HTTP ≤ 64)
inline constexpr size_t kMaxScrapeEntries = 256;     // most entries encode_scrape accepts

enum class Route : uint8_t { unknown, announce, scrape };

// Why a request was rejected. Each value has a client-facing text (error_message) meant for
// encode_failure.
enum class ParseError : uint8_t {
  none,
  missing_info_hash,   // announce without info_hash
  invalid_info_hash,   // not exactly 20 bytes after decoding, or a malformed %-escape
  repeated_info_hash,  // announce with more than one info_hash (opentracker: 400)
  missing_peer_id,
  invalid_peer_id,     // not exactly 20 bytes after decoding, or a malformed %-escape
  missing_port,
  invalid_port,        // not decimal digits, 0, or > 65535
  invalid_uploaded,    // not decimal digits
  invalid_downloaded,  // not decimal digits
  invalid_left,        // not decimal digits
  invalid_numwant,     // not an optionally negative decimal
  invalid_event,       // not "", started, completed, stopped or paused
  full_scrape,         // scrape without any info_hash (docs/hardening.md A10)
};

// Static NUL-terminated text for e (e.g. "missing info_hash"); "unknown error" for values
// outside the enum. Never nullptr.
const char* error_message(ParseError e);

// URL-decodes `in` (application/x-www-form-urlencoded) into out[0..cap): "%XX" (X in 0-9 a-f
// A-F) is one byte of any value, '+' is a space, every other byte is copied as is. BEP 3 clients
// %-escape every byte of binary params (info_hash, peer_id; '+' is sent as %2B), so '+' only
// appears in text params. Returns false on a malformed escape ("%", "%4", "%zz") or when the
// decoded bytes exceed cap; *out_len is always set to the bytes written (those before the
// failure). out may be nullptr when cap == 0.
bool percent_decode(std::string_view in, uint8_t* out, size_t cap, size_t* out_len);

// One `key=value` pair of a query string, both still %-encoded (views into the query).
struct QueryParam {
  std::string_view key;
  std::string_view value;  // empty for "key=" and for "key" (no '=')
  bool has_value;          // false for "key" (no '=')
};

// Walks the pairs of a query string (the part after '?', without it), allocation-free:
//   QueryIterator it(query); QueryParam p; while (it.next(&p)) { ... }
// Pairs are split at '&'; empty pairs ("&&", a trailing '&') are skipped; the value starts after
// the first '=' (later '=' belong to the value). Repeated keys are all returned, in order.
class QueryIterator {
 public:
  explicit QueryIterator(std::string_view query) : rest_(query) {}
  bool next(QueryParam* out);  // false when no pairs remain

 private:
  std::string_view rest_;
};

// Splits an HTTP request target "/path?query" at the first '?': *path gets what precedes it,
// *query what follows (empty when there is no '?'). A "#fragment" is cut from the end.
void split_target(std::string_view target, std::string_view* path, std::string_view* query);

// Route by the LAST path segment (BEP 48 convention): it starts with "announce" → announce
// ("/announce", "/x/announce", "/announce.php"), with "scrape" → scrape, else unknown.
// Case-sensitive. A trailing '/' makes the last segment empty, so "/announce/" and passkey
// paths like "/announce/<key>" are unknown. Anything from a '?' on is ignored.
Route route_of(std::string_view path);

// A parsed HTTP announce (BEP 3 + BEP 7 + BEP 23). Filled with defaults first, so on error the
// fields are defaults or values parsed before the failing param.
struct AnnounceParams {
  uint8_t info_hash[kInfoHashBytes];  // raw bytes
  uint8_t peer_id[kPeerIdBytes];      // raw bytes
  uint16_t port;                      // host order, 1..65535 when parsing succeeded
  uint64_t uploaded;                  // bytes; digits beyond UINT64_MAX saturate
  uint64_t downloaded;                // bytes; saturates
  uint64_t left;                      // bytes; saturates; UINT64_MAX when absent
  bool has_left;                      // false: `left` absent → treat as a leecher
  shm::Event event;                   // ""/absent/"paused" (BEP 21) → none
  int numwant;                        // -1 when absent; else the client's value clamped to
                                      // int range (may be ≤ 0); the caller caps it (A8)
  bool compact;                       // BEP 23; true unless `compact=0`
  bool no_peer_id;                    // present and not "0"
  uint8_t key_len;                    // 0 = absent (or malformed, which is ignored)
  uint8_t key[kMaxKeyBytes];          // decoded `key`, first kMaxKeyBytes bytes kept
};

// Parses an announce query string (without '?'). Params are matched by their decoded name;
// unknown ones are ignored, and so are `ip`, `ipv4` and `ipv6`: the peer address is always the
// transport source address, because a client-chosen address lets anyone point a swarm at a
// victim (docs/hardening.md A5; BEP 7 discourages them since 2020). info_hash may appear once; for any
// other repeated param the last occurrence wins. Numbers are ASCII decimal after %-decoding, at
// most 32 bytes, no sign (numwant may have '-'), no spaces; empty is invalid.
// Returns the first error found walking left to right, then missing info_hash / peer_id / port
// in that order, or ParseError::none.
ParseError parse_announce(std::string_view query, AnnounceParams* out);

// Parses a scrape query string (BEP 48, without '?'): every `info_hash` param is decoded and
// must be exactly 20 bytes (else invalid_info_hash, even past the cap). The first max_hashes are
// copied to hashes[0..] in request order, duplicates included; the rest are ignored (as
// aquatic; docs/hardening.md A10). Other params are ignored. *count = hashes stored. No info_hash at
// all → full_scrape ("full scrape is not allowed"); so does max_hashes == 0.
// hashes may be nullptr when max_hashes == 0.
ParseError parse_scrape(std::string_view query, uint8_t (*hashes)[kInfoHashBytes], size_t max_hashes,
                        size_t* count);

// Everything an announce reply body needs. Peer entries are compact and in network byte order
// (as in shm::Response): peers4 = n4 × 6 bytes, peers6 = n6 × 18 bytes; pointers may be nullptr
// when the count is 0.
struct AnnounceReply {
  uint32_t complete;      // seeders
  uint32_t incomplete;    // leechers
  uint32_t downloaded;    // completions (opentracker's extension)
  uint32_t interval;      // seconds
  uint32_t min_interval;  // seconds
  const uint8_t* peers4;
  size_t n4;
  const uint8_t* peers6;
  size_t n6;
  bool compact;           // AnnounceParams::compact
  bool no_peer_id;        // accepted for completeness; shoal stores no peer ids, so the dict
                          // form never has `peer id` either way
  const char* warning = nullptr;  // BEP 3 "warning message" (NUL-terminated), or none
};

// Writes the bencoded announce reply into buf[0..cap); returns its length, or 0 if it does not
// fit. Keys in sorted order: complete, downloaded, incomplete, interval, min interval, peers,
// peers6, warning message (only when r.warning is set).
//  compact (BEP 23): `peers` is a string of the n4 6-byte entries (always present, possibly
//    "5:peers0:", as BEP 3 requires the key); `peers6` (BEP 7) is the n6 18-byte entries and is
//    written only when n6 > 0 (clients treat a missing peers6 as no IPv6 peers; the socket
//    worker decides which families a reply carries).
//  non-compact (BEP 3): `peers` is a list of {ip: text, port: int} dicts, IPv4 peers (dotted
//    quad) first, then IPv6 peers (RFC 5952 text) in the same list; there is no `peers6`.
//    `peer id` is never written: shoal does not keep peer ids (peers are keyed by address,
//    BEP 23 no_peer_id), and clients accept its absence as with no_peer_id.
size_t encode_announce(char* buf, size_t cap, const AnnounceReply& r);

// One scrape result (BEP 48).
struct ScrapeEntry {
  uint8_t info_hash[kInfoHashBytes];
  uint32_t complete;    // seeders
  uint32_t downloaded;  // completions
  uint32_t incomplete;  // leechers
};

// Writes "d5:filesd20:<hash>d8:completei…e10:downloadedi…e10:incompletei…ee…ee" into
// buf[0..cap); returns its length, or 0 if it does not fit or n > kMaxScrapeEntries. The hashes
// are bencode dict keys, so they are written in sorted byte order whatever the input order; a
// hash given more than once is written once, with its first entry's counts. n == 0 gives
// "d5:filesdee".
size_t encode_scrape(char* buf, size_t cap, const ScrapeEntry* entries, size_t n);

// Writes "d14:failure reason<len>:<reason>e" (BEP 3) into buf[0..cap); returns its length, or
// 0 if it does not fit. reason is NUL-terminated text; nullptr is written as "".
size_t encode_failure(char* buf, size_t cap, const char* reason);

}  // namespace shoal::worker::http
