// supervisor/log.hpp — the one logger of every shoald process (supervisor and workers).
// One line per event: "2026-11-23T12:00:00Z [warn] shoald[4242] swarm/1: message".
// Writes to stderr in the foreground, to syslog(3) when daemonized. Not async-signal-safe:
// never call it from a signal handler.
#pragma once
#include <string>

namespace shoal {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// Parses "error", "warn", "info", "debug"; returns false for anything else.
bool parse_log_level(const std::string& s, LogLevel* out);
// Sets the threshold and the sink (stderr, or syslog when `use_syslog`).
void log_init(LogLevel level, bool use_syslog);
// Sets the role shown in every line: "supervisor", "socket/0", "swarm/1".
void log_set_role(const std::string& role);
// printf-style logging at `level`.
void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace shoal

#define LOG_ERROR(...) ::shoal::log_msg(::shoal::LogLevel::error, __VA_ARGS__)
#define LOG_WARN(...) ::shoal::log_msg(::shoal::LogLevel::warn, __VA_ARGS__)
#define LOG_INFO(...) ::shoal::log_msg(::shoal::LogLevel::info, __VA_ARGS__)
#define LOG_DEBUG(...) ::shoal::log_msg(::shoal::LogLevel::debug, __VA_ARGS__)
