// supervisor/transfer_store.cpp — see transfer_store.hpp.
#include "supervisor/transfer_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "worker/fd_io.hpp"

namespace shoal::supervisor {
namespace {

std::string errno_text(const std::string& what) { return what + ": " + strerror(errno); }

}  // namespace

bool read_torrent_file(const std::string& path, bool follow_links, std::string* out, std::string* why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (follow_links ? 0 : O_NOFOLLOW));
  if (fd < 0) return *why = errno_text(path), false;
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = errno_text(path);
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
    if (out->size() > kMaxTorrentFileBytes) break;  // decode_torrent reports it
  }
  close(fd);
  return true;
}

namespace {

std::string key_of(const uint8_t info_hash[20]) { return std::string(reinterpret_cast<const char*>(info_hash), 20); }

}  // namespace

bool TransferStore::open(const std::string& dir, std::vector<std::string>* skipped, std::string* why) {
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return *why = errno_text("cannot create " + dir), false;
  DIR* d = opendir(dir.c_str());
  if (!d) return *why = errno_text("cannot read " + dir), false;
  dir_ = dir;
  by_hash_.clear();
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 8 || name.compare(name.size() - 8, 8, ".torrent") != 0) continue;
    std::string path = dir + "/" + name, bytes, problem;
    Transfer t;
    uint8_t named[20];
    if (!read_torrent_file(path, false, &bytes, &problem)) {
      skipped->push_back(problem);
      continue;
    }
    if (!decode_torrent(bytes, &t.meta, &problem)) {
      skipped->push_back(path + ": " + problem);
      continue;
    }
    if (!parse_info_hash_hex(name.substr(0, name.size() - 8), named) || memcmp(named, t.meta.info_hash, 20) != 0) {
      skipped->push_back(path + ": the file name is not its info_hash (" + info_hash_hex(t.meta.info_hash) + ")");
      continue;
    }
    struct stat sb{};
    t.registered_at = stat(path.c_str(), &sb) == 0 ? int64_t(sb.st_mtime) : 0;
    t.path = path;
    by_hash_[key_of(t.meta.info_hash)] = std::move(t);
  }
  closedir(d);
  return true;
}

TransferStore::AddResult TransferStore::add(const std::string& bytes, const Transfer** out, std::string* why) {
  Transfer t;
  if (!decode_torrent(bytes, &t.meta, why)) return AddResult::invalid;
  std::string key = key_of(t.meta.info_hash);
  auto it = by_hash_.find(key);
  if (it != by_hash_.end()) {
    *out = &it->second;
    return AddResult::already_registered;
  }
  if (by_hash_.size() >= capacity_)
    return *why = std::to_string(capacity_) + " transfers are registered, the most transfers.max_transfers allows; "
                  "remove one first", AddResult::invalid;
  t.path = dir_ + "/" + info_hash_hex(t.meta.info_hash) + ".torrent";
  if (!worker::replace_file(t.path, bytes.data(), bytes.size(), true))
    return *why = errno_text("cannot store " + t.path), AddResult::io_error;
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);  // the rename itself survives a crash
    close(dfd);
  }
  t.registered_at = int64_t(time(nullptr));
  auto [pos, inserted] = by_hash_.emplace(key, std::move(t));
  *out = &pos->second;
  if (on_change_) on_change_(pos->second.meta.info_hash, true);
  return AddResult::added;
}

bool TransferStore::remove(const uint8_t info_hash[20], std::string* why) {
  auto it = by_hash_.find(key_of(info_hash));
  if (it == by_hash_.end()) return false;
  if (unlink(it->second.path.c_str()) != 0 && errno != ENOENT) return *why = errno_text(it->second.path), false;
  by_hash_.erase(it);
  if (on_change_) on_change_(info_hash, false);
  return true;
}

const Transfer* TransferStore::find(const uint8_t info_hash[20]) const {
  auto it = by_hash_.find(key_of(info_hash));
  return it == by_hash_.end() ? nullptr : &it->second;
}

const Transfer* TransferStore::find_by_key(const std::string& key) const {
  uint8_t hash[20];
  if (parse_info_hash_hex(key, hash)) {
    if (const Transfer* t = find(hash)) return t;
  }
  const Transfer* found = nullptr;
  for (const auto& [k, t] : by_hash_) {
    if (t.meta.name != key) continue;
    if (found) return nullptr;  // ambiguous
    found = &t;
  }
  return found;
}

std::vector<const Transfer*> TransferStore::list() const {
  std::vector<const Transfer*> out;
  for (const auto& [k, t] : by_hash_) out.push_back(&t);
  return out;
}

bool TransferStore::read_torrent(const Transfer& t, std::string* bytes, std::string* why) const {
  return read_torrent_file(t.path, false, bytes, why);
}

}  // namespace shoal::supervisor
