// supervisor/readiness.hpp — tells whoever started shoald that it serves, or why it could not
// start. Two listeners, both optional:
//   - the terminal of `shoald -d`: daemonize() (supervisor/daemon.hpp) keeps a pipe from the
//     detached supervisor to the original process, which exits 0 once shoald serves, or prints
//     the reason and exits 1;
//   - systemd with Type=notify: datagrams to $NOTIFY_SOCKET (the sd_notify protocol, sd_notify(3):
//     "READY=1", "STOPPING=1", "STATUS=..."; a leading '@' names an abstract socket).
// Supervisor-only state; forked workers call readiness_forget() so that they hold neither.
#pragma once
#include <string>

namespace shoal::supervisor {

// Messages on the `-d` pipe: one byte, then for a failure the reason and a newline.
inline constexpr char kReadyByte = 'R';
inline constexpr char kFailedByte = 'F';

// The write end of the `-d` pipe, in the daemon (daemonize() calls this). -1: none.
void readiness_set_parent_pipe(int fd);

// shoald serves: every worker is ready. Releases the `-d` parent (exit 0) and sends
// "READY=1" plus a STATUS line to systemd. `status` is one line of text. Idempotent.
void readiness_ready(const std::string& status);

// shoald could not start: hands `reason` (one line) to the `-d` parent, which prints it and
// exits 1. No effect after readiness_ready() or without -d.
void readiness_failed(const std::string& reason);

// A new STATUS= line for systemd (e.g. a degraded state), at any time after start.
void readiness_status(const std::string& status);

// shoald begins to stop (SIGTERM/SIGINT or a fatal error): "STOPPING=1" to systemd.
void readiness_stopping();

// In a forked worker: closes the `-d` pipe and the notify socket copies (only the supervisor
// reports readiness).
void readiness_forget();

}  // namespace shoal::supervisor
