import { Agent } from 'node:http'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'
import { askProxy, clientLoad, startTask, type Task } from '../helpers/tasks.js'

// Rolling updates on loopback (issue 23): a service's tasks are replaced one at a time, as
// `docker service update --update-parallelism 1` does (stop-first: the old task is told to stop
// — it stops accepting and finishes what it has in flight — then the new one starts and DNS
// names it instead), while clients send GETs (2 s ones among them) and POSTs through the proxy.
const port = await freePort()
const ips = (base: number, n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${base + i}`)
const records: Record<string, string[]> = { roll: ips(31, 3), 'tasks.sticky': ips(51, 3), mixed: ips(71, 2) }
const dns = await new FakeDns().start(records)
const daemon = await startDaemon({ RESOLVERS: `nameserver dns ${dns.server}`, DNS_SERVERS: dns.server })
const tasks: Task[] = []
t.teardown(async () => {
  await Promise.all(tasks.map((task) => task.stop()))
  await daemon.close()
  await dns.stop()
})

/** The addresses of a backend's servers that are up (`show servers state`: srv_addr, srv_op_state 2). */
async function upAddresses(backend: string): Promise<string[]> {
  const state = await daemon.haproxy.send(`show servers state ${backend}`)
  return state
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[1] === backend && fields[5] === '2')
    .map((fields) => fields[4] as string)
    .sort()
}

/** Replaces each task of `name`, one at a time, and waits until HAProxy runs the new one. */
async function roll(name: string, backend: string, current: Task[], base: number, keep: (task: Task) => boolean = () => false) {
  const stoppedWithInFlight: number[] = []
  for (const [i, old] of current.entries()) {
    if (keep(old)) continue
    stoppedWithInFlight.push(await old.stop())
    const next = await startTask(`${name}-v2-${i}`, `127.0.0.${base + i}`, port)
    tasks.push(next)
    records[name] = (records[name] ?? []).map((ip) => (ip === old.host ? next.host : ip))
    await dns.setRecords(records)
    const wanted = [...(records[name] ?? [])].sort()
    if (!(await until(async () => JSON.stringify(await upAddresses(backend)) === JSON.stringify(wanted), 60_000))) throw new Error(`HAProxy did not take ${next.host}`)
  }
  return stoppedWithInFlight
}

t.test('a rolling update: 0 failed GETs, new connections, keep-alive and 2 s requests in flight', async (t) => {
  const first = await Promise.all((records.roll ?? []).map((ip, i) => startTask(`roll-v1-${i}`, ip, port)))
  tasks.push(...first)
  const reply = await daemon.call('reconfigure', { serviceName: 'roll', servicePath: '/roll', port: String(port), discoveryType: 'DNS', replicas: '3' })
  t.equal(reply.status, 200, reply.body)
  const backend = `roll-be${port}_0`
  t.ok(await until(async () => (await upAddresses(backend)).length === 3, 30_000), 'three tasks up')
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 })
  t.teardown(() => keepAlive.destroy())
  const ask = (path: string, options: Parameters<typeof askProxy>[2] = {}) => async () => (await askProxy(daemon.proxyPort, path, options)).answer
  const loads = {
    newConnections: clientLoad(ask('/roll/fast'), 3),
    keepAlive: clientLoad(ask('/roll/fast', { agent: keepAlive }), 2),
    slow: clientLoad(ask('/roll/slow'), 6, 0),
    posts: clientLoad(ask('/roll/post', { method: 'POST', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 2),
  }
  // Every kind of client has had answers before the roll starts.
  await until(async () => Object.values(loads).every((load) => load.answers.length > 0), 30_000)
  const inFlight = await roll('roll', backend, first, 41)
  await until(async () => loads.slow.answers.some((answer) => answer.startsWith('roll-v2')), 30_000)
  const results = Object.fromEntries(await Promise.all(Object.entries(loads).map(async ([kind, load]) => [kind, await load.stop()] as const)))
  for (const [kind, answers] of Object.entries(results)) {
    const failed = answers.filter((a) => a.startsWith('failed'))
    t.comment(`${kind}: ${answers.length} requests, ${failed.length} failed${failed.length ? ` (${[...new Set(failed)].join(', ')})` : ''}`)
  }
  t.comment(`requests in flight at each task when it was told to stop: ${inFlight.join(', ')}`)
  t.ok(inFlight.some((n) => n > 0), 'some requests were in flight on a task being replaced')
  for (const kind of ['newConnections', 'keepAlive', 'slow'] as const) t.same(results[kind]?.filter((a) => a.startsWith('failed')), [], `${kind}: no failed GET`)
  t.ok((results.posts ?? []).filter((a) => !a.startsWith('failed')).length > 0, 'POSTs are served')
  t.same([...new Set(results.newConnections?.filter((a) => !a.startsWith('failed')).map((a) => a.replace(/-\d$/, '')))].sort(), ['roll-v1', 'roll-v2'], 'old tasks, then new ones answered')
})
