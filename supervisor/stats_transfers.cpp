// supervisor/stats_transfers.cpp — the stats-socket commands for deploy transfers
// ("transfer list|show|add|remove"), rows of the table in stats_commands.cpp. They work on the
// supervisor's TransferStore, the same one the admin HTTP API uses. `transfer add` takes the
// path of a .torrent file that the supervisor reads (shoalctl sends an absolute path); remote
// tooling uploads over the admin API instead.
#include <cstring>

#include "supervisor/admin_http.hpp"
#include "supervisor/stats_commands.hpp"
#include "supervisor/supervisor.hpp"
#include "supervisor/transfer_progress.hpp"

namespace shoal::supervisor {
namespace {

CommandResult result(json_t* obj, const std::string& error = "") {
  CommandResult r;
  r.result = error.empty() ? obj : nullptr;
  r.error = error;
  return r;
}

TransferStore* store_or_null(Supervisor& sup) { return sup.transfers(); }

const char* kOff = "transfers are off: set transfers.state_dir in the configuration";

}  // namespace

CommandResult transfer_list(Supervisor& sup, const std::string&) {
  TransferStore* store = store_or_null(sup);
  if (!store) return result(nullptr, kOff);
  json_t* list = json_array();
  for (const Transfer* t : store->list()) {
    json_t* o = transfer_json(*t);
    json_object_del(o, "files");  // one line per transfer; "transfer show" has the files
    json_array_append_new(list, o);
  }
  return result(json_pack("{s:I,s:o}", "count", json_int_t(store->size()), "transfers", list));
}

CommandResult transfer_show(Supervisor& sup, const std::string& key) {
  TransferStore* store = store_or_null(sup);
  if (!store) return result(nullptr, kOff);
  const Transfer* t = store->find_by_key(key);
  if (!t) return result(nullptr, "no transfer \"" + key + "\" (give its name or 40-hex info_hash)");
  json_t* o = transfer_json(*t);
  const TransferProgress* p = sup.progress() ? sup.progress()->get(t->meta.info_hash) : nullptr;
  if (p) json_object_set_new(o, "deploy", progress_json(*p, true));
  return result(o);
}

CommandResult transfer_add(Supervisor& sup, const std::string& path) {
  TransferStore* store = store_or_null(sup);
  if (!store) return result(nullptr, kOff);
  std::string bytes, why;
  if (!read_torrent_file(path, true, &bytes, &why)) return result(nullptr, "cannot read " + why);
  const Transfer* t = nullptr;
  switch (store->add(bytes, &t, &why)) {
    case TransferStore::AddResult::added:
      return result(json_pack("{s:b,s:o}", "added", 1, "transfer", transfer_json(*t)));
    case TransferStore::AddResult::already_registered:
      return result(json_pack("{s:b,s:o}", "added", 0, "transfer", transfer_json(*t)));
    case TransferStore::AddResult::invalid:
      return result(nullptr, path + ": " + why);
    case TransferStore::AddResult::io_error:
      break;
  }
  return result(nullptr, why);
}

CommandResult transfer_remove(Supervisor& sup, const std::string& key) {
  TransferStore* store = store_or_null(sup);
  if (!store) return result(nullptr, kOff);
  const Transfer* t = store->find_by_key(key);
  if (!t) return result(nullptr, "no transfer \"" + key + "\" (give its name or 40-hex info_hash)");
  uint8_t hash[20];
  memcpy(hash, t->meta.info_hash, 20);
  std::string why;
  if (!store->remove(hash, &why)) return result(nullptr, why);
  return result(json_pack("{s:s}", "removed", info_hash_hex(hash).c_str()));
}

}  // namespace shoal::supervisor
