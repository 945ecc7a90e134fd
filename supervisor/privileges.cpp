// supervisor/privileges.cpp — see privileges.hpp. The switch uses setresuid(2)/setresgid(2):
// with the saved ids left at root, the effective and permitted capabilities survive the
// temporary switch (capabilities(7), "Effect of user ID changes on capabilities") and come back
// with it; once all three ids are the user's, they are gone for good.
#include "supervisor/privileges.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "supervisor/log.hpp"
#include "supervisor/segments.hpp"

namespace shoal::supervisor {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

size_t lookup_buffer_size() {
  long n = sysconf(_SC_GETPW_R_SIZE_MAX);
  long m = sysconf(_SC_GETGR_R_SIZE_MAX);
  return size_t(std::max({n, m, 16384L}));
}

// The user named (or numbered) `name`: false when there is none.
bool find_user(const std::string& name, uid_t* uid, gid_t* gid, std::string* canonical) {
  std::vector<char> buf(lookup_buffer_size());
  passwd pw{}, *found = nullptr;
  getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (!found && all_digits(name)) getpwuid_r(uid_t(strtoul(name.c_str(), nullptr, 10)), &pw, buf.data(), buf.size(), &found);
  if (!found) return false;
  *uid = pw.pw_uid;
  *gid = pw.pw_gid;
  *canonical = pw.pw_name;
  return true;
}

bool find_group(const std::string& name, gid_t* gid, std::string* canonical) {
  std::vector<char> buf(lookup_buffer_size());
  group gr{}, *found = nullptr;
  getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
  if (!found && all_digits(name)) getgrgid_r(gid_t(strtoul(name.c_str(), nullptr, 10)), &gr, buf.data(), buf.size(), &found);
  if (!found) return false;
  *gid = gr.gr_gid;
  *canonical = gr.gr_name;
  return true;
}

std::string group_name(gid_t gid) {
  std::string name;
  gid_t ignored;
  return find_group(std::to_string(gid), &ignored, &name) ? name : std::to_string(gid);
}

std::string who(const Identity& id) {
  return "user " + id.user + " (uid " + std::to_string(id.uid) + "), group " + id.group + " (gid " +
         std::to_string(id.gid) + ")";
}

// Gives a file we made (owned by root, not a symbolic link) to the user. True if it was changed.
bool give(const std::string& path, const Identity& id, bool (*kind)(mode_t)) {
  struct stat sb{};
  if (lstat(path.c_str(), &sb) != 0 || !kind(sb.st_mode) || sb.st_uid != 0) return false;
  if (fchownat(AT_FDCWD, path.c_str(), id.uid, id.gid, AT_SYMLINK_NOFOLLOW) == 0) return true;
  LOG_WARN("cannot give %s to %s: %s", path.c_str(), id.user.c_str(), strerror(errno));
  return false;
}

bool is_regular(mode_t m) { return S_ISREG(m); }
bool is_dir(mode_t m) { return S_ISDIR(m); }
bool is_socket(mode_t m) { return S_ISSOCK(m); }

bool ends_with(const std::string& s, const char* tail) {
  size_t n = strlen(tail);
  return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

// The entries of transfers.state_dir when it holds nothing but what TransferStore writes
// (<info_hash>.torrent, and .tmp files of an interrupted write); false otherwise, and then
// the directory is not shoald's alone to give away.
bool only_transfer_files(const std::string& dir, std::vector<std::string>* files) {
  DIR* d = opendir(dir.c_str());
  if (!d) return false;
  bool ours = true;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat sb{};
    std::string path = dir + "/" + name;
    if (lstat(path.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode) ||
        !(ends_with(name, ".torrent") || ends_with(name, ".torrent.tmp"))) {
      ours = false;
      break;
    }
    files->push_back(path);
  }
  closedir(d);
  return ours;
}

}  // namespace

std::string check_identity_names(const conf::Config& cfg) {
  Identity id;
  std::string why;
  return lookup_identity(cfg, &id, &why) ? "" : why;
}

bool lookup_identity(const conf::Config& cfg, Identity* out, std::string* why) {
  *out = Identity{};
  if (cfg.daemon_user.empty()) return true;
  if (!find_user(cfg.daemon_user, &out->uid, &out->gid, &out->user))
    return *why = "daemon.user \"" + cfg.daemon_user + "\": no such user", false;
  if (!cfg.daemon_group.empty()) {
    if (!find_group(cfg.daemon_group, &out->gid, &out->group))
      return *why = "daemon.group \"" + cfg.daemon_group + "\": no such group", false;
  } else {
    out->group = group_name(out->gid);
  }
  int n = 32;
  out->groups.resize(size_t(n));
  while (getgrouplist(out->user.c_str(), out->gid, out->groups.data(), &n) < 0) out->groups.resize(size_t(n) + 8);
  out->groups.resize(size_t(n));
  return true;
}

bool resolve_identity(const conf::Config& cfg, Identity* out, std::string* why) {
  if (!lookup_identity(cfg, out, why)) return false;
  if (cfg.daemon_user.empty() || out->uid == 0) return true;  // root stays root: nothing to drop
  if (getuid() == out->uid && geteuid() == out->uid && getgid() == out->gid && getegid() == out->gid) return true;
  if (geteuid() != 0)
    return *why = "daemon.user is \"" + cfg.daemon_user + "\" but shoald runs as uid " + std::to_string(geteuid()) +
                  ", not as root, and only root can switch users: start it as root (it runs as " + out->user +
                  " once its sockets are bound), or set daemon.user = \"\"",
           false;
  out->change = true;
  return true;
}

AsUser::AsUser(const Identity& id) {
  if (!id.change) return;
  int n = getgroups(0, nullptr);
  saved_groups_.resize(size_t(std::max(n, 0)));
  if (n > 0) getgroups(n, saved_groups_.data());
  if (setgroups(id.groups.size(), id.groups.data()) != 0 || setresgid(id.gid, id.gid, gid_t(-1)) != 0 ||
      setresuid(id.uid, id.uid, uid_t(-1)) != 0) {
    std::string e = strerror(errno);
    restore();
    throw std::runtime_error("cannot act as " + who(id) + ": " + e);
  }
  switched_ = true;
}

AsUser::~AsUser() {
  if (switched_) restore();
}

// Back to root (the saved set-user-ID), then root's groups.
void AsUser::restore() {
  switched_ = false;
  if (setresuid(0, 0, uid_t(-1)) != 0 || setresgid(0, 0, gid_t(-1)) != 0 ||
      setgroups(saved_groups_.size(), saved_groups_.data()) != 0) {
    LOG_ERROR("cannot become root again after acting as daemon.user: %s; stopping", strerror(errno));
    _exit(1);
  }
}

void hand_over_segments(const conf::Config& cfg, const Identity& id) {
  if (!id.change) return;
  size_t n = 0;
  for (const std::string& path : segment_files(cfg.shm_name)) n += give(path, id, &is_regular);
  if (n)
    LOG_INFO("gave the %zu shared-memory segments of shm_name \"%s\" that root owned to %s (daemon.user), keeping "
             "the swarms in them", n, cfg.shm_name.c_str(), id.user.c_str());
}

void hand_over_files(const conf::Config& cfg, const Identity& id) {
  if (!id.change) return;
  if (!cfg.stats_socket.empty()) give(cfg.stats_socket, id, &is_socket);
  const std::string& dir = cfg.transfers_state_dir;
  if (dir.empty()) return;
  struct stat sb{};
  if (lstat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != 0) return;
  std::vector<std::string> files;
  if (!only_transfer_files(dir, &files)) return;  // check_access_as_user says what to do
  give(dir, id, &is_dir);
  for (const std::string& f : files) give(f, id, &is_regular);
  LOG_INFO("gave transfers.state_dir %s (%zu files) to %s (daemon.user)", dir.c_str(), files.size(), id.user.c_str());
}

bool drop_privileges(const Identity& id, std::string* why) {
  if (!id.change) return true;
  if (setgroups(id.groups.size(), id.groups.data()) != 0) return *why = std::string("setgroups: ") + strerror(errno), false;
  if (setresgid(id.gid, id.gid, id.gid) != 0) return *why = std::string("setresgid: ") + strerror(errno), false;
  if (setresuid(id.uid, id.uid, id.uid) != 0) return *why = std::string("setresuid: ") + strerror(errno), false;
  uid_t r, e, s;
  gid_t rg, eg, sg;
  getresuid(&r, &e, &s);
  getresgid(&rg, &eg, &sg);
  if (r != id.uid || e != id.uid || s != id.uid || rg != id.gid || eg != id.gid || sg != id.gid)
    return *why = "the user and group ids did not all change", false;
  if (setuid(0) == 0 || seteuid(0) == 0) return *why = "root could be regained after dropping it", false;
  LOG_INFO("running as %s from now on (daemon.user)", who(id).c_str());
  return true;
}

std::string check_access_as_user(const conf::Config& cfg, const Identity& id) {
  if (!id.change || cfg.transfers_state_dir.empty()) return "";
  if (access(cfg.transfers_state_dir.c_str(), W_OK | X_OK) == 0) return "";
  return "transfers.state_dir " + cfg.transfers_state_dir + " is not writable by daemon.user " + id.user + ": " +
         strerror(errno) + " (chown it to " + id.user + ", or use a directory of its own)";
}

}  // namespace shoal::supervisor
