import { createServer } from 'node:http'
import t from 'tap'
import { makeCertificate } from '../helpers/certs.js'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'

// During a rolling update from the original to dfp (or back), replicas of both kinds pass
// distributed changes to each other. The original reads a reconfigure's destination parameters
// from the query only, so dfp must send them there. The other replica here records what it gets
// and reads it as the original does (query only).
const dfpIp = '127.0.0.22'
const originalIp = '127.0.0.23'
const apiPort = await freePort()
const received: Array<{ method: string; path: string; query: URLSearchParams; body: string }> = []
const original = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk) => (body += chunk))
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x')
    received.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, body })
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"Status":"OK","Message":""}')
  })
})
await new Promise<void>((resolve) => original.listen(apiPort, originalIp, resolve))
const dns = await new FakeDns().start({ 'tasks.proxy': [dfpIp, originalIp] })
const daemon = await startDaemon({ DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy' }, { apiHost: dfpIp, apiPort })
// Ready once it has asked the other replica for its state (peer-state, answered wrongly here).
await until(async () => (await daemon.call('successfulinitreload')).status === 200, 20_000)
t.teardown(async () => {
  await daemon.close()
  await dns.stop()
  await new Promise((resolve) => original.close(resolve))
})

t.test('a distributed reconfigure reaches the other replica with every parameter in the query', async (t) => {
  received.length = 0
  const params = { serviceName: 'mixed', 'servicePath.1': '/one', 'port.1': '8080', 'servicePath.2': '/two', 'port.2': '9090', serviceDomain: 'mixed.example', distribute: 'true' }
  const reply = await daemon.call('reconfigure', params)
  t.equal(reply.status, 200)
  t.equal(received.length, 1)
  const [got] = received as [(typeof received)[number]]
  t.equal(got.method, 'GET')
  t.equal(got.path, '/v1/docker-flow-proxy/reconfigure')
  t.same(Object.fromEntries(got.query), { ...params, distribute: 'false' }, 'destination parameters in the query')
  t.equal(got.body, '')
})

t.test('a distributed remove, and a certificate upload', async (t) => {
  received.length = 0
  t.equal((await daemon.call('remove', { serviceName: 'mixed', distribute: 'true' })).status, 200)
  t.match(received[0], { method: 'GET', path: '/v1/docker-flow-proxy/remove' })
  t.same(Object.fromEntries(received[0]?.query ?? []), { serviceName: 'mixed', distribute: 'false' })
  received.length = 0
  const pem = makeCertificate('mixed.example')
  const upload = await fetch(`http://${dfpIp}:${apiPort}/v1/docker-flow-proxy/cert?certName=mixed.example&distribute=true`, { method: 'PUT', body: pem })
  t.equal(upload.status, 200)
  t.match(received[0], { method: 'PUT', path: '/v1/docker-flow-proxy/cert', body: pem })
  t.same(Object.fromEntries(received[0]?.query ?? []), { certName: 'mixed.example', distribute: 'false' })
})

t.test('parameters too long for a request line go as a form body', async (t) => {
  received.length = 0
  // A certificate (serviceCert) and a long domain list: over 8 000 characters once encoded.
  const serviceDomain = Array.from({ length: 220 }, (_, i) => `d${i}.long.example`).join(',')
  const serviceCert = makeCertificate('long.example')
  const addReqHeader = `X-Padding ${'p'.repeat(1500)}`
  t.ok(new URLSearchParams({ serviceDomain, serviceCert, addReqHeader }).toString().length > 8000, 'over 8 000 characters')
  const reply = await fetch(`http://${dfpIp}:${apiPort}/v1/docker-flow-proxy/reconfigure`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ serviceName: 'long', servicePath: '/long', port: '8080', serviceDomain, serviceCert, addReqHeader, distribute: 'true' }).toString(),
  })
  t.equal(reply.status, 200)
  t.match(received[0], { method: 'POST', path: '/v1/docker-flow-proxy/reconfigure' })
  t.same(Object.fromEntries(received[0]?.query ?? []), { distribute: 'false' })
  t.equal(new URLSearchParams(received[0]?.body).get('serviceCert'), serviceCert)
})

t.test("the original's test endpoints answer as it did", async (t) => {
  for (const version of ['v1', 'v2']) {
    const reply = await fetch(`http://${dfpIp}:${apiPort}/${version}/test`)
    t.equal(reply.status, 200)
    t.same(await reply.json(), { Status: 'OK', Message: `Test ${version}` }, `/${version}/test`)
  }
})
