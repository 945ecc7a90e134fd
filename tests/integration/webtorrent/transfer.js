// A real WebTorrent transfer (npm webtorrent, WebRTC from @roamhq/wrtc) whose peers know only
// the tracker URL:
//
//   node transfer.js seed  --file F --announce URL --torrent-out T.torrent [--timeout 60]
//   node transfer.js leech --torrent T.torrent --out DIR [--timeout 60]
//
// seed: makes a torrent of F that lists only URL (ws:// or wss://), writes it to T.torrent,
//   prints {"ok": true, "role": "seed", "info_hash", "torrent", "length"} once it seeds, and then
//   keeps seeding until stdin ends (the test closes it), SIGTERM or --timeout.
// leech: downloads T.torrent into DIR and prints {"ok": true, "role": "leech", "info_hash",
//   "sha256" (of the file written), "length", "seconds", "wires": ["webrtc", ...], "peers"} and exits.
// DHT, local service discovery, uTP, UPnP, NAT-PMP, web seeds and STUN servers are off, so
// the tracker is the only way the peers can meet, and nothing leaves the machine (the test runs
// both inside a network namespace: WebRTC gathers candidates on every interface).
// TLS: NODE_EXTRA_CA_CERTS=cert.pem trusts the test certificate.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import wrtc from '@roamhq/wrtc'
import WebTorrent from 'webtorrent'
import { deadline, finish, parseArgs, result, stdinLine } from './common.js'

const args = parseArgs()
const mode = (args._ || [])[0]
const t0 = Date.now()
const warnings = []

const client = new WebTorrent({
  dht: false,
  lsd: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
  webSeeds: false,
  tracker: { wrtc, rtcConfig: { iceServers: [] } }
})
client.on('error', err => finish({ ok: false, role: mode, error: String(err.message || err), warnings }))

const wiresOf = torrent => torrent.wires.map(w => w.type)
let current = null
deadline(Number(args.timeout || 60), () => ({
  role: mode,
  warnings,
  progress: current ? current.progress : null,
  peers: current ? current.numPeers : null,
  wires: current ? wiresOf(current) : []
}))

function watch (torrent) {
  current = torrent
  torrent.on('warning', err => warnings.push(String(err.message || err)))
  torrent.on('error', err => finish({ ok: false, role: mode, error: String(err.message || err), warnings }))
}

function sha256 (file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

if (mode === 'seed') {
  const torrent = client.seed(args.file, { announce: [args.announce], private: true }, async torrent => {
    fs.writeFileSync(args['torrent-out'], torrent.torrentFile)
    result({ ok: true, role: 'seed', info_hash: torrent.infoHash, torrent: args['torrent-out'], length: torrent.length })
    await stdinLine()   // seed until the test closes stdin
    process.exit(0)
  })
  watch(torrent)
  process.on('SIGTERM', () => process.exit(0))
} else if (mode === 'leech') {
  const torrentFile = fs.readFileSync(args.torrent)
  const torrent = client.add(torrentFile, { path: args.out, announce: [] }, torrent => {
    torrent.on('done', () => {
      const file = path.join(args.out, torrent.files[0].path)
      finish({
        ok: true,
        role: 'leech',
        info_hash: torrent.infoHash,
        sha256: sha256(file),
        length: torrent.length,
        seconds: (Date.now() - t0) / 1000,
        wires: wiresOf(torrent),
        peers: torrent.numPeers,
        announce: torrent.announce,
        warnings
      })
    })
  })
  watch(torrent)
} else {
  finish({ ok: false, error: 'usage: transfer.js seed|leech ...' })
}
