// Run inside a container of the dfp image (`docker exec CTR node -e "$(cat probe.js)" -- VERB …`):
// the Swarm test's requests to a replica's own HAProxy and API on 127.0.0.1, so every check goes
// through that replica alone. Prints one line; exit 0 when a request could be made.
//   get URL                  → "<status> <ms> <body>"   (a refused connection prints "000 <ms> <error>")
//   put URL                  → the same, the body read from stdin (PUT /cert)
//   tls PORT SERVERNAME      → the served certificate's subject CN, or "none <error>"
//   load URL[,URL…] SECONDS WORKERS PAUSE_MS METHOD CONNECTION
//                            → "<requests> <failed> <not ready> <first failure>": WORKERS loops
//                              of METHOD requests for SECONDS, each pausing PAUSE_MS, on a new
//                              connection each (CONNECTION=close) or kept alive (keep-alive); an
//                              answer whose body starts with "notready" counts as not ready;
//                              the file /tmp/dfp-load-stop (or $DFP_LOAD_STOP) ends it early;
//                              several URLs are requested in turn (the cluster test runs it on
//                              the host, one URL per node's published port); then
//                              "<name>=<count> …" of the answers by their first word
//   sticky URL SECONDS CLIENTS PAUSE_MS
//                            → "<requests> <failed> <clients> <moved> <moved while their task
//                              still answered> <kept while another task went> <first failure>":
//                              CLIENTS clients, each keeping the cookie HAProxy set on its first
//                              answer (sessionType=sticky-server) and sending GETs on new
//                              connections; an answer's second word names its task. A client
//                              "moved" when its task changed; that move is wrong when another
//                              client's request that started after the move was answered by the
//                              old task (it still accepted); "kept" counts the clients whose task
//                              answered them before and after another task's last answer
// With `node -e`, process.argv is [node, ...args] (Node drops the `--`).
const [verb, target, extra] = process.argv.slice(1).filter((arg, i) => !(i === 0 && arg === '--'))
const started = Date.now()
const say = (line) => process.stdout.write(`${line}\n`)
async function request(method, body) {
  try {
    const reply = await fetch(target, { method, body, signal: AbortSignal.timeout(30000) })
    const text = (await reply.text()).replace(/\s+/g, ' ').trim()
    say(`${reply.status} ${Date.now() - started} ${text}`)
  } catch (err) {
    say(`000 ${Date.now() - started} ${err.cause?.code ?? err.message}`)
  }
}
async function stdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks)
}
async function load([seconds, workers, pauseMs, method, connection]) {
  const http = require('node:http')
  const agent = connection === 'keep-alive' ? new http.Agent({ keepAlive: true }) : false
  const deadline = Date.now() + Number(seconds) * 1000
  let requests = 0, failed = 0, notReady = 0, first = '-'
  const byName = new Map()
  const urls = target.split(',')
  const stopFile = process.env.DFP_LOAD_STOP || '/tmp/dfp-load-stop'
  let sent = 0
  const once = () =>
    new Promise((resolve) => {
      const req = http.request(urls[sent++ % urls.length], { method, agent, timeout: 30000 }, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => {
          const name = body.split(' ')[0]
          if (res.statusCode === 200) byName.set(name, (byName.get(name) ?? 0) + 1)
          resolve(res.statusCode === 200 ? (body.startsWith('notready') ? 'notready' : 'ok') : `status-${res.statusCode}`)
        })
        res.on('error', (err) => resolve(`error-${err.code ?? err.message}`))
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', (err) => resolve(`error-${err.code ?? err.message}`))
      req.end(method === 'POST' ? 'x=1' : undefined)
    })
  await Promise.all(Array.from({ length: Number(workers) }, async () => {
    // `docker exec CTR touch /tmp/dfp-load-stop` ends every load early.
    while (Date.now() < deadline && !require('node:fs').existsSync(stopFile)) {
      const outcome = await once()
      requests++
      if (outcome === 'notready') notReady++
      else if (outcome !== 'ok') { failed++; if (first === '-') first = outcome }
      if (Number(pauseMs) > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)))
    }
  }))
  say(`${requests} ${failed} ${notReady} ${first} ${[...byName].map(([name, n]) => `${name}=${n}`).join(' ')}`)
  if (agent) agent.destroy()
}
async function sticky([seconds, clients, pauseMs]) {
  const http = require('node:http')
  const deadline = Date.now() + Number(seconds) * 1000
  const stopFile = process.env.DFP_LOAD_STOP || '/tmp/dfp-load-stop'
  // per client: [started, ended, task] of each answer
  const logs = Array.from({ length: Number(clients) }, () => [])
  let requests = 0, failed = 0, first = '-'
  const once = (cookie) =>
    new Promise((resolve) => {
      const req = http.request(target, { agent: false, timeout: 30000, headers: cookie ? { cookie } : {} }, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve({ status: res.statusCode, task: body.split(' ')[1], cookie: res.headers['set-cookie']?.[0]?.split(';')[0] }))
        res.on('error', (err) => resolve({ status: `error-${err.code ?? err.message}` }))
      })
      req.on('timeout', () => req.destroy(new Error('timeout')))
      req.on('error', (err) => resolve({ status: `error-${err.code ?? err.message}` }))
      req.end()
    })
  await Promise.all(logs.map(async (log) => {
    let cookie
    while (Date.now() < deadline && !require('node:fs').existsSync(stopFile)) {
      const started = Date.now()
      const answer = await once(cookie)
      requests++
      if (answer.status !== 200) { failed++; if (first === '-') first = `status-${answer.status}` }
      else { if (answer.cookie) cookie = answer.cookie; log.push([started, Date.now(), answer.task]) }
      if (Number(pauseMs) > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)))
    }
  }))
  const lastAnswer = new Map()
  for (const log of logs) for (const [, ended, task] of log) lastAnswer.set(task, Math.max(lastAnswer.get(task) ?? 0, ended))
  let moved = 0, wrong = 0, kept = 0
  for (const [i, log] of logs.entries()) {
    for (let k = 1; k < log.length; k++) {
      const [, movedAt, task] = log[k], old = log[k - 1][2]
      if (task === old) continue
      moved++
      // another client's request started after this move and answered by the old task
      if (logs.some((other, j) => j !== i && other.some(([started, , t]) => t === old && started > movedAt))) wrong++
    }
    // its task answered it before and after the last answer of another task that went
    const mine = log[0]?.[2]
    const until = log.findIndex(([, , t]) => t !== mine)
    const own = until === -1 ? log : log.slice(0, until)
    const gone = [...lastAnswer].filter(([task, at]) => task !== mine && at < (own.at(-1)?.[0] ?? 0) && at > (own[0]?.[1] ?? Infinity) && at < Date.now() - 3000)
    if (gone.length > 0) kept++
  }
  say(`${requests} ${failed} ${logs.length} ${moved} ${wrong} ${kept} ${first}`)
}
if (verb === 'get') request('GET')
else if (verb === 'sticky') sticky(process.argv.slice(1).filter((arg, i) => !(i === 0 && arg === '--')).slice(2))
else if (verb === 'load') load(process.argv.slice(1).filter((arg, i) => !(i === 0 && arg === '--')).slice(2))
else if (verb === 'put') stdin().then((body) => request('PUT', body))
else if (verb === 'tls') {
  const socket = require('node:tls').connect({ host: '127.0.0.1', port: Number(target), servername: extra, rejectUnauthorized: false }, () => {
    say(socket.getPeerCertificate().subject?.CN ?? 'none no subject')
    socket.end()
  })
  socket.setTimeout(10000, () => socket.destroy(new Error('timeout')))
  socket.on('error', (err) => say(`none ${err.code ?? err.message}`))
} else {
  say(`unknown verb ${verb}`)
  process.exitCode = 2
}
