import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'

const daemon = await startDaemon()
const upstream = await httpUpstream('burst')
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
})
// No catch-up reload in the middle of these counts (map-routing.test.ts tests it).
daemon.applier.catchUpDelayMs = 3_600_000

const reloadsMetric = async () => {
  const metrics = (await daemon.api('/metrics')).body
  return Number(/^dfp_reloads_total (\d+)$/m.exec(metrics)?.[1])
}

t.test('50 concurrent reconfigures of distinct services coalesce into a few reloads, or none', async (t) => {
  const before = await reloadsMetric()
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      daemon.call('reconfigure', { serviceName: `svc-${i}`, servicePath: `/svc-${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' }),
    ),
  )
  t.same(
    replies.map((r) => r.status),
    Array(50).fill(200),
    'every request answered 200',
  )
  // Each request was answered only once its change was live: all routes work right away.
  const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => daemon.proxy(`/svc-${i}/x`).then((r) => r.status)))
  t.same(statuses, Array(50).fill(200), 'all 50 routable')
  const reloads = (await reloadsMetric()) - before
  t.comment(`50 concurrent reconfigures took ${reloads} reloads`)
  // Plain services go into spare backends (src/render/spares.ts): no reload is needed at all.
  t.ok(reloads <= 10, `reloads (${reloads}) far below 50`)
  t.equal(Object.keys((await daemon.call('config', { type: 'json' })).json).length, 50)
})

t.test('50 concurrent removes coalesce too', async (t) => {
  const before = await reloadsMetric()
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => daemon.call('remove', { serviceName: `svc-${i}` })))
  t.same(
    replies.map((r) => r.status),
    Array(50).fill(200),
  )
  t.same((await daemon.call('config', { type: 'json' })).json, {})
  t.equal((await daemon.proxy('/svc-7/x')).status, 503)
  t.equal((await reloadsMetric()) - before, 0, 'map-routed services are removed through the Runtime API, without reload')
})

t.test('1 000 concurrent reconfigures end with every service routable, in a few reloads', async (t) => {
  const before = await reloadsMetric()
  const replies = await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      daemon.call('reconfigure', { serviceName: `many-${i}`, servicePath: `/many-${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' }),
    ),
  )
  t.equal(replies.filter((r) => r.status !== 200).length, 0, 'every request answered 200')
  let routable = 0
  for (let i = 0; i < 1000; i += 50) {
    const statuses = await Promise.all(Array.from({ length: 50 }, (_, j) => daemon.proxy(`/many-${i + j}/x`).then((r) => r.status)))
    routable += statuses.filter((s) => s === 200).length
  }
  t.equal(routable, 1000, 'all 1 000 routable once answered')
  const reloads = (await reloadsMetric()) - before
  t.comment(`1 000 concurrent reconfigures took ${reloads} reloads`)
  t.ok(reloads >= 1 && reloads <= 10, `reloads (${reloads}) at most 10`)
})
