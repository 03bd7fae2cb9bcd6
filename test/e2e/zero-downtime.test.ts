import { Agent } from 'node:http'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { statusOf } from '../helpers/net.js'

// Clients keep requesting one route while 100 other services are added and removed (each a
// reload): no request may fail, on new connections or on kept-alive ones.
const { daemon, port } = await startWithUpstream('steady')

const get = (agent: Agent | false) => statusOf(daemon.proxyPort, '/steady', agent)

t.test('no failed request while 100 reconfigures and removes reload haproxy', async (t) => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'steady', servicePath: '/steady', port, outboundHostname: '127.0.0.1' })).status, 200)
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => keepAlive.destroy())
  const results = { close: { ok: 0, failed: [] as string[] }, keepAlive: { ok: 0, failed: [] as string[] } }
  let running = true
  const loop = async (kind: 'close' | 'keepAlive', agent: Agent | false) => {
    for (let i = 0; i < 100_000 && running; i++) {
      try {
        const status = await get(agent)
        if (status === 200) results[kind].ok++
        else results[kind].failed.push(`status ${status}`)
      } catch (err) {
        results[kind].failed.push((err as Error).message)
      }
    }
  }
  const clients = [loop('close', false), loop('close', false), loop('keepAlive', keepAlive), loop('keepAlive', keepAlive)]
  const reloadsBefore = daemon.applier.reloads
  for (let i = 0; i < 50; i++) {
    t.equal((await daemon.call('reconfigure', { serviceName: `churn-${i}`, servicePath: `/churn-${i}`, port, outboundHostname: '127.0.0.1' })).status, 200)
    t.equal((await daemon.call('remove', { serviceName: `churn-${i}` })).status, 200)
  }
  running = false
  await Promise.all(clients)
  const reloads = daemon.applier.reloads - reloadsBefore
  t.comment(`${reloads} reloads; new connection per request: ${results.close.ok} ok; keep-alive: ${results.keepAlive.ok} ok`)
  t.ok(reloads >= 50, 'the changes really reloaded haproxy')
  t.same(results.close.failed, [], 'no failure with a new connection per request')
  t.same(results.keepAlive.failed, [], 'no failure on kept-alive connections')
  t.ok(results.close.ok > 100 && results.keepAlive.ok > 100, 'the clients ran throughout')
})
