// npm bittorrent-tracker's own WebSocket tracker server: the reference the test scripts were
// proved against before shoald spoke WebTorrent, and a stand-in for shoald when a test runs with
// SHOAL_WS_TRACKER=node (tests/lib/webtorrent.py).
//
//   node tracker.js --host 127.0.0.1 [--ws-port N] [--wss-port N --cert cert.pem --key key.pem]
//                   [--timeout S]
//
// Port 0 (the default) lets the kernel choose. Prints {"ok": true, "ws": port, "wss": port}
// once it listens, then serves until stdin ends (the test closes it), SIGTERM, or --timeout
// (default 600 s). Paths: any (the server upgrades every request).
import fs from 'node:fs'
import https from 'node:https'
import { Server } from 'bittorrent-tracker'
import { WebSocketServer } from 'ws'
import { parseArgs, finish, result } from './common.js'

const args = parseArgs()
const host = args.host || '127.0.0.1'
const timeout = Number(args.timeout || 600)

// ws:// on the server's own HTTP server.
const server = new Server({ udp: false, http: false, ws: true, stats: false, trustProxy: false })
server.on('error', err => finish({ ok: false, error: String(err) }))
server.on('warning', () => {})

const listens = [new Promise(resolve => server.listen(Number(args['ws-port'] || 0), host, resolve))]

// wss://: an HTTPS server whose upgrades are handed to the same tracker.
let tls = null
if (args['wss-port'] !== undefined) {
  tls = https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) })
  const wss = new WebSocketServer({ server: tls, perMessageDeflate: false, clientTracking: false })
  wss.on('connection', (socket, req) => {
    socket.upgradeReq = req
    server.onWebSocketConnection(socket)
  })
  tls.on('request', (req, res) => { res.statusCode = 404; res.end('404 Not Found') })
  listens.push(new Promise(resolve => tls.listen(Number(args['wss-port']), host, resolve)))
}

await Promise.all(listens)
result({ ok: true, ws: server.http.address().port, wss: tls ? tls.address().port : null })

const stop = () => process.exit(0)
process.stdin.on('end', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
setTimeout(stop, timeout * 1000).unref()
