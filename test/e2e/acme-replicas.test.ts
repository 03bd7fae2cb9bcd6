import t from 'tap'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'
import { handshake, Pebble } from '../helpers/pebble.js'
import { FakeDns } from '../helpers/swarm.js'

// Three replicas on 127.0.0.2–4 found through tasks.proxy (dnsmasq), as in swarm.test.ts, each
// with its own HTTP and HTTPS port. Pebble validates on the HTTP port of 127.0.0.4, which is not
// the replica that orders (the lowest address answering, 127.0.0.2): the challenge answer must
// reach every replica. The API is protected (API_USERS): replicas authenticate to each other.
const replicaIps = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const dns = await new FakeDns().start({ 'tasks.proxy': replicaIps })
const apiPort = await freePort()
const ports = await Promise.all(replicaIps.map(async () => ({ http: await freePort(), https: await freePort() })))
const pebble = await new Pebble().start({ httpPort: ports[2]!.http })
const upstream = await httpUpstream('site')
const root = await pebble.root()
const envOf = (i: number) => ({
  DNS_SERVERS: dns.server,
  SERVICE_NAME: 'proxy',
  DEFAULT_PORTS: `${ports[i]!.http},${ports[i]!.https}:ssl`,
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  ACME_CA_FILE: pebble.caFile,
  API_USERS: 'admin:replica-secret',
})
const authorization = `Basic ${Buffer.from('admin:replica-secret').toString('base64')}`
/** A reconfigure with the API's credentials. */
const reconfigure = async (d: TestDaemon, query: Record<string, string>) => {
  const reply = await fetch(`http://${d.apiHost}:${d.apiPort}/v1/docker-flow-proxy/reconfigure?${new URLSearchParams(query)}`, { headers: { authorization }, signal: AbortSignal.timeout(60_000) })
  return { status: reply.status, body: await reply.text() }
}
const start = (i: number, configDir?: string) => startDaemon(envOf(i), { apiHost: replicaIps[i], apiPort, proxyPort: ports[i]!.http, ...(configDir ? { configDir } : {}) })
const replicas: TestDaemon[] = []
for (let i = 0; i < replicaIps.length; i++) replicas.push(await start(i))
t.teardown(async () => {
  for (const r of replicas) await r.close().catch(() => undefined)
  await dns.stop()
  await upstream.close()
  await pebble.stop()
})

const issuedBy = async (d: TestDaemon) => Number(/^dfp_acme_orders_total\{outcome="issued"\} (\S+)$/m.exec((await d.api('/metrics')).body)?.[1] ?? 0)
const served = (i: number, domain: string) => handshake(ports[i]!.https, domain, root).catch(() => undefined)
const params = (name: string) => ({ serviceName: name, serviceDomain: `${name}.acme.test`, port: String(upstream.port), outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })

t.test('one replica orders; every replica serves the certificate; the challenge is answered by another', async (t) => {
  t.equal((await replicas[0]!.call('certs')).status, 401, 'the API is protected')
  const reply = await reconfigure(replicas[1]!, { ...params('shared'), distribute: 'true' })
  t.equal(reply.status, 200, reply.body)
  const startedAt = Date.now()
  t.ok(await until(async () => (await Promise.all([0, 1, 2].map((i) => served(i, 'shared.acme.test')))).every((h) => h?.authorized), 15_000), 'all three serve a verified certificate')
  t.comment(`every replica served it ${Date.now() - startedAt} ms after the distributed reconfigure`)
  const fingerprints = new Set((await Promise.all([0, 1, 2].map((i) => served(i, 'shared.acme.test')))).map((h) => h?.fingerprint))
  t.equal(fingerprints.size, 1, 'the same certificate everywhere')
  t.same(await Promise.all(replicas.map(issuedBy)), [1, 0, 0], 'ordered once, by 127.0.0.2 (the lowest address)')
})

t.test('a replica started later gets the certificates from its peers without ordering', async (t) => {
  const third = replicas[2]!
  const fingerprint = (await served(0, 'shared.acme.test'))?.fingerprint
  await third.close()
  // A new task: empty CONFIG_DIR, same address; the listener (here a plain reconfigure) gives it the service.
  replicas[2] = await start(2)
  t.equal((await reconfigure(replicas[2], params('shared'))).status, 200)
  t.ok(await until(async () => (await served(2, 'shared.acme.test'))?.fingerprint === fingerprint, 10_000), 'serves the same certificate')
  t.equal(await issuedBy(replicas[2]), 0, 'without an order of its own')
})

t.test('when the ordering replica is down, the next lowest orders', async (t) => {
  await replicas[0]!.close({ keepConfig: true })
  const reply = await reconfigure(replicas[2]!, { ...params('failover'), distribute: 'true' })
  t.equal(reply.status, 500, 'not distributed to the replica that is down')
  t.ok(await until(async () => (await Promise.all([1, 2].map((i) => served(i, 'failover.acme.test')))).every((h) => h?.authorized), 15_000), 'both remaining replicas serve it')
  t.same(await Promise.all([replicas[1]!, replicas[2]!].map(issuedBy)), [1, 0], 'ordered by 127.0.0.3')
})
