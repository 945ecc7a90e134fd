// shm/segment.cpp — see segment.hpp. Runs in the supervisor (create) and workers (attach).
#include "shm/segment.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cstring>
#include <stdexcept>

namespace bip = boost::interprocess;

namespace shoal::shm {

struct Segment::Impl {
  bip::mapped_region region;
};

Segment::Segment() = default;
Segment::~Segment() = default;
Segment::Segment(Segment&&) noexcept = default;
Segment& Segment::operator=(Segment&&) noexcept = default;

Segment Segment::create(const std::string& name, size_t size, SegmentKind kind, uint32_t index,
                        uint32_t count, uint64_t clock_base_ns) {
  Segment s;
  try {
    bip::shared_memory_object::remove(name.c_str());
    bip::shared_memory_object obj(bip::create_only, name.c_str(), bip::read_write, bip::permissions(0600));
    obj.truncate(bip::offset_t(size));
    s.impl_ = std::make_unique<Impl>();
    s.impl_->region = bip::mapped_region(obj, bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    throw std::runtime_error("cannot create shared memory segment " + name + " (" +
                             std::to_string(size) + " bytes): " + e.what());
  }
  s.base_ = s.impl_->region.get_address();
  s.size_ = s.impl_->region.get_size();
  s.name_ = name;
  // ftruncate gives zero pages; the header is written last.
  SegmentHeader h{};
  h.magic = kMagic;
  h.layout_version = kLayoutVersion;
  h.kind = uint32_t(kind);
  h.header_size = sizeof(SegmentHeader);
  h.index = index;
  h.segment_size = size;
  h.count = count;
  h.clock_base_ns = clock_base_ns;
  std::memcpy(s.base_, &h, sizeof h);
  return s;
}

Segment Segment::attach(const std::string& name, SegmentKind kind, bool read_only) {
  Segment s;
  try {
    bip::mode_t mode = read_only ? bip::read_only : bip::read_write;
    bip::shared_memory_object obj(bip::open_only, name.c_str(), mode);
    s.impl_ = std::make_unique<Impl>();
    s.impl_->region = bip::mapped_region(obj, mode);
  } catch (const bip::interprocess_exception& e) {
    throw std::runtime_error("cannot attach shared memory segment " + name + ": " + e.what());
  }
  s.base_ = s.impl_->region.get_address();
  s.size_ = s.impl_->region.get_size();
  s.name_ = name;
  if (s.size_ < sizeof(SegmentHeader)) throw std::runtime_error(name + ": segment too small for a header");
  const SegmentHeader* h = s.header();
  if (h->magic != kMagic) throw std::runtime_error(name + ": bad magic, not a shoal segment");
  if (h->layout_version != kLayoutVersion)
    throw std::runtime_error(name + ": layout version " + std::to_string(h->layout_version) +
                             ", this binary uses " + std::to_string(kLayoutVersion));
  if (h->kind != uint32_t(kind))
    throw std::runtime_error(name + ": segment kind " + std::to_string(h->kind) + ", expected " +
                             std::to_string(uint32_t(kind)));
  if (h->segment_size != s.size_)
    throw std::runtime_error(name + ": header says " + std::to_string(h->segment_size) +
                             " bytes, mapped " + std::to_string(s.size_));
  return s;
}

bool Segment::unlink(const std::string& name) { return bip::shared_memory_object::remove(name.c_str()); }

std::string control_segment_name(const std::string& prefix) { return "/" + prefix + "-control"; }
std::string rings_segment_name(const std::string& prefix) { return "/" + prefix + "-rings"; }
std::string partition_segment_name(const std::string& prefix, uint32_t index) {
  return "/" + prefix + "-part-" + std::to_string(index);
}
std::string access_segment_name(const std::string& prefix) { return "/" + prefix + "-access"; }
std::string topology_segment_name(const std::string& prefix) { return "/" + prefix + "-topology"; }
std::string transfers_segment_name(const std::string& prefix) { return "/" + prefix + "-transfers"; }
std::string relay_segment_name(const std::string& prefix) { return "/" + prefix + "-relay"; }
std::string snapshot_segment_name(const std::string& prefix) { return "/" + prefix + "-snapshot"; }
std::string cluster_segment_name(const std::string& prefix) { return "/" + prefix + "-cluster"; }

}  // namespace shoal::shm
