// supervisor/privileges.hpp — running as daemon.user / daemon.group (shoal.conf(5)). Started as
// root, the supervisor binds every listener and the stats, metrics and admin sockets as root,
// makes its shared-memory segments as the user (so its workers can attach them, and the next
// start can re-attach them as that user, without any capability), hands over the files it made
// as root, and then gives up root for good (setgroups, setresgid, setresuid) before it forks a
// worker. Everything facing the network then runs without privileges. Runs in the supervisor.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

#include "conf/config.hpp"

namespace shoal::supervisor {

// Whom to run as. `change` is false when there is nothing to do (daemon.user is "", or names
// the user shoald already runs as).
struct Identity {
  bool change = false;
  std::string user, group;      // names, for the log
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;    // supplementary groups: gid and the user's groups (getgrouplist)
};

// Looks up daemon.user and daemon.group (names or numbers) in the user and group databases.
// False with *why (one sentence naming the setting) when one does not exist, or when it asks
// for a change that this process cannot make (it does not run as root).
bool resolve_identity(const conf::Config& cfg, Identity* out, std::string* why);
// The look-up part of resolve_identity (no check of this process's rights).
bool lookup_identity(const conf::Config& cfg, Identity* out, std::string* why);
// `shoald -t`: "" when daemon.user and daemon.group exist (or are ""), else why not.
std::string check_identity_names(const conf::Config& cfg);

// While alive, the process's real and effective user and group ids and its groups are those
// of `id` (the saved ids stay root, so the destructor can come back): files it creates belong
// to the user, and access checks are the user's. Nothing when !id.change. A failure to switch
// throws std::runtime_error; a failure to come back is logged and ends the process (it must
// never go on with a mix of identities).
class AsUser {
 public:
  explicit AsUser(const Identity& id);
  ~AsUser();
  AsUser(const AsUser&) = delete;
  AsUser& operator=(const AsUser&) = delete;

 private:
  void restore();
  bool switched_ = false;
  std::vector<gid_t> saved_groups_;
};

// Gives `id` the segment files of cfg.shm_name that root owns (left by a shoald that ran without
// daemon.user), so switching to daemon.user keeps the swarms. Symbolic links and files of other
// owners are left alone. Call after the instance lock is held. Logs what it changed.
void hand_over_segments(const conf::Config& cfg, const Identity& id);

// Gives `id` the files the supervisor made as root that it keeps using: the stats socket, and
// transfers.state_dir when it holds nothing but shoald's own .torrent files (then those too).
void hand_over_files(const conf::Config& cfg, const Identity& id);

// Gives up root for good: setgroups(id.groups), setresgid and setresuid to id on all three ids;
// then checks that root cannot be regained. False with *why if a step failed.
bool drop_privileges(const Identity& id, std::string* why);

// After drop_privileges: "" when the user can use what shoald will touch later
// (transfers.state_dir writable); otherwise one sentence naming the path and the fix.
std::string check_access_as_user(const conf::Config& cfg, const Identity& id);

}  // namespace shoal::supervisor
