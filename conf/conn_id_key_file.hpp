// conf/conn_id_key_file.hpp — the cluster key file of BEP 15 connection ids
// (udp.connection_id_key_file): the keys every node of a cluster makes and checks ids with, so a
// connect answered by one node is accepted by another (UDP behind anycast or DNS round robin).
// Runs in the supervisor (at start, on SIGHUP, and for `shoald -t`); touches no shared memory.
//
// File format: one key a line, 32 hex digits (16 bytes: `openssl rand -hex 16`), either case;
// the first key is the current one (new ids are made with it), an optional second one is the
// previous key (ids made with it are still accepted: rotation). `#` starts a comment (whole line
// or after the key); blank lines are skipped; spaces, tabs and a CR around the key are ignored.
// The file must be a regular file of at most 64 KiB that others may not access at all
// (mode & 007 == 0, e.g. 0600 or 0640), as ssh requires of a private key: it is a secret, and
// whoever knows it can make ids that every node accepts for any source address.
#pragma once
#include <cstdint>
#include <string>

#include "conf/config.hpp"

namespace shoal::conf {

inline constexpr uint32_t kMaxKeyFileKeys = 2;  // the current key and the previous one

struct KeyFileResult {
  uint32_t count = 0;                      // keys read, 1 or 2 on success
  uint8_t keys[kMaxKeyFileKeys][16] = {};  // keys[0] current, keys[1] previous
  std::string error;                       // "" on success, else "path[:line]: reason"
  bool ok() const { return error.empty(); }
};

// Reads and parses the key file at `path`: checks the file first (regular, mode, size), then
// the text. Errors, one line each:
//   path: cannot open: <strerror>
//   path: permissions 0644 are too open: the key file must not be accessible by others (chmod o-rwx path)
//   path: not a regular file          path: larger than 65536 bytes: not a key file
//   path:3: not a hex digit 'g' at column 5   path:3: expected 32 hex digits (16 bytes), got 31
//   path:4: more than 2 keys (the current key and the previous one)
//   path:2: the key is all zeros      path: no key (a line of 32 hex digits: openssl rand -hex 16)
KeyFileResult load_key_file(const std::string& path);

// The text part of load_key_file for text in memory; `name` stands for the path in errors.
KeyFileResult parse_key_file(const std::string& text, const std::string& name);

// A short public fingerprint of a key for logs and `show info`, so operators can compare the
// nodes of a cluster without showing the key: the first 8 hex digits of SHA-256(key).
std::string key_fingerprint(const uint8_t key[16]);

// For `shoald -t`: "" when udp.connection_id_key_file is unset or a good file, else the error.
std::string check_key_file_config(const Config& cfg);

}  // namespace shoal::conf
