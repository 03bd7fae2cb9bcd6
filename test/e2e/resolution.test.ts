import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { TestDns } from '../helpers/dns.js'
import { until } from '../helpers/net.js'

// Server names are never looked up while a configuration loads (`init-addr last,none`): a server
// starts on the address the previous worker had (the server-state file dfp saves before each
// reload) or without one until the `docker` resolvers find it. The DNS server here is the test's
// own (test/helpers/dns.ts), which can answer late or not at all, on port 53 of a loopback address
// of its own; HAProxy runs in a mount namespace whose /etc/resolv.conf names it, so HAProxy's
// system resolver (libc) would ask it too, as in a container where Docker's DNS is the resolver.
const dnsHost = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`
const dns = await new TestDns({ 'named.test': ['127.0.0.1'], 'slow.test': ['127.0.0.1'] }).start(dnsHost, 53)
const dir = await mkdtemp(join(tmpdir(), 'dfp-resolv-'))
await writeFile(join(dir, 'resolv.conf'), `nameserver ${dnsHost}\n`)
// A lookup waits up to 10 s (longer than the late answers below), whatever RES_OPTIONS the tests set.
await writeFile(join(dir, 'haproxy'), `#!/bin/sh\nexport RES_OPTIONS='timeout:10 attempts:1'\nexec unshare -m sh -c 'mount --bind ${dir}/resolv.conf /etc/resolv.conf && exec "$0" "$@"' haproxy "$@"\n`, { mode: 0o755 })
t.teardown(async () => {
  await dns.stop()
  await rm(dir, { recursive: true, force: true })
})
const { daemon, port } = await startWithUpstream('named', { RESOLVERS: `nameserver dns ${dns.server}`, HAPROXY_BIN: join(dir, 'haproxy') })
const other = (name: string) => daemon.call('reconfigure', { serviceName: name, servicePath: `/${name}`, port, outboundHostname: '127.0.0.1' })

t.test('an unresolvable service is accepted and answers 503 while the others keep working', async (t) => {
  t.equal((await other('ok')).status, 200)
  const reply = await daemon.call('reconfigure', { serviceName: 'not-yet-scheduled', servicePath: '/later', port })
  t.equal(reply.status, 200, 'not fatal: the route exists')
  t.match((await daemon.call('config')).body, `server not-yet-scheduled not-yet-scheduled:${port} resolvers docker`)
  t.equal((await daemon.proxy('/later')).status, 503)
  t.equal((await daemon.proxy('/ok')).status, 200)
})

t.test('a reload does not wait for a DNS server that answers late', async (t) => {
  dns.delayMs = 3000
  const reply = await daemon.call('reconfigure', { serviceName: 'slow', servicePath: '/slow', port, outboundHostname: 'slow.test' })
  t.equal(reply.status, 200, 'the service with a new host name is live')
  t.equal(dns.answers.get('slow.test') ?? 0, 0, 'answered before the DNS server answered any query for its name')
  dns.delayMs = 0
  t.ok(await until(async () => (await daemon.proxy('/slow')).status === 200, 20_000), 'routed once the resolvers have its address')
})

t.test('a resolved name keeps its address across reloads while the DNS server does not answer', async (t) => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'hosts', servicePath: '/hosts', port, outboundHostname: 'named.test' })).status, 200)
  t.ok(await until(async () => (await daemon.proxy('/hosts')).status === 200, 20_000), 'resolved at run time')
  dns.silent = true
  const queriesBefore = dns.queries.get('named.test') ?? 0
  const failures: number[] = []
  // Without the long `hold` periods HAProxy puts the server in maintenance 30 s after its last
  // good resolution; without the server-state file each reload would start it without address.
  for (let second = 0; second < 36; second++) {
    if (second % 6 === 0) t.equal((await other(`reload${second}`)).status, 200, `reload at ${second} s`)
    const status = (await daemon.proxy('/hosts')).status
    if (status !== 200) failures.push(second)
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  t.same(failures, [], 'answered 200 every second for 36 s, across 6 reloads')
  t.ok((dns.queries.get('named.test') ?? 0) > queriesBefore, 'the resolvers kept asking meanwhile')
  const saved = await readFile(join(daemon.configDir, 'haproxy.state'), 'utf8')
  t.match(saved, /^1\n/, 'the server-state file has its format version')
  t.match(saved, / hosts 127\.0\.0\.1 /, 'and the server with the address the resolvers found')
})
