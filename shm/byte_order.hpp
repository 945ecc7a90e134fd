// shm/byte_order.hpp — big-endian (network byte order) integers in wire and file formats:
// BEP 15 datagrams, the cluster messages (docs/cluster.md), the snapshot file
// (docs/snapshot-format.md). Thin names over Boost.Endian's unaligned loads and stores, so every
// codec reads and writes bytes the same way and none carries its own shift loops.
#pragma once

#include <boost/endian/conversion.hpp>
#include <cstdint>
#include <vector>

namespace shoal::be {

// Reads the big-endian integer at p; p may be unaligned. The caller checked the bytes are there.
inline uint16_t get16(const uint8_t* p) { return boost::endian::load_big_u16(p); }
inline uint32_t get32(const uint8_t* p) { return boost::endian::load_big_u32(p); }
inline uint64_t get64(const uint8_t* p) { return boost::endian::load_big_u64(p); }

// Writes v at p, most significant byte first; p may be unaligned and must have room.
inline void put16(uint8_t* p, uint16_t v) { boost::endian::store_big_u16(p, v); }
inline void put32(uint8_t* p, uint32_t v) { boost::endian::store_big_u32(p, v); }
inline void put64(uint8_t* p, uint64_t v) { boost::endian::store_big_u64(p, v); }

// Appends v to *o, most significant byte first.
inline void put16(std::vector<uint8_t>* o, uint16_t v) {
  o->resize(o->size() + 2);
  put16(o->data() + o->size() - 2, v);
}
inline void put32(std::vector<uint8_t>* o, uint32_t v) {
  o->resize(o->size() + 4);
  put32(o->data() + o->size() - 4, v);
}
inline void put64(std::vector<uint8_t>* o, uint64_t v) {
  o->resize(o->size() + 8);
  put64(o->data() + o->size() - 8, v);
}

}  // namespace shoal::be
