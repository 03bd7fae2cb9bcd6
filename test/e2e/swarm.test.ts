import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream, until } from '../helpers/net.js'
import { FakeDns, FakeListener } from '../helpers/swarm.js'
import type { ApiAnswer, ConfigAnswer, StatusAnswer } from '../helpers/api-json.js'
import { defined } from '../helpers/checks.js'

// Three replicas on 127.0.0.2, .3 and .4 (same API port, their own HAProxy port), found through
// tasks.proxy served by a real dnsmasq, and a listener stand-in speaking the listener's protocol.
const upstream = await httpUpstream('swarm')
const port = String(upstream.port)
const replicaIps = ['127.0.0.2', '127.0.0.3', '127.0.0.4']
const dns = await new FakeDns().start({ 'tasks.proxy': replicaIps })
const apiPort = await freePort()
const env = { DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy', RELOAD_INTERVAL: '500' }
const replicas: TestDaemon[] = []
for (const ip of replicaIps) replicas.push(await startDaemon(env, { apiHost: ip, apiPort }))
t.teardown(async () => {
  for (const r of replicas) await r.close().catch(() => undefined)
  await dns.stop()
  await upstream.close()
})
// The replicas share this machine, so each binds its own port and keeps its sockets in its own
// CONFIG_DIR (sockets, route maps); everything else of /config (every frontend rule, backend and
// server) must match.
const configHash = async (d: TestDaemon) => {
  const text = (await d.call('config')).body.replaceAll(d.configDir, '<CONFIG_DIR>')
  const routing = text
    .slice(text.indexOf('frontend services'))
    .split('\n')
    .filter((line) => !line.startsWith('    bind *:'))
    .join('\n')
  const state = JSON.stringify((await d.call('config', { type: 'json' })).json)
  return createHash('sha256').update(routing).update(state).digest('hex')
}

t.test('a distributed reconfigure reaches every replica', async (t) => {
  const [first] = replicas as [TestDaemon]
  const reply = await first.call('reconfigure', { serviceName: 'everywhere', servicePath: '/everywhere', port, outboundHostname: '127.0.0.1', distribute: 'true' })
  t.equal(reply.status, 200)
  t.equal(reply.json.Message, 'Distributed to all instances')
  t.same(
    reply.json.Replicas?.map((r) => [r.Address, r.Status]),
    [['127.0.0.3', 200], ['127.0.0.4', 200]],
    'each other replica reported',
  )
  for (const r of replicas) t.equal((await r.proxy('/everywhere')).status, 200, `served through ${r.apiHost}`)
  const hashes = await Promise.all(replicas.map(configHash))
  t.equal(new Set(hashes).size, 1, 'the three /config are identical')

  const removed = await first.call('remove', { serviceName: 'everywhere', distribute: 'true' })
  t.equal(removed.status, 200)
  for (const r of replicas) t.equal((await r.proxy('/everywhere')).status, 503)
})

t.test('a certificate uploaded with distribute=true reaches every replica', async (t) => {
  const { makeCertificate } = await import('../helpers/certs.js')
  const first = defined(replicas[0], 'the first replica')
  const reply = await fetch(`http://127.0.0.1:${first.apiPort}/v1/docker-flow-proxy/cert?certName=shared.test&distribute=true`.replace('127.0.0.1', first.apiHost), {
    method: 'PUT',
    body: makeCertificate('shared.test'),
  })
  const json: ApiAnswer = await reply.json()
  t.equal(reply.status, 200)
  t.same(json.Replicas?.map((r) => r.Status), [200, 200])
  for (const r of replicas) t.same((await r.call('certs')).json.Certs?.map((c) => c.Name), ['shared.test'], `on ${r.apiHost}`)
})

t.test('a bad request is refused before it is distributed', async (t) => {
  const reply = await (defined(replicas[0], 'the first replica')).call('reconfigure', { serviceName: 'nopath', port, distribute: 'true' })
  t.equal(reply.status, 409)
  t.notOk(reply.json.Replicas)
})

t.test('a replica that is down is reported by name and catches up from the listener', async (t) => {
  const [first, second, third] = replicas as [TestDaemon, TestDaemon, TestDaemon]
  await third.close({ keepConfig: true })
  const params = { serviceName: 'late', servicePath: '/late', port, outboundHostname: '127.0.0.1' }
  const reply = await first.call('reconfigure', { ...params, distribute: 'true' })
  t.equal(reply.status, 500, 'not everywhere: the listener will send it again')
  t.match(reply.json.Message, /127\.0\.0\.4/)
  t.match(reply.json.Replicas?.find((r) => r.Address === '127.0.0.4'), { Status: 0, Attempts: 3 })
  t.equal((await first.proxy('/late')).status, 200)
  t.equal((await second.proxy('/late')).status, 200)

  const listener = await new FakeListener().start()
  t.teardown(() => listener.stop())
  listener.services = [{ ...params, replicas: '2', distribute: 'true' }]
  const back = await startDaemon({ ...env, LISTENER_ADDRESS: `127.0.0.1:${listener.port}` }, { configDir: third.configDir, proxyPort: third.proxyPort, apiHost: '127.0.0.4', apiPort })
  replicas[2] = back
  t.ok(await until(async () => (await back.call('successfulinitreload')).status === 200), 'ready after the pull')
  t.equal((await back.proxy('/late')).status, 200, 'the missed service is served')
  t.equal(new Set(await Promise.all(replicas.map(configHash))).size, 1, 'all three agree again')
})

t.test('the listener pull: not ready until it answers, invalid services skipped, gone ones removed', async (t) => {
  const listener = await new FakeListener().start()
  t.teardown(() => listener.stop())
  listener.failWith = 503
  listener.services = [
    { serviceName: 'pulled-a', servicePath: '/pulled-a', port, outboundHostname: '127.0.0.1', replicas: '1', distribute: 'true', nodeInfo: '[["n1","10.0.0.1","id"]]' },
    { serviceName: 'pulled-b', servicePath: '/pulled-b', port, outboundHostname: '127.0.0.1' },
    { serviceName: 'pulled-invalid', port },
    { serviceName: 'pulled-scaled-down', servicePath: '/x', port, replicas: '0' },
  ]
  const daemon = await startDaemon({ LISTENER_ADDRESS: `127.0.0.1:${listener.port}`, REPEAT_RELOAD: 'true', RELOAD_INTERVAL: '300' })
  t.teardown(() => daemon.close())
  t.equal((await daemon.call('successfulinitreload')).status, 503, 'not ready while the listener fails')
  t.ok(await until(async () => listener.calls.length >= 3), 'keeps retrying')
  t.equal((await daemon.call('successfulinitreload')).status, 503)
  listener.failWith = undefined
  t.ok(await until(async () => (await daemon.call('successfulinitreload')).status === 200), 'ready once the pull is applied')
  t.equal((await daemon.proxy('/pulled-a')).status, 200)
  t.equal((await daemon.proxy('/pulled-b')).status, 200)
  t.same(Object.keys((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json), ['pulled-a', 'pulled-b'])
  t.equal((await daemon.call('reconfigure', { serviceName: 'by-hand', servicePath: '/by-hand', port, outboundHostname: '127.0.0.1' })).status, 200)
  const status = (await daemon.call<StatusAnswer>('status', { type: 'json' })).json
  t.same(
    status.services.map((s) => [s.serviceName, s.source]),
    [['by-hand', 'api'], ['pulled-a', 'listener'], ['pulled-b', 'listener']],
    'the status page tells where each service came from',
  )
  t.ok(status.listener.ready && status.listener.lastSync !== null, 'and when the listener was last pulled')
  const age = Number(/^dfp_listener_last_sync_age_seconds (\S+)$/m.exec((await daemon.api('/metrics')).body)?.[1])
  t.ok(age >= 0 && age < 60, `last sync age in /metrics (${age} s)`)

  listener.services = listener.services.filter((s) => s.serviceName !== 'pulled-b')
  t.ok(await until(async () => (await daemon.proxy('/pulled-b')).status === 503), 'a service the listener dropped is removed by a later pull')
  t.equal((await daemon.proxy('/pulled-a')).status, 200)
  t.equal((await daemon.proxy('/by-hand')).status, 200, 'services configured by hand stay')
})

t.test('reload?fromListener=true asks the listener to notify, and its notifications apply', async (t) => {
  const listener = await new FakeListener().start()
  t.teardown(() => listener.stop())
  const daemon = await startDaemon({ LISTENER_ADDRESS: `http://127.0.0.1:${listener.port}` })
  t.teardown(() => daemon.close())
  t.ok(await until(async () => (await daemon.call('successfulinitreload')).status === 200))
  listener.notifyUrl = `http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/reconfigure`
  listener.services = [{ serviceName: 'notified', servicePath: '/notified', port, outboundHostname: '127.0.0.1', distribute: 'false' }]
  const reply = await daemon.call('reload', { fromListener: 'true' })
  t.equal(reply.status, 200)
  t.ok(listener.calls.includes('/v1/docker-flow-swarm-listener/notify-services'))
  t.ok(await until(async () => (await daemon.proxy('/notified')).status === 200), 'the notification was applied')
  await listener.stop()
  const unreachable = await daemon.call('reload', { fromListener: 'true' })
  t.equal(unreachable.status, 500)
  t.match(unreachable.json.Message, `127.0.0.1:${listener.port}`)
})

t.test('a replica killed with kill -9 serves its routes from the state file before the listener answers', async (t) => {
  const { spawn } = await import('node:child_process')
  const { mkdtemp } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const listener = await new FakeListener().start()
  t.teardown(() => listener.stop())
  listener.failWith = 500
  const configDir = await mkdtemp(join(tmpdir(), 'dfp-kill-'))
  const childEnv = {
    ...process.env,
    CONFIG_DIR: configDir,
    SECRETS_DIR: join(configDir, 'secrets'),
    IP: '127.0.0.5',
    PORT: String(apiPort),
    DEFAULT_PORTS: String(await freePort()),
    RESOLVERS: 'nameserver dns 127.0.0.1:53',
    LISTENER_ADDRESS: `127.0.0.1:${listener.port}`,
    LOG_LEVEL: 'warn',
  }
  const root = join(import.meta.dirname, '..', '..')
  const start = () => spawn(process.execPath, ['--import', 'tsx', join(root, 'src', 'main.ts')], { cwd: root, env: childEnv, stdio: 'ignore' })
  const api = (path: string) => httpGet(apiPort, `/v1/docker-flow-proxy/${path}`, {}, 5000, '127.0.0.5')
  const proxy = (path: string) => httpGet(Number(childEnv.DEFAULT_PORTS), path)

  const first = start()
  t.ok(await until(async () => (await api('ping')).status === 200, 30_000), 'first daemon up')
  t.equal((await api(`reconfigure?serviceName=durable&servicePath=/durable&port=${port}&outboundHostname=127.0.0.1`)).status, 200)
  const oldMaster = Number((await readFile(join(configDir, 'haproxy-master.pid'), 'utf8')).trim())
  first.kill('SIGKILL')
  await new Promise((resolve) => first.once('exit', resolve))

  const startedAt = Date.now()
  const second = start()
  t.teardown(() => {
    second.kill('SIGTERM')
  })
  t.ok(await until(async () => (await proxy('/durable')).status === 200 && (await api('ping')).status === 200, 30_000))
  t.comment(`routes served ${Date.now() - startedAt} ms after the restart (includes starting node and tsx)`)
  t.equal((await api('successfulinitreload')).status, 503, 'while the listener still does not answer')
  const newMaster = Number((await readFile(join(configDir, 'haproxy-master.pid'), 'utf8')).trim())
  t.not(newMaster, oldMaster, 'served by a new haproxy started from the state file')
  t.ok(await until(async () => !(await readFile(`/proc/${oldMaster}/cmdline`, 'utf8').then(() => true, () => false))), 'the orphaned haproxy was stopped')
  second.kill('SIGTERM')
  await new Promise((resolve) => second.once('exit', resolve))
})
