// Benchmarks, not part of `npm test`. Machines here are shared and noisy, so each figure is
// printed next to a baseline measured in the same run, as a ratio.
//   npm run bench            (BENCH_SERVICES=N to change the state size, default 1000)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateConfig } from '../../src/haproxy/validate.js'
import { render } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'

const N = Number(process.env.BENCH_SERVICES ?? 1000)
const BURST = Number(process.env.BENCH_BURST ?? 200)

async function best(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  let fastest = Infinity
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    await fn()
    fastest = Math.min(fastest, performance.now() - start)
  }
  return fastest
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`

// 1. Rendering N services against HAProxy's own floor: `haproxy -c` of the same text.
{
  const dir = await mkdtemp(join(tmpdir(), 'dfp-bench-'))
  const settings = loadSettings({ CONFIG_DIR: dir, SECRETS_DIR: dir, DEFAULT_PORTS: '18980' })
  const state = ServiceState.empty().with(
    Array.from({ length: N }, (_, i) => ({
      kind: 'put' as const,
      service: parseService({ serviceName: `svc${i}`, servicePath: `/svc${i}/`, port: '8080', outboundHostname: '127.0.0.1' }, { separator: ',' }),
    })),
  )
  const renderMs = await best(5, () => render(state, settings))
  const text = render(state, settings)
  const checkMs = await best(3, () => validateConfig('haproxy', dir, text))
  console.log(`render ${N} services: ${fmt(renderMs)}; haproxy -c of the result (baseline): ${fmt(checkMs)}; ratio ${(renderMs / checkMs).toFixed(3)}`)
  await rm(dir, { recursive: true, force: true })
}

// 2. A burst of concurrent reconfigures against one forced reload of the daemon (the floor).
{
  const daemon = await startDaemon()
  const upstream = await httpUpstream('bench')
  try {
    const reloadMs = await best(3, () => daemon.applier.reload())
    const before = daemon.applier.reloads
    const start = performance.now()
    const replies = await Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        daemon.call('reconfigure', { serviceName: `b${i}`, servicePath: `/b${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' }),
      ),
    )
    const burstMs = performance.now() - start
    const failed = replies.filter((r) => r.status !== 200).length
    console.log(
      `burst of ${BURST} reconfigures: ${fmt(burstMs)} with ${daemon.applier.reloads - before} reloads, ${failed} failed; ` +
        `one reload (baseline): ${fmt(reloadMs)}; ratio ${(burstMs / reloadMs).toFixed(2)}`,
    )
  } finally {
    await daemon.close()
    await upstream.close()
  }
}
