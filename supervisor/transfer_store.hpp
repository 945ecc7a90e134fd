// supervisor/transfer_store.hpp — the deploy transfers registered with shoald (issue: location-
// aware swarms for datacenter deploys): each is a .torrent uploaded by deploy tooling, kept as
// <state_dir>/<40 hex info_hash>.torrent so registrations survive restarts, and served back to
// the hosts by name or info_hash. Owned by the supervisor (single-threaded); no shared memory.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "supervisor/torrent_file.hpp"

namespace shoal::supervisor {

// One registered transfer. registered_at: Unix time (seconds) the .torrent was stored (its
// file's mtime after a restart).
struct Transfer {
  TorrentMeta meta;
  std::string path;  // <state_dir>/<hex>.torrent
  int64_t registered_at = 0;
};

// Reads a whole .torrent file into *out, stopping once it exceeds kMaxTorrentFileBytes (which
// decode_torrent then reports). follow_links false: a symbolic link is refused (O_NOFOLLOW).
// False with *why = "path: reason" when it cannot be opened or read.
bool read_torrent_file(const std::string& path, bool follow_links, std::string* out, std::string* why);

class TransferStore {
 public:
  enum class AddResult { added, already_registered, invalid, io_error };

  // Opens `dir` (created with mode 0750 when missing) and loads every *.torrent in it. A file
  // that does not decode, or whose name is not its own info_hash, is skipped and reported in
  // *skipped ("path: reason"), never deleted. Returns false with *why when the directory cannot
  // be created or read.
  bool open(const std::string& dir, std::vector<std::string>* skipped, std::string* why);

  // Decodes `bytes` (a whole .torrent), stores it durably (write to a temporary file, fsync,
  // rename, fsync the directory) and registers it. *out is the registered transfer (also for
  // already_registered). invalid and io_error set *why to one sentence for the operator.
  AddResult add(const std::string& bytes, const Transfer** out, std::string* why);

  // Unregisters and deletes the stored file. Returns false (nothing changed) when `info_hash`
  // (20 raw bytes) is not registered, or with *why set when the file cannot be removed.
  bool remove(const uint8_t info_hash[20], std::string* why);

  // The transfer with this info_hash (20 raw bytes), or nullptr.
  const Transfer* find(const uint8_t info_hash[20]) const;
  // The transfer whose name or 40-hex info_hash (any case) is `key`; nullptr when none, or when
  // several transfers share that name (ask by info_hash then).
  const Transfer* find_by_key(const std::string& key) const;
  // Every transfer, by info_hash.
  std::vector<const Transfer*> list() const;
  // The stored .torrent bytes of `t`; false with *why when the file cannot be read.
  bool read_torrent(const Transfer& t, std::string* bytes, std::string* why) const;

  const std::string& dir() const { return dir_; }
  size_t size() const { return by_hash_.size(); }

  // At most `n` transfers at once: add() refuses more (invalid, saying so). Default: no limit.
  void set_capacity(size_t n) { capacity_ = n; }
  // Called after every successful add() and remove() with the transfer's 20-byte info_hash and
  // whether it was added (the supervisor publishes the set to the socket workers, and drops a
  // removed transfer's swarm).
  void set_on_change(std::function<void(const uint8_t* info_hash, bool added)> f) { on_change_ = std::move(f); }

 private:
  size_t capacity_ = SIZE_MAX;
  std::function<void(const uint8_t*, bool)> on_change_;
  std::string dir_;
  std::map<std::string, Transfer> by_hash_;  // key: 20 raw info_hash bytes
};

}  // namespace shoal::supervisor
