// Shared by the WebTorrent test scripts in this folder (exchange.js, rawws.js, transfer.js,
// tracker.js): argument parsing, the one JSON result line, the script's own time limit, and
// HTTP agents that bind a chosen source address (so a test can tell clients' connections apart
// in /proc/net/tcp).
//
// Every script prints exactly one line {"ok": true|false, ...} as its result (tracker.js and the
// pause steps of rawws.js print more lines before it, each one JSON object) and exits by itself
// when its --timeout (seconds) runs out: {"ok": false, "error": "timeout after N s", ...}.
// TLS: tests trust the test certificate with NODE_EXTRA_CA_CERTS=cert.pem (read by node itself).
import http from 'node:http'
import https from 'node:https'

/** --key value pairs (and bare --flag = true) of process.argv into an object. */
export function parseArgs (argv = process.argv.slice(2)) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) {
      (out._ = out._ || []).push(a)
      continue
    }
    const key = a.slice(2)
    if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[key] = argv[++i]
    else out[key] = true
  }
  return out
}

let printed = false

/** Prints `obj` as the result line (once; later calls are ignored). */
export function result (obj) {
  if (printed) return
  printed = true
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Prints one JSON line that is not the result (progress a test waits for). */
export function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

/** Prints the result line and exits with 0 (ok) or 1, after stdout is flushed. */
export function finish (obj) {
  result(obj)
  process.stdout.write('', () => process.exit(obj.ok ? 0 : 1))
}

/** The script's own time limit: after `seconds`, prints {"ok": false, "error": "timeout ...",
 *  ...partial()} and exits with 2. Returns the timer. */
export function deadline (seconds, partial = () => ({})) {
  const t = setTimeout(() => {
    let extra = {}
    try { extra = partial() } catch (err) { extra = { partial_error: String(err) } }
    result(Object.assign({ ok: false, error: `timeout after ${seconds} s` }, extra))
    process.stdout.write('', () => process.exit(2))
  }, seconds * 1000)
  return t
}

/** Agents for ws:// and wss:// connections from `localAddress` (undefined: the kernel picks). */
export function agents (localAddress) {
  const opts = localAddress ? { localAddress } : {}
  return { httpAgent: new http.Agent(opts), httpsAgent: new https.Agent(opts) }
}

/** Hex of a binary string (the tracker's JSON carries 20-byte ids as one char per byte). */
export function binToHex (s) {
  return typeof s === 'string' ? Buffer.from(s, 'latin1').toString('hex') : null
}

/** 20 random bytes as hex. */
export function randomHex20 () {
  const b = Buffer.alloc(20)
  for (let i = 0; i < 20; i++) b[i] = Math.floor(Math.random() * 256)
  return b.toString('hex')
}

/** Resolves when a line arrives on stdin or stdin ends. */
export function stdinLine () {
  return new Promise(resolve => {
    let buf = ''
    const onData = d => {
      buf += d
      if (buf.includes('\n')) { done(); resolve(buf.split('\n')[0]) }
    }
    const onEnd = () => { done(); resolve(null) }
    const done = () => { process.stdin.off('data', onData); process.stdin.off('end', onEnd); process.stdin.pause() }
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', onData)
    process.stdin.on('end', onEnd)
    process.stdin.resume()
  })
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
