// The cluster test's client (`node cluster-load.mjs <max seconds> <interval ms> <stop file> <url=name>…`):
// one request every <interval> ms, to each URL in turn, a new connection each (no keep-alive, so a
// request is a whole connection through the node's published port and that node's HAProxy). A
// request is good when it answers 200 with a body starting with "<name> " (the upstream's own
// answer). Bounded in time and count: it stops at <max seconds>, or once <stop file> exists, and
// waits (at most 6 s) for the requests still under way. Prints one line:
//   requests=N failures=N seconds=S per-url=<url>:<requests>/<failures>,… first-failures=<…>
import http from 'node:http'
import fs from 'node:fs'
const [maxSeconds, intervalMs, stopFile, ...targets] = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === '--'))
const routes = targets.map((t) => ({ url: t.slice(0, t.lastIndexOf('=')), name: t.slice(t.lastIndexOf('=') + 1), requests: 0, failures: 0 }))
const started = Date.now()
const deadline = started + Number(maxSeconds) * 1000
const maxRequests = Math.ceil((Number(maxSeconds) * 1000) / Number(intervalMs)) + 1
let requests = 0
let failures = 0
let inFlight = 0
const firstFailures = []

function once(route) {
  inFlight++
  requests++
  route.requests++
  const sent = Date.now() - started
  const failed = (why) => {
    failures++
    route.failures++
    if (firstFailures.length < 5) firstFailures.push(`${route.url}@${sent}ms:${why}`)
  }
  const req = http.get(route.url, { agent: false, timeout: 5000 }, (res) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (chunk) => (body += chunk))
    res.on('end', () => {
      if (res.statusCode !== 200 || !body.startsWith(`${route.name} `)) failed(`${res.statusCode} ${body.slice(0, 60).trim()}`)
      inFlight--
    })
    res.on('error', (err) => {
      failed(err.code ?? err.message)
      inFlight--
    })
  })
  req.on('timeout', () => req.destroy(new Error('timeout')))
  req.on('error', (err) => {
    failed(err.code ?? err.message)
    inFlight--
  })
}

let next = 0
const timer = setInterval(() => {
  if (Date.now() >= deadline || requests >= maxRequests || fs.existsSync(stopFile)) {
    clearInterval(timer)
    const waitUntil = Date.now() + 6000
    const done = setInterval(() => {
      if (inFlight > 0 && Date.now() < waitUntil) return
      clearInterval(done)
      const perUrl = routes.map((r) => `${r.url}:${r.requests}/${r.failures}`).join(',')
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      process.stdout.write(`requests=${requests} failures=${failures + inFlight} seconds=${seconds} per-url=${perUrl} first-failures=${firstFailures.join('|') || 'none'}\n`)
    }, 50)
    return
  }
  once(routes[next++ % routes.length])
}, Number(intervalMs))
