// worker/http_request.cpp — see http_request.hpp. Glue between the front-end's read buffer and
// the http_parser library: one parser run per request from its first byte (the run stops at the
// end of the request with http_parser_pause), so every element the callbacks see is contiguous in
// the caller's buffer and no state outlives the call.
#include "worker/http_request.hpp"

#include <http_parser.h>
#include <strings.h>

#include <algorithm>
#include <climits>

namespace shoal::worker::http {
namespace {

struct State {
  std::string_view header_name;
  HttpRequest* out;
  const char* url_begin = nullptr;
  const char* url_end = nullptr;
  const char* field_begin = nullptr;
  const char* field_end = nullptr;
  bool in_value = false;   // the last callback was a header value
  bool matching = false;   // the current header's name is header_name
  bool has_body = false;
  bool complete = false;
};

State* state(http_parser* p) { return static_cast<State*>(p->data); }

int on_url(http_parser* p, const char* at, size_t n) {
  State* s = state(p);
  if (!s->url_begin) s->url_begin = at;
  s->url_end = at + n;
  return 0;
}

int on_header_field(http_parser* p, const char* at, size_t n) {
  State* s = state(p);
  if (s->in_value || !s->field_begin) s->field_begin = at;  // a new header starts
  s->field_end = at + n;
  s->in_value = false;
  return 0;
}

int on_header_value(http_parser* p, const char* at, size_t n) {
  State* s = state(p);
  if (!s->in_value) {  // the first piece of this header's value
    size_t len = size_t(s->field_end - s->field_begin);
    s->matching = !s->header_name.empty() && len == s->header_name.size() &&
                  strncasecmp(s->field_begin, s->header_name.data(), len) == 0;
    if (s->matching) {
      s->out->header = std::string_view(at, n);
      s->out->has_header = true;
    }
  } else if (s->matching) {  // a folded continuation line: the value spans both
    s->out->header = std::string_view(s->out->header.data(), size_t(at + n - s->out->header.data()));
  }
  s->in_value = true;
  return 0;
}

int on_headers_complete(http_parser* p) {
  // The tracker reads no bodies (evhttp's max body size 0 gave 413 the same way).
  if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
    state(p)->has_body = true;
    return -1;  // stops the run with HPE_CB_headers_complete
  }
  return 0;
}

int on_message_complete(http_parser* p) {
  State* s = state(p);
  s->complete = true;
  s->out->minor = uint8_t(p->http_minor);
  s->out->keep_alive = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);  // the run ends here; the next request is the caller's next call
  return 0;
}

const http_parser_settings kSettings = [] {
  http_parser_settings s{};
  s.on_url = on_url;
  s.on_header_field = on_header_field;
  s.on_header_value = on_header_value;
  s.on_headers_complete = on_headers_complete;
  s.on_message_complete = on_message_complete;
  return s;
}();

}  // namespace

Scan scan_request(const char* data, size_t len, size_t max_head_bytes, std::string_view header_name,
                  HttpRequest* out, size_t* consumed) {
  *consumed = 0;
  *out = HttpRequest{};
  State s;
  s.header_name = header_name;
  s.out = out;
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &s;
  // A request whose head does not end within max_head_bytes is refused, so the parser never
  // needs to see more than that.
  size_t n = std::min(len, max_head_bytes);
  size_t used = http_parser_execute(&p, &kSettings, data, n);
  if (s.has_body) return Scan::body_too_large;
  if (!s.complete) {
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK) return Scan::bad_request;
    return len >= max_head_bytes ? Scan::bad_request : Scan::incomplete;
  }
  if (p.http_major != 1) return Scan::bad_request;
  if (p.method != HTTP_GET) return Scan::not_implemented;
  if (!s.url_begin) return Scan::bad_request;
  out->target = std::string_view(s.url_begin, size_t(s.url_end - s.url_begin));
  *consumed = used;
  return Scan::complete;
}

}  // namespace shoal::worker::http
