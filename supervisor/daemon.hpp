// supervisor/daemon.hpp — classic daemonization for `shoald -d`: double fork, setsid, chdir /,
// stdio to /dev/null, and a PID file holding the supervisor's PID. The original process stays
// until the daemon reports (supervisor/readiness.hpp), so `shoald -d` exits 0 only once the
// tracker serves and exits 1 with the reason when it cannot start.
#pragma once
#include <string>

namespace shoal::supervisor {

// Detaches from the terminal. Returns in the daemon only: false (with *why) if a step failed
// there, and the caller exits 1. The original process waits on a pipe for
// readiness_ready()/readiness_failed() and exits 0, or 1 after printing the reason to stderr
// ("shoald: cannot start: ..."); 1 with a pointer to syslog if the daemon died without a word.
bool daemonize(std::string* why);
// Writes getpid() to `path` (mode 0644). Returns false with *why on error.
bool write_pid_file(const std::string& path, std::string* why);

}  // namespace shoal::supervisor
