// supervisor/admin_http.hpp — the admin HTTP API for deploy transfers, served by libevent's
// evhttp on the supervisor's loop at `admin.listen` (off unless configured; meant for loopback
// or a management network). Deploy tooling registers a transfer by uploading its .torrent, and
// hosts download the .torrent back by name or info_hash:
//   POST   /transfers                 body: the .torrent → 201 {"added":true,"transfer":{…}},
//                                     200 {"added":false,…} when already registered,
//                                     400 {"error":"…"} when it does not decode
//   GET    /transfers                 → 200 {"transfers":[{…},…]}
//   GET    /transfers/KEY.json        → 200 {…} or 404 (KEY: 40 hex info_hash, or the name)
//   GET    /transfers/KEY.torrent     → 200 the stored .torrent (application/x-bittorrent)
//   DELETE /transfers/KEY             → 200 {"removed":"<hex>"} or 404
// Requests are bounded: headers 8 KiB, body kMaxTorrentFileBytes, 10 s per request.
#pragma once
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include <string>

#include "supervisor/transfer_store.hpp"

namespace shoal::supervisor {

// {"info_hash": hex, "name", "length" (bytes), "piece_length", "private", "announce",
//  "registered_at" (Unix seconds), "files": [{"path", "length"}]}. New reference.
json_t* transfer_json(const Transfer& t);

class AdminHttp {
 public:
  // Binds `listen` ("127.0.0.1:9470" or "[::1]:9470"). Throws std::runtime_error naming the
  // address when it cannot.
  // `progress` (may be null) adds the deploy progress to GET /transfers/KEY.json: counts, times,
  // complete and progress, and with ?racks=1 one object per location.
  AdminHttp(event_base* base, TransferStore* store, const std::string& listen,
            const class TransferProgressPoller* progress = nullptr);
  ~AdminHttp();
  AdminHttp(const AdminHttp&) = delete;
  AdminHttp& operator=(const AdminHttp&) = delete;

  // The port bound (useful with port 0 in tests).
  uint16_t port() const { return port_; }

 private:
  static void on_request(evhttp_request* req, void* arg);
  void handle(evhttp_request* req);
  TransferStore* store_;
  const TransferProgressPoller* progress_;
  evhttp* http_ = nullptr;
  uint16_t port_ = 0;
};

}  // namespace shoal::supervisor
