// worker/wire_be.hpp — network byte order (big-endian) integers of the cluster messages
// (docs/cluster.md): appended to a message being built, or read from a received one.
#pragma once

#include <cstdint>
#include <vector>

namespace shoal::worker::wire {

// Appends v to *o, most significant byte first.
inline void put16(std::vector<uint8_t>* o, uint16_t v) {
  o->push_back(uint8_t(v >> 8));
  o->push_back(uint8_t(v));
}
inline void put32(std::vector<uint8_t>* o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o->push_back(uint8_t(v >> s));
}
inline void put64(std::vector<uint8_t>* o, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) o->push_back(uint8_t(v >> s));
}
// Reads the big-endian integer at p (the caller checked that the bytes are there).
inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t get64(const uint8_t* p) { return uint64_t(get32(p)) << 32 | get32(p + 4); }

}  // namespace shoal::worker::wire
