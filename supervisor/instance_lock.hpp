// supervisor/instance_lock.hpp — one shoald per shm_name. Two supervisors on the same shared
// memory would run two writers on every partition and ring (and the second would kill the
// first one's workers while re-attaching), so the supervisor holds an exclusive flock(2) on
// /dev/shm/<shm_name>-lock for its whole life; the file holds its pid, for the message the
// second one prints. The kernel drops the lock when the supervisor dies, however it dies, so a
// shoald started after a crash re-attaches as before. Workers close their inherited copy of
// the descriptor, so the lock never outlives the supervisor.
#pragma once
#include <string>
#include <sys/types.h>

namespace shoal::supervisor {

// Path of the lock file of `shm_name`.
std::string instance_lock_path(const std::string& shm_name);

// Takes the lock for this process (call it after daemonizing: the pid written is getpid()).
// Returns false with *why = "another shoald (pid N) is running on shm_name "X" …" when a live
// supervisor holds it, or the system error when the file cannot be opened.
bool acquire_instance_lock(const std::string& shm_name, std::string* why);

// In a forked worker: closes the inherited descriptor (the lock stays with the supervisor).
void instance_lock_forget();

// Pid of the supervisor holding the lock of `shm_name`, 0 when none does (also when there is no
// lock file). Never takes the lock for longer than the test.
pid_t instance_lock_holder(const std::string& shm_name);

}  // namespace shoal::supervisor
