// conf/access_list.hpp — the access list file: hex info_hashes, one a line, parsed into a sorted,
// de-duplicated vector, or one error "path:line: reason". Runs in the supervisor (at start, on
// SIGUSR1, and for `shoald -t`); touches no shared memory. The lookup helper works on any sorted
// array of 20-byte records, so socket workers use it on the shm buffer (worker/access_check.cpp).
// File format: 40 hex digits per line, either case; `#` starts a comment (whole line or after
// the hash); blank lines are skipped; spaces, tabs and a CR around the hash are ignored.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "conf/config.hpp"

namespace shoal::conf {

using InfoHash = std::array<uint8_t, 20>;

enum class AccessMode : uint32_t { off = 0, allow = 1, deny = 2 };

// "off" / "allow" / "deny" → AccessMode; false for anything else.
bool parse_access_mode(const std::string& text, AccessMode* out);
const char* access_mode_name(AccessMode mode);

struct AccessListResult {
  std::vector<InfoHash> hashes;  // sorted (memcmp order), no duplicates
  std::string error;             // "" on success, else "path:line: reason" (line 0 omitted)
  size_t lines = 0;              // lines read (for logs)
  bool ok() const { return error.empty(); }
};

// Parses the file at `path`. More than `max_entries` hash lines (duplicates included, so the
// work is bounded by the limit) is an error at the first line over the limit. Errors:
//   path: cannot open: <strerror>           path:7: expected 40 hex characters, got 39
//   path:7: not a hex digit 'g' at column 7  path:9: more than max_entries (N) hashes
// Columns are 1-based in the raw line. Reads in large blocks; ~1 M lines in well under a second.
AccessListResult load_access_list(const std::string& path, size_t max_entries);

// Same for text in memory; `name` stands for the path in errors (tests).
AccessListResult parse_access_list(const std::string& text, const std::string& name, size_t max_entries);

// True when the 20-byte `hash` is among the `count` sorted 20-byte records at `sorted`
// (binary search, memcmp order).
bool access_list_contains(const uint8_t* sorted, size_t count, const uint8_t* hash);

// Whether a request for `hash` is served: off → always; allow → only listed; deny → unless listed.
inline bool access_allows(AccessMode mode, bool listed) {
  return mode == AccessMode::off || (mode == AccessMode::allow) == listed;
}

// For `shoald -t`: loads cfg's access list when its mode is not off. Returns "" when fine, else
// the error line.
std::string check_access_list_config(const Config& cfg);

}  // namespace shoal::conf
