import { request } from 'node:http'
import t from 'tap'
import { encrypt } from 'unixcrypt'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { makeCertificate } from '../helpers/certs.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'
import type { ApiAnswer, ConfigAnswer } from '../helpers/api-json.js'

// A replica that starts takes the services created through the API and the uploaded
// certificates from another replica (src/swarm/peer-sync.ts) before it reports ready. Replicas on
// 127.0.0.12–14 found through tasks.proxy, served by a real dnsmasq, as in swarm.test.ts. As in
// Swarm, the starting replica is not in tasks.proxy yet (a task with a health check is listed once
// healthy).
const startingReplica = { 'other.test': ['127.0.0.15'] }
const upstream = await httpUpstream('peer')
const port = String(upstream.port)
const [first, second, late] = ['127.0.0.12', '127.0.0.13', '127.0.0.14'] as const
const dns = await new FakeDns().start({ 'tasks.proxy': [first, second] })
const started: TestDaemon[] = []
t.teardown(async () => {
  for (const daemon of started) await daemon.close().catch(() => undefined)
  await dns.stop()
  await upstream.close()
})

async function replica(ip: string, apiPort: number, env: Record<string, string> = {}) {
  const daemon = await startDaemon({ DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy', ...env }, { apiHost: ip, apiPort })
  started.push(daemon)
  return daemon
}

/** A GET from `from` (a local address) to the API of `daemon`, with `headers`. */
function getFrom(from: string, daemon: TestDaemon, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: daemon.apiHost, port: daemon.apiPort, path, headers, localAddress: from, timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (chunk) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

const upload = (daemon: TestDaemon, name: string, authorization?: string) =>
  fetch(`http://${daemon.apiHost}:${daemon.apiPort}/v1/docker-flow-proxy/cert?certName=${name}&distribute=true`, {
    method: 'PUT',
    body: makeCertificate(name),
    headers: authorization ? { authorization } : {},
  })
const certNames = async (daemon: TestDaemon, headers: Record<string, string> = {}) => {
  const reply = await getFrom(daemon.apiHost, daemon, '/v1/docker-flow-proxy/certs', headers)
  const answer: ApiAnswer = JSON.parse(reply.body)
  return answer.Certs?.map((c) => c.Name)
}

t.test('a replica started later gets the uploaded certificates and the API services', async (t) => {
  const apiPort = await freePort()
  const one = await replica(first, apiPort)
  await replica(second, apiPort)
  t.equal((await upload(one, 'peer.test')).status, 200)
  const reconfigured = await one.call('reconfigure', { serviceName: 'by-api', servicePath: '/by-api', port, outboundHostname: '127.0.0.1', distribute: 'true' })
  t.equal(reconfigured.status, 200)

  await dns.setRecords({ 'tasks.proxy': [first, second], ...startingReplica })
  const three = await replica(late, apiPort)
  t.ok(await until(async () => (await three.call('successfulinitreload')).status === 200, 20_000), 'the new replica reports ready')
  t.same(await certNames(three), ['peer.test'], 'it has the certificate uploaded before it started')
  t.equal((await three.proxy('/by-api/x')).status, 200, 'and routes the service created through the API')
  t.equal(JSON.parse((await three.proxy('/by-api/x')).body).name, 'peer')
  const saved = (await three.call<ConfigAnswer>('config', { type: 'json' })).json
  t.ok(saved['by-api'], 'listed in its /config')

  // Distributed while the new replica is not in tasks.proxy yet: it misses it, then catches up
  // once it finds itself listed.
  const missed = await one.call('reconfigure', { serviceName: 'meanwhile', servicePath: '/meanwhile', port, outboundHostname: '127.0.0.1', distribute: 'true' })
  t.equal(missed.status, 200)
  t.same(missed.json.Replicas?.map((r) => r.Address), [second], 'distributed to the listed replicas only')
  t.equal((await three.proxy('/meanwhile')).status, 503, 'the new replica missed it')
  await dns.setRecords({ 'tasks.proxy': [first, second, late], ...startingReplica })
  t.ok(await until(async () => (await three.proxy('/meanwhile')).status === 200, 20_000), 'it has it once it is listed')
})

t.test('with API_USERS (hashes only) a new replica proves itself with the replicas token', async (t) => {
  for (const daemon of started.splice(0)) await daemon.close()
  await dns.setRecords({ 'tasks.proxy': [first, second] })
  const apiUsers = `ops:${encrypt('ops-secret', '$6$peersalt$')}`
  const authorization = `Basic ${Buffer.from('ops:ops-secret').toString('base64')}`
  const apiPort = await freePort()
  const one = await replica(first, apiPort, { API_USERS: apiUsers })
  await replica(second, apiPort, { API_USERS: apiUsers })
  t.equal((await upload(one, 'locked.test', authorization)).status, 200)

  const noCredentials = await getFrom(second, one, '/v1/docker-flow-proxy/peer-state')
  t.equal(noCredentials.status, 401, 'not without credentials')
  const wrongToken = await getFrom(second, one, '/v1/docker-flow-proxy/peer-state', { 'x-dfp-replica-token': 'f'.repeat(64) })
  t.equal(wrongToken.status, 401, 'nor a wrong token')
  const user = await getFrom(second, one, '/v1/docker-flow-proxy/peer-state', { authorization })
  t.equal(user.status, 200, "an API user's credentials also pass")

  await dns.setRecords({ 'tasks.proxy': [first, second], ...startingReplica })
  const three = await replica(late, apiPort, { API_USERS: apiUsers })
  t.ok(await until(async () => (await three.call('successfulinitreload')).status === 200, 20_000), 'the new replica reports ready')
  t.same(await certNames(three, { authorization }), ['locked.test'], 'it has the certificate')
})
