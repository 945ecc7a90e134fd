// supervisor/daemon.hpp — classic daemonization for `shoald -d`: double fork, setsid, chdir /,
// stdio to /dev/null, and a PID file holding the supervisor's PID.
#pragma once
#include <string>

namespace shoal::supervisor {

// Detaches from the terminal. Returns false (with *why) if a step failed; the caller exits 1.
bool daemonize(std::string* why);
// Writes getpid() to `path` (mode 0644). Returns false with *why on error.
bool write_pid_file(const std::string& path, std::string* why);

}  // namespace shoal::supervisor
