import t from 'tap'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'

// Replicas that start together — a global service deployed on every node at once, as in the
// three-node Swarm of issue 22 — find nobody in tasks.proxy: Docker lists a task with a health
// check only once it is healthy, and the replicas become healthy one after the other. A change
// distributed in between reaches the listed replicas only. On the cluster, /web2 (created with
// /web routed) then reached one replica of three and the other two kept sending /web2/… to /web.
// A replica must catch up once it finds itself listed, whatever its first lookup found, and once
// more a little later: the replica that distributes may see it listed after it sees itself
// (each node's DNS learns the other nodes' tasks by gossip). Replicas on 127.0.0.22–23.
const web = await httpUpstream('web')
const web2 = await httpUpstream('web2')
const web3 = await httpUpstream('web3')
const [first, second] = ['127.0.0.22', '127.0.0.23'] as const
const elsewhere = { 'other.test': ['127.0.0.25'] }
// What the first replica's node sees, and what the second's sees.
const dnsOfFirst = await new FakeDns().start(elsewhere)
const dnsOfSecond = await new FakeDns().start(elsewhere)
const started: TestDaemon[] = []
t.teardown(async () => {
  for (const daemon of started) await daemon.close().catch(() => undefined)
  await dnsOfFirst.stop()
  await dnsOfSecond.stop()
  for (const upstream of [web, web2, web3]) await upstream.close()
})

async function replica(ip: string, apiPort: number, dns: FakeDns) {
  const daemon = await startDaemon({ DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy' }, { apiHost: ip, apiPort })
  started.push(daemon)
  return daemon
}

const service = (name: string, upstream: { port: number }, distribute: boolean) => ({
  serviceName: name,
  servicePath: `/${name}`,
  port: String(upstream.port),
  outboundHostname: '127.0.0.1',
  distribute: String(distribute),
})
/** The upstream that answers `path` through the replica's HAProxy ('' when none does). */
const answeredBy = async (daemon: TestDaemon, path: string) => {
  const reply = await daemon.proxy(path)
  return reply.status === 200 ? String((JSON.parse(reply.body) as { name?: unknown }).name) : ''
}

t.test('replicas started together catch up with what was distributed before they were listed', async (t) => {
  const apiPort = await freePort()
  const [one, two] = await Promise.all([replica(first, apiPort, dnsOfFirst), replica(second, apiPort, dnsOfSecond)])
  for (const daemon of [one, two]) {
    t.ok(await until(async () => (await daemon.call('successfulinitreload')).status === 200, 20_000), `${daemon.apiHost} is ready with nobody in tasks.proxy`)
    t.equal((await daemon.call('reconfigure', service('web', web, false))).status, 200)
  }

  // The first replica is healthy, and listed; the second is not yet.
  await dnsOfFirst.setRecords({ 'tasks.proxy': [first], ...elsewhere })
  await dnsOfSecond.setRecords({ 'tasks.proxy': [first], ...elsewhere })
  const missed = await one.call('reconfigure', service('web2', web2, true))
  t.equal(missed.status, 200)
  t.same(missed.json.Replicas, [], 'distributed to no other replica: none is listed')
  t.equal(await answeredBy(two, '/web2/a'), 'web', 'the unlisted replica sends /web2/… to /web')

  // Listed: its own node's DNS lists it at once, the first replica's node a little later.
  await dnsOfSecond.setRecords({ 'tasks.proxy': [first, second], ...elsewhere })
  t.ok(await until(async () => (await answeredBy(two, '/web2/a')) === 'web2', 20_000), 'once listed, it routes /web2 (caught up)')
  const missedAgain = await one.call('reconfigure', service('web3', web3, true))
  t.same(missedAgain.json.Replicas, [], 'the first replica does not see it yet and distributes to nobody')
  await dnsOfFirst.setRecords({ 'tasks.proxy': [first, second], ...elsewhere })
  t.ok(await until(async () => (await answeredBy(two, '/web3/a')) === 'web3', 20_000), 'it catches up once more, with what was distributed meanwhile')
  t.equal(await answeredBy(two, '/web/a'), 'web', 'and /web is still web')
})
