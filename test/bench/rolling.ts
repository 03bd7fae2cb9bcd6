// A rolling update on loopback, dfp beside the original Go Docker Flow Proxy (issue 23), not part
// of `npm test` (the original uses fixed paths and ports: one instance per machine):
//   TAP_TIMEOUT=0 npx tsx test/bench/rolling.ts
// Three tasks of one DNS-discovered service (`discoveryType=DNS`, `replicas=3`, as both proxies
// render it: a server-template with health checks and the `docker` resolvers) are replaced one
// at a time, stop-first and gracefully (a task finishes what it has in flight), while clients
// send GETs on new connections, GETs on keep-alive connections, 2 s GETs and POSTs.
import { cp, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import { execa } from 'execa'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, until } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'
import { askProxy, clientLoad, startTask, type Task } from '../helpers/tasks.js'
import { progress } from './common.js'

const TOOLS = process.env.DFP_GO_DIR ?? join(process.cwd(), '..', 'shared', 'tools', 'dfp-go')

interface Target {
  name: string
  proxyPort: number
  reconfigure: (params: Record<string, string>) => Promise<number>
}

type Figures = Record<string, { requests: number; failed: number }>

/** The four kinds of clients, on `prefix`'s fast, slow and POST paths; `stop` gives their figures. */
function mixedLoad(target: Target, prefix: string): { stop(): Promise<Figures> } {
  const keepAlive = new Agent({ keepAlive: true, maxSockets: 2 })
  const ask = (path: string, options: Parameters<typeof askProxy>[2] = {}) => async () => (await askProxy(target.proxyPort, path, options)).answer
  const loads = {
    'GET, new connections': clientLoad(ask(`${prefix}/fast`), 3),
    'GET, keep-alive': clientLoad(ask(`${prefix}/fast`, { agent: keepAlive }), 2),
    'GET taking 2 s': clientLoad(ask(`${prefix}/slow`), 6, 0),
    POST: clientLoad(ask(`${prefix}/post`, { method: 'POST', body: 'x=1' }), 2),
  }
  return {
    async stop() {
      const results: Figures = {}
      for (const [kind, load] of Object.entries(loads)) {
        const answers = await load.stop()
        results[kind] = { requests: answers.length, failed: answers.filter((a) => a.startsWith('failed')).length }
      }
      keepAlive.destroy()
      return results
    },
  }
}

async function rollingUpdate(target: Target, dns: FakeDns, base: number): Promise<Record<string, { requests: number; failed: number }>> {
  const port = await freePort()
  const records = { roll: [0, 1, 2].map((i) => `127.0.0.${base + i}`) }
  await dns.setRecords(records)
  const tasks: Task[] = await Promise.all(records.roll.map((ip, i) => startTask(`v1-${i}`, ip, port)))
  const status = await target.reconfigure({ serviceName: 'roll', servicePath: '/roll', port: String(port), discoveryType: 'DNS', replicas: '3' })
  if (status !== 200) throw new Error(`${target.name}: reconfigure answered ${status}`)
  const served = () => tasks.every((task) => [...task.received.values()].some((n) => n > 0))
  const warm = clientLoad(async () => (await askProxy(target.proxyPort, '/roll/fast')).answer, 1)
  if (!(await until(async () => served(), 60_000))) throw new Error(`${target.name}: tasks not served`)
  await warm.stop()
  const loads = mixedLoad(target, '/roll')
  await new Promise((resolve) => setTimeout(resolve, 3000))
  for (let i = 0; i < 3; i++) {
    const old = tasks[i] as Task
    await old.stop()
    const next = await startTask(`v2-${i}`, `127.0.0.${base + 10 + i}`, port)
    tasks[i] = next
    records.roll = records.roll.map((ip) => (ip === old.host ? next.host : ip))
    await dns.setRecords(records)
    if (!(await until(async () => [...next.received.values()].some((n) => n > 0), 60_000))) throw new Error(`${target.name}: ${next.host} never served`)
    await new Promise((resolve) => setTimeout(resolve, 3000))
  }
  const results = await loads.stop()
  await Promise.all(tasks.map((task) => task.stop()))
  return results
}

/**
 * The same replacement where the proxy is told each task's address (`outboundHostname`): the
 * new task starts, a reconfigure names it, then the old one stops gracefully. The original
 * reloads HAProxy for each; dfp changes the server's address through the Runtime API.
 */
async function movedByReconfigure(target: Target, base: number): Promise<Record<string, { requests: number; failed: number }>> {
  const port = await freePort()
  let current = await startTask('v1', `127.0.0.${base}`, port)
  const move = async (task: Task) => {
    const status = await target.reconfigure({ serviceName: 'moved', servicePath: '/moved', port: String(port), outboundHostname: task.host })
    if (status !== 200) throw new Error(`${target.name}: reconfigure answered ${status}`)
  }
  await move(current)
  if (!(await until(async () => (await askProxy(target.proxyPort, '/moved/fast')).answer === 'v1', 60_000))) throw new Error(`${target.name}: not served`)
  const loads = mixedLoad(target, '/moved')
  await new Promise((resolve) => setTimeout(resolve, 3000))
  for (let i = 1; i <= 3; i++) {
    const next = await startTask(`v${i + 1}`, `127.0.0.${base + i}`, port)
    await move(next)
    await current.stop()
    current = next
    await new Promise((resolve) => setTimeout(resolve, 3000))
  }
  const results = await loads.stop()
  await current.stop()
  return results
}

const dns = await new FakeDns().start({ roll: ['127.0.0.1'] })
const figures: Record<string, Record<string, { requests: number; failed: number }>> = {}
try {
  progress('dfp: rolling update of 3 tasks under load')
  const dfp = await startDaemon({ RESOLVERS: `nameserver dns ${dns.server}`, DNS_SERVERS: dns.server })
  try {
    const target = { name: 'dfp', proxyPort: dfp.proxyPort, reconfigure: async (p: Record<string, string>) => (await dfp.call('reconfigure', p)).status }
    figures['dfp, DNS discovery'] = await rollingUpdate(target, dns, 101)
    progress('dfp: the address moved by reconfigure, 3 times under load')
    figures['dfp, reconfigured'] = await movedByReconfigure(target, 141)
  } finally {
    await dfp.close()
  }
  if (existsSync(join(TOOLS, 'start.sh'))) {
    progress('original: the address moved by reconfigure (a reload each), 3 times under load')
    // A copy of the tools whose RESOLVERS name this run's DNS server.
    const copy = '/tmp/dfp-go-rolling'
    await cp(TOOLS, copy, { recursive: true })
    const env = await readFile(join(copy, 'env.sh'), 'utf8')
    await writeFile(join(copy, 'env.sh'), env.replace(/RESOLVERS="[^"]*"/, `RESOLVERS="nameserver dns ${dns.server}"`))
    const runEnv = { DFP_GO_RUN: '/tmp/dfp-go-run-rolling' }
    const started = await execa('sh', [join(copy, 'start.sh')], { reject: false, env: runEnv })
    if (started.exitCode !== 0) throw new Error(`original did not start: ${started.stdout}`)
    try {
      const api = (endpoint: string, p: Record<string, string>) => httpGet(18081, `/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(p)}`, {}, 300_000).then((r) => r.status)
      // The original looks names up through libc when HAProxy loads (no `init-addr none`), which
      // cannot reach this run's DNS server: DNS discovery cannot run here, only the moved address.
      figures['original, reconfigured'] = await movedByReconfigure({ name: 'original', proxyPort: 18080, reconfigure: (p) => api('reconfigure', p) }, 161)
    } finally {
      await execa('sh', [join(copy, 'stop.sh')], { reject: false, env: runEnv })
    }
  }
} finally {
  await dns.stop()
}
for (const [proxy, results] of Object.entries(figures)) {
  for (const [kind, { requests, failed }] of Object.entries(results)) console.log(`${proxy.padEnd(24)} ${kind.padEnd(22)} ${String(requests).padStart(6)} requests ${String(failed).padStart(4)} failed`)
}
