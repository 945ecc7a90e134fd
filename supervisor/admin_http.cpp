// supervisor/admin_http.cpp — see admin_http.hpp. Runs in the supervisor.
#include "supervisor/admin_http.hpp"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "supervisor/http_listen.hpp"
#include "supervisor/log.hpp"
#include "supervisor/transfer_progress.hpp"

namespace shoal::supervisor {
namespace {

constexpr size_t kMaxHeaderBytes = 8192;
constexpr int kRequestTimeoutS = 10;

void reply_json(evhttp_request* req, int code, const char* reason, json_t* body) {
  char* text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, text, strlen(text));
  evbuffer_add(buf, "\n", 1);
  free(text);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

void reply_error(evhttp_request* req, int code, const char* reason, const std::string& why) {
  reply_json(req, code, reason, json_pack("{s:s}", "error", why.c_str()));
}

// "/transfers/KEY.ext" → KEY (percent-decoded) and ext ("json", "torrent" or "" for none).
bool split_key(const std::string& path, std::string* key, std::string* ext) {
  static const std::string kPrefix = "/transfers/";
  if (path.compare(0, kPrefix.size(), kPrefix) != 0 || path.size() == kPrefix.size()) return false;
  std::string raw = path.substr(kPrefix.size());
  ext->clear();
  for (const char* e : {".json", ".torrent"}) {
    size_t n = strlen(e);
    if (raw.size() > n && raw.compare(raw.size() - n, n, e) == 0) {
      *ext = e + 1;
      raw.resize(raw.size() - n);
      break;
    }
  }
  char* decoded = evhttp_uridecode(raw.c_str(), 0, nullptr);
  if (!decoded) return false;
  *key = decoded;
  free(decoded);
  return !key->empty() && key->find('/') == std::string::npos;
}

}  // namespace

json_t* transfer_json(const Transfer& t) {
  json_t* files = json_array();
  for (const TorrentFileEntry& f : t.meta.files)
    json_array_append_new(files, json_pack("{s:s,s:I}", "path", f.path.c_str(), "length", json_int_t(f.length)));
  return json_pack("{s:s,s:s,s:I,s:I,s:b,s:s,s:I,s:o}", "info_hash", info_hash_hex(t.meta.info_hash).c_str(), "name",
                   t.meta.name.c_str(), "length", json_int_t(t.meta.total_length), "piece_length",
                   json_int_t(t.meta.piece_length), "private", int(t.meta.is_private), "announce",
                   t.meta.announce.c_str(), "registered_at", json_int_t(t.registered_at), "files", files);
}

AdminHttp::AdminHttp(event_base* base, TransferStore* store, const std::string& listen,
                     const TransferProgressPoller* progress)
    : store_(store), progress_(progress) {
  http_ = http_listen(base, listen, "admin.listen", &port_);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
  evhttp_set_max_headers_size(http_, kMaxHeaderBytes);
  evhttp_set_max_body_size(http_, kMaxTorrentFileBytes);
  evhttp_set_timeout(http_, kRequestTimeoutS);
  evhttp_set_gencb(http_, &AdminHttp::on_request, this);
}

AdminHttp::~AdminHttp() {
  if (http_) evhttp_free(http_);
}

void AdminHttp::on_request(evhttp_request* req, void* arg) { static_cast<AdminHttp*>(arg)->handle(req); }

void AdminHttp::handle(evhttp_request* req) {
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* p = uri ? evhttp_uri_get_path(uri) : nullptr;
  std::string path = p ? p : "";
  evhttp_cmd_type method = evhttp_request_get_command(req);
  if (path == "/transfers" || path == "/transfers/") {
    if (method == EVHTTP_REQ_GET) {
      json_t* list = json_array();
      for (const Transfer* t : store_->list()) json_array_append_new(list, transfer_json(*t));
      return reply_json(req, HTTP_OK, "OK", json_pack("{s:o}", "transfers", list));
    }
    if (method != EVHTTP_REQ_POST) return reply_error(req, 405, "Method Not Allowed", "use GET or POST on /transfers");
    evbuffer* in = evhttp_request_get_input_buffer(req);
    std::string bytes(evbuffer_get_length(in), '\0');
    evbuffer_copyout(in, bytes.data(), bytes.size());
    const Transfer* t = nullptr;
    std::string why;
    switch (store_->add(bytes, &t, &why)) {
      case TransferStore::AddResult::added:
        LOG_INFO("transfer registered: %s \"%s\" (%llu bytes, %zu files)", info_hash_hex(t->meta.info_hash).c_str(),
                 t->meta.name.c_str(), (unsigned long long)t->meta.total_length, t->meta.files.size());
        return reply_json(req, 201, "Created", json_pack("{s:b,s:o}", "added", 1, "transfer", transfer_json(*t)));
      case TransferStore::AddResult::already_registered:
        return reply_json(req, HTTP_OK, "OK", json_pack("{s:b,s:o}", "added", 0, "transfer", transfer_json(*t)));
      case TransferStore::AddResult::invalid:
        return reply_error(req, HTTP_BADREQUEST, "Bad Request", why);
      case TransferStore::AddResult::io_error:
        LOG_ERROR("transfer not stored: %s", why.c_str());
        return reply_error(req, HTTP_INTERNAL, "Internal Server Error", why);
    }
  }
  std::string key, ext;
  if (!split_key(path, &key, &ext)) return reply_error(req, HTTP_NOTFOUND, "Not Found", "try /transfers");
  const Transfer* t = store_->find_by_key(key);
  if (!t) return reply_error(req, HTTP_NOTFOUND, "Not Found", "no transfer \"" + key + "\" (by name or 40-hex info_hash)");
  if (method == EVHTTP_REQ_DELETE && ext.empty()) {
    uint8_t hash[20];
    memcpy(hash, t->meta.info_hash, 20);
    std::string hex = info_hash_hex(hash), why;
    if (!store_->remove(hash, &why)) return reply_error(req, HTTP_INTERNAL, "Internal Server Error", why);
    LOG_INFO("transfer removed: %s", hex.c_str());
    return reply_json(req, HTTP_OK, "OK", json_pack("{s:s}", "removed", hex.c_str()));
  }
  if (method != EVHTTP_REQ_GET) return reply_error(req, 405, "Method Not Allowed", "GET KEY.json or KEY.torrent; DELETE KEY");
  if (ext == "json") {
    json_t* o = transfer_json(*t);
    const char* query = uri ? evhttp_uri_get_query(uri) : nullptr;
    evkeyvalq params{};
    bool racks = false;
    if (query && evhttp_parse_query_str(query, &params) == 0) {
      const char* v = evhttp_find_header(&params, "racks");
      racks = v && strcmp(v, "0") != 0;
      evhttp_clear_headers(&params);
    }
    if (const TransferProgress* p = progress_ ? progress_->get(t->meta.info_hash) : nullptr)
      json_object_set_new(o, "deploy", progress_json(*p, racks));
    return reply_json(req, HTTP_OK, "OK", o);
  }
  if (ext != "torrent") return reply_error(req, HTTP_NOTFOUND, "Not Found", "ask for KEY.json or KEY.torrent");
  std::string bytes, why;
  if (!store_->read_torrent(*t, &bytes, &why)) return reply_error(req, HTTP_INTERNAL, "Internal Server Error", why);
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, bytes.data(), bytes.size());
  evkeyvalq* h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type", "application/x-bittorrent");
  std::string disposition = "attachment; filename=\"" + info_hash_hex(t->meta.info_hash) + ".torrent\"";
  evhttp_add_header(h, "Content-Disposition", disposition.c_str());
  evhttp_send_reply(req, HTTP_OK, "OK", buf);
  evbuffer_free(buf);
}

}  // namespace shoal::supervisor
