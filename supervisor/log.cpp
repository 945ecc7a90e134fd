// supervisor/log.cpp — see log.hpp. Each line is formatted into a stack buffer and written
// with one write(2), so lines from several processes sharing stderr do not interleave.
#include "supervisor/log.hpp"

#include <syslog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace shoal {
namespace {
LogLevel g_level = LogLevel::info;
bool g_syslog = false;
char g_role[32] = "supervisor";
const char* const kLevelNames[] = {"error", "warn", "info", "debug"};
const int kSyslogPriority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
}  // namespace

bool parse_log_level(const std::string& s, LogLevel* out) {
  for (int i = 0; i < 4; i++) {
    if (s == kLevelNames[i]) {
      *out = LogLevel(i);
      return true;
    }
  }
  return false;
}

void log_init(LogLevel level, bool use_syslog) {
  g_level = level;
  if (use_syslog && !g_syslog) openlog("shoald", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  g_syslog = use_syslog;
}

void log_set_role(const std::string& role) { snprintf(g_role, sizeof g_role, "%s", role.c_str()); }

void log_msg(LogLevel level, const char* fmt, ...) {
  if (int(level) > int(g_level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (g_syslog) {
    syslog(kSyslogPriority[int(level)], "%s: %s", g_role, msg);
    return;
  }
  char line[1200];
  time_t now = time(nullptr);
  struct tm tm;
  gmtime_r(&now, &tm);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02dZ [%s] shoald[%d] %s: %s\n",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   kLevelNames[int(level)], int(getpid()), g_role, msg);
  if (n < 0) return;
  if (size_t(n) >= sizeof line) {
    n = sizeof line - 1;
    line[n - 1] = '\n';
  }
  ssize_t r = write(STDERR_FILENO, line, size_t(n));
  (void)r;
}

}  // namespace shoal
