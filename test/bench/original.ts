// The original Go Docker Flow Proxy (/work/shared/tools/dfp-go, one instance per machine) next to
// dfp on the same two figures: 100 concurrent reconfigures, and failed requests under `wrk`
// keep-alive load during add/remove churn.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { execa } from 'execa'
import { startDaemon } from '../helpers/daemon.js'
import { httpGet, httpUpstream, until } from '../helpers/net.js'
import { ms, progress, row, wrk } from './common.js'

const TOOLS = process.env.DFP_GO_DIR ?? join(process.cwd(), '..', 'shared', 'tools', 'dfp-go')
const CHURN_SECONDS = Number(process.env.BENCH_CHURN_SECONDS ?? 20)

interface Target {
  name: string
  reconfigure: (params: Record<string, string>) => Promise<number>
  remove: (serviceName: string) => Promise<number>
  proxyUrl: (path: string) => string
}

async function measure(target: Target, upstreamPort: number) {
  const params = (name: string) => ({ serviceName: name, servicePath: `/${name}`, port: String(upstreamPort), outboundHostname: '127.0.0.1' })
  const start = performance.now()
  const statuses = await Promise.all(Array.from({ length: 100 }, (_, i) => target.reconfigure(params(`burst${i}`))))
  const burstMs = performance.now() - start
  if ((await target.reconfigure(params('steady'))) !== 200) throw new Error(`${target.name}: steady not configured`)
  let pairs = 0
  let churning = true
  const churn = (async () => {
    for (let i = 0; churning && i < 100_000; i++) {
      await target.reconfigure(params(`churn${i}`))
      await target.remove(`churn${i}`)
      pairs++
    }
  })()
  const load = await wrk(target.proxyUrl('/steady'), CHURN_SECONDS, 40)
  churning = false
  await churn
  return { burstMs, failed: statuses.filter((s) => s !== 200).length, errors: load.errors, requests: load.requests, pairs }
}

export async function againstOriginal(): Promise<void> {
  const upstream = await httpUpstream('original')
  const dfp = await startDaemon()
  try {
    progress('dfp: 100 concurrent reconfigures, churn under wrk')
    const ours = await measure(
      {
        name: 'dfp',
        reconfigure: async (p) => (await dfp.call('reconfigure', p)).status,
        remove: async (name) => (await dfp.call('remove', { serviceName: name })).status,
        proxyUrl: (path) => `http://127.0.0.1:${dfp.proxyPort}${path}`,
      },
      upstream.port,
    )
    let theirs: Awaited<ReturnType<typeof measure>> | undefined
    let note = 'original not run'
    if (existsSync(join(TOOLS, 'start.sh'))) {
      progress('original: 100 concurrent reconfigures (one reload each), churn under wrk')
      const env = { DFP_GO_RUN: '/tmp/dfp-go-run-bench' }
      const started = await execa('sh', [join(TOOLS, 'start.sh')], { reject: false, env })
      if (started.exitCode === 0) {
        try {
          const api = (endpoint: string, p: Record<string, string>) => httpGet(18081, `/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(p)}`, {}, 300_000).then((r) => r.status)
          await until(async () => (await api('ping', {}).catch(() => 0)) === 200, 10_000)
          theirs = await measure({ name: 'original', reconfigure: (p) => api('reconfigure', p), remove: (name) => api('remove', { serviceName: name }), proxyUrl: (path) => `http://127.0.0.1:18080${path}` }, upstream.port)
        } finally {
          await execa('sh', [join(TOOLS, 'stop.sh')], { reject: false, env })
        }
      } else note = `original did not start: ${started.stdout.trim()}`
    }
    row(`100 concurrent reconfigures, all answered (${ours.failed} failed; original ${theirs ? `${theirs.failed} failed` : note})`, ms(ours.burstMs), theirs ? `original ${ms(theirs.burstMs)}` : note, theirs ? ours.burstMs / theirs.burstMs : '—', '—')
    row(
      `add/remove churn under wrk keep-alive, ${CHURN_SECONDS} s: failed requests (pairs done)`,
      `${ours.errors} of ${ours.requests} (${ours.pairs} pairs)`,
      theirs ? `original ${theirs.errors} of ${theirs.requests} (${theirs.pairs} pairs)` : note,
      '—',
      '0',
    )
  } finally {
    await dfp.close()
    await upstream.close()
  }
}
