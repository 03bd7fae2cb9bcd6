import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { TestDns } from '../helpers/dns.js'
import { freePort, until } from '../helpers/net.js'
import { askProxy, clientLoad, startTask } from '../helpers/tasks.js'

// A canary joining a route under load (issue 23): `stable` (weight 100) serves /app, found by DNS
// as Swarm names it; then `canary` (weight 0) claims the same route. The route is now served by the
// backend of the first of them by name — canary's, where stable's server is new — in the reload
// that adds it. A server new to a backend starts without an address until the `docker` resolvers
// answer; here the route's requests would get 503 in that moment (the Swarm test saw 92 of 1 581).
// Servers of a backend serving a shared route are looked up when the configuration loads
// (`init-addr last,libc,none`), so the route has its address at once. As in resolution.test.ts,
// HAProxy's system resolver (libc) asks the test's DNS server: HAProxy runs in a mount namespace
// whose /etc/resolv.conf names it, as in a container whose resolver is Docker's DNS.
const port = await freePort()
const addresses = { stable: '127.0.0.61', canary: '127.0.0.62' } as const
const dnsHost = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
const dns = await new TestDns({ stable: [addresses.stable], canary: [addresses.canary] }).start(dnsHost, 53)
const dir = await mkdtemp(join(tmpdir(), 'dfp-join-'))
await writeFile(join(dir, 'resolv.conf'), `nameserver ${dnsHost}\n`)
await writeFile(join(dir, 'haproxy'), `#!/bin/sh\nexport RES_OPTIONS='timeout:2 attempts:1'\nexec unshare -m sh -c 'mount --bind ${dir}/resolv.conf /etc/resolv.conf && exec "$0" "$@"' haproxy "$@"\n`, { mode: 0o755 })
const daemon = await startDaemon({ RESOLVERS: `nameserver dns ${dns.server}`, HAPROXY_BIN: join(dir, 'haproxy') })
const tasks = await Promise.all(Object.entries(addresses).map(([name, ip]) => startTask(name, ip, port)))
t.teardown(async () => {
  await Promise.all(tasks.map((task) => task.stop()))
  await daemon.close()
  await dns.stop()
  await rm(dir, { recursive: true, force: true })
})

const claim = (name: keyof typeof addresses, weight: number) => daemon.call('reconfigure', { serviceName: name, servicePath: '/app', port: String(port), weight: String(weight) })

t.test('a member joining a shared route moves it to its backend without a failed request', async (t) => {
  t.equal((await claim('stable', 100)).status, 200)
  t.ok(await until(async () => (await askProxy(daemon.proxyPort, '/app/x')).answer === 'stable', 20_000), 'stable serves /app once the resolvers found it')
  const load = clientLoad(async () => (await askProxy(daemon.proxyPort, '/app/x')).answer, 3, 5, 5_000, 60_000)
  await until(async () => load.answers.length >= 30, 10_000)
  const reply = await claim('canary', 0)
  t.equal(reply.status, 200, reply.body)
  const config = (await daemon.call('config')).body
  t.match(config, new RegExp(`backend canary-be${port}_0\\n(?:.*\\n)*? {4}server canary canary:${port} init-addr last,libc,none resolvers docker weight 0\\n {4}server stable stable:${port} init-addr last,libc,none resolvers docker weight 100\\n`), "the route is served by canary's backend, its servers looked up at load")
  // The requests sent after the reload: at least 150 of them.
  const after = load.answers.length
  await until(async () => load.answers.length >= after + 150, 20_000)
  const answers = await load.stop()
  const failed = answers.filter((answer) => answer.startsWith('failed'))
  t.comment(`${answers.length} requests (${answers.length - after} after the canary joined), ${failed.length} failed ${[...new Set(failed)].join(', ')}`)
  t.ok(answers.length >= after + 150, 'requests were sent after the canary joined')
  t.same(failed, [], 'no request failed while the route moved to the shared backend')
  t.same([...new Set(answers)], ['stable'], 'weight 0: the canary received nothing')
})
