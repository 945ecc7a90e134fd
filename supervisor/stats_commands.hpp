// supervisor/stats_commands.hpp — the stats-socket command table: words, help, handler. A
// handler builds a JSON object (jansson); the text form is derived from it by render_text(),
// so text and JSON always carry the same fields. "show torrent" asks a swarm worker through
// its mailbox and completes asynchronously (poll()).
#pragma once
#include <jansson.h>

#include <functional>
#include <string>
#include <vector>

namespace shoal::supervisor {

class Supervisor;

// Outcome of running one command line.
//   done     result (or error) is ready
//   poll     set when the answer comes later: call it until it returns true (then result is
//            set) — the caller gives up after a deadline
struct CommandResult {
  json_t* result = nullptr;     // owned; object
  std::string error;            // non-empty: the command failed (reply "error: ...")
  std::function<bool(CommandResult*)> poll;
  bool waiting_turn = false;    // set by poll: not sent yet, queued behind other clients
  bool progressed = false;      // set by poll: work went on (a long command's deadline restarts)
};

struct Command {
  const char* words;  // "show workers": what dispatch matches
  const char* usage;  // "show workers [json]": the syntax, shown by "help" and in usage errors
  const char* help;   // one line on what it shows or does, shown by "help" after the usage
  bool takes_arg;     // e.g. "show torrent <hex>"
  CommandResult (*run)(Supervisor& sup, const std::string& arg);
};

// Deploy-transfer commands (supervisor/stats_transfers.cpp).
CommandResult transfer_list(Supervisor& sup, const std::string&);
CommandResult transfer_show(Supervisor& sup, const std::string& key);
CommandResult transfer_add(Supervisor& sup, const std::string& path);
CommandResult transfer_remove(Supervisor& sup, const std::string& key);

// The table (for help, the man page test and dispatch).
const std::vector<Command>& stats_commands();

// Parses and runs one command line ("show stats json"). *json is set when "json" was given.
CommandResult run_command(Supervisor& sup, const std::string& line, bool* json);

// Text form: "name: value" lines; nested objects become "a.b: value"; arrays of objects become
// one line per element of "key=value" pairs.
std::string render_text(const json_t* obj);

}  // namespace shoal::supervisor
