// The image test's peers on the host, on 127.0.0.1 ports chosen by the kernel:
//
//   upstream  any path → 200 "upstream saw GET <path>"; a path with /slow/ answers after SLOW_MS and
//             prints "slow request arrived" first, so the test can stop the container while
//             that request is in flight without guessing with a sleep;
//   listener  a stand-in Docker Flow Swarm Listener: get-services answers 503 until
//             GET /release, then one service (`listed`, /listed) on the upstream.
//
// Prints one JSON line {"upstream":port,"listener":port} once both listen, then one line per
// event. Stops on SIGTERM/SIGINT.
import { createServer } from 'node:http'

const SLOW_MS = 3000
const say = (line) => process.stdout.write(`${line}\n`)

const upstream = createServer((req, res) => {
  const answer = () => {
    const body = `upstream saw ${req.method} ${req.url}\n`
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
  if (req.url?.includes('/slow/')) {
    say('slow request arrived')
    setTimeout(answer, SLOW_MS)
  } else answer()
})

let released = false
const listener = createServer((req, res) => {
  if (req.url === '/release') {
    released = true
    say('listener released')
    res.end('released\n')
  } else if (req.url === '/v1/docker-flow-swarm-listener/get-services') {
    say(`get-services (${released ? 'answered' : 'refused'})`)
    if (!released) {
      res.writeHead(503).end('not yet\n')
      return
    }
    const services = [{ serviceName: 'listed', servicePath: '/listed', port: String(upstream.address().port), outboundHostname: '127.0.0.1' }]
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(services))
  } else res.writeHead(404).end()
})

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
await Promise.all([listen(upstream), listen(listener)])
say(JSON.stringify({ upstream: upstream.address().port, listener: listener.address().port }))

const stop = () => {
  upstream.closeAllConnections()
  listener.closeAllConnections()
  upstream.close()
  listener.close()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
