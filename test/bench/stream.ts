// Section 11 (issue 24): the daemon as a process of its own (dist/main.js, as `npm start` runs
// it, and as plain `node dist/main.js`), fed through its API in each way clients send: waves of
// 200 awaited one after the other (the bench's old pattern), and `clients` clients each sending
// its next reconfigure as soon as the last is answered (a listener catching up, CI pipelines).
// For each: the peak RSS while loading `size` services and 1 000 more, the time of those 1 000,
// of 1 000 removals at once, and of a cold restart to serving every service. The baseline: the
// same clients against a trivial HTTP server in this process (what the client side costs here).
import { rm, writeFile } from 'node:fs/promises'
import { Agent, createServer } from 'node:http'
import { join } from 'node:path'
import { freePort, httpGet, httpUpstream, statusOf, until } from '../helpers/net.js'
import { benchFolder, mb, ms, procStatus, progress, row, spawnIn, startEnv, startFlags } from './common.js'

export type Pattern = { kind: 'waves'; wave: number } | { kind: 'stream'; clients: number }
const describe = (p: Pattern) => (p.kind === 'waves' ? `waves of ${p.wave}` : `${p.clients} clients streaming`)

const reconfigurePath = (i: number, upstreamPort: number) =>
  `/v1/docker-flow-proxy/reconfigure?${new URLSearchParams({ serviceName: `m${i}`, servicePath: `/m${i}/`, port: String(upstreamPort), outboundHostname: '127.0.0.1' })}`

/** Sends `count` requests (`path(i)` for i from `from`) in the pattern; resolves with the failures. */
export async function send(port: number, from: number, count: number, pattern: Pattern, path: (i: number) => string, agent?: Agent): Promise<number> {
  let failed = 0
  // Without an agent a new connection per request; with one, its kept-alive connections.
  const one = async (i: number) => {
    const status = agent ? await statusOf(port, path(i), agent, 120_000).catch(() => 0) : (await httpGet(port, path(i), {}, 120_000).catch(() => undefined))?.status
    if (status !== 200) failed++
  }
  if (pattern.kind === 'waves') {
    for (let at = from; at < from + count; at += pattern.wave) await Promise.all(Array.from({ length: Math.min(pattern.wave, from + count - at) }, (_, k) => one(at + k)))
    return failed
  }
  let next = from
  const client = async () => {
    while (next < from + count) await one(next++)
  }
  await Promise.all(Array.from({ length: Math.min(pattern.clients, count) }, client))
  return failed
}

/** The same clients against an HTTP server that answers at once, in this process: what sending costs. */
export async function clientFloor(pattern: Pattern, agent?: Agent): Promise<number> {
  const server = createServer((_, res) => res.end('{"Status":"OK","Message":"","ServiceName":"m"}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  try {
    const start = performance.now()
    await send(port, 0, 1000, pattern, (i) => reconfigurePath(i, 80), agent)
    return performance.now() - start
  } finally {
    server.close()
  }
}

export interface StreamResult {
  startedRss: number
  loadMs: number
  thousandMs: number
  /** 500 removals at once, each on a new connection. */
  removalsMs: number
  /** 500 more by 50 clients on kept-alive connections. */
  removalsKeptAliveMs: number
  peak: number
  failed: number
  settledRss: number
  /** Spawn → every sampled service routable again (only with `restart`). */
  restartMs?: number
  /** With `preload`: spawn → the saved services routable. */
  startMs?: number
}

const routable = async (proxyPort: number, name: string) => (await httpGet(proxyPort, `/${name}/x`, {}, 2000).catch(() => undefined))?.status === 200

/** A saved state of `size` plain services (the state file's snapshot format), as a daemon leaves it. */
async function writeSavedState(dir: string, size: number, upstreamPort: number): Promise<void> {
  const services = Array.from({ length: size }, (_, i) => ({ source: 'api', params: { serviceName: `m${i}`, servicePath: `/m${i}/`, port: String(upstreamPort), outboundHostname: '127.0.0.1' } }))
  await writeFile(join(dir, 'dfp-state.json'), `${JSON.stringify({ format: 2, generation: 1, services, certificates: [] })}\n`, { mode: 0o600 })
  await writeFile(join(dir, 'dfp-state.log'), '{"generation":1}\n', { mode: 0o600 })
}

/**
 * One daemon, loaded with `size` services in the pattern (with `preload`: started cold on a saved
 * state of them instead, the time to serving them being `restartMs`); then 1 000 more, 1 000
 * removals at once, its RSS after `settleMs` idle, and with `restart` a stop and a cold start on
 * the same folder.
 */
export async function streamRun(size: number, pattern: Pattern, flags: string[], env: Record<string, string>, { settleMs = 20_000, restart = false, preload = false } = {}): Promise<StreamResult> {
  const dir = await benchFolder()
  const [apiPort, proxyPort] = [await freePort(), await freePort()]
  const upstream = await httpUpstream('bench')
  if (preload) await writeSavedState(dir, size, upstream.port)
  const sample = Array.from({ length: 20 }, (_, k) => `m${Math.floor((k * size) / 20)}`).concat(`m${size - 1}`)
  const serving = () => until(async () => (await Promise.all(sample.map((name) => routable(proxyPort, name)))).every(Boolean), 180_000)
  let start = performance.now()
  let child = spawnIn(dir, apiPort, proxyPort, flags, env)
  const up = () => until(async () => (await httpGet(apiPort, '/v1/docker-flow-proxy/ping')).status === 200, 120_000)
  const status = (field: 'VmRSS' | 'VmHWM') => procStatus(child.pid, field)
  const path = (i: number) => reconfigurePath(i, upstream.port)
  try {
    let restartMs: number | undefined
    let startMs: number | undefined
    if (preload) {
      if (!(await serving())) throw new Error('not serving the saved state')
      startMs = performance.now() - start
    }
    if (!(await up())) throw new Error('the daemon did not start')
    const startedRss = status('VmRSS')
    start = performance.now()
    let failed = preload ? 0 : await send(apiPort, 0, size, pattern, path)
    const loadMs = performance.now() - start
    // The catch-up reload of the load done (fresh spares), as section 8 does before its bursts.
    await httpGet(apiPort, '/v1/docker-flow-proxy/reload', {}, 120_000)
    start = performance.now()
    failed += await send(apiPort, size, 1000, pattern, path)
    const thousandMs = performance.now() - start
    for (const i of [size, size + 500, size + 999]) if (!(await routable(proxyPort, `m${i}`))) failed++
    start = performance.now()
    failed += await send(apiPort, size, 500, { kind: 'waves', wave: 500 }, (i) => `/v1/docker-flow-proxy/remove?serviceName=m${i}`)
    const removalsMs = performance.now() - start
    // The other 500 by 50 clients on kept-alive connections: what the client side costs less.
    const keptAlive = new Agent({ keepAlive: true, maxSockets: 50 })
    start = performance.now()
    failed += await send(apiPort, size + 500, 500, { kind: 'stream', clients: 50 }, (i) => `/v1/docker-flow-proxy/remove?serviceName=m${i}`, keptAlive)
    const removalsKeptAliveMs = performance.now() - start
    keptAlive.destroy()
    if (await routable(proxyPort, `m${size + 1}`)) failed++
    // The catch-up reload and the file writes of the burst happen once changes pause: the peak
    // is read after them.
    await new Promise((resolve) => setTimeout(resolve, settleMs))
    const settledRss = status('VmRSS')
    const peak = status('VmHWM')
    if (restart) {
      child.kill('SIGTERM')
      await child
      start = performance.now()
      child = spawnIn(dir, apiPort, proxyPort, flags, env)
      if (!(await serving())) throw new Error('not serving after the restart')
      restartMs = performance.now() - start
    }
    return { startedRss, loadMs, thousandMs, removalsMs, removalsKeptAliveMs, peak, failed, settledRss, restartMs, startMs }
  } finally {
    child.kill('SIGTERM')
    await child
    await upstream.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** Section 11: both patterns (and 1 000 clients) with the flags of `npm start` and without, one run. */
export async function streamSection(size: number): Promise<void> {
  const start = { flags: startFlags().split(' ').filter((f) => f !== ''), env: startEnv() }
  const plain = { flags: [] as string[], env: {} as Record<string, string> }
  // BENCH_STREAM_QUICK=1: the stream of 200 clients alone (for the largest sizes, where each load takes minutes).
  const quick = process.env.BENCH_STREAM_QUICK === '1'
  // BENCH_STREAM_PRELOAD=1: each daemon starts cold on a saved state of `size` services instead of being fed them.
  const preload = process.env.BENCH_STREAM_PRELOAD === '1'
  const patterns: Pattern[] = quick ? [{ kind: 'stream', clients: 200 }] : [{ kind: 'waves', wave: 200 }, { kind: 'stream', clients: 200 }, { kind: 'stream', clients: 1000 }]
  const floors = new Map<Pattern, number>()
  for (const pattern of patterns) floors.set(pattern, await clientFloor(pattern))
  const removalFloor = await clientFloor({ kind: 'waves', wave: 500 })
  const keptAlive = new Agent({ keepAlive: true, maxSockets: 50 })
  const keptAliveFloor = await clientFloor({ kind: 'stream', clients: 50 }, keptAlive)
  keptAlive.destroy()
  for (const [label, how] of [['npm start', start], ['plain node dist/main.js', plain]] as const) {
    for (const pattern of patterns) {
      progress(`stream: ${size} services, ${describe(pattern)}, ${label}`)
      const first = (how === start || preload) && pattern === patterns[quick ? 0 : 1]
      const r = await streamRun(size, pattern, how.flags, how.env, { settleMs: first ? 20_000 : 10_000, restart: first, preload })
      const goal = size > 10_000 ? '≤ 300 MB' : how === start ? '≤ 150 MB' : '≤ 200 MB'
      const tag = `${describe(pattern)}, ${label}`
      const loaded = preload ? `started cold on them in ${ms(r.startMs ?? NaN)}` : `load ${ms(r.loadMs)}`
      row(`daemon RSS peak at ${size} services + 1 000 more + 1 000 removed, ${tag} (${loaded}, ${r.failed} failed)`, mb(r.peak), `${preload ? 'serving them, just after the start' : 'just started'} ${mb(r.startedRss)}`, r.peak / r.startedRss, goal)
      row(`1 000 new services at ${size}, ${tag}`, ms(r.thousandMs), `same clients, trivial server ${ms(floors.get(pattern) ?? NaN)}`, r.thousandMs / (floors.get(pattern) ?? NaN), '≤ 1 s')
      if (first && preload) row(`cold start on a saved state of ${size} services another parser wrote (each parsed), ${tag}`, ms(r.startMs ?? NaN), '—', '—', '—')
      if (first) {
        const removals = r.removalsMs + r.removalsKeptAliveMs
        row(`1 000 removals at ${size + 1000} services, ${tag}: 500 at once on new connections ${ms(r.removalsMs)} + 500 by 50 kept-alive clients ${ms(r.removalsKeptAliveMs)}`, ms(removals), `the same requests to a trivial server: 1 000 in two waves of 500 ${ms(removalFloor)} (per 500: ${ms(removalFloor / 2)}); 1 000 kept-alive ${ms(keptAliveFloor)} (per 500: ${ms(keptAliveFloor / 2)})`, `${(r.removalsMs / (removalFloor / 2)).toFixed(2)}× / ${(r.removalsKeptAliveMs / (keptAliveFloor / 2)).toFixed(2)}×`, size > 10_000 ? '≤ 1 s' : 'keep (0.55 s)')
        row(`daemon RSS after 20 s idle, ${size} services, ${tag}`, mb(r.settledRss), `just started ${mb(r.startedRss)}`, r.settledRss / r.startedRss, goal)
        row(`cold restart to serving ${size} services (SIGTERM, start on its own saved state, 21 sampled routes answer), ${tag}`, ms(r.restartMs ?? NaN), '—', '—', size > 10_000 ? '≤ 10 s' : 'keep (3.6 s)')
      }
    }
  }
}
