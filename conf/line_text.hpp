// conf/line_text.hpp — small helpers shared by the line-oriented file readers of conf/ (access
// list, topology map, connection-id key file): what counts as blank space on a line, and how a
// byte is shown in an error message. Inline, no state; runs wherever those readers run.
#pragma once
#include <cstdio>
#include <string>

namespace shoal::conf {

// Blank space inside a line (the newline ends the line and is never passed here).
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// 'g' for printable ASCII, '\xNN' for anything else (control bytes, UTF-8), for error messages.
inline std::string quote_char(unsigned char c) {
  char buf[8];
  if (c >= 0x20 && c < 0x7f)
    snprintf(buf, sizeof buf, "'%c'", c);
  else
    snprintf(buf, sizeof buf, "'\\x%02x'", c);
  return buf;
}

}  // namespace shoal::conf
