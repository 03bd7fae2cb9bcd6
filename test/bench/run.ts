// Benchmarks, not part of `npm test`. Machines here are shared and noisy, so each figure is
// printed next to a baseline measured in the same run. Sizes shrink for a quick run:
//   npm run bench
//   BENCH_SIZES=10,1000 BENCH_CHECK_SIZES=1000 BENCH_BURST=200 BENCH_CHURN=20 BENCH_SAMPLES=5 npm run bench
// BENCH_SIZES: existing services for the latency figures (the last one also gives request
// latency and memory); BENCH_CHECK_SIZES: services for the `haproxy -c` figures; BENCH_BURST:
// concurrent reconfigures; BENCH_CHURN: reconfigure+remove pairs under load; BENCH_SAMPLES:
// reconfigures per size; BENCH_REQUESTS: requests per request-latency figure; BENCH_HOSTILE:
// hostile API connections for section 10.
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, type Socket } from 'node:net'
import { cpus, freemem, loadavg, totalmem, tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Candidate, validateConfig } from '../../src/haproxy/validate.js'
import { type RenderOptions, renderAll } from '../../src/render/index.js'
import { type RouteMapName, routeMapFiles } from '../../src/render/maps.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpGet, httpUpstream, until } from '../helpers/net.js'
import { mb, median, ms, procStatus, progress, puts, quantile, requestLatencies, routable, row, rows, spawnDaemon, startEnv, startFlags, timed, underLoad, vmRss } from './common.js'
import { againstOriginal } from './original.js'
import { requestsPerSecond } from './rps.js'
import { atScale } from './scale.js'
import { streamSection } from './stream.js'

const list = (value: string) => value.split(',').map(Number).filter((n) => n > 0)
const SIZES = list(process.env.BENCH_SIZES ?? '10,1000,10000')
const CHECK_SIZES = list(process.env.BENCH_CHECK_SIZES ?? '10000,33000')
const BURST = Number(process.env.BENCH_BURST ?? 1000)
const CHURN = Number(process.env.BENCH_CHURN ?? 100)
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 11)
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000)
const SCALE = Number(process.env.BENCH_SCALE ?? 10_000)
// BENCH_ONLY=1,6 runs only those sections (1 latency and request latency, 2 burst, 3 churn,
// 4 haproxy -c, 6 memory, 7 requests/s, 8 at BENCH_SCALE services, 9 the original side by side).
const only = new Set((process.env.BENCH_ONLY ?? '').split(',').filter((v) => v !== ''))
const runs = (section: number) => only.size === 0 || only.has(String(section))

// 1 and 5. Reconfigure → routable at each size next to `haproxy -c` + reload of the same
// configuration; request latency and memory at the largest size next to the smallest.
if (runs(1)) {
  const daemon = await startDaemon()
  const upstream = await httpUpstream('bench')
  // Probes are removed again; their backends stay in the worker until the next probe reloads.
  daemon.applier.catchUpDelayMs = 3_600_000
  let size = 0
  // Request latency at the largest size is measured against a second daemon holding the
  // smallest number of services, in alternating rounds, so both see the same machine load.
  const small = await startDaemon()
  await small.applier.apply(puts(0, SIZES[0] ?? 10, upstream.port))
  try {
    for (const target of SIZES) {
      progress(`growing to ${target} services`)
      if (target > size) await daemon.applier.apply(puts(size, target, upstream.port))
      size = target
      progress(`measuring at ${size} services`)
      const latencies: number[] = []
      for (let k = 0; k < SAMPLES; k++) {
        const name = `probe-${size}-${k}`
        latencies.push(
          await timed(async () => {
            const reply = await daemon.call('reconfigure', { serviceName: name, servicePath: `/${name}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' })
            if (reply.status !== 200) throw new Error(`reconfigure answered ${reply.status}: ${reply.body}`)
            if (!(await routable(daemon, `/${name}/x`))) throw new Error(`${name} never became routable`)
          }),
        )
        await daemon.call('remove', { serviceName: name })
      }
      // The floor: HAProxy alone checking and reloading the very configuration the daemon runs.
      // The probes went live through the Runtime API and their files follow once changes pause:
      // a reload through the loop first, so the file on disk is the one the floor reloads.
      await daemon.applier.reload()
      const floors: number[] = []
      const version = renderAll(daemon.live.services, daemon.settings).version
      for (let k = 0; k < Math.min(SAMPLES, 7); k++) {
        const check = await timed(() => daemon.port.validate(daemon.live.services))
        const reload = await timed(() => daemon.port.reload(version))
        floors.push(check + reload)
      }
      const floor = median(floors)
      // Those reloads went around the apply loop: one through it, so it knows the running worker.
      await daemon.applier.reload()
      row(`reconfigure → routable, ${size} services, median`, ms(median(latencies)), `haproxy -c + reload ${ms(floor)}`, median(latencies) / floor, '≤ 1.5×')
      row(`reconfigure → routable, ${size} services, p95`, ms(quantile(latencies, 0.95)), `haproxy -c + reload ${ms(quantile(floors, 0.95))}`, quantile(latencies, 0.95) / quantile(floors, 0.95), '≤ 1.5×')
      // A path change of a map-routed service: Runtime API only.
      const moved: number[] = []
      for (let k = 0; k < SAMPLES; k++) {
        const path = `/moved-${size}-${k}/`
        moved.push(
          await timed(async () => {
            await daemon.call('reconfigure', { serviceName: 'svc1', servicePath: path, port: String(upstream.port), outboundHostname: '127.0.0.1' })
            if (!(await routable(daemon, `${path}x`))) throw new Error('moved route never became routable')
          }),
        )
      }
      await daemon.call('reconfigure', { serviceName: 'svc1', servicePath: '/svc1/', port: String(upstream.port), outboundHostname: '127.0.0.1' })
      row(`path change (runtime, no reload), ${size} services, median`, ms(median(moved)), `haproxy -c + reload ${ms(floor)}`, median(moved) / floor, '—')
      if (target !== SIZES.at(-1) || SIZES.length < 2) continue
      const latency: number[] = []
      const baseline: number[] = []
      for (let round = 0; round < 10; round++) {
        latency.push(...(await requestLatencies(daemon.proxyPort, '/svc1/x', Math.ceil(REQUESTS / 10))))
        baseline.push(...(await requestLatencies(small.proxyPort, '/svc1/x', Math.ceil(REQUESTS / 10))))
      }
      row(`request latency, ${size} services, median`, ms(median(latency)), `${SIZES[0]} services ${ms(median(baseline))}`, median(latency) / median(baseline), '≤ 1.2×')
      row(`request latency, ${size} services, p95`, ms(quantile(latency, 0.95)), `${SIZES[0]} services ${ms(quantile(baseline, 0.95))}`, quantile(latency, 0.95) / quantile(baseline, 0.95), '≤ 1.2×')
      const info = await import('../../src/haproxy/runtime.js').then((m) => m.showInfo(daemon.haproxy.statsSocket))
      row(`haproxy worker RSS, ${size} services (for reference)`, mb(vmRss(info.pid)), `master ${mb(vmRss(daemon.haproxy.masterPid))}`, '—', '—')
    }
  } finally {
    await daemon.close()
    await small.close()
    await upstream.close()
  }
}

// 2. A burst of concurrent reconfigures of distinct services, next to one reload of the result.
if (runs(2)) {
  progress(`burst of ${BURST}`)
  const daemon = await startDaemon()
  const upstream = await httpUpstream('bench')
  try {
    const before = daemon.applier.reloads
    const start = performance.now()
    const replies = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        daemon.call('reconfigure', { serviceName: `b${i}`, servicePath: `/b${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' }),
      ),
    )
    const burstMs = performance.now() - start
    progress(`burst answered`)
    const reloads = daemon.applier.reloads - before
    const failed = replies.filter((r) => r.status !== 200).length
    let unroutable = 0
    for (let i = 0; i < BURST; i += 50) {
      const statuses = await Promise.all(Array.from({ length: Math.min(50, BURST - i) }, (_, j) => daemon.proxy(`/b${i + j}/x`).then((r) => r.status)))
      unroutable += statuses.filter((s) => s !== 200).length
    }
    progress(`burst checked`)
    const reloadMs = median([await timed(() => daemon.applier.reload()), await timed(() => daemon.applier.reload()), await timed(() => daemon.applier.reload())])
    row(`burst of ${BURST} reconfigures: wall time (${failed} failed, ${unroutable} not routable after)`, ms(burstMs), `one reload ${ms(reloadMs)}`, burstMs / reloadMs, '≤ 3 s')
    row(`burst of ${BURST} reconfigures: reloads`, String(reloads), `${BURST} requests`, '—', '≤ 10')
    // The issue's rows of 1 000 new services sent 200 at a time, as the size grows from BURST.
    for (let wave = 0; wave < 3; wave++) {
      const from = daemon.live.services.size
      const reloadsBefore = daemon.applier.reloads
      let waveFailed = 0
      const waveMs = await timed(async () => {
        for (let k = 0; k < 1000; k += 200) {
          const waveReplies = await Promise.all(
            Array.from({ length: 200 }, (_, i) =>
              daemon.call('reconfigure', { serviceName: `w${from + k + i}`, servicePath: `/w${from + k + i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' }),
            ),
          )
          waveFailed += waveReplies.filter((r) => r.status !== 200).length
        }
      })
      const waveReloads = daemon.applier.reloads - reloadsBefore
      const reloadAt = await timed(() => daemon.applier.reload())
      row(`1 000 new services, 200 at a time, at ${from} → ${from + 1000} services (${waveFailed} failed, ${waveReloads} reloads)`, ms(waveMs), `one reload at ${from + 1000} ${ms(reloadAt)}`, waveMs / reloadAt, '≤ 2 s')
    }
  } finally {
    await daemon.close()
    await upstream.close()
  }
}

// 3. Failed requests under load while CHURN services are added (reload) and removed (runtime).
if (runs(3)) {
  progress(`load during ${CHURN} reconfigures and removes`)
  const daemon = await startDaemon()
  const upstream = await httpUpstream('steady')
  const port = String(upstream.port)
  try {
    await daemon.call('reconfigure', { serviceName: 'steady', servicePath: '/steady', port, outboundHostname: '127.0.0.1' })
    const load = (during: () => Promise<void>) => underLoad(daemon, '/steady', during)
    const reloadsBefore = daemon.applier.reloads
    const start = performance.now()
    const churn = await load(async () => {
      for (let i = 0; i < CHURN; i++) {
        await daemon.call('reconfigure', { serviceName: `churn-${i}`, servicePath: `/churn-${i}`, port, outboundHostname: '127.0.0.1' })
        await daemon.call('remove', { serviceName: `churn-${i}` })
      }
    })
    const churnMs = performance.now() - start
    const reloads = daemon.applier.reloads - reloadsBefore
    const quiet = await load(() => new Promise((resolve) => setTimeout(resolve, Math.min(churnMs, 10_000))))
    for (const kind of ['close', 'keepAlive'] as const) {
      const label = kind === 'close' ? 'new connection per request' : 'keep-alive'
      row(
        `failed requests, ${label}, during ${CHURN} reconfigures + ${CHURN} removes (${reloads} reloads)`,
        `${churn[kind].failed} of ${churn[kind].ok + churn[kind].failed}`,
        `no changes: ${quiet[kind].failed} of ${quiet[kind].ok + quiet[kind].failed}`,
        '—',
        '0',
      )
    }
  } finally {
    await daemon.close()
    await upstream.close()
  }
}

// 4. `haproxy -c` of our configuration next to the same services one ACL per service.
if (runs(4)) {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-bench-'))
  const settings = loadSettings({ CONFIG_DIR: dir, SECRETS_DIR: dir, DEFAULT_PORTS: '18980' })
  try {
    for (const n of CHECK_SIZES) {
      progress(`haproxy -c at ${n} services`)
      const state = ServiceState.empty().with(puts(0, n, 8080))
      const variant = (options: RenderOptions): Candidate => (mapPaths) => {
        const rendered = renderAll(state, settings, { ...options, validation: { mapPaths } })
        return { config: rendered.config, mapFiles: routeMapFiles(dir, rendered.maps, mapPaths) }
      }
      const check = async (candidate: Candidate, runs: number) => {
        const times: number[] = []
        for (let i = 0; i < runs; i++) {
          const start = performance.now()
          const result = await validateConfig('haproxy', dir, candidate)
          if (!result.ok) throw new Error(result.error)
          times.push(performance.now() - start)
        }
        return Math.min(...times)
      }
      const oursMs = await check(variant({}), 3)
      const aclMs = await check(variant({ mapRouting: false }), n > 20_000 ? 1 : 2)
      // HAProxy's own floor for n backends: one map rule and bare backends with one server each
      // (reference/haproxy-facts.md B.1 "map routing"), no defaults, errorfiles or backend rules.
      const bare = (mapPaths: Record<RouteMapName, string>) => [
        'global',
        `    stats socket ${join(dir, 'bare.sock')} mode 600 level admin`,
        'defaults',
        '    mode http',
        '    timeout connect 5s',
        '    timeout client 20s',
        '    timeout server 20s',
        'frontend services',
        '    bind 127.0.0.1:18981',
        `    use_backend %[path,map_beg(${mapPaths.path})]`,
        ...Array.from({ length: n }, (_, i) => `backend svc${i}-be8080_0\n    server svc${i} 127.0.0.1:8080`),
        '',
      ].join('\n')
      const maps = renderAll(state, settings).maps
      const bareMs = await check((mapPaths) => ({ config: bare(mapPaths), mapFiles: routeMapFiles(dir, maps, mapPaths) }), 3)
      row(
        `haproxy -c, ${n} services (best run)`,
        ms(oursMs),
        `one ACL per service ${ms(aclMs)}; bare backends + one map rule ${ms(bareMs)}`,
        `${(oursMs / aclMs).toFixed(2)}× / ${(oursMs / bareMs).toFixed(2)}×`,
        n <= 10_000 ? '≤ 0.15 s' : '≤ 0.4 s',
      )
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// 6. The daemon's memory: the built daemon (dist/main.js, as `npm start` runs it) in a process
// of its own, fed the largest BENCH_SIZES number of services through its API 200 at a time,
// then 1 000 more at once; its peak RSS (VmHWM) next to the same process just started.
// BENCH_NODE_FLAGS replaces the flags of `npm start` (to compare V8 settings).
if (runs(6)) {
  const size = SIZES.at(-1) ?? 10_000
  progress(`daemon memory at ${size} services`)
  const flags = (process.env.BENCH_NODE_FLAGS ?? startFlags()).split(' ').filter((f) => f !== '')
  // The variables of `npm start` too, unless the bench's own environment sets them (to compare).
  const env = Object.fromEntries(Object.entries(startEnv()).filter(([name]) => process.env[name] === undefined))
  const { dir, apiPort, child } = await spawnDaemon(flags, env)
  const arenas = (env.MALLOC_ARENA_MAX ?? process.env.MALLOC_ARENA_MAX) === undefined ? '' : `MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX ?? process.env.MALLOC_ARENA_MAX} `
  const upstream = await httpUpstream('bench')
  const status = (field: 'VmRSS' | 'VmHWM') => procStatus(child.pid, field)
  const add = (from: number, count: number) =>
    Promise.all(
      Array.from({ length: count }, (_, i) =>
        httpGet(apiPort, `/v1/docker-flow-proxy/reconfigure?${new URLSearchParams({ serviceName: `m${from + i}`, servicePath: `/m${from + i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' })}`, {}, 120_000),
      ),
    )
  try {
    if (!(await until(async () => (await httpGet(apiPort, '/v1/docker-flow-proxy/ping')).status === 200, 30_000))) throw new Error('the daemon did not start')
    const started = status('VmRSS')
    const loadStart = performance.now()
    for (let from = 0; from < size; from += 200) await add(from, Math.min(200, size - from))
    const loadMs = performance.now() - loadStart
    const loaded = status('VmHWM')
    await add(size, 1000)
    const peak = status('VmHWM')
    row(`daemon RSS peak, loading ${size} services 200 at a time (${ms(loadMs)}), then 1 000 more at once [${arenas}node ${flags.join(' ')}]`, `${mb(peak)} (${mb(loaded)} before the 1 000)`, `just started ${mb(started)}`, peak / started, '≤ 150 MB')
    // V8 gives memory back once the process is idle for a while (its memory reducer).
    await new Promise((resolve) => setTimeout(resolve, 20_000))
    const settled = status('VmRSS')
    row(`daemon RSS, ${size + 1000} services, after 20 s idle`, mb(settled), `just started ${mb(started)}`, settled / started, '≤ 150 MB')
  } finally {
    child.kill('SIGTERM')
    await child
    await upstream.close()
    await rm(dir, { recursive: true, force: true })
  }
}

if (runs(7)) await requestsPerSecond(SCALE)
if (runs(8)) await atScale(SCALE, Number(process.env.BENCH_SCALE_SAMPLES ?? 20))
if (runs(9)) await againstOriginal()
// 11. Memory and speed by how clients send (issue 24): both patterns, both flag sets, one run.
if (runs(11)) await streamSection(Number(process.env.BENCH_STREAM_SIZE ?? SIZES.at(-1) ?? 10_000))
// 10. The API under hostile connections (issue 12): the median latency of a reconfigure (a new
// service each, so a real reload) with BENCH_HOSTILE connections open against the API — a third
// idle, a third sending headers one byte a second, a third sending a body one byte a second, each
// reopened as soon as the daemon closes it — next to the same daemon with none. The daemon runs
// as `npm start` does, in a process of its own, so the attackers do not share its event loop.
if (runs(10)) {
  const hostileCount = Number(process.env.BENCH_HOSTILE ?? 1000)
  progress(`API latency with ${hostileCount} hostile connections`)
  const { dir, apiPort, child } = await spawnDaemon(['--max-semi-space-size=1'])
  const upstream = await httpUpstream('bench')
  let stopped = false
  const sockets = new Set<Socket>()
  const openHostile = (kind: number) => {
    if (stopped) return
    const socket = createConnection({ host: '127.0.0.1', port: apiPort })
    sockets.add(socket)
    let drip: NodeJS.Timeout | undefined
    socket.on('error', () => undefined)
    socket.on('connect', () => {
      if (kind === 1) socket.write('GET /v1/docker-flow-proxy/ping HTTP/1.1\r\n')
      if (kind === 2) socket.write('POST /v1/docker-flow-proxy/reconfigure HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n')
      if (kind > 0) drip = setInterval(() => socket.writable && socket.write(kind === 1 ? 'X' : 'a'), 1000)
    })
    socket.on('close', () => {
      clearInterval(drip)
      sockets.delete(socket)
      reopened++
      setTimeout(() => openHostile(kind), 50)
    })
  }
  let reopened = 0
  let counter = 0
  const reconfigureMs = async () => {
    const name = `h${counter++}`
    return timed(() => httpGet(apiPort, `/v1/docker-flow-proxy/reconfigure?${new URLSearchParams({ serviceName: name, servicePath: `/${name}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' })}`, {}, 120_000))
  }
  try {
    if (!(await until(async () => (await httpGet(apiPort, '/v1/docker-flow-proxy/ping')).status === 200, 30_000))) throw new Error('the daemon did not start')
    await reconfigureMs() // warm-up
    const idle: number[] = []
    for (let i = 0; i < SAMPLES; i++) idle.push(await reconfigureMs())
    for (let i = 0; i < hostileCount; i++) openHostile(i % 3)
    await until(async () => sockets.size >= hostileCount * 0.95, 30_000)
    const open = sockets.size
    // Past the API's timeouts, so closing and reopening is part of the load (at most 40 s).
    await until(async () => reopened >= hostileCount / 2, 40_000)
    const attacked: number[] = []
    for (let i = 0; i < SAMPLES; i++) attacked.push(await reconfigureMs())
    const churn = reopened
    // The machine is shared: half the baseline before the attack, half after it, so drift in
    // the load of other processes weighs on both sides.
    stopped = true
    for (const socket of sockets) socket.destroy()
    for (let i = 0; i < SAMPLES; i++) idle.push(await reconfigureMs())
    row(
      `reconfigure latency (median of ${SAMPLES}) with ${hostileCount} hostile API connections (${open} open at the start; ${churn} closed by the daemon and reopened meanwhile)`,
      ms(median(attacked)),
      `no hostile connection ${ms(median(idle))} (before and after)`,
      median(attacked) / median(idle),
      '≤ 1.5×',
    )
  } finally {
    stopped = true
    for (const socket of sockets) socket.destroy()
    child.kill('SIGTERM')
    await child
    await upstream.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const cpu = cpus()[0]?.model ?? 'unknown CPU'
console.log(`\nMachine: ${cpus().length} CPUs (${cpu}), ${mb(totalmem())} memory (${mb(freemem())} free), load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}, HAProxy from PATH, Node ${process.version}\n`)
console.log('| figure | value | baseline (same run) | ratio | goal |')
console.log('|---|---:|---|---:|---|')
for (const r of rows) console.log(`| ${r.figure} | ${r.value} | ${r.baseline} | ${r.ratio} | ${r.goal} |`)
