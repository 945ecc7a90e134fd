// tools/shm_inspect.cpp — reads a running (or dead) shoald's control segment, read-only.
// Usage: shm_inspect --name SHM_NAME counters   sum of every worker's counters, "name value"
//        shm_inspect --name SHM_NAME workers    one line per slot: role index pid generation
//                                               ready last_tick restarts
//        shm_inspect --name SHM_NAME header     segment header fields
//        shm_inspect --name SHM_NAME access     access-list segment: mode, generation, counts,
//                                               reloads, reload_errors, sizes, and each socket
//                                               worker's ack (ack_socket_<i>) ("name value")
// Exit 0, or 1 if the segment cannot be attached (missing, other layout version).
#include <cstdio>
#include <cstring>
#include <string>

#include "shm/access_segment.hpp"
#include "shm/control_segment.hpp"
#include "shm/segment.hpp"

using namespace shoal::shm;

namespace {

void print_counters(const ControlSegment* c) {
  for (uint32_t k = 0; k < kCounterCount; k++) {
    printf("%s %llu\n", kCounterInfo[k].name, (unsigned long long)sum_counter(c, Counter(k)));
  }
}

void print_workers(const ControlSegment* c) {
  auto row = [&](const char* role, uint32_t i, const WorkerSlot& w) {
    printf("%s %u pid=%u generation=%u ready=%u last_tick=%u restarts=%u\n", role, i, load_u32(w.pid),
           load_u32(w.generation), load_u32(w.ready), load_u32(w.last_tick), load_u32(w.restarts));
  };
  for (uint32_t i = 0; i < c->control.socket_workers; i++) row("socket", i, c->slots[socket_slot(i)]);
  for (uint32_t i = 0; i < c->control.swarm_workers; i++) row("swarm", i, c->slots[swarm_slot(i)]);
}

void print_header(const ControlSegment* c) {
  printf("layout_version %u\nsegment_size %llu\nsocket_workers %u\nswarm_workers %u\ncreated_unix %llu\n",
         c->header.layout_version, (unsigned long long)c->header.segment_size, c->control.socket_workers,
         c->control.swarm_workers, (unsigned long long)c->control.created_unix);
}

// The access-list segment (shm/access_segment.hpp), one "name value" line per field.
int print_access(const std::string& name) {
  Segment seg = Segment::attach(access_segment_name(name), SegmentKind::access, true);
  const AccessHeader* h = access_header(seg.base());
  uint32_t active = acquire_load(h->active);
  printf("mode %u\nactive %u\ngeneration %u\ncapacity %u\ncount0 %llu\ncount1 %llu\nactive_count %llu\n", h->mode,
         active, acquire_load(h->generation), h->capacity, (unsigned long long)acquire_load(h->count[0]),
         (unsigned long long)acquire_load(h->count[1]), (unsigned long long)acquire_load(h->count[active & 1]));
  printf("reloads %llu\nreload_errors %llu\nlast_reload_ms %llu\nsegment_size %zu\n",
         (unsigned long long)acquire_load(h->reloads), (unsigned long long)acquire_load(h->reload_errors),
         (unsigned long long)acquire_load(h->last_reload_ms), seg.size());
  Segment ctl = Segment::attach(control_segment_name(name), SegmentKind::control, true);
  auto* c = static_cast<const ControlSegment*>(ctl.base());
  for (uint32_t i = 0; i < c->control.socket_workers; i++)
    printf("ack_socket_%u %u\n", i, load_u32(c->slots[socket_slot(i)].access_generation));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string name, what;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--name") && i + 1 < argc)
      name = argv[++i];
    else
      what = argv[i];
  }
  if (name.empty() || (what != "counters" && what != "workers" && what != "header" && what != "access")) {
    fprintf(stderr, "usage: shm_inspect --name SHM_NAME counters|workers|header|access\n");
    return 2;
  }
  try {
    if (what == "access") return print_access(name);
    Segment seg = Segment::attach(control_segment_name(name), SegmentKind::control, true);
    if (seg.size() < sizeof(ControlSegment)) throw std::runtime_error("control segment too small");
    auto* c = static_cast<const ControlSegment*>(seg.base());
    if (what == "counters") print_counters(c);
    if (what == "workers") print_workers(c);
    if (what == "header") print_header(c);
  } catch (const std::exception& e) {
    fprintf(stderr, "shm_inspect: %s\n", e.what());
    return 1;
  }
  return 0;
}
