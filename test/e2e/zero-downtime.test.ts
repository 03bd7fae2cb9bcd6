import { Agent } from 'node:http'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { statusOf } from '../helpers/net.js'
import { messageOf } from '../../src/errors.js'

// Clients keep requesting one route while 100 other services are added and removed — half of
// them plain (spare backends and map entries through the Runtime API, a catch-up reload now and
// then), half with backend lines of their own (a reload each): no request may fail, on new
// connections or on kept-alive ones, and each added service routes once its answer came.
const { daemon, port } = await startWithUpstream('steady')

const get = (agent: Agent | false) => statusOf(daemon.proxyPort, '/steady', agent)

t.test('no failed request while 100 services are added and removed', async (t) => {
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
        results[kind].failed.push(messageOf(err))
      }
    }
  }
  const clients = [loop('close', false), loop('close', false), loop('keepAlive', keepAlive), loop('keepAlive', keepAlive)]
  const reloadsBefore = daemon.applier.reloads
  daemon.applier.catchUpDelayMs = 200
  let unroutable = 0
  for (let i = 0; i < 100; i++) {
    const own: Record<string, string> = i % 2 === 1 ? { timeoutServer: '30' } : {}
    t.equal((await daemon.call('reconfigure', { serviceName: `churn-${i}`, servicePath: `/churn-${i}`, port, outboundHostname: '127.0.0.1', ...own })).status, 200)
    if ((await statusOf(daemon.proxyPort, `/churn-${i}`, false)) !== 200) unroutable++
    t.equal((await daemon.call('remove', { serviceName: `churn-${i}` })).status, 200)
  }
  t.equal(unroutable, 0, 'every added service routed once answered')
  running = false
  await Promise.all(clients)
  const reloads = daemon.applier.reloads - reloadsBefore
  t.comment(`${reloads} reloads; new connection per request: ${results.close.ok} ok; keep-alive: ${results.keepAlive.ok} ok`)
  t.ok(reloads >= 50, 'the changes really reloaded haproxy')
  t.same(results.close.failed, [], 'no failure with a new connection per request')
  t.same(results.keepAlive.failed, [], 'no failure on kept-alive connections')
  t.ok(results.close.ok > 100 && results.keepAlive.ok > 100, 'the clients ran throughout')
})
