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

/** Replaces each task of the DNS name `name` (new ones named `<label>-v2-<i>`), one at a time, and waits until HAProxy runs the new one. */
async function roll(name: string, label: string, backend: string, current: Task[], base: number, keep: (task: Task) => boolean = () => false) {
  const stoppedWithInFlight: number[] = []
  for (const [i, old] of current.entries()) {
    if (keep(old)) continue
    stoppedWithInFlight.push(await old.stop())
    const next = await startTask(`${label}-v2-${i}`, `127.0.0.${base + i}`, port)
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
  const inFlight = await roll('roll', 'roll', backend, first, 41)
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

t.test('a request a task drops unanswered: a GET is retried on another task, a POST is not (the client gets 502)', async (t) => {
  // 127.0.0.71 drops every request it reads (a task killed mid-request); 127.0.0.72 answers.
  const { createServer } = await import('node:net')
  const seenByDropper = new Map<string, number>()
  const dropper = createServer((socket) => {
    socket.once('data', (data: Buffer) => {
      const method = data.toString('latin1').split(' ')[0] ?? ''
      seenByDropper.set(method, (seenByDropper.get(method) ?? 0) + 1)
      socket.destroy()
    })
    socket.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve) => dropper.listen(port, '127.0.0.71', resolve))
  t.teardown(() => new Promise((resolve) => dropper.close(resolve)))
  const good = await startTask('good', '127.0.0.72', port)
  tasks.push(good)
  const reply = await daemon.call('reconfigure', { serviceName: 'mixed', servicePath: '/mixed', port: String(port), discoveryType: 'DNS', replicas: '2' })
  t.equal(reply.status, 200, reply.body)
  t.ok(await until(async () => (await upAddresses(`mixed-be${port}_0`)).length === 2, 30_000), 'both up (the dropper accepts connections)')
  const gets = await Promise.all(Array.from({ length: 20 }, () => askProxy(daemon.proxyPort, '/mixed/get')))
  t.same([...new Set(gets.map((g) => g.answer))], ['good'], 'every GET answered 200 by the good task')
  t.ok((seenByDropper.get('GET') ?? 0) > 0, `the dropper dropped ${seenByDropper.get('GET')} GETs first; they were sent again`)
  const postsBefore = good.received.get('POST') ?? 0
  const posts: string[] = []
  for (let i = 0; i < 20; i++) posts.push((await askProxy(daemon.proxyPort, '/mixed/post', { method: 'POST', body: `n=${i}` })).answer)
  const dropped = seenByDropper.get('POST') ?? 0
  t.comment(`20 POSTs: ${posts.filter((p) => p === 'good').length} answered, ${posts.filter((p) => p === 'failed 502').length} got 502; the dropper read ${dropped}`)
  t.ok(dropped > 0, 'some POSTs reached the dropper')
  t.equal(posts.filter((p) => p === 'failed 502').length, dropped, 'each POST the dropper dropped is a 502 to its client')
  t.equal((good.received.get('POST') ?? 0) - postsBefore, 20 - dropped, 'and was not sent again to another task')
})

t.test('sticky sessions: a client whose task is not replaced keeps it while the others are', async (t) => {
  const first = await Promise.all((records['tasks.sticky'] ?? []).map((ip, i) => startTask(`sticky-v1-${i}`, ip, port)))
  tasks.push(...first)
  const reply = await daemon.call('reconfigure', { serviceName: 'sticky', servicePath: '/sticky', port: String(port), sessionType: 'sticky-server', replicas: '3' })
  t.equal(reply.status, 200, reply.body)
  const backend = `sticky-be${port}_0`
  t.ok(await until(async () => (await upAddresses(backend)).length === 3, 30_000), 'three tasks up')
  const { answer: mine, setCookie } = await askProxy(daemon.proxyPort, '/sticky')
  t.match(setCookie, /^sticky=/, 'the client gets a cookie')
  const cookie = { cookie: setCookie ?? '' }
  const keep = first.find((task) => task.name === mine)
  t.ok(keep, `the client's task is ${mine}`)
  // The client keeps sending with its cookie while the two other tasks are replaced.
  const client = clientLoad(async () => (await askProxy(daemon.proxyPort, '/sticky', { headers: cookie })).answer, 1)
  await roll('tasks.sticky', 'sticky', backend, first, 61, (task) => task === keep)
  const answers = await client.stop()
  t.same([...new Set(answers)], [mine], `all ${answers.length} requests with the cookie reached ${mine}`)
  const fresh = new Set<string>()
  await until(async () => {
    fresh.add((await askProxy(daemon.proxyPort, '/sticky')).answer)
    return [...fresh].filter((name) => name.startsWith('sticky-v2')).length === 2
  }, 30_000)
  t.same([...fresh].filter((name) => name.startsWith('sticky-v2')).sort(), ['sticky-v2-0', 'sticky-v2-1', 'sticky-v2-2'].filter((name) => name !== `sticky-v2-${first.indexOf(keep as Task)}`), 'new clients reach the new tasks')
})
