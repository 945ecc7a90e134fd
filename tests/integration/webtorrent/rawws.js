// A raw WebSocket client (npm ws) that speaks the WebTorrent tracker JSON itself, one step after
// another, and reports everything it received, so a Python test can assert what a tracker relays
// (and what it must not: forged answers) without a WebRTC stack.
//
//   node rawws.js --steps FILE.json [--timeout 20]
//
// FILE.json is a list of steps; "c" names a connection:
//   {"op": "open", "c": "a", "url": "ws://...", "local": "127.0.0.2"}   waits for the handshake
//   {"op": "send", "c": "a", "msg": {...}}          JSON.stringify(msg) as one text message
//   {"op": "send", "c": "a", "raw": "text"}         the text as is
//   {"op": "wait", "c": "a", "count": 1, "timeout": 3, "match": {"action": "announce"},
//    "has": ["offer"], "fresh": false}               until `count` received messages (in all, or
//                                                    with fresh: since this step) have every
//                                                    match value and every has key
//   {"op": "sleep", "s": 0.5}
//   {"op": "pause", "label": "x"}                   prints {"pause": "x", "conns": {c: {"local_port",
//                                                    "local_address", "open", "received" (count),
//                                                    "last" (last message)}}, "waits"} and waits
//                                                    for a stdin line: a JSON list of steps runs next
//                                                    (so a test can act, look, and go on)
//   {"op": "close", "c": "a"}                       closes and waits for the close
// The tracker's 20-byte ids are JSON strings of one char per byte (\u00XX), as in the messages.
//
// Result line: {"ok": true, "conns": {c: {"received": [{"t": ms, "msg": obj | "text"}],
// "open": bool, "close_code", "errors": [..], "local_port"}}, "waits": [{"c", "got", "want",
// "timed_out"}]}. "ok" means every step ran (waits that time out are reported, not fatal).
import fs from 'node:fs'
import WebSocket from 'ws'
import { deadline, emit, finish, parseArgs, sleep, stdinLine } from './common.js'

const args = parseArgs()
const steps = JSON.parse(fs.readFileSync(args.steps, 'utf8'))
const t0 = Date.now()
const conns = {}     // name -> {ws, received, open, close_code, errors, local_port, local_address}
const waits = []

const report = () => {
  const out = {}
  for (const [name, c] of Object.entries(conns)) {
    out[name] = {
      received: c.received,
      open: c.open,
      close_code: c.close_code,
      errors: c.errors,
      local_port: c.local_port,
      local_address: c.local_address
    }
  }
  return { conns: out, waits }
}
deadline(Number(args.timeout || 20), report)

function open (step) {
  const c = { received: [], open: false, close_code: null, errors: [], local_port: null, local_address: null }
  conns[step.c] = c
  const opts = { perMessageDeflate: false, handshakeTimeout: 5000 }
  if (step.local) opts.localAddress = step.local
  c.ws = new WebSocket(step.url, opts)
  c.ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString('utf8')
    let msg = text
    try { msg = JSON.parse(text) } catch (err) { /* kept as text */ }
    c.received.push({ t: Date.now() - t0, msg: isBinary ? { binary: data.toString('hex') } : msg })
  })
  c.ws.on('error', err => c.errors.push(String(err.message || err)))
  c.closed = new Promise(resolve => c.ws.on('close', code => {
    c.open = false
    c.close_code = code
    resolve()
  }))
  return new Promise(resolve => {
    c.ws.on('open', () => {
      c.open = true
      c.local_port = c.ws._socket.localPort
      c.local_address = c.ws._socket.localAddress
      resolve()
    })
    c.ws.on('close', resolve)
  })
}

function matches (entry, step) {
  const m = entry.msg
  if (typeof m !== 'object' || m === null) return false
  for (const [k, v] of Object.entries(step.match || {})) if (m[k] !== v) return false
  for (const k of step.has || []) if (!(k in m)) return false
  return true
}

for (let i = 0; i < steps.length; i++) {
  const step = steps[i]
  const c = conns[step.c]
  if (step.op === 'open') {
    await open(step)
  } else if (step.op === 'send') {
    if (!c || !c.open) { c?.errors.push('send on a closed connection'); continue }
    c.ws.send(step.raw !== undefined ? step.raw : JSON.stringify(step.msg))
  } else if (step.op === 'wait') {
    const seen = () => c ? c.received.filter(e => matches(e, step)).length : 0
    const base = step.fresh ? seen() : 0
    const want = step.count || 1
    const end = Date.now() + (step.timeout || 3) * 1000
    let got = 0
    while (true) {
      got = seen() - base
      if (got >= want || Date.now() > end) break
      await sleep(10)
    }
    waits.push({ c: step.c, got, want, timed_out: got < want, match: step.match || {}, has: step.has || [] })
  } else if (step.op === 'sleep') {
    await sleep((step.s || 0) * 1000)
  } else if (step.op === 'pause') {
    const r = report()
    const brief = {}
    for (const [name, x] of Object.entries(r.conns)) {
      const last = x.received.length ? x.received[x.received.length - 1].msg : null
      brief[name] = { local_port: x.local_port, local_address: x.local_address, open: x.open, received: x.received.length, last }
    }
    emit({ pause: step.label || '', conns: brief, waits })
    const line = await stdinLine()
    let more = null
    try { more = JSON.parse(line) } catch (err) { /* a plain line: go on */ }
    if (Array.isArray(more)) steps.splice(i + 1, 0, ...more)
  } else if (step.op === 'close') {
    if (c && c.open) { c.ws.close(1000); await Promise.race([c.closed, sleep(3000)]) }
  } else {
    finish(Object.assign({ ok: false, error: 'unknown step ' + JSON.stringify(step) }, report()))
  }
}
for (const c of Object.values(conns)) if (c.open) c.ws.terminate()
finish(Object.assign({ ok: true }, report()))
