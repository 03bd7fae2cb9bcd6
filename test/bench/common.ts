// Shared by the benchmark sections (test/bench/run.ts): the table, statistics and helpers.
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp } from 'node:fs/promises'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { parseService } from '../../src/service/params.js'
import type { Change } from '../../src/state/registry.js'
import type { TestDaemon } from '../helpers/daemon.js'
import { freePort, statusOf } from '../helpers/net.js'

export interface Row {
  figure: string
  value: string
  baseline: string
  ratio: string
  goal: string
}
export const rows: Row[] = []
export const progress = (message: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`)
export const ms = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`)
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`
export const row = (figure: string, value: string, baseline: string, ratio: number | string, goal: string) => {
  const r = { figure, value, baseline, ratio: typeof ratio === 'number' ? `${ratio < 0.1 ? ratio.toPrecision(2) : ratio.toFixed(2)}×` : ratio, goal }
  rows.push(r)
  console.log(`${figure}: ${value} | baseline ${baseline} | ${r.ratio} | goal ${goal}`)
}
export const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}
export const median = (values: number[]) => quantile(values, 0.5)
export const timed = async (fn: () => Promise<unknown>) => {
  const start = performance.now()
  await fn()
  return performance.now() - start
}

export const service = (name: string, path: string, port: number) =>
  parseService({ serviceName: name, servicePath: path, port: String(port), outboundHostname: '127.0.0.1' }, { separator: ',' })
export const puts = (from: number, to: number, port: number, prefix = 'svc'): Change[] =>
  Array.from({ length: to - from }, (_, i) => ({ kind: 'put' as const, service: service(`${prefix}${from + i}`, `/${prefix}${from + i}/`, port) }))

/** Polls a route through the proxy until it answers 200 (at most 30 s). */
export async function routable(daemon: TestDaemon, path: string): Promise<boolean> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    if ((await daemon.proxy(path).catch(() => undefined))?.status === 200) return true
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  return false
}

/** Sequential keep-alive GETs through the proxy; latency of each, in ms. */
export async function requestLatencies(port: number, path: string, count: number): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  const latencies: number[] = []
  try {
    for (let i = 0; i < count; i++) {
      const start = performance.now()
      const status = await statusOf(port, path, agent)
      if (status !== 200) throw new Error(`status ${status}`)
      latencies.push(performance.now() - start)
    }
  } finally {
    agent.destroy()
  }
  return latencies
}

export const procStatus = (pid: number | undefined, field: 'VmRSS' | 'VmHWM') => {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024
  } catch {
    return NaN
  }
}
export const vmRss = (pid: number | undefined) => procStatus(pid, 'VmRSS')

export interface WrkResult {
  requestsPerSecond: number
  p99Ms: number
  errors: number
  requests: number
}

const toMs = (text: string) => {
  const [, value, unit] = /^([\d.]+)(us|ms|s)$/.exec(text) ?? []
  return Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1)
}

/** `wrk` keep-alive load (2 threads, `connections`) on a URL for `seconds`. */
export async function wrk(url: string, seconds: number, connections = 40): Promise<WrkResult> {
  const { stdout } = await execa('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '--latency', url])
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
  return {
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? 'NaN'),
    errors: non2xx + (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1]),
  }
}

/** The node flags of `npm start` (package.json), which the image uses too. */
const startScript = (): string => {
  const pkg: { scripts: { start: string } } = JSON.parse(readFileSync('package.json', 'utf8'))
  return pkg.scripts.start
}

/** The node flags of `npm start`. */
export const startFlags = () => startScript().replace(/^(\w+=\S* )*node /, '').replace(/ ?dist\/main\.js.*$/, '')

/** The variables `npm start` sets before `node` (MALLOC_ARENA_MAX). */
export const startEnv = (): Record<string, string> =>
  Object.fromEntries([...(/^((\w+=\S* )*)node /.exec(startScript())?.[1] ?? '').matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1] ?? '', m[2] ?? '']))

/** Clients on one route (2 with a new connection per request, 2 keep-alive) while `during` runs. */
export async function underLoad(daemon: TestDaemon, path: string, during: () => Promise<void>) {
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 })
  const result = { close: { ok: 0, failed: 0 }, keepAlive: { ok: 0, failed: 0 } }
  let running = true
  const loop = async (kind: 'close' | 'keepAlive', agent: Agent | false) => {
    for (let i = 0; i < 1_000_000 && running; i++) {
      const status = await statusOf(daemon.proxyPort, path, agent).catch(() => 0)
      if (status === 200) result[kind].ok++
      else result[kind].failed++
    }
  }
  const clients = [loop('close', false), loop('close', false), loop('keepAlive', keepAlive), loop('keepAlive', keepAlive)]
  await during()
  running = false
  await Promise.all(clients)
  keepAlive.destroy()
  return result
}

/** A new CONFIG_DIR for a daemon, with the folders it watches made (as in a container: a missing
 * one is watched through its parent, here CONFIG_DIR, which every change rewrites). */
export async function benchFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-bench-'))
  for (const folder of ['secrets', 'certs-folder']) await mkdir(join(dir, folder))
  return dir
}

/**
 * The built daemon in a process of its own, as `npm start` runs it, on `dir` and the given
 * ports (`flags`: node's options). BENCH_DAEMON_OUT: a file its log is appended to.
 */
export function spawnIn(dir: string, apiPort: number, proxyPort: number, flags: string[], env: Record<string, string> = {}) {
  return execa('node', [...flags, 'dist/main.js'], {
    reject: false,
    ...(process.env.BENCH_DAEMON_OUT ? { stdin: 'ignore', stderr: 'ignore', stdout: { file: process.env.BENCH_DAEMON_OUT, append: true } } : { stdio: 'ignore' }),
    env: {
      CONFIG_DIR: dir,
      SECRETS_DIR: join(dir, 'secrets'),
      CERTS_DIR: join(dir, 'certs-folder'),
      DEFAULT_PORTS: String(proxyPort),
      RESOLVERS: 'nameserver dns 127.0.0.1:53',
      IP: '127.0.0.1',
      PORT: String(apiPort),
      LOG_LEVEL: 'warn',
      RES_OPTIONS: 'timeout:1 attempts:1',
      ...env,
    },
  })
}

/** `spawnIn` on a new folder and free ports. The caller stops it and removes `dir`. */
export async function spawnDaemon(flags: string[], env: Record<string, string> = {}) {
  const dir = await benchFolder()
  const apiPort = await freePort()
  const child = spawnIn(dir, apiPort, await freePort(), flags, env)
  return { dir, apiPort, child }
}
