import { createServer, type Server } from 'node:http'
import { connect, createServer as createTlsServer } from 'node:tls'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { makeCertificate } from '../helpers/certs.js'
import { freePort, httpGet, tcpEcho, tcpExchange, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'
import type { ConfigAnswer } from '../helpers/api-json.js'
import { nameInBody, portOf } from '../helpers/checks.js'

// Sticky sessions and DNS discovery over two tasks (127.0.0.1 and 127.0.0.2 on one port, named
// by a real DNS server), SNI routing to TLS upstreams, and a TCP group — through a real haproxy.
const taskPort = await freePort()
const tasks: Server[] = []
for (const [name, host] of [['task-1', '127.0.0.1'], ['task-2', '127.0.0.2']] as const) {
  const server = createServer((req, res) => res.end(JSON.stringify({ name, path: req.url })))
  await new Promise<void>((resolve) => server.listen(taskPort, host, resolve))
  tasks.push(server)
}
const dns = await new FakeDns().start({ 'tasks.sticky': ['127.0.0.1', '127.0.0.2'], discovered: ['127.0.0.1', '127.0.0.2'] })
// DNS_SERVERS: the daemon sizes a server-template without `replicas` by the same server.
const daemon = await startDaemon({ RESOLVERS: `nameserver dns ${dns.server}`, DNS_SERVERS: dns.server })
t.teardown(async () => {
  await daemon.close()
  await dns.stop()
  for (const server of tasks) await new Promise((resolve) => server.close(resolve))
})

const get = async (path: string, headers: Record<string, string> = {}) => {
  const reply = await httpGet(daemon.proxyPort, path, headers)
  return { status: reply.status, name: reply.status === 200 ? nameInBody(reply.body) : undefined, setCookie: reply.headers['set-cookie'] }
}

/** Which tasks answer `path` within a bounded number of requests. */
const tasksSeen = async (path: string) => {
  const seen = new Set<string>()
  await until(async () => {
    const { name } = await get(path)
    if (name) seen.add(name)
    return seen.size === 2
  }, 20_000)
  return [...seen].sort()
}

t.test('sessionType=sticky-server: a cookie binds a client to one task', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'sticky', servicePath: '/sticky', port: String(taskPort), sessionType: 'sticky-server', replicas: '2' })
  t.equal(reply.status, 200, reply.body)
  t.same(await tasksSeen('/sticky'), ['task-1', 'task-2'], 'without a cookie both tasks serve (round robin)')
  const cookies = new Map<string, string>()
  for (let i = 0; i < 10 && cookies.size < 2; i++) {
    const first = await get('/sticky')
    const cookie = ([first.setCookie].flat()[0] ?? '').split(';')[0] ?? ''
    t.match(cookie, /^sticky=\S+$/, 'the proxy sets the service cookie')
    if (first.name) cookies.set(first.name, cookie)
  }
  t.same([...cookies.keys()].sort(), ['task-1', 'task-2'])
  for (const [task, cookie] of cookies) {
    const names = new Set<string | undefined>()
    for (let i = 0; i < 6; i++) {
      const next = await get('/sticky', { cookie })
      names.add(next.name)
      t.equal(next.setCookie, undefined, 'no new cookie while the cookie is honoured')
    }
    t.same([...names], [task], `every request with ${task}'s cookie reaches ${task}`)
  }
  await daemon.call('remove', { serviceName: 'sticky' })
})

t.test('discoveryType=DNS: one server per address of the name', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'discovered', servicePath: '/discovered', port: String(taskPort), discoveryType: 'DNS', replicas: '3' })
  t.equal(reply.status, 200, reply.body)
  t.match((await daemon.call('config')).body, `server-template discovered 3 discovered:${taskPort} check resolvers docker`)
  t.same(await tasksSeen('/discovered'), ['task-1', 'task-2'])
  await daemon.call('remove', { serviceName: 'discovered' })
})

t.test('discoveryType=DNS without replicas: as many slots as the name has addresses now', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'discovered', servicePath: '/discovered', port: String(taskPort), discoveryType: 'DNS' })
  t.equal(reply.status, 200, reply.body)
  t.match((await daemon.call('config')).body, `server-template discovered 2 discovered:${taskPort} check resolvers docker`)
  t.equal((await daemon.call<ConfigAnswer>('config', { type: 'json' })).json.discovered?.replicas, 2, 'kept as the service\'s replicas (saved with it, so a restart renders the same without a lookup)')
  t.same(await tasksSeen('/discovered'), ['task-1', 'task-2'])
  const unknown = await daemon.call('reconfigure', { serviceName: 'nowhere', servicePath: '/nowhere', port: String(taskPort), discoveryType: 'DNS' })
  t.equal(unknown.status, 200, unknown.body)
  t.match((await daemon.call('config')).body, `server-template nowhere 10 nowhere:${taskPort}`, 'a name DNS does not know keeps the default 10 slots')
  await daemon.call('remove', { serviceName: 'discovered' })
  await daemon.call('remove', { serviceName: 'nowhere' })
})

t.test('reqMode=sni routes TLS connections by server name, to the backend named by aclName (D2)', async (t) => {
  const upstreams = await Promise.all(
    ['a.sni.test', 'b.sni.test'].map(async (cn) => {
      const pem = makeCertificate(cn)
      const server = createTlsServer({ cert: pem, key: pem }, (socket) => {
        socket.on('data', (data) => socket.end(`${cn}:${data.toString('utf8')}`))
        socket.on('error', () => socket.destroy())
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      return { cn, server, port: portOf(server) }
    }),
  )
  t.teardown(() => Promise.all(upstreams.map(({ server }) => new Promise((resolve) => server.close(resolve)))))
  const srcPort = await freePort()
  for (const [i, { cn, port }] of upstreams.entries()) {
    const reply = await daemon.call('reconfigure', { serviceName: `sni-${i}`, aclName: `passthrough-${i}`, reqMode: 'sni', srcPort: String(srcPort), port: String(port), servicePath: cn, outboundHostname: '127.0.0.1' })
    t.equal(reply.status, 200, reply.body)
  }
  const exchange = (servername: string) =>
    new Promise<{ cn: string; answer: string }>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: srcPort, servername, rejectUnauthorized: false, timeout: 5000 }, () => {
        const cn = String(socket.getPeerCertificate().subject?.CN ?? '')
        let answer = ''
        socket.on('data', (d) => (answer += d.toString('utf8')))
        socket.on('end', () => resolve({ cn, answer }))
        socket.write('hello')
      })
      socket.on('timeout', () => socket.destroy(new Error('TLS exchange timed out')))
      socket.on('error', reject)
    })
  t.same(await exchange('a.sni.test'), { cn: 'a.sni.test', answer: 'a.sni.test:hello' }, 'TLS passes through to the upstream of that name')
  t.same(await exchange('b.sni.test'), { cn: 'b.sni.test', answer: 'b.sni.test:hello' })
  await t.rejects(exchange('c.sni.test'), 'an unknown server name is not served')
  const config = (await daemon.call('config')).body
  t.match(config, `use_backend passthrough-0-be${upstreams[0]?.port}_0 if sni_passthrough-0${upstreams[0]?.port}-1`)
  for (const i of [0, 1]) await daemon.call('remove', { serviceName: `sni-${i}` })
})

t.test('a TCP group balances its members in one listen section', async (t) => {
  const echoes = await Promise.all(['one', 'two'].map((name) => tcpEcho(name)))
  t.teardown(() => Promise.all(echoes.map((e) => e.close())))
  const srcPort = await freePort()
  for (const [i, echo] of echoes.entries()) {
    const reply = await daemon.call('reconfigure', {
      serviceName: `member-${i}`,
      reqMode: 'tcp',
      srcPort: String(srcPort),
      port: String(echo.port),
      serviceGroup: 'pool',
      balanceGroup: 'roundrobin',
      checkTcp: 'true',
      clitcpka: 'true',
      outboundHostname: '127.0.0.1',
      backendExtra: 'option tcplog',
    })
    t.equal(reply.status, 200, reply.body)
  }
  const config = (await daemon.call('config')).body
  t.match(config, `listen tcpListen_pool_${srcPort}`)
  t.notMatch(config, /backend member-/, 'members have no backend')
  const seen = new Set<string>()
  for (let i = 0; i < 20 && seen.size < 2; i++) {
    const answer = await tcpExchange(srcPort, 'ping').catch(() => '')
    if (answer) seen.add(answer)
  }
  t.same([...seen].sort(), ['one:ping', 'two:ping'])
  for (const i of [0, 1]) await daemon.call('remove', { serviceName: `member-${i}` })
})
