import { createServer } from 'node:net'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import type { ConfigAnswer } from '../helpers/api-json.js'
import { defined, portOf } from '../helpers/checks.js'

const { daemon, port } = await startWithUpstream('good')
// Plain services go live in spare backends; their catch-up reload would land between the counts below.
daemon.applier.catchUpDelayMs = 3_600_000
const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', ...params })

t.before(async () => {
  const reply = await reconfigure({ serviceName: 'good', servicePath: '/good', port })
  if (reply.status !== 200) throw new Error(`setup failed: ${reply.body}`)
})

t.test('each bad request gets its status and message, and nothing changes', async (t) => {
  const before = (await daemon.call('config')).body
  const cases: Array<[Record<string, string>, number, string | RegExp]> = [
    [{ servicePath: '/x', port }, 400, 'serviceName parameter is mandatory.'],
    [{ serviceName: 'x', port }, 409, 'When using reqMode http, servicePath or serviceDomain are mandatory'],
    [{ serviceName: 'x', reqMode: 'tcp', port }, 400, 'When NOT using reqMode http (e.g. tcp), srcPort and port parameters are mandatory.'],
    [{ serviceName: 'x', reqMode: 'tcp', srcPort: '7000' }, 400, 'When NOT using reqMode http (e.g. tcp), srcPort and port parameters are mandatory.'],
    [{ serviceName: 'x', servicePath: '/x' }, 400, 'When MODE is set to "service" or "swarm", the port query is mandatory'],
    [{ serviceName: 'x', servicePath: '/x\nbackend evil', port }, 400, /^servicePath: must not contain newlines/],
    [{ serviceName: 'x', servicePath: '/x', port, outboundHostname: 'h\rserver' }, 400, /^outboundHostname: /],
    [{ serviceName: 'x', servicePath: '/x', port, timeoutServer: '5 if' }, 400, /^timeoutServer: must not contain spaces/],
    [{ serviceName: 'x y', servicePath: '/x', port }, 400, /^serviceName: /],
    [{ serviceName: 'x', servicePath: '/x', port: '99999' }, 400, /^port: /],
    [{ serviceName: 'x', servicePath: '/x', port: 'http' }, 400, /^port: must be a port number/],
    [{ serviceName: 'x', servicePath: '/x', port, srcPort: 'abc' }, 400, /^srcPort: /],
    [{ serviceName: 'x', servicePath: '/x', port, reqMode: 'udp' }, 400, /^reqMode: must be http, tcp or sni/],
    [{ serviceName: 'x', servicePath: '/x', port, isDefaultBackend: 'maybe' }, 400, /^isDefaultBackend: must be true or false/],
    [{ serviceName: 'x', servicePath: '/x', port, reqPathSearchReplace: ',/new' }, 400, /^reqPathSearchReplace: /],
    [{ serviceName: 'x', 'servicePath.1': '/x', 'port.1': port, 'port.2': port }, 409, 'When using reqMode http, servicePath or serviceDomain are mandatory'],
    [{ serviceName: 'x', servicePath: '/'.repeat(5000), port }, 400, /^servicePath: must be at most 4096/],
  ]
  for (const [params, status, message] of cases) {
    const reply = await reconfigure(params)
    t.equal(reply.status, status, `${JSON.stringify(params).slice(0, 80)} → ${status}`)
    t.equal(reply.json?.Status, 'NOK')
    t.match(reply.json?.Message, message)
  }
  const remove = await daemon.call('remove', {})
  t.equal(remove.status, 400)
  t.equal(remove.json.Message, 'The serviceName query is mandatory')
  t.equal((await daemon.call('config')).body, before, 'the live config did not change')
  t.equal((await daemon.proxy('/good')).status, 200)
})

t.test('a service HAProxy rejects is refused; the others keep answering', async (t) => {
  const before = (await daemon.call('config')).body
  const reply = await reconfigure({ serviceName: 'broken', servicePath: '/broken', port, timeoutServer: 'abc' })
  t.equal(reply.status, 400)
  t.equal(reply.json.Status, 'NOK')
  t.equal(reply.json.ServiceName, 'broken')
  t.match(reply.json.Message, /timeout server/, "HAProxy's own error line")
  t.match(reply.json.Message, /haproxy\.cfg:\d+/)
  t.equal((await daemon.proxy('/good')).status, 200)
  t.equal((await daemon.call('config')).body, before, '/config is unchanged')
  t.notOk((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json.broken)
})

t.test('a refused change keeps the previous definition of the service', async (t) => {
  t.equal((await reconfigure({ serviceName: 'evolving', servicePath: '/v1', port })).status, 200)
  const refused = await reconfigure({ serviceName: 'evolving', servicePath: '/v2', port, timeoutTunnel: 'x1' })
  t.equal(refused.status, 400)
  t.equal((await daemon.proxy('/v1')).status, 200, 'the old route still works')
  t.equal((await daemon.proxy('/v2')).status, 503, 'the refused route was not added')
  t.same((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json.evolving?.destinations[0]?.servicePath, ['/v1'])
  await daemon.call('remove', { serviceName: 'evolving' })
})

t.test('in one batch only the bad request fails', async (t) => {
  const replies = await Promise.all([
    reconfigure({ serviceName: 'batch-a', servicePath: '/batch-a', port }),
    reconfigure({ serviceName: 'batch-bad', servicePath: '/refused', port, timeoutServer: 'nope' }),
    reconfigure({ serviceName: 'batch-b', servicePath: '/batch-b', port }),
    reconfigure({ serviceName: 'batch-c', servicePath: '/batch-c', port }),
  ])
  t.same(replies.map((r) => r.status), [200, 400, 200, 200])
  for (const path of ['/batch-a', '/batch-b', '/batch-c', '/good']) t.equal((await daemon.proxy(path)).status, 200, path)
  t.equal((await daemon.proxy('/refused')).status, 503)
  for (const name of ['batch-a', 'batch-b', 'batch-c']) await daemon.call('remove', { serviceName: name })
})

t.test('a port in use is refused before any reload, naming it; nothing else changes', async (t) => {
  const squatter = createServer()
  await new Promise<void>((resolve) => squatter.listen(0, '0.0.0.0', resolve))
  t.teardown(() => new Promise((resolve) => squatter.close(resolve)))
  const busy = portOf(squatter)
  const before = (await daemon.call('config')).body
  const reloads = daemon.applier.reloads
  const reply = await reconfigure({ serviceName: 'squat', reqMode: 'tcp', srcPort: String(busy), port })
  t.equal(reply.status, 400)
  t.match(reply.json.Message, new RegExp(`port ${busy} \\(frontend tcpFE_${busy}\\) is in use by another process`))
  t.equal(daemon.applier.reloads, reloads, 'found before any reload (docs/guarantees.md, 1)')
  t.equal((await daemon.call('config')).body, before, 'the previous configuration is live')
  t.equal((await daemon.proxy('/good')).status, 200)
  t.equal((await reconfigure({ serviceName: 'after', servicePath: '/after', port })).status, 200, 'later changes still apply')
  t.equal((await daemon.proxy('/after')).status, 200)
  await daemon.call('remove', { serviceName: 'after' })
})

t.test('remove of an unknown service and reload', async (t) => {
  const unknown = await daemon.call('remove', { serviceName: 'never-there' })
  t.equal(unknown.status, 200)
  t.match(unknown.json.Message, /was not configured/)
  const reloads = daemon.applier.reloads
  const reload = await daemon.call('reload', { recreate: 'true' })
  t.equal(reload.status, 200)
  t.equal(reload.json.Status, 'OK')
  t.equal(daemon.applier.reloads, reloads + 1, 'reload really reloaded')
  t.equal((await daemon.proxy('/good')).status, 200)
})

t.test('an identical reconfigure does not reload', async (t) => {
  const reloads = daemon.applier.reloads
  t.equal((await reconfigure({ serviceName: 'good', servicePath: '/good', port })).status, 200)
  t.equal(daemon.applier.reloads, reloads)
})

t.test('when the haproxy master dies it is restarted on the last good configuration', async (t) => {
  const pid = defined(daemon.haproxy.masterPid, 'the master pid')
  process.kill(pid, 'SIGKILL')
  let status = 0
  for (let i = 0; i < 200 && (status !== 200 || daemon.haproxy.masterPid === pid); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    status = await daemon.proxy('/good').then((r) => r.status, () => 0)
  }
  t.not(daemon.haproxy.masterPid, pid, 'a new master runs')
  t.equal(status, 200, 'routes are served again')
  t.equal((await reconfigure({ serviceName: 'later', servicePath: '/later', port })).status, 200, 'and changes apply')
  t.equal((await daemon.proxy('/later')).status, 200)
})

t.test('aclName names the rules; two services cannot generate the same names (409 naming the owner)', async (t) => {
  const custom = await reconfigure({ serviceName: 'named', aclName: 'custom', servicePath: '/named', port })
  t.equal(custom.status, 200)
  t.match((await daemon.call('config')).body, `backend custom-be${port}_0`)
  t.equal((await daemon.proxy('/named')).status, 200)
  const before = (await daemon.call('config')).body
  const shared = await reconfigure({ serviceName: 'intruder', aclName: 'custom', servicePath: '/intruder', port })
  t.equal(shared.status, 409)
  t.match(shared.json.Message, /service named already uses/)
  // a1 + port 23 and a12 + port 3 both make url_a123_0 (the original's D18).
  t.equal((await reconfigure({ serviceName: 'a1', servicePath: '/a1', port: '23' })).status, 200)
  const collision = await reconfigure({ serviceName: 'a12', servicePath: '/a12', port: '3' })
  t.equal(collision.status, 409)
  t.match(collision.json.Message, /url_a123_0, which service a1 already uses/)
  t.equal((await reconfigure({ serviceName: 'named', aclName: 'custom', servicePath: '/named2', port })).status, 200, 'a service may redefine itself')
  t.equal((await daemon.call('remove', { serviceName: 'named' })).status, 200)
  t.equal((await reconfigure({ serviceName: 'intruder', aclName: 'custom', servicePath: '/intruder', port })).status, 200, 'free again after remove')
  t.notSame((await daemon.call('config')).body, before)
  for (const name of ['a1', 'intruder']) await daemon.call('remove', { serviceName: name })
})

t.test('a tcp and an sni destination on one srcPort: the second is refused, the first keeps the port (D12)', async (t) => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const srcPort = String(portOf(probe))
  await new Promise((resolve) => probe.close(resolve))
  t.equal((await reconfigure({ serviceName: 'tcpfirst', reqMode: 'tcp', srcPort, port })).status, 200)
  const sni = await reconfigure({ serviceName: 'snisecond', reqMode: 'sni', srcPort, port, serviceDomain: 'sni.example' })
  t.equal(sni.status, 409)
  t.equal(sni.json.Message, `snisecond would bind srcPort ${srcPort} with frontend service_${srcPort}, but frontend tcpFE_${srcPort} of service tcpfirst binds it: a tcp, an sni and a TCP-group section cannot share a port`)
  const config = (await daemon.call('config')).body
  t.equal(config.split('\n').filter((line) => line === `    bind *:${srcPort}`).length, 1, 'bound once')
  const both = await reconfigure({ serviceName: 'mixedports', 'reqMode.1': 'tcp', 'srcPort.1': srcPort, 'port.1': port, 'reqMode.2': 'sni', 'srcPort.2': srcPort, 'port.2': port, 'serviceDomain.2': 'm.example' })
  t.equal(both.status, 409, 'nor within one service')
  t.equal((await reconfigure({ serviceName: 'tcpsecond', reqMode: 'tcp', srcPort, port, serviceDomain: 'b.example' })).status, 200, 'another tcp service shares the tcp section, as before')
  await daemon.call('remove', { serviceName: 'tcpfirst' })
  t.equal((await reconfigure({ serviceName: 'snisecond', reqMode: 'sni', srcPort, port, serviceDomain: 'sni.example' })).status, 409, 'still taken by the other tcp service')
  await daemon.call('remove', { serviceName: 'tcpsecond' })
  t.equal((await reconfigure({ serviceName: 'snisecond', reqMode: 'sni', srcPort, port, serviceDomain: 'sni.example' })).status, 200, 'free once the tcp services are gone')
  await daemon.call('remove', { serviceName: 'snisecond' })
})
