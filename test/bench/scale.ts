// At BENCH_SCALE services (10 000): a new plain service, bursts of new services, churn under
// load and the status page, each next to its baseline from the same run.
import { chromium } from 'playwright-core'
import { renderAll } from '../../src/render/index.js'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'
import { median, ms, progress, puts, quantile, routable, row, timed, underLoad } from './common.js'

const reconfigure = (daemon: TestDaemon, name: string, port: number) =>
  daemon.call('reconfigure', { serviceName: name, servicePath: `/${name}/`, port: String(port), outboundHostname: '127.0.0.1' })

/** Sends `count` new services `wave` at a time; wall time until the last answer, and how many are not routable after. */
async function burst(daemon: TestDaemon, prefix: string, count: number, wave: number, port: number) {
  const reloads = daemon.applier.reloads
  let failed = 0
  const wall = await timed(async () => {
    for (let from = 0; from < count; from += wave) {
      const replies = await Promise.all(Array.from({ length: Math.min(wave, count - from) }, (_, i) => reconfigure(daemon, `${prefix}${from + i}`, port)))
      failed += replies.filter((r) => r.status !== 200).length
    }
  })
  const reloadsDuring = daemon.applier.reloads - reloads
  let unroutable = 0
  for (let i = 0; i < count; i += 50) {
    const statuses = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => daemon.proxy(`/${prefix}${i + j}/x`).then((r) => r.status)))
    unroutable += statuses.filter((s) => s !== 200).length
  }
  return { wall, failed, unroutable, reloads: reloadsDuring }
}

/** Time from opening the status page until its first page of services is drawn with the total. */
async function statusPageReady(daemon: TestDaemon, executablePath: string): Promise<number> {
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] })
  try {
    const page = await browser.newPage()
    const total = daemon.live.services.size
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      times.push(
        await timed(async () => {
          await page.goto(`http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/status`)
          await page.locator('#count').filter({ hasText: `${total} of ${total} services` }).waitFor({ timeout: 30_000 })
          await page.locator('[data-service]').first().waitFor({ timeout: 30_000 })
        }),
      )
    }
    return median(times)
  } finally {
    await browser.close()
  }
}

export async function atScale(size: number, samples: number): Promise<void> {
  const daemon = await startDaemon()
  const small = await startDaemon()
  const upstream = await httpUpstream('scale')
  const port = upstream.port
  try {
    progress(`scale: growing to ${size} services`)
    await daemon.applier.apply(puts(0, size, port))
    await small.applier.apply(puts(0, 10, port))
    // The floor: HAProxy alone checking and reloading the very configuration the daemon runs.
    const floors: number[] = []
    const version = renderAll(daemon.live.services, daemon.settings).version
    for (let k = 0; k < 5; k++) {
      const check = await timed(() => daemon.port.validate(daemon.live.services))
      const reload = await timed(() => daemon.port.reload(version))
      floors.push(check + reload)
    }
    const floor = median(floors)
    // Those reloads went around the apply loop: one through it, so it knows the running worker.
    await daemon.applier.reload()

    progress(`scale: one new service at a time, ${samples} times`)
    const latencies: number[] = []
    let reloadsOnRequests = 0
    const reloadsBefore = daemon.applier.reloads
    for (let k = 0; k < samples; k++) {
      const name = `one${k}`
      latencies.push(
        await timed(async () => {
          const before = daemon.applier.reloads
          const reply = await reconfigure(daemon, name, port)
          if (reply.status !== 200) throw new Error(`reconfigure answered ${reply.status}: ${reply.body}`)
          reloadsOnRequests += daemon.applier.reloads - before
          if (!(await routable(daemon, `/${name}/x`))) throw new Error(`${name} never became routable`)
        }),
      )
    }
    const catchUps = daemon.applier.reloads - reloadsBefore - reloadsOnRequests
    row(`one new service at ${size} services → answered and routable (${samples} in a row), median`, ms(median(latencies)), `haproxy -c + reload ${ms(floor)}`, median(latencies) / floor, '≤ 100 ms')
    progress(`scale: the ${samples} latencies, sorted: ${[...latencies].sort((a, b) => a - b).map((v) => v.toFixed(0)).join(' ')} ms`)
    row(`same, p95 (reloads while a request waited: ${reloadsOnRequests}; catch-up reloads between: ${catchUps})`, ms(quantile(latencies, 0.95)), `haproxy -c + reload ${ms(quantile(floors, 0.95))}`, quantile(latencies, 0.95) / quantile(floors, 0.95), '≤ 250 ms, 0 reloads')

    progress('scale: a change that needs a reload (a backend line of its own), 5 times')
    const reloading: number[] = []
    for (let k = 0; k < 5; k++) {
      const name = `timed${k}`
      const before = daemon.applier.reloads
      reloading.push(
        await timed(async () => {
          const reply = await daemon.call('reconfigure', { serviceName: name, servicePath: `/${name}/`, port: String(port), outboundHostname: '127.0.0.1', timeoutServer: '30' })
          if (reply.status !== 200) throw new Error(`reconfigure answered ${reply.status}: ${reply.body}`)
          if (!(await routable(daemon, `/${name}/x`))) throw new Error(`${name} never became routable`)
        }),
      )
      if (daemon.applier.reloads === before) throw new Error('the change did not reload')
    }
    row(`a new service with a backend line of its own (timeoutServer) at ${daemon.live.services.size} services → answered and routable, a reload, median of 5`, ms(median(reloading)), `haproxy -c + reload of the same file ${ms(floor)}`, median(reloading) / floor, '—')

    for (const [wave, label] of [[1000, '1 000 at once'], [200, '200 at a time']] as const) {
      progress(`scale: 1 000 new services, ${label}`)
      await daemon.applier.reload() // fresh spares, as after any catch-up
      const result = await burst(daemon, `w${wave}-`, 1000, wave, port)
      row(
        `1 000 new services at ${daemon.live.services.size - 1000} existing, ${label}: all answered (${result.failed} failed, ${result.unroutable} not routable after, ${result.reloads} reloads)`,
        ms(result.wall),
        `haproxy -c + reload ${ms(floor)}`,
        result.wall / floor,
        '≤ 2 s',
      )
    }

    progress('scale: 100 adds and 100 removes under load')
    await daemon.applier.reload()
    const reloads = daemon.applier.reloads
    const churn = await underLoad(daemon, '/svc1/x', async () => {
      for (let i = 0; i < 100; i++) {
        await reconfigure(daemon, `churn${i}`, port)
        await daemon.call('remove', { serviceName: `churn${i}` })
      }
    })
    const quiet = await underLoad(daemon, '/svc1/x', () => new Promise((resolve) => setTimeout(resolve, 3000)))
    for (const kind of ['close', 'keepAlive'] as const) {
      row(
        `failed requests at ${daemon.live.services.size} services, ${kind === 'close' ? 'new connection per request' : 'keep-alive'}, during 100 adds + 100 removes (${daemon.applier.reloads - reloads} reloads)`,
        `${churn[kind].failed} of ${churn[kind].ok + churn[kind].failed}`,
        `no changes: ${quiet[kind].failed} of ${quiet[kind].ok + quiet[kind].failed}`,
        '—',
        '0',
      )
    }

    progress('scale: the status page in Chromium')
    // Measured after the churn's catch-up reload (done now), not while it loads 12 000 backends.
    await daemon.applier.reload()
    const executablePath = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium'
    const big = await statusPageReady(daemon, executablePath)
    const few = await statusPageReady(small, executablePath)
    row(`status page at ${daemon.live.services.size} services: open → first page drawn (headless Chromium, median of 3)`, ms(big), `10 services ${ms(few)}`, big / few, '≤ 1 s')
  } finally {
    await daemon.close()
    await small.close()
    await upstream.close()
  }
}
