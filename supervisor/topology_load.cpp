// supervisor/topology_load.cpp — see topology_load.hpp. Runs only in the supervisor; the only
// writer of the topology segment.
#include "supervisor/topology_load.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>

#include "conf/topology_map.hpp"
#include "shm/clock.hpp"
#include "shm/topology_segment.hpp"
#include "supervisor/log.hpp"

namespace shoal::supervisor {
namespace {

std::unique_ptr<conf::LocationRegistry> g_registry;  // supervisor only, for its whole life

uint32_t range_capacity(const conf::Config& cfg) { return 2 * cfg.topology_max_prefixes + 1; }

// Appends the registry's entries the segment does not hold yet, then publishes their count.
void publish_locations(const shm::Segment& seg) {
  shm::TopologyHeader* h = shm::topology_header(seg.base());
  const auto& entries = g_registry->entries();
  uint32_t have = shm::acquire_load(h->locations);
  for (size_t i = have; i < entries.size() && i < h->location_capacity; i++)
    shm::location_entries(seg.base())[i] = entries[i];
  shm::release_store(h->locations, uint32_t(std::min<size_t>(entries.size(), h->location_capacity)));
}

// Copies `t` into buffer b and stores its counts (release).
void write_buffer(const shm::Segment& seg, uint32_t b, const conf::RangeTables& t) {
  shm::TopologyHeader* h = shm::topology_header(seg.base());
  shm::RangeBufferLayout l = shm::RangeBufferLayout::of(h->capacity);
  char* buf = static_cast<char*>(seg.base()) + shm::range_buffer_offset(h->location_capacity, h->capacity, b);
  auto copy = [&](size_t off, const auto& v) {
    if (!v.empty()) std::memcpy(buf + off, v.data(), v.size() * sizeof(v[0]));
  };
  copy(l.v4_starts, t.v4_starts);
  copy(l.v4_groups, t.v4_groups);
  copy(l.v6_hi, t.v6_hi);
  copy(l.v6_lo, t.v6_lo);
  copy(l.v6_groups, t.v6_groups);
  shm::release_store(h->count4[b], uint32_t(t.v4_starts.size()));
  shm::release_store(h->count6[b], uint32_t(t.v6_hi.size()));
}

bool build(const conf::Config& cfg, PendingTopology* out, std::string* error) {
  conf::TopologyMapResult map = conf::load_topology_map(cfg.topology_file, cfg.topology_max_prefixes);
  if (!map.ok()) return *error = map.error, false;
  std::string why = conf::build_topology(map.entries, cfg.topology_default_location, g_registry.get(), &out->tables);
  if (!why.empty()) return *error = cfg.topology_file + ": " + why, false;
  out->prefixes = map.entries.size();
  return true;
}

}  // namespace

shm::Segment create_topology_segment(const conf::Config& cfg, uint64_t clock_base_ns) {
  bool file = cfg.topology_mode == "file";
  uint32_t cap = file ? range_capacity(cfg) : 0, locations = file ? cfg.topology_max_locations : 0;
  shm::Segment seg = shm::Segment::create(shm::topology_segment_name(cfg.shm_name),
                                          shm::topology_segment_bytes(locations, cap), shm::SegmentKind::topology, 0,
                                          0, clock_base_ns);
  shm::TopologyHeader* h = shm::topology_header(seg.base());
  h->mode = uint32_t(file ? shm::TopologyMode::file
                          : cfg.topology_mode == "prefix" ? shm::TopologyMode::prefix : shm::TopologyMode::off);
  h->prefix4 = uint8_t(cfg.topology_prefix_v4);
  h->prefix6 = uint8_t(cfg.topology_prefix_v6);
  h->capacity = cap;
  h->location_capacity = locations;
  if (!file) return seg;
  g_registry = std::make_unique<conf::LocationRegistry>(locations);
  uint64_t t0 = shm::monotonic_ns();
  PendingTopology p;
  std::string error;
  if (!build(cfg, &p, &error)) throw std::runtime_error(error);
  h->default_group = g_registry->find(cfg.topology_default_location);
  publish_locations(seg);
  write_buffer(seg, 0, p.tables);
  LOG_INFO("topology map: %zu prefixes, %zu locations, %zu IPv4 and %zu IPv6 ranges from %s in %llu ms", p.prefixes,
           g_registry->entries().size(), p.tables.v4_starts.size(), p.tables.v6_hi.size(), cfg.topology_file.c_str(),
           (unsigned long long)((shm::monotonic_ns() - t0) / 1000000));
  return seg;
}

bool prepare_topology_reload(const conf::Config& cfg, const shm::Segment& topology, PendingTopology* out,
                             std::string* error) {
  if (cfg.topology_mode != "file" || !g_registry) return true;
  if (!build(cfg, out, error)) return false;
  publish_locations(topology);
  return true;
}

void publish_topology(const shm::Segment& topology, const PendingTopology& p) {
  shm::TopologyHeader* h = shm::topology_header(topology.base());
  if (shm::TopologyMode(h->mode) != shm::TopologyMode::file) return;
  uint32_t b = 1 - (shm::acquire_load(h->active) & 1);
  write_buffer(topology, b, p.tables);
  shm::release_store(h->active, b);
}

}  // namespace shoal::supervisor
