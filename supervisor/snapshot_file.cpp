// supervisor/snapshot_file.cpp — see snapshot_file.hpp. Runs in the supervisor: at start
// (prepare_snapshot_load, before any fork) and in its event loop (the save command's polls).
#include "supervisor/snapshot_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <vector>

#include "shm/clock.hpp"
#include "shm/control_segment.hpp"
#include "shm/layout.hpp"
#include "shm/snapshot_segment.hpp"
#include "supervisor/log.hpp"
#include "supervisor/readiness.hpp"
#include "supervisor/segments.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/version.hpp"
#include "worker/fd_io.hpp"

namespace shoal::supervisor {
namespace {

using shm::load_u32;
using worker::write_all;

std::string g_load_note = "shared memory kept: nothing to load";  // for show info
json_t* g_last_save = nullptr;                                     // the last finished save
bool g_saving = false;

std::string host_name() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

// One save in progress. Phase 0: earlier passes (of a save whose client went away) are drained
// and discarded until every channel is idle; phase 1: this save's passes.
struct SaveJob {
  Supervisor* sup;
  std::string path, tmp;
  int fd = -1;
  int phase = 0;
  std::vector<uint32_t> seq;
  std::vector<bool> done;
  shm::SnapshotSink counter;  // the decoder only checks and counts
  shm::SnapshotDecoder dec{&counter};
  uint32_t chunks = 0;
  uint64_t bytes = 0, started_ns = shm::monotonic_ns();
  ~SaveJob() {
    if (fd >= 0) close(fd);
    if (!tmp.empty()) unlink(tmp.c_str());
    g_saving = false;
  }
  shm::SnapshotControl* ctl(uint32_t w) const { return shm::snapshot_control(sup->segments().snapshot.base(), w); }
  shm::SpscRing<shm::SnapshotChunkSlot> ring(uint32_t w) const {
    return shm::SpscRing<shm::SnapshotChunkSlot>(shm::snapshot_ring_at(sup->segments().snapshot.base(), w));
  }
  uint32_t workers() const { return sup->config().swarm_workers; }
  bool put(const uint8_t* p, size_t n, std::string* err) {
    if (!dec.feed(p, n)) return *err = "the chunks of the swarm workers do not form a good snapshot: " + dec.error(), false;
    if (!write_all(fd, p, n)) return *err = tmp + ": " + strerror(errno), false;
    bytes += n;
    return true;
  }
  // Phase 0 step: true once no worker has a pass running.
  bool idle(bool* progressed) {
    bool all = true;
    for (uint32_t w = 0; w < workers(); w++) {
      shm::SpscRing<shm::SnapshotChunkSlot> r = ring(w);
      if (uint64_t n = r.available()) r.retire(n), *progressed = true;
      if (load_u32(ctl(w)->request_seq) != load_u32(ctl(w)->response_seq)) all = false;
    }
    return all;
  }
  bool start(std::string* err) {
    tmp = path + ".tmp." + std::to_string(getpid());
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return *err = tmp + ": " + strerror(errno), tmp.clear(), false;
    shm::SnapshotInfo info{uint64_t(time(nullptr)), host_name(), std::string("shoald ") + kShoalVersion, shm::kLayoutVersion};
    std::vector<uint8_t> head = shm::encode_snapshot_start(info);
    if (!put(head.data(), head.size(), err)) return false;
    uint32_t t0 = shm::seconds_since(sup->control()->header.clock_base_ns);
    for (uint32_t w = 0; w < workers(); w++) {
      shm::SnapshotControl* c = ctl(w);
      c->t0 = t0;
      seq.push_back(load_u32(c->request_seq) + 1);
      shm::store_u32(c->request_seq, seq.back());
      sup->wake_swarm_worker(w);
    }
    done.assign(workers(), false);
    phase = 1;
    return true;
  }
  // Phase 1 step: copies the chunks published so far. True once every worker finished.
  bool copy(bool* progressed, std::string* err) {
    bool all = true;
    for (uint32_t w = 0; w < workers(); w++) {
      if (done[w]) continue;
      uint32_t answered = load_u32(ctl(w)->response_seq);  // before the ring: its chunks are all published
      shm::SpscRing<shm::SnapshotChunkSlot> r = ring(w);
      for (uint64_t n = r.available(); n > 0; n--) {
        const shm::SnapshotChunkSlot* s = r.peek(0);
        if (s->len > sizeof s->bytes || !put(s->bytes, s->len, err)) {
          if (err->empty()) *err = "swarm worker " + std::to_string(w) + " published a chunk of a bad length";
          return false;
        }
        r.retire(1);
        chunks++;
        *progressed = true;
      }
      if (answered != seq[w]) {
        all = false;
        continue;
      }
      if (ctl(w)->status != shm::kSnapshotOk)
        return *err = "swarm worker " + std::to_string(w) + " was restarted during the snapshot; try again", false;
      done[w] = true;
      *progressed = true;
    }
    return all;
  }
  json_t* finish(std::string* err) {
    shm::SnapshotTotals t = dec.totals();
    t.data_chunks = chunks;
    std::vector<uint8_t> end = shm::encode_snapshot_end(t);
    if (!put(end.data(), end.size(), err)) return nullptr;
    if (!dec.finish()) return *err = "the snapshot does not check: " + dec.error(), nullptr;
    if (fsync(fd) != 0 || close(fd) != 0) return fd = -1, *err = tmp + ": " + strerror(errno), nullptr;
    fd = -1;
    if (rename(tmp.c_str(), path.c_str()) != 0) return *err = path + ": " + strerror(errno), nullptr;
    tmp.clear();
    std::string dir = path.substr(0, path.rfind('/') + 1);
    int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd), close(dfd);  // the rename survives a crash
    double s = double(shm::monotonic_ns() - started_ns) / 1e9;
    json_t* o = json_object();
    json_object_set_new(o, "file", json_string(path.c_str()));
    json_object_set_new(o, "torrents", json_integer(json_int_t(t.torrents)));
    json_object_set_new(o, "peers", json_integer(json_int_t(t.peers)));
    json_object_set_new(o, "bytes", json_integer(json_int_t(bytes)));
    json_object_set_new(o, "seconds", json_real(s));
    json_object_set_new(o, "time_unix", json_integer(json_int_t(time(nullptr))));
    LOG_INFO("snapshot saved to %s: %llu torrents, %llu peers, %llu bytes in %.2f s", path.c_str(),
             (unsigned long long)t.torrents, (unsigned long long)t.peers, (unsigned long long)bytes, s);
    if (g_last_save) json_decref(g_last_save);
    g_last_save = json_deep_copy(o);
    return o;
  }
};

struct CheckSink final : shm::SnapshotSink {};

}  // namespace

std::string check_snapshot_file(const std::string& path, shm::SnapshotInfo* info, shm::SnapshotTotals* totals, bool* missing) {
  *missing = false;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    return path + ": " + strerror(errno);
  }
  CheckSink sink;
  shm::SnapshotDecoder dec(&sink);
  std::vector<uint8_t> buf(65536);
  bool ok = true;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = path + ": " + strerror(errno);
      close(fd);
      return why;
    }
    if (n == 0 || !(ok = dec.feed(buf.data(), size_t(n)))) break;
  }
  close(fd);
  if (ok) ok = dec.finish();
  if (!ok) return path + ": " + dec.error();
  *info = dec.info();
  *totals = dec.totals();
  return "";
}

void prepare_snapshot_load(const conf::Config& cfg, const SegmentSet& segs) {
  if (cfg.snapshot_load.empty()) {
    g_load_note = "no tracker.snapshot_load";
    return;
  }
  shm::SnapshotInfo info;
  shm::SnapshotTotals totals;
  bool missing = false;
  std::string why = check_snapshot_file(cfg.snapshot_load, &info, &totals, &missing);
  if (missing) {
    g_load_note = "missing: " + why;
    LOG_WARN("no snapshot to load (%s): starting with empty swarms", why.c_str());
    return;
  }
  if (!why.empty()) throw std::runtime_error("snapshot " + why + " (fix or remove the file, or set tracker.snapshot_load = \"\")");
  for (uint32_t w = 0; w < cfg.swarm_workers; w++) shm::store_u32(shm::snapshot_control(segs.snapshot.base(), w)->load_pending, 1);
  g_load_note = "loading";
  LOG_INFO("loading the snapshot %s (%llu torrents, %llu peers, taken by %s at unix time %llu, %llu s ago) into new partitions",
           cfg.snapshot_load.c_str(), (unsigned long long)totals.torrents, (unsigned long long)totals.peers, info.node.c_str(),
           (unsigned long long)info.created_unix, (unsigned long long)(uint64_t(time(nullptr)) - info.created_unix));
  readiness_status("loading the snapshot " + cfg.snapshot_load);
}

CommandResult snapshot_save(Supervisor& sup, const std::string& path) {
  CommandResult r;
  if (path.empty() || path[0] != '/') return r.error = "snapshot save needs an absolute path", r;
  if (g_saving) return r.error = "a snapshot save is already running", r;
  g_saving = true;
  auto job = std::make_shared<SaveJob>();
  job->sup = &sup;
  job->path = path;
  r.poll = [job](CommandResult* out) {
    std::string err;
    bool progressed = false;
    if (job->phase == 0 && job->idle(&progressed) && !job->start(&err)) return out->error = err, true;
    if (job->phase == 1 && err.empty()) {
      bool all = job->copy(&progressed, &err);
      if (!err.empty()) return out->error = err, true;
      if (all) {
        out->result = job->finish(&err);
        if (!out->result) out->error = err;
        return true;
      }
    }
    out->progressed = progressed;
    return false;
  };
  if (r.poll(&r)) r.poll = nullptr;
  return r;
}

json_t* snapshot_info_json(Supervisor& sup) {
  const conf::Config& c = sup.config();
  json_t* o = json_object();
  json_t* load = json_object();
  json_object_set_new(load, "file", json_string(c.snapshot_load.c_str()));
  std::string state = g_load_note;
  uint64_t torrents = 0, peers = 0, expired = 0, full = 0;
  bool any = false, running = false, failed = false;
  for (uint32_t w = 0; w < c.swarm_workers; w++) {
    const shm::SnapshotControl* ctl = shm::snapshot_control(sup.segments().snapshot.base(), w);
    uint32_t st = load_u32(ctl->load_state);
    any |= st != shm::kLoadNone;
    running |= st == shm::kLoadRunning || (st == shm::kLoadNone && load_u32(ctl->load_pending));
    failed |= st == shm::kLoadFailed;
    if (st != shm::kLoadDone) continue;
    torrents += ctl->loaded_torrents;
    peers += ctl->loaded_peers;
    expired += ctl->skipped_expired;
    full += ctl->refused_full;
  }
  if (any || running) state = failed ? "failed" : running ? "loading" : "loaded";
  json_object_set_new(load, "state", json_string(state.c_str()));
  json_object_set_new(load, "torrents", json_integer(json_int_t(torrents)));
  json_object_set_new(load, "peers", json_integer(json_int_t(peers)));
  json_object_set_new(load, "skipped_expired", json_integer(json_int_t(expired)));
  json_object_set_new(load, "refused_full", json_integer(json_int_t(full)));
  json_object_set_new(o, "load", load);
  if (g_last_save) json_object_set(o, "last_save", g_last_save);
  json_object_set_new(o, "saving", json_boolean(g_saving));
  return o;
}

}  // namespace shoal::supervisor
