// Requests per second through dfp's configuration with 1 and with 10 000 services next to a bare
// HAProxy (one frontend, one backend) in the same run, alternated and repeated. The upstream is
// an HAProxy answering by itself, so the proxy under test, not the upstream, is what is measured.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, until, statusOf } from '../helpers/net.js'
import { median, progress, puts, row, wrk, type WrkResult } from './common.js'

const ROUNDS = Number(process.env.BENCH_RPS_ROUNDS ?? 5)
const SECONDS = Number(process.env.BENCH_RPS_SECONDS ?? 5)

const defaults = ['defaults', '    mode http', '    timeout connect 5s', '    timeout client 20s', '    timeout server 20s']

// (Wrapped: an async function returning the child's promise would wait for the child to end.)
async function haproxyWith(dir: string, name: string, lines: string[]): Promise<{ child: ResultPromise }> {
  const path = join(dir, `${name}.cfg`)
  await writeFile(path, `${lines.join('\n')}\n`)
  return { child: execa('haproxy', ['-db', '-f', path], { reject: false, stdio: 'ignore' }) }
}

export async function requestsPerSecond(largest: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-bench-rps-'))
  const upstreamPort = await freePort()
  const barePort = await freePort()
  const retryPort = await freePort()
  const processes: ResultPromise[] = []
  const daemons: TestDaemon[] = []
  try {
    processes.push((await haproxyWith(dir, 'upstream', ['global', '    nbthread 1', ...defaults, 'frontend upstream', `    bind 127.0.0.1:${upstreamPort}`, '    http-request return status 200 content-type text/plain string ok'])).child)
    processes.push((await haproxyWith(dir, 'bare', ['global', ...defaults, 'frontend bare', `    bind 127.0.0.1:${barePort}`, '    default_backend app', 'backend app', `    server app 127.0.0.1:${upstreamPort}`])).child)
    // HAProxy alone with the retries dfp renders for deployments (docs/swarm.md): what they cost HAProxy itself.
    const retries = ['    retries 3', '    option redispatch 1', '    retry-on conn-failure empty-response junk-response']
    const idempotentOnly = '    http-request disable-l7-retry unless { method GET HEAD OPTIONS TRACE PUT DELETE }'
    processes.push((await haproxyWith(dir, 'retry', ['global', ...defaults, ...retries, 'frontend bare', `    bind 127.0.0.1:${retryPort}`, idempotentOnly, '    default_backend app', 'backend app', `    server app 127.0.0.1:${upstreamPort}`])).child)
    progress(`requests per second: daemons with 1 and ${largest} services`)
    const one = await startDaemon()
    daemons.push(one)
    await one.applier.apply(puts(0, 1, upstreamPort))
    const many = await startDaemon()
    daemons.push(many)
    await many.applier.apply(puts(0, largest, upstreamPort))
    const targets = { bare: barePort, retry: retryPort, one: one.proxyPort, many: many.proxyPort }
    for (const port of Object.values(targets)) {
      if (!(await until(async () => (await statusOf(port, '/svc0/x', false).catch(() => 0)) === 200, 10_000))) throw new Error(`port ${port} does not route /svc0/`)
    }
    const results: Record<keyof typeof targets, WrkResult[]> = { bare: [], retry: [], one: [], many: [] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, port] of Object.entries(targets) as Array<[keyof typeof targets, number]>) {
        results[name].push(await wrk(`http://127.0.0.1:${port}/svc0/x`, SECONDS))
      }
      progress(`requests per second: round ${round + 1} of ${ROUNDS}`)
    }
    const rps = (name: keyof typeof targets) => median(results[name].map((r) => r.requestsPerSecond))
    const p99 = (name: keyof typeof targets) => median(results[name].map((r) => r.p99Ms))
    const errors = (name: keyof typeof targets) => results[name].reduce((sum, r) => sum + r.errors, 0)
    row(
      `requests/s through HAProxy alone with dfp's retry settings (retry-on, disable-l7-retry for other methods)`,
      rps('retry').toFixed(0),
      `bare HAProxy ${rps('bare').toFixed(0)}`,
      rps('retry') / rps('bare'),
      '—',
    )
    for (const [name, label] of [['one', '1 service'], ['many', `${largest} services`]] as const) {
      row(
        `requests/s through dfp, ${label} (wrk keep-alive, 40 connections, median of ${ROUNDS}×${SECONDS} s alternated; ${errors(name)} errors)`,
        rps(name).toFixed(0),
        `bare HAProxy ${rps('bare').toFixed(0)}; with dfp's retry settings ${rps('retry').toFixed(0)} (${(rps(name) / rps('retry')).toFixed(2)}×)`,
        rps(name) / rps('bare'),
        '≥ 0.95×',
      )
      row(`p99 latency through dfp, ${label}`, `${p99(name).toFixed(2)} ms`, `bare HAProxy ${p99('bare').toFixed(2)} ms`, p99(name) / p99('bare'), '≤ 1.1×')
    }
  } finally {
    for (const daemon of daemons) await daemon.close()
    for (const child of processes) {
      child.kill('SIGTERM')
      await child
    }
    await rm(dir, { recursive: true, force: true })
  }
}
