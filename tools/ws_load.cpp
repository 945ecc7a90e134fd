// ws_load: WebTorrent (WebSocket) tracker load generator for shoal, the WS sibling of udp_load
// and http_load, modelled on aquatic_ws_load_test. LOOPBACK targets only.
//
//   ws_load --url ws://127.0.0.1:6971/announce --connections 64 --seconds 10
//   ws_load --url wss://127.0.0.1:6972/announce --insecure --connections 1000 --idle --seconds 30
//
// Load mode (default): --connections WebSocket connections (connection k from source address
// 127.0.(k/254).(1+k%254), so the tracker sees distinct clients), each one peer with its own
// peer_id, as a browser's tracker connection. Each keeps one announce in flight: for a torrent
// drawn from --torrents by the rank-size Pareto popularity of udp_load (shape 1.16), "started"
// the first time this peer announces it and no event after, left 0 for a quarter of the peers,
// with --offers offers (numwant = offers; a ~560-byte browser-like SDP each). A peer joins at
// most 64 torrents; after that a draw of a new one re-announces one of its own. A peer that gets
// a relayed offer sends back the answer (action announce, to_peer_id, offer_id, answer).
// Connections are opened at most --open-burst at a time; timing starts when all are open.
//
// Every message is validated (tools/ws/wt_messages.hpp): an announce reply must carry the
// info_hash of an announce this peer has pending and integer complete/incomplete >= 0 and
// interval > 0; a relayed offer must carry an offer_id and peer_id that another connection of
// this run made for that info_hash, for a torrent this peer announced, with the exact SDP
// sent; a relayed answer must answer one of this connection's offers, from another peer of
// this run, with the SDP that peer sends. A "failure reason" is an error (the first 5
// distinct messages are printed); anything else that fails is invalid. An announce unanswered
// for --timeout s is a timeout (the peer sends its next one; a reply after that counts as
// late). A closed connection is reopened after 100 ms and counted.
//
// Idle mode (--idle): open the connections, send nothing, print one JSON line when all are
// open (or --open-timeout passed), hold them for --seconds, print a final line. tools/bench
// measures the tracker's RSS per idle connection with it.
//
// Cost: the generator must not be what limits a tracker's rate. Messages are written from
// templates into a reused buffer, masked while copied into the connection's output, written
// once per connection per loop pass, and read back until EAGAIN with each one parsed in place
// by simdjson (tools/ws/ws_client.hpp, wt_messages.hpp): no allocation per message.
//
// Output: one JSON line: announces_per_s, responses, offers_sent, offers_received,
// answers_sent, answers_received, errors, invalid, timeouts, connections_open, p50/p99 µs...
// Exit 0 ran, 2 bad arguments, 3 no connection opened or (load) no reply at all.
#include <getopt.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>

#include <cinttypes>
#include <cstdio>
#include <deque>
#include <memory>
#include <set>

#include "tools/load_common.hpp"
#include "tools/ws/ws_client.hpp"
#include "tools/ws/wt_messages.hpp"

namespace {

using namespace shoal_load;
using wt::Id;

constexpr size_t kMaxPending = 8;
constexpr uint64_t kReconnectDelay = kSec / 10;
constexpr uint64_t kDrain = kSec;
constexpr size_t kMaxMessages = 5;
// Torrents one peer joins at most (a browser tab seeds a handful; shoald holds at most 256 per
// connection). Once a peer has this many, a draw of another torrent re-announces one of its own.
constexpr size_t kTorrentsPerPeer = 64;

const char kUsage[] =
    "usage: ws_load --url ws://127.0.0.1:PORT/announce [options]\n"
    "  --url URL            ws:// or wss:// on 127.0.0.0/8, [::1] or localhost\n"
    "  --connections N      WebSocket connections (peers), default 64\n"
    "  --torrents T         torrents, default 1000 (Pareto popularity, shape 1.16)\n"
    "  --offers K           offers per announce (= numwant), default 5\n"
    "  --seconds S          measured seconds (idle: seconds held), default 10\n"
    "  --warmup W           seconds after all connections are open, not measured, default 1\n"
    "  --open-burst B       connections being opened at once, default 256\n"
    "  --open-timeout S     give up waiting for all connections after S s, default 60\n"
    "  --idle               open the connections and hold them, send nothing\n"
    "  --cpu K              pin to CPU K (sched_setaffinity)\n"
    "  --insecure           wss: do not verify the server's certificate\n"
    "  --cacert FILE        wss: trust FILE too\n"
    "  --timeout S          an announce unanswered for S s is a timeout (the peer goes on), default 10\n"
    "  --seed N             ids and draws, default 1\n";

struct Options {
  std::string url_text, cafile;
  ws::Url url;
  uint64_t connections = 64, torrents = 1000, offers = 5, open_burst = 256, seed = 1;
  double seconds = 10, warmup = 1, open_timeout = 60, timeout = 10;
  bool idle = false, insecure = false;
  long cpu = -1;
};

// Every counter, once: the struct, the window arithmetic and the JSON line iterate this list.
#define WS_LOAD_COUNTERS(X)                                                                  \
  X(responses) X(announces_sent) X(offers_sent) X(offers_received) X(answers_sent)            \
  X(answers_received) X(errors) X(invalid) X(timeouts) X(connect_failures) X(disconnects)     \
  X(server_closes) X(late) X(bytes_sent)

struct Counters {
#define WS_FIELD(n) uint64_t n = 0;
  WS_LOAD_COUNTERS(WS_FIELD)
#undef WS_FIELD
};

Counters minus(const Counters& a, const Counters& b) {
  Counters d;
#define WS_SUB(n) d.n = a.n - b.n;
  WS_LOAD_COUNTERS(WS_SUB)
#undef WS_SUB
  return d;
}

/// An announce sent and not answered yet. One that timed out stays (timed_out) for a while,
/// so that its late reply is told apart from a reply to nothing.
struct Pending {
  uint32_t torrent;
  uint64_t sent_ns;
  bool timed_out;
};

struct Peer {
  std::unique_ptr<ws::Client> client;
  Id peer_id{};
  bool seeder = false;
  uint32_t seq = 0;                // offers made
  std::vector<Pending> pending;    // announces sent and not answered (normally one)
  std::vector<uint64_t> joined;    // bitset over torrents: announced by this peer
  std::vector<uint32_t> torrents;  // the same torrents, in the order joined
};

// Load: opening -> warmup -> measuring -> draining -> done. Idle: opening -> holding -> done.
enum class Phase { opening, warmup, measuring, draining, holding, done };

class LoadGen : public ws::Handler {
 public:
  LoadGen(const Options& o, SSL_CTX* tls);
  ~LoadGen() override;
  int run();

 private:
  void on_open(ws::Client& c) override;
  void on_message(ws::Client& c, std::string_view text, bool binary) override;
  void on_close(ws::Client& c, ws::CloseCause cause, const char* detail) override;
  void tick();
  void open_more(uint64_t now);
  void start_phase(Phase p, uint64_t now);
  bool sending() const { return phase_ == Phase::warmup || phase_ == Phase::measuring; }
  void send_announce(Peer& p, uint32_t k, uint64_t now);
  bool answered(Peer& p, uint32_t k, const Id& info_hash_seen, bool ok);
  void on_announce_reply(Peer& p, uint32_t k, const wt::Reply& r);
  void on_offer(Peer& p, uint32_t k, const wt::Reply& r);
  void on_answer(uint32_t k, const wt::Reply& r);
  void invalid(const std::string& why);
  void note(std::string msg);
  uint32_t draw_torrent();
  Id info_hash(uint32_t t) const;
  void print(const char* phase, uint64_t now) const;

  const Options& o_;
  SSL_CTX* tls_;
  ws::Loop loop_;
  wt::Ids ids_;
  Workload wl_;
  Rng rng_{};
  std::vector<double> cdf_;
  std::vector<Peer> peers_;
  std::deque<std::pair<uint64_t, uint32_t>> to_open_;  // (not before ns, connection), FIFO
  Counters st_, at_measure_, window_;
  Histogram latency_;
  Phase phase_ = Phase::opening;
  double cpu_at_measure_ = 0, window_cpu_ = 0;  // this process's CPU seconds (user + system)
  uint64_t started_ns_ = 0, phase_ns_ = 0, measure_ns_ = 0, measured_ns_ = 0, open_ns_ = 0, ticks_ = 0;
  size_t connecting_ = 0, open_ = 0, inflight_ = 0;
  std::set<std::string> messages_, invalids_;
  std::vector<Id> offer_ids_;  // scratch of send_announce
  std::string msg_;            // scratch: the message being sent
};

LoadGen::LoadGen(const Options& o, SSL_CTX* tls)
    : o_(o), tls_(tls), ids_(mix64(o.seed ^ 0x77736c6f6164ull)) {
  rng_.s = o.seed;
  wl_.hash_key = rng_.next();  // as udp_load: the same --seed gives the same info hashes
  double acc = 0;
  cdf_.resize(o.torrents);
  for (uint64_t i = 0; i < o.torrents; ++i) cdf_[i] = acc += std::pow(double(i + 1), -1.0 / 1.16);
  peers_.resize(o.connections);
  for (uint32_t k = 0; k < peers_.size(); ++k) {
    peers_[k].client = std::make_unique<ws::Client>(&loop_, tls_, this, k, mix64(o.seed * 7919 + k));
    peers_[k].peer_id = ids_.peer_id(k);
    peers_[k].seeder = rng_.unit() < 0.25;
    to_open_.emplace_back(0, k);
  }
}

LoadGen::~LoadGen() {
  peers_.clear();  // clients close their sockets before the loop goes
}

uint32_t LoadGen::draw_torrent() {
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), rng_.unit() * cdf_.back());
  return uint32_t(std::min<size_t>(size_t(it - cdf_.begin()), cdf_.size() - 1));
}

Id LoadGen::info_hash(uint32_t t) const {
  Id h;
  wl_.info_hash(t, h.data());
  return h;
}

void LoadGen::invalid(const std::string& why) {
  ++st_.invalid;
  if (invalids_.size() < kMaxMessages) invalids_.insert(why);
}

void LoadGen::note(std::string msg) {
  if (messages_.size() < kMaxMessages) messages_.insert(std::move(msg));
}

/// Starts queued connections (first opens and reopens) while fewer than --open-burst are in
/// their handshake. Connection k comes from 127.0.(k/254).(1+k%254) (IPv4 targets).
void LoadGen::open_more(uint64_t now) {
  while (!to_open_.empty() && to_open_.front().first <= now && connecting_ < o_.open_burst) {
    uint32_t k = to_open_.front().second;
    to_open_.pop_front();
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000000u | uint32_t((k / 254) % 256) << 8 | uint32_t(1 + k % 254));
    std::string err;
    if (!peers_[k].client->start(o_.url, o_.url.v6 ? nullptr : reinterpret_cast<sockaddr*>(&src), sizeof src, &err)) {
      ++st_.connect_failures;
      note("open: " + err);
      to_open_.emplace_back(now + kReconnectDelay, k);
      continue;
    }
    ++connecting_;
  }
}

void LoadGen::on_open(ws::Client& c) {
  --connecting_, ++open_;
  if (sending()) send_announce(peers_[c.id()], c.id(), now_ns());
}

void LoadGen::on_close(ws::Client& c, ws::CloseCause cause, const char* detail) {
  Peer& p = peers_[c.id()];
  if (cause == ws::CloseCause::connect_failed || cause == ws::CloseCause::handshake_failed) {
    --connecting_, ++st_.connect_failures;
  } else {
    --open_;
    ++(cause == ws::CloseCause::server_closed ? st_.server_closes : st_.disconnects);
  }
  note(std::string("connection: ") + detail);
  for (const Pending& e : p.pending) inflight_ -= !e.timed_out;
  p.pending.clear();
  if (phase_ != Phase::holding) to_open_.emplace_back(now_ns() + kReconnectDelay, c.id());  // idle: counted only
}

void LoadGen::send_announce(Peer& p, uint32_t k, uint64_t now) {
  uint32_t t = draw_torrent();
  if (p.joined.empty()) p.joined.assign((o_.torrents + 63) / 64, 0);
  bool first = !(p.joined[t / 64] >> (t % 64) & 1);
  if (first && p.torrents.size() >= kTorrentsPerPeer) {  // full: one of its own torrents again
    t = p.torrents[rng_.below(p.torrents.size())];
    first = false;
  }
  if (first) p.torrents.push_back(t);
  p.joined[t / 64] |= uint64_t(1) << (t % 64);
  offer_ids_.resize(o_.offers);
  for (Id& id : offer_ids_) id = ids_.offer_id(k, p.seq++, t);
  ids_.encode_announce(&msg_, info_hash(t), p.peer_id, first ? "started" : nullptr, p.seeder ? 0 : 1000000,
                       offer_ids_.data(), offer_ids_.size());
  if (!p.client->send_text(msg_)) return;
  p.pending.push_back({t, now, false});
  ++inflight_;
  ++st_.announces_sent, st_.offers_sent += offer_ids_.size(), st_.bytes_sent += msg_.size();
}

void LoadGen::on_message(ws::Client& c, std::string_view text, bool binary) {
  uint32_t k = c.id();
  Peer& p = peers_[k];
  if (binary) return invalid("binary message");
  wt::Reply r = wt::parse_reply(text);
  switch (r.kind) {
    case wt::Kind::announce_reply: return on_announce_reply(p, k, r);
    case wt::Kind::offer: return on_offer(p, k, r);
    case wt::Kind::answer: return on_answer(k, r);
    case wt::Kind::error:
      ++st_.errors;
      note(r.failure);
      if (r.has_info_hash) answered(p, k, r.info_hash, false);  // an announce's reply: go on
      return;
    case wt::Kind::scrape_reply: return invalid("scrape reply to no scrape");
    case wt::Kind::invalid: return invalid(r.why);
  }
}

/// Retires the pending announce for info_hash, if any: a reply on time counts (ok: as a
/// response) and the peer sends its next announce; a late one counts as late. False if no
/// announce for info_hash is pending.
bool LoadGen::answered(Peer& p, uint32_t k, const Id& info_hash_seen, bool ok) {
  for (size_t i = 0; i < p.pending.size(); ++i) {
    if (info_hash(p.pending[i].torrent) != info_hash_seen) continue;
    Pending e = p.pending[i];
    p.pending.erase(p.pending.begin() + long(i));
    if (e.timed_out) return ++st_.late, true;
    uint64_t now = now_ns();
    if (ok && phase_ == Phase::measuring) latency_.add(now - e.sent_ns);
    st_.responses += ok;
    --inflight_;
    if (sending()) send_announce(p, k, now);
    return true;
  }
  return false;
}

void LoadGen::on_announce_reply(Peer& p, uint32_t k, const wt::Reply& r) {
  if (!answered(p, k, r.info_hash, true)) invalid("announce reply for an info_hash with no announce pending");
}

void LoadGen::on_offer(Peer& p, uint32_t k, const wt::Reply& r) {
  uint32_t from, seq, t;
  if (!ids_.offer_parts(r.offer_id, &from, &seq, &t) || from >= peers_.size() || t >= o_.torrents)
    return invalid("relayed offer: offer_id not made by this run");
  if (r.info_hash != info_hash(t)) return invalid("relayed offer: info_hash is not the offer's torrent");
  if (ids_.peer_conn(r.peer_id) != int64_t(from)) return invalid("relayed offer: peer_id is not the offerer's");
  if (from == k) return invalid("relayed offer: sent back to the peer that made it");
  if (p.joined.empty() || !(p.joined[t / 64] >> (t % 64) & 1))
    return invalid("relayed offer: for a torrent this peer never announced");
  if (!wt::same_sdp_object(r.sdp_json, ids_.offer_json(r.offer_id), "offer", ids_.offer_sdp(r.offer_id)))
    return invalid("relayed offer: not the offer object sent (type, SDP)");
  ++st_.offers_received;
  ids_.encode_answer(&msg_, r.info_hash, k, r.peer_id, r.offer_id);
  if (p.client->send_text(msg_)) ++st_.answers_sent, st_.bytes_sent += msg_.size();
}

void LoadGen::on_answer(uint32_t k, const wt::Reply& r) {
  uint32_t from, seq, t;
  if (!ids_.offer_parts(r.offer_id, &from, &seq, &t) || from != k)
    return invalid("relayed answer: offer_id is not one of this peer's offers");
  if (t >= o_.torrents || r.info_hash != info_hash(t)) return invalid("relayed answer: info_hash is not the offer's");
  int64_t answerer = ids_.peer_conn(r.peer_id);
  if (answerer < 0 || answerer == int64_t(k)) return invalid("relayed answer: peer_id is not another peer's");
  if (!wt::same_sdp_object(r.sdp_json, ids_.answer_json(r.offer_id, uint32_t(answerer)), "answer",
                           ids_.answer_sdp(r.offer_id, uint32_t(answerer))))
    return invalid("relayed answer: not the answer object sent (type, SDP)");
  ++st_.answers_received;
}

void LoadGen::start_phase(Phase ph, uint64_t now) {
  phase_ = ph, phase_ns_ = now;
  switch (ph) {
    case Phase::warmup:
    case Phase::holding:
      open_ns_ = now - started_ns_;
      if (ph == Phase::holding) return print("open", now);
      for (uint32_t k = 0; k < peers_.size(); ++k)
        if (peers_[k].client->is_open()) send_announce(peers_[k], k, now);
      return;
    case Phase::measuring:
      at_measure_ = st_, latency_ = Histogram(), measure_ns_ = now, cpu_at_measure_ = double(cpu_ns()) / double(kSec);
      return print("measuring", now);  // marks for whoever watches the tracker meanwhile
    case Phase::draining:
      measured_ns_ = now - measure_ns_;
      window_ = minus(st_, at_measure_);
      window_cpu_ = double(cpu_ns()) / double(kSec) - cpu_at_measure_;
      return print("measured", now);
    default:
      return;
  }
}
/// Every 10 ms: opens connections, moves through the phases, and (every 100 ms) counts
/// announces unanswered for 10 s as timeouts and sends the next one.
void LoadGen::tick() {
  uint64_t now = now_ns();
  double in_phase = double(now - phase_ns_) / double(kSec);
  if (phase_ != Phase::holding) open_more(now);  // first opens, then reopens
  switch (phase_) {
    case Phase::opening:
      // Go on when all are open, at the timeout, or when nothing opens at all (3 tries each).
      if (open_ == peers_.size() || in_phase >= o_.open_timeout ||
          (open_ == 0 && st_.connect_failures >= 3 * peers_.size())) {
        if (open_ == 0) return void((phase_ = Phase::done, loop_.stop()));
        start_phase(o_.idle ? Phase::holding : Phase::warmup, now);
      }
      break;
    case Phase::warmup:
      if (in_phase >= o_.warmup) start_phase(Phase::measuring, now);
      break;
    case Phase::measuring:
      if (in_phase >= o_.seconds) start_phase(Phase::draining, now);
      break;
    case Phase::draining:
    case Phase::holding:
      if ((phase_ == Phase::draining && (inflight_ == 0 || now - phase_ns_ >= kDrain)) ||
          (phase_ == Phase::holding && in_phase >= o_.seconds))
        phase_ = Phase::done, loop_.stop();
      return;
    case Phase::done:
      return;
  }
  if (++ticks_ % 10 != 0) return;
  uint64_t timeout = uint64_t(o_.timeout * double(kSec));
  for (uint32_t k = 0; k < peers_.size(); ++k) {
    Peer& p = peers_[k];
    bool resend = false;
    for (size_t i = 0; i < p.pending.size(); ++i) {
      Pending& e = p.pending[i];
      if (!e.timed_out && now - e.sent_ns > timeout) {
        e.timed_out = resend = true, ++st_.timeouts, --inflight_;
      } else if (e.timed_out && (now - e.sent_ns > 6 * timeout || p.pending.size() > kMaxPending)) {
        p.pending.erase(p.pending.begin() + long(i--));  // given up: its reply no longer expected
      }
    }
    if (resend && sending()) send_announce(p, k, now);
  }
}

/// One JSON line (jansson). Load mode's "end" line reports the measured window (and the whole
/// run's counters in run_totals); idle lines report totals since the start.
void LoadGen::print(const char* phase, uint64_t now) const {
  bool window = !o_.idle && measured_ns_ > 0;
  const Counters& c = window ? window_ : st_;
  double secs = double(window ? measured_ns_ : now - started_ns_) / double(kSec);
  json_t* j = json_object();
  json_object_set_new(j, "phase", json_string(phase));
  json_object_set_new(j, "mode", json_string(o_.idle ? "idle" : "load"));
  json_object_set_new(j, "tls", json_boolean(o_.url.tls));
  json_object_set_new(j, "connections", json_integer(json_int_t(o_.connections)));
  json_object_set_new(j, "connections_open", json_integer(json_int_t(open_)));
  json_object_set_new(j, "open_seconds", json_real(double(open_ns_) / double(kSec)));
  json_object_set_new(j, "seconds", json_real(secs));
  json_object_set_new(j, "announces_per_s", json_real(secs > 0 && !o_.idle ? double(c.responses) / secs : 0.0));
  if (window) json_object_set_new(j, "cpu_seconds", json_real(window_cpu_));  // the generator's own, in the window
#define WS_JSON(n) json_object_set_new(j, #n, json_integer(json_int_t(c.n)));
  WS_LOAD_COUNTERS(WS_JSON)
#undef WS_JSON
  if (window) {  // the whole run too (opening, warm-up, drain): problems outside the window
    json_t* all = json_object();
#define WS_ALL(n) json_object_set_new(all, #n, json_integer(json_int_t(st_.n)));
    WS_LOAD_COUNTERS(WS_ALL)
#undef WS_ALL
    json_object_set_new(j, "run_totals", all);
  }
  json_object_set_new(j, "p50_us", json_real(latency_.quantile_us(0.5)));
  json_object_set_new(j, "p99_us", json_real(latency_.quantile_us(0.99)));
  json_t* msgs = json_array();
  for (const auto& m : messages_) json_array_append_new(msgs, json_stringn(m.data(), m.size()));
  for (const auto& m : invalids_) json_array_append_new(msgs, json_string(("invalid: " + m).c_str()));
  json_object_set_new(j, "messages", msgs);
  char* text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
  printf("%s\n", text != nullptr ? text : "{}");
  fflush(stdout);
  free(text);
  json_decref(j);
}

int LoadGen::run() {
  started_ns_ = phase_ns_ = now_ns();
  open_more(started_ns_);
  loop_.run(kSec / 100, [this] { tick(); });
  print("end", now_ns());
  if (open_ns_ == 0 && open_ == 0) return 3;
  return (!o_.idle && window_.responses == 0) ? 3 : 0;
}

/// Raises RLIMIT_NOFILE to fit `need` descriptors (the hard limit too, if allowed).
void raise_nofile(uint64_t need) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= need) return;
  if (rl.rlim_max < need) {
    rlimit want{need, need};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
  }
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, need);
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < need) fprintf(stderr, "ws_load: RLIMIT_NOFILE is %llu, below %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

int parse_options(int argc, char** argv, Options* o) {
  static const option table[] = {
      {"url", 1, nullptr, 'u'},        {"connections", 1, nullptr, 'n'}, {"torrents", 1, nullptr, 'T'},
      {"offers", 1, nullptr, 'o'},     {"seconds", 1, nullptr, 's'},     {"warmup", 1, nullptr, 'w'},
      {"open-burst", 1, nullptr, 'b'}, {"open-timeout", 1, nullptr, 't'}, {"idle", 0, nullptr, 'i'},
      {"cpu", 1, nullptr, 'c'},        {"insecure", 0, nullptr, 'k'},    {"cacert", 1, nullptr, 'a'},
      {"seed", 1, nullptr, 'S'},       {"timeout", 1, nullptr, 'm'},     {"help", 0, nullptr, 'h'},
      {nullptr, 0, nullptr, 0}};
  int c, li = 0;
  uint64_t u = 0;
  while ((c = getopt_long(argc, argv, "", table, &li)) != -1) {
    bool ok = true;
    switch (c) {
      case 'u': o->url_text = optarg; break;
      case 'n': ok = parse_u64(optarg, 1, 1000000, &o->connections); break;
      case 'T': ok = parse_u64(optarg, 1, 10000000, &o->torrents); break;
      case 'o': ok = parse_u64(optarg, 0, 20, &o->offers); break;
      case 's': ok = parse_double(optarg, 0.01, 86400, &o->seconds); break;
      case 'w': ok = parse_double(optarg, 0, 3600, &o->warmup); break;
      case 'b': ok = parse_u64(optarg, 1, 100000, &o->open_burst); break;
      case 't': ok = parse_double(optarg, 0.1, 3600, &o->open_timeout); break;
      case 'i': o->idle = true; break;
      case 'c': ok = parse_u64(optarg, 0, CPU_SETSIZE - 1, &u), o->cpu = long(u); break;
      case 'k': o->insecure = true; break;
      case 'a': o->cafile = optarg; break;
      case 'S': ok = parse_u64(optarg, 0, UINT64_MAX, &o->seed); break;
      case 'm': ok = parse_double(optarg, 0.1, 3600, &o->timeout); break;
      case 'h': return fputs(kUsage, stdout), 0;
      default: return fputs(kUsage, stderr), 2;
    }
    if (!ok) return fprintf(stderr, "ws_load: bad value for --%s: '%s'\n", table[li].name, optarg), 2;
  }
  if (optind < argc) return fprintf(stderr, "ws_load: unexpected argument '%s'\n", argv[optind]), 2;
  std::string err;
  if (o->url_text.empty()) return fprintf(stderr, "ws_load: --url is required\n%s", kUsage), 2;
  if (!ws::parse_url(o->url_text, &o->url, &err)) return fprintf(stderr, "ws_load: --url %s: %s\n", o->url_text.c_str(), err.c_str()), 2;
  if (o->url.v6 && o->connections > 1) fprintf(stderr, "ws_load: note: over ::1 every connection has the same source address\n");
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  int rc = parse_options(argc, argv, &o);
  if (rc >= 0) return rc;
  signal(SIGPIPE, SIG_IGN);
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(int(o.cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) return fprintf(stderr, "ws_load: sched_setaffinity: %s\n", strerror(errno)), 2;
  }
  raise_nofile(o.connections + 256);
  SSL_CTX* tls = nullptr;
  if (o.url.tls) {
    std::string err;
    if ((tls = ws::make_tls_context(o.insecure, o.cafile, &err)) == nullptr) return fprintf(stderr, "ws_load: %s\n", err.c_str()), 2;
  }
  int result;
  {
    LoadGen gen(o, tls);
    result = gen.run();
  }
  if (tls != nullptr) SSL_CTX_free(tls);
  return result;
}
