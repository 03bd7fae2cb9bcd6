// Run inside a container of the dfp image (`docker exec CTR node -e "$(cat probe.js)" -- VERB …`):
// the Swarm test's requests to a replica's own HAProxy and API on 127.0.0.1, so every check goes
// through that replica alone. Prints one line; exit 0 when a request could be made.
//   get URL                  → "<status> <ms> <body>"   (a refused connection prints "000 <ms> <error>")
//   put URL                  → the same, the body read from stdin (PUT /cert)
//   tls PORT SERVERNAME      → the served certificate's subject CN, or "none <error>"
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
if (verb === 'get') request('GET')
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
