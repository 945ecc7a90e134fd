// worker/ws_messages.cpp — WebTorrent messages of the WebSocket front-end (see ws_frontend.hpp):
// announce (to the swarm worker; on its reply, the offers to their targets), answer (routed by
// the connection's table of delivered offers alone), scrape, errors that name the action and
// info_hash they answer, and the relay records other socket workers send this process.
#include <algorithm>
#include <cstring>

#include "shm/clock.hpp"
#include "worker/ws_frontend_impl.hpp"

namespace shoal::worker {

namespace {

shm::Event to_event(wt::Event e) {
  switch (e) {
    case wt::Event::started: return shm::Event::started;
    case wt::Event::completed: return shm::Event::completed;
    case wt::Event::stopped: return shm::Event::stopped;
    default: return shm::Event::none;
  }
}

}  // namespace

// The reply context of a request of connection c (its token, and `seq` to find an announce's
// pending entry); family kFamilyWebTorrent tells the swarm worker and the scrape merge which
// swarms it is about.
shm::ReplyContext WsFrontend::context_of(const WsConn* c, uint32_t seq) const {
  shm::ReplyContext ctx{};
  std::memcpy(ctx.addr, c->addr, 16);
  ctx.port = c->port;
  ctx.family = shm::kFamilyWebTorrent;
  ctx.protocol = uint8_t(shm::Protocol::ws);
  ctx.transaction = seq;
  ctx.conn = c->token;
  return ctx;
}

void WsFrontend::send_error(WsConn* c, std::string_view reason, std::string_view action, const wt::Id* info_hash) {
  shm::count(counters_, shm::Counter::ws_failure);
  send_text(c, wt::encode_error(reason, action, info_hash));
}

void WsFrontend::handle_message(WsConn* c, std::string_view text) {
  wt::ParseResult p = wt::parse_message(text);
  if (!p.error.empty()) return send_error(c, p.error, p.action_text, p.has_info_hash ? &p.info_hash : nullptr);
  switch (p.msg.action) {
    case wt::Action::announce: return handle_announce(c, p.msg.announce);
    case wt::Action::answer: return handle_answer(c, p.msg.answer);
    case wt::Action::scrape: return handle_scrape(c, p.msg.scrape);
  }
}

// ---- announce -----------------------------------------------------------------------------

void WsFrontend::handle_announce(WsConn* c, wt::Announce& a) {
  bool stopped = a.event == wt::Event::stopped;
  if (c->pending.size() >= kMaxAnnouncesInFlight) return send_error(c, "too many announces in flight", "announce", &a.info_hash);
  auto joined = std::find_if(c->swarms.begin(), c->swarms.end(), [&](const WsConn::Swarm& s) {
    return wt::same_id(s.info_hash, a.info_hash) && wt::same_id(s.peer_id, a.peer_id);
  });
  if (joined == c->swarms.end() && !stopped && c->swarms.size() >= kMaxSwarmsPerConn)
    return send_error(c, "too many torrents on one connection", "announce", &a.info_hash);
  // Offers to place: one per target, at most numwant (when sent) and ws.max_offers.
  size_t offers = std::min<size_t>(a.offers.size(), cfg_.ws_max_offers);
  if (a.numwant >= 0) offers = std::min<size_t>(offers, size_t(a.numwant));
  if (stopped) offers = 0;
  AnnounceIn in;
  in.info_hash = a.info_hash.data();
  in.peer_addr = c->addr;
  in.family = shm::kFamilyWebTorrent;
  in.event = to_event(a.event);
  in.seeder = a.left == 0;
  in.left = a.left < 0 ? UINT64_MAX : uint64_t(a.left);
  in.numwant = int64_t(offers);
  in.peer_id = a.peer_id.data();
  in.conn_generation = self_.generation;
  in.conn_family = c->family;
  uint32_t seq = c->next_seq++;
  PathStatus st = path_->announce(in, context_of(c, seq));
  if (st != PathStatus::ok) return send_error(c, refusal_text(st), "announce", &a.info_hash);
  shm::count(counters_, shm::Counter::ws_announce);
  // Joined from now on (a close before the reply still sends its stopped, behind this announce).
  if (joined == c->swarms.end() && !stopped) c->swarms.push_back({a.info_hash, a.peer_id});
  a.offers.resize(offers);
  c->pending.push_back({seq, a.info_hash, a.peer_id, stopped, std::move(a.offers), std::move(a.sdp_text)});
}

void WsFrontend::on_announce(const shm::ReplyContext& ctx, const AnnounceResult& r) {
  WsConn* c = find(ctx.conn);
  if (!c || ctx.transaction == 0) return;  // closed meanwhile (or a leave's reply)
  auto it = std::find_if(c->pending.begin(), c->pending.end(), [&](const WsConn::Pending& p) { return p.seq == ctx.transaction; });
  if (it == c->pending.end()) return;
  WsConn::Pending p = std::move(*it);
  c->pending.erase(it);
  auto drop_swarm = [&] {
    c->swarms.erase(std::remove_if(c->swarms.begin(), c->swarms.end(), [&](const WsConn::Swarm& s) {
                      return wt::same_id(s.info_hash, p.info_hash) && wt::same_id(s.peer_id, p.peer_id);
                    }), c->swarms.end());
  };
  if (r.status != PathStatus::ok) {
    if (r.status == PathStatus::peer_id_taken || !p.stopped) drop_swarm();  // not this connection's peer
    return send_error(c, refusal_text(r.status), "announce", &p.info_hash);
  }
  if (p.stopped) drop_swarm();
  if (c->state != WsConn::State::open) return;
  std::string* out = begin_text(c);
  if (!out) return;
  wt::append_announce_reply(*out, p.info_hash, r.interval, r.seeders, r.leechers);
  if (!end_text(c)) return;
  // Each offer to one target: the swarm worker chose distinct live peers other than the asker.
  const auto* targets = reinterpret_cast<const shm::WsTarget*>(r.peers);
  size_t n = std::min<size_t>(r.peer_count, p.offers.size());
  for (size_t i = 0; i < n; i++) {
    const wt::Offer& o = p.offers[i];
    std::string_view sdp = wt::offer_sdp(p.sdp_text, o);
    if (!take_relay_budget(c, sdp.size())) break;
    RelayHead head{};
    std::memcpy(head.info_hash, p.info_hash.data(), 20);
    std::memcpy(head.peer_id, p.peer_id.data(), 20);
    std::memcpy(head.offer_id, o.offer_id.data(), 20);
    head.from_slot = uint8_t(self_.slot);
    head.from_set = uint8_t(self_.ring_set);
    head.from_generation = self_.generation;
    head.from_token = c->token;
    shm::WsTarget t;
    std::memcpy(&t, &targets[i], sizeof t);
    // t.node != 0: the peer's connection is on another cluster node (through the sync worker)
    forward(RelayTarget{t.slot, t.ring_set, t.generation, t.token, t.node}, shm::kRelayOffer, head, sdp);
  }
}

// ---- offers and answers -------------------------------------------------------------------

bool WsFrontend::take_relay_budget(WsConn* c, size_t n) {
  uint64_t now = now_ms();
  double rate = double(cfg_.ws_relay_bytes_per_second);
  c->relay_tokens = std::min(rate, c->relay_tokens + rate * double(now - c->relay_refill_ms) / 1000.0);
  c->relay_refill_ms = now;
  if (c->relay_tokens < double(n)) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return false;
  }
  c->relay_tokens -= double(n);
  return true;
}

void WsFrontend::forward(const RelayTarget& to, uint16_t kind, const RelayHead& head, std::string_view sdp) {
  if (to.node == 0 && to.slot == self_.slot && to.generation == self_.generation) {  // a connection of this process
    if (kind == shm::kRelayOffer) deliver_offer(to.token, head, sdp);
    else deliver_answer(to.token, head, sdp);
    return;
  }
  if (!relay_) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return;
  }
  relay_->send(to, kind, head, sdp);
}

void WsFrontend::deliver_offer(uint32_t token, const RelayHead& head, std::string_view sdp) {
  WsConn* c = find(token);
  if (!c || c->state != WsConn::State::open) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return;
  }
  WsConn::Delivered d;
  std::memcpy(d.offer_id.data(), head.offer_id, 20);
  std::memcpy(d.info_hash.data(), head.info_hash, 20);
  std::memcpy(d.from_peer_id.data(), head.peer_id, 20);
  // head.node != 0: the offer came from another cluster node; its answer goes back there
  d.from = RelayTarget{head.from_slot, head.from_set, head.from_generation, head.from_token, head.node};
  d.expires_ms = now_ms() + uint64_t(cfg_.ws_offer_ttl) * 1000;
  std::string* out = begin_text(c);
  if (!out) return;  // (open was checked above; a close frame may be queued)
  wt::append_relayed_offer(*out, d.info_hash, d.from_peer_id, d.offer_id, sdp);
  if (!end_text(c)) return;
  shm::count(counters_, shm::Counter::ws_offers_relayed);
  if (c->delivered.size() >= cfg_.ws_max_pending_offers) c->delivered.erase(c->delivered.begin());  // oldest
  c->delivered.push_back(d);
}

// An answer is relayed only for an offer this connection was given, not expired and not
// answered yet, by the peer this connection announced in that swarm, to the peer that made it.
void WsFrontend::handle_answer(WsConn* c, const wt::Answer& a) {
  uint64_t now = now_ms();
  auto it = std::find_if(c->delivered.begin(), c->delivered.end(), [&](const WsConn::Delivered& d) {
    return wt::same_id(d.offer_id, a.offer_id) && wt::same_id(d.info_hash, a.info_hash) &&
           wt::same_id(d.from_peer_id, a.to_peer_id) && d.expires_ms > now;
  });
  bool own_peer = std::any_of(c->swarms.begin(), c->swarms.end(), [&](const WsConn::Swarm& s) {
    return wt::same_id(s.info_hash, a.info_hash) && wt::same_id(s.peer_id, a.peer_id);
  });
  if (it == c->delivered.end() || !own_peer) {
    shm::count(counters_, shm::Counter::ws_answers_dropped);
    return;
  }
  RelayTarget to = it->from;
  c->delivered.erase(it);  // answered: a replay matches nothing
  if (!take_relay_budget(c, a.sdp_json.size())) return;
  RelayHead head{};
  std::memcpy(head.info_hash, a.info_hash.data(), 20);
  std::memcpy(head.peer_id, a.peer_id.data(), 20);
  std::memcpy(head.offer_id, a.offer_id.data(), 20);
  forward(to, shm::kRelayAnswer, head, a.sdp_json);
}

void WsFrontend::deliver_answer(uint32_t token, const RelayHead& head, std::string_view sdp) {
  WsConn* c = find(token);
  if (!c || c->state != WsConn::State::open) {
    shm::count(counters_, shm::Counter::ws_relay_dropped);
    return;
  }
  wt::Id info_hash, peer_id, offer_id;
  std::memcpy(info_hash.data(), head.info_hash, 20);
  std::memcpy(peer_id.data(), head.peer_id, 20);
  std::memcpy(offer_id.data(), head.offer_id, 20);
  std::string* out = begin_text(c);
  if (!out) return;
  wt::append_relayed_answer(*out, info_hash, peer_id, offer_id, sdp);
  if (end_text(c)) shm::count(counters_, shm::Counter::ws_answers_relayed);
}

uint64_t WsFrontend::poll_relay() {
  if (!relay_) return 0;
  uint64_t n = relay_->poll([this](uint16_t kind, uint32_t token, const RelayHead& head, std::string_view sdp) {
    if (kind == shm::kRelayOffer) deliver_offer(token, head, sdp);
    else if (kind == shm::kRelayAnswer) deliver_answer(token, head, sdp);
  });
  return n;
}

// ---- scrape -------------------------------------------------------------------------------

void WsFrontend::handle_scrape(WsConn* c, const wt::Scrape& s) {
  std::vector<uint8_t> hashes(20 * s.info_hashes.size());
  for (size_t i = 0; i < s.info_hashes.size(); i++) std::memcpy(&hashes[20 * i], s.info_hashes[i].data(), 20);
  ScrapeIn in{hashes.data(), uint32_t(s.info_hashes.size())};
  PathStatus st = path_->scrape(in, context_of(c, 0));
  if (st != PathStatus::ok) return send_error(c, refusal_text(st), "scrape", nullptr);
  shm::count(counters_, shm::Counter::ws_scrape);
}

void WsFrontend::on_scrape(const shm::ReplyContext& ctx, const ScrapeResult& r) {
  WsConn* c = find(ctx.conn);
  if (!c || c->state != WsConn::State::open) return;
  std::vector<wt::ScrapeEntry> entries(r.count);
  for (uint32_t i = 0; i < r.count; i++) {
    std::memcpy(entries[i].info_hash.data(), r.info_hashes[i], 20);
    entries[i].complete = r.counts[i].seeders;
    entries[i].incomplete = r.counts[i].leechers;
    entries[i].downloaded = r.counts[i].completed;
  }
  send_text(c, wt::encode_scrape_reply(entries));
}

void WsFrontend::after_responses() {
  if (relay_) relay_->flush();
  if (reads_waiting_ && path_->has_room_everywhere(kReadRoomAfterWait)) {  // see on_read
    reads_waiting_ = false;
    event_active(read_ev_, EV_TIMEOUT, 0);
  }
}

}  // namespace shoal::worker
