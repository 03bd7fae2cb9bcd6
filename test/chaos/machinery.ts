// The machinery the chaos soak (test/chaos/soak.ts) breaks: a seeded random source, an
// HAPROXY_BIN wrapper whose `haproxy -c` can be made slow or killed, and the daemon as its own
// process on fixed ports, killed with -9 and started again.
import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { type DaemonProcess, daemonProcess } from '../helpers/faults.js'

/** mulberry32: the same seed gives the same run of numbers in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** An HAPROXY_BIN that runs the real haproxy; `haproxy -c` first sleeps `slow(s)` seconds, or is killed (-9) `kill(n)` times. */
export async function chaosHaproxy() {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-chaos-haproxy-'))
  const real = execFileSync('sh', ['-c', 'command -v haproxy']).toString().trim()
  const bin = join(dir, 'haproxy')
  const slowFile = join(dir, 'slow')
  const killFile = join(dir, 'kill')
  await writeFile(
    bin,
    [
      '#!/bin/sh',
      'if [ "$1" = "-c" ]; then',
      `  if [ -e "${slowFile}" ]; then sleep "$(cat "${slowFile}")"; fi`,
      `  if [ -e "${killFile}" ]; then n=$(cat "${killFile}"); if [ "$n" -gt 1 ]; then echo $((n - 1)) > "${killFile}"; else rm -f "${killFile}"; fi; kill -9 $$; fi`,
      'fi',
      `exec ${real} "$@"`,
      '',
    ].join('\n'),
  )
  await chmod(bin, 0o755)
  return {
    bin,
    slow: (seconds: number) => writeFile(slowFile, String(seconds)),
    kill: (times: number) => writeFile(killFile, String(times)),
    normal: async () => {
      await rm(slowFile, { force: true })
      await rm(killFile, { force: true })
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The pid of the haproxy master the daemon of `configDir` runs, and of its worker. */
export async function haproxyPids(configDir: string): Promise<{ master?: number; worker?: number }> {
  const master = Number((await readFile(join(configDir, 'haproxy-master.pid'), 'utf8').catch(() => '')).trim()) || undefined
  if (!master) return {}
  let worker: number | undefined
  try {
    worker = Number(execFileSync('pgrep', ['-P', String(master), 'haproxy']).toString().trim().split('\n')[0]) || undefined
  } catch {
    worker = undefined
  }
  return { master, worker }
}

/** What a client saw: the status, or `lost` (sent, no answer) or `unreachable` (never sent: the API was down). */
export type Answer = { status: number; body: string } | { status: 'lost' | 'unreachable'; body: string }

/** One request to the API (`GET` with a query, or `PUT` with a body), bounded. */
export function apiRequest(port: number, path: string, { method = 'GET', body, timeoutMs = 60_000 }: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: timeoutMs, headers: body ? { 'content-type': 'application/x-pem-file' } : {} }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', (err) => resolve({ status: 'lost', body: err.message }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code === 'ECONNREFUSED' ? 'unreachable' : 'lost', body: err.message }))
    req.end(body)
  })
}

/** The daemon as a process on fixed ports, started again after each kill -9. */
export class RestartingDaemon {
  current?: DaemonProcess
  restarts = 0

  constructor(
    readonly configDir: string,
    private readonly env: Record<string, string>,
    readonly ports: { apiPort: number; proxyPort: number },
  ) {}

  async start(): Promise<void> {
    this.current = await daemonProcess(this.configDir, this.env, this.ports)
  }

  /** kill -9, then a new daemon on the same folder and ports; resolves once its API answers. */
  async killAndRestart(): Promise<void> {
    await this.current?.kill9()
    this.restarts++
    await this.start()
  }

  async stop(): Promise<void> {
    await this.current?.stop()
  }
}
