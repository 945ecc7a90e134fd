// libFuzzer target: the access-list parser (conf/access_list.cpp): sorted, de-duplicated hashes
// or an error "name:line: reason"; never more than max_entries distinct hashes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "conf/access_list.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  shoal::conf::AccessListResult r = shoal::conf::parse_access_list(text, "fuzz.txt", 8);
  if (!r.error.empty() && !r.hashes.empty()) __builtin_trap();
  if (r.hashes.size() > 8) __builtin_trap();
  if (!std::is_sorted(r.hashes.begin(), r.hashes.end())) __builtin_trap();
  if (std::adjacent_find(r.hashes.begin(), r.hashes.end()) != r.hashes.end()) __builtin_trap();
  return 0;
}
