// supervisor/segments_remove.cpp — the segments of one shm_name as files under /dev/shm: find
// them, tell whether a live shoald uses them, check that this user may use them, and remove
// them for `shoald --remove-shm`. Runs in the supervisor process before anything is attached
// (or in place of starting). POSIX shared memory objects are files in /dev/shm on Linux
// (shm_overview(7)), so a directory listing finds every segment, also of an older geometry.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shm/control_segment.hpp"
#include "supervisor/instance_lock.hpp"
#include "supervisor/segments.hpp"

namespace shoal::supervisor {
namespace {

constexpr const char* kShmDir = "/dev/shm";

bool is_segment_of(const std::string& file, const std::string& prefix) {
  if (file.rfind(prefix + "-", 0) != 0) return false;
  std::string rest = file.substr(prefix.size() + 1);
  if (rest == "control" || rest == "rings" || rest == "access" || rest == "topology" || rest == "transfers" || rest == "relay" ||
      rest == "snapshot" || rest == "cluster") return true;
  if (rest.rfind("part-", 0) != 0 || rest.size() == 5) return false;
  return std::all_of(rest.begin() + 5, rest.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::vector<std::string> segment_files(const std::string& shm_name) {
  std::vector<std::string> out;
  DIR* d = opendir(kShmDir);
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (is_segment_of(e->d_name, shm_name)) out.push_back(std::string(kShmDir) + "/" + e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

uint32_t live_worker_pid(const std::string& shm_name) {
  try {
    shm::Segment control = shm::Segment::attach(shm::control_segment_name(shm_name), shm::SegmentKind::control, true);
    if (control.size() != sizeof(shm::ControlSegment)) return 0;
    const auto* c = static_cast<const shm::ControlSegment*>(control.base());
    for (uint32_t s = 0; s < shm::kMaxWorkerSlots; s++) {
      uint32_t pid = shm::load_u32(c->slots[s].pid);
      if (pid != 0 && pid != uint32_t(getpid()) && is_shoald_process(pid)) return pid;
    }
  } catch (const std::exception&) {
  }
  return 0;
}

std::string foreign_segments_problem(const conf::Config& cfg) {
  for (const std::string& path : segment_files(cfg.shm_name)) {
    if (access(path.c_str(), R_OK | W_OK) == 0) continue;
    struct stat sb{};
    std::string owner = stat(path.c_str(), &sb) == 0 ? " (owner uid " + std::to_string(sb.st_uid) + ")" : "";
    return "the shared memory of shm_name \"" + cfg.shm_name + "\" exists but this user (uid " +
           std::to_string(geteuid()) + ") may not use it: " + path + owner + ": " + strerror(errno) +
           ". Run shoald as the user who created it, set another shm_name in the configuration, or remove "
           "the old segments (as that user: shoald --remove-shm with the same configuration)";
  }
  return "";
}

int remove_segments_command(const conf::Config& cfg) {
  std::vector<std::string> files = segment_files(cfg.shm_name);
  if (files.empty()) {
    printf("shoald: no shared memory of shm_name \"%s\" in %s; nothing to remove\n", cfg.shm_name.c_str(), kShmDir);
    return 0;
  }
  if (pid_t pid = instance_lock_holder(cfg.shm_name)) {
    fprintf(stderr, "shoald: a shoald (pid %d) is running on shm_name \"%s\": stop it first "
            "(kill -TERM %d); nothing removed\n", int(pid), cfg.shm_name.c_str(), int(pid));
    return 1;
  }
  if (uint32_t pid = live_worker_pid(cfg.shm_name)) {
    fprintf(stderr, "shoald: a shoald is running on shm_name \"%s\" (its worker pid %u): stop it first "
            "(kill -TERM the supervisor); nothing removed\n", cfg.shm_name.c_str(), pid);
    return 1;
  }
  int rc = 0;
  uint64_t bytes = 0;
  for (const std::string& path : files) {
    struct stat sb{};
    uint64_t used = stat(path.c_str(), &sb) == 0 ? uint64_t(sb.st_blocks) * 512 : 0;
    if (unlink(path.c_str()) != 0) {
      fprintf(stderr, "shoald: cannot remove %s: %s\n", path.c_str(), strerror(errno));
      rc = 1;
      continue;
    }
    bytes += used;
    printf("shoald: removed %s\n", path.c_str());
  }
  unlink(instance_lock_path(cfg.shm_name).c_str());  // not held: nobody runs on this shm_name
  printf("shoald: %s: freed %.1f MiB of memory; the swarms that were kept in it are gone\n",
         rc == 0 ? "done" : "some segments remain", double(bytes) / (1 << 20));
  return rc;
}

}  // namespace shoal::supervisor
