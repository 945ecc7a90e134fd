// Two npm bittorrent-tracker Clients (WebRTC from @roamhq/wrtc) meet through a WebSocket tracker:
//
//   node exchange.js --url-a ws://127.0.0.1:P/announce [--url-b URL] [--local-a 127.0.0.2]
//                    [--local-b 127.0.0.3] [--info-hash HEX] [--timeout 20] [--hold S] [--gap S]
//                    [--b-waits-line]
//
// Round 1: client A announces (its offers find nobody), then B announces: B's offers go to A, A
// answers, and B must receive that answer. Round 2: A announces again: A's offer goes to B, B
// answers, A must receive it. A talks to --url-a, B to --url-b (default: the same URL; give two
// so the clients use two connections, e.g. on two socket workers), each from its --local-* source
// address. ICE gathers no candidates (iceTransportPolicy "relay" with no relay server), so the
// peers exchange SDP through the tracker but never send a packet to each other. Last, A scrapes
// the swarm (client.scrape()). --gap S waits S seconds before each round's second announce (two
// trackers that replicate peers between them, issue 14: the first peer must have reached the
// second tracker before the other's offers look for it). --b-waits-line: once A has its first
// reply, print {"a_announced": true} and make B only when a line arrives on stdin (instead of
// the first gap), e.g. once the test has started the tracker B talks to.
//
// Result line: {"ok", "error"?, "info_hash", "a": side, "b": side, "rounds": [...], "scrape":
// {"complete", "incomplete", "downloaded"}}, where a side is {"peer_id", "url", "local",
// "sent": [msg], "received": [msg], "warnings": [text]} and a msg is
// {"action", "kind": offer|answer|offers|reply|failure, "peer_id", "to_peer_id", "offer_id",
// "offer_ids", "complete", "incomplete"} (ids in hex). With --hold S the clients stay connected
// S seconds after the result line (or until stdin ends), so a test can see their connections.
import wrtc from '@roamhq/wrtc'
import { Client } from 'bittorrent-tracker'
import { agents, binToHex, deadline, emit, finish, parseArgs, randomHex20, result, sleep, stdinLine } from './common.js'

const args = parseArgs()
const urlA = args['url-a']
const urlB = args['url-b'] || urlA
const infoHash = args['info-hash'] || randomHex20()
const timeout = Number(args.timeout || 20)
const hold = Number(args.hold || 0)
const gap = Number(args.gap || 0)
if (!urlA) finish({ ok: false, error: 'usage: exchange.js --url-a URL [--url-b URL] ...' })

// What each client sent and received, recorded by wrapping the tracker client's own methods.
const sides = new Map()   // Client -> side record
function summary (params) {
  const m = { action: params.action }
  if (params.peer_id) m.peer_id = binToHex(params.peer_id)
  if (params.to_peer_id) m.to_peer_id = binToHex(params.to_peer_id)
  if (params.offer_id) m.offer_id = binToHex(params.offer_id)
  if (params['failure reason']) { m.kind = 'failure'; m.failure = params['failure reason'] }
  else if (params.offer) m.kind = 'offer'
  else if (params.answer) m.kind = 'answer'
  else if (params.offers) { m.kind = 'offers'; m.offer_ids = params.offers.map(o => binToHex(o.offer_id)) }
  else m.kind = 'reply'
  for (const k of ['complete', 'incomplete', 'interval']) if (params[k] !== undefined) m[k] = params[k]
  return m
}
/** Wraps the WebSocket tracker class's send and receive (once) to record what every client
 *  sent and received. */
function instrument (tracker) {
  const proto = Object.getPrototypeOf(tracker)
  if (proto._shoalInstrumented) return
  proto._shoalInstrumented = true
  const origSend = proto._send
  proto._send = function (params) {
    sides.get(this.client)?.sent.push(summary(params))
    return origSend.call(this, params)
  }
  const origResponse = proto._onAnnounceResponse
  proto._onAnnounceResponse = function (data) {
    sides.get(this.client)?.received.push(summary(data))
    return origResponse.call(this, data)
  }
}

function makeClient (url, local) {
  const peerId = randomHex20()
  const client = new Client({
    infoHash,
    peerId,
    announce: [url],
    port: 6881,
    wrtc,
    rtcConfig: { iceServers: [], iceTransportPolicy: 'relay' },
    proxyOpts: agents(local)
  })
  const side = { peer_id: peerId, url, local: local || null, sent: [], received: [], warnings: [] }
  sides.set(client, side)
  instrument(client._trackers[0])
  // Each client its own connection, even to the same URL: the module pools one socket per URL,
  // so take ours out of the pool, and put it back for the tracker's destroy (which reads it).
  const tracker = client._trackers[0]
  const pool = tracker.constructor._socketPool
  delete pool[url]
  const destroy = tracker.destroy
  tracker.destroy = function (cb) {
    if (this.socket && !pool[this.announceUrl]) pool[this.announceUrl] = this.socket
    return destroy.call(this, cb)
  }
  client.on('warning', err => {
    side.warnings.push(String(err.message || err))
    // The tracker client would retry in 10 s or more: report the failure now.
    if (/^Error connecting/.test(err.message)) finish(Object.assign({ ok: false, error: err.message }, report()))
  })
  client.on('error', err => side.warnings.push('error: ' + String(err.message || err)))
  client.on('peer', peer => peer.on('error', () => {}))   // ICE never completes here: expected
  return { client, side }
}

const waitsLine = !!args['b-waits-line']
const A = makeClient(urlA, args['local-a'])
let B = waitsLine ? null : makeClient(urlB, args['local-b'])  // a client connects when it is made
const report = () => ({ info_hash: infoHash, a: A.side, b: B ? B.side : null, rounds, scrape: scraped })
const rounds = []
let scraped = null
deadline(timeout, report)

/** Resolves once pred() holds (checked every 20 ms). */
async function until (pred) {
  while (!pred()) await sleep(20)
}
const got = (side, kind, from) => side.received.filter(m => m.kind === kind && m.peer_id === from)
const sentOffers = side => side.sent.filter(m => m.kind === 'offers').flatMap(m => m.offer_ids)
// The answer is for the offer that was relayed, and that offer is one the offerer made.
const matches = (offer, answer, offerer) =>
  !!offer && !!answer && offer.offer_id === answer.offer_id && sentOffers(offerer).includes(offer.offer_id)

// Round 1: A first, then B; B's offer reaches A, A's answer reaches B.
A.client.start()
await until(() => A.side.received.some(m => m.kind === 'reply' || m.kind === 'failure'))
if (waitsLine) {
  emit({ a_announced: true })
  await stdinLine()
  B = makeClient(urlB, args['local-b'])
} else {
  await sleep(gap * 1000)
}
B.client.start()
await until(() => got(B.side, 'answer', A.side.peer_id).length > 0)
const r1offer = got(A.side, 'offer', B.side.peer_id)[0]
const r1answer = got(B.side, 'answer', A.side.peer_id)[0]
rounds.push({ offer_to_a: r1offer, answer_to_b: r1answer, answer_matches: matches(r1offer, r1answer, B.side) })

// Round 2: A announces again; A's offer reaches B, B's answer reaches A.
await sleep(gap * 1000)
A.client.update()
await until(() => got(A.side, 'answer', B.side.peer_id).length > 0)
const r2offer = got(B.side, 'offer', A.side.peer_id)[0]
const r2answer = got(A.side, 'answer', B.side.peer_id)[0]
rounds.push({ offer_to_b: r2offer, answer_to_a: r2answer, answer_matches: matches(r2offer, r2answer, A.side) })

// The real client's scrape of the swarm both are in.
A.client.once('scrape', data => { scraped = { complete: data.complete, incomplete: data.incomplete, downloaded: data.downloaded } })
A.client.scrape()
await until(() => scraped !== null)

const ok = rounds.every(r => r.answer_matches)
result(Object.assign({ ok }, report()))
if (hold > 0) await Promise.race([sleep(hold * 1000), stdinLine()])
finish({ ok })   // exits: no 'stopped' announces (the pool no longer knows the sockets)
