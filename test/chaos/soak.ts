// The chaos soak (`npm run chaos`; a short seeded run is test/chaos/short.test.ts): for N minutes,
// writer clients reconfigure, remove and upload certificates while a prober requests a service
// nobody changes through HAProxy, and at random moments the worker, the master or the daemon is
// killed with -9 (the daemon started again), the disk is filled, `haproxy -c` is slow or killed.
// Then it checks what the clients saw against what is served and saved (docs/guarantees.md
// "Chaos soak"). Loopback only; bounded in time and count.
import { setTimeout as sleep } from 'node:timers/promises'
import { makeCertificate } from '../helpers/certs.js'
import { smallFilesystem, stopLeftoverHaproxy } from '../helpers/faults.js'
import { freePort, httpGet, httpUpstream } from '../helpers/net.js'
import { type Answer, apiRequest, chaosHaproxy, haproxyPids, RestartingDaemon, seeded } from './machinery.js'
import { judge, type Op, type Probe, type Window } from './verdict.js'

export const FAULT_KINDS = ['kill-worker', 'kill-master', 'kill-daemon', 'disk-full', 'slow-check', 'failing-check'] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface SoakOptions {
  seconds: number
  seed: number
  clients?: number
  /** Progress lines. */
  say?: (line: string) => void
}

/** The documented windows in which a request to an unchanged service may fail (docs/guarantees.md). */
export const RESTART_WINDOW_MS = { haproxy: 2_000, daemon: 2_000 } as const
const PREFIX = '/v1/docker-flow-proxy'

export async function runSoak({ seconds, seed, clients = 3, say = () => undefined }: SoakOptions) {
  // One random source per actor, so the faults (and each writer's choices) follow from the seed
  // whatever the timing of the others.
  const faultRandom = seeded(seed)
  const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const upstream = await httpUpstream('chaos')
  const disk = await smallFilesystem(4096)
  const haproxy = await chaosHaproxy()
  const ports = { apiPort: await freePort(), proxyPort: await freePort() }
  const daemon = new RestartingDaemon(disk.dir, { HAPROXY_BIN: haproxy.bin, LOG_LEVEL: 'warn' }, ports)
  const certs = [makeCertificate('a.chaos.test'), makeCertificate('b.chaos.test')]
  const ops: Op[] = []
  const probes: Probe[] = []
  const windows: Window[] = []
  const faults = new Map<FaultKind, number>(FAULT_KINDS.map((kind) => [kind, 0]))
  const api = (path: string, options?: Parameters<typeof apiRequest>[2]) => apiRequest(ports.apiPort, `${PREFIX}/${path}`, options)
  /** A GET through HAProxy: served by the upstream, else what came back instead. */
  const probe = async (path: string): Promise<{ ok: boolean; detail: string }> => {
    const reply = await httpGet(ports.proxyPort, path, {}, 2000).catch((err: unknown) => (err instanceof Error ? err.message : String(err)))
    if (typeof reply === 'string') return { ok: false, detail: reply }
    return { ok: reply.status === 200 && reply.body.includes('chaos'), detail: `HTTP ${reply.status}` }
  }
  const served = async (path: string) => (await probe(path)).ok
  try {
    await daemon.start()
    const steady = await api(`reconfigure?${new URLSearchParams({ serviceName: 'steady', servicePath: '/steady', port: String(upstream.port), outboundHostname: '127.0.0.1' })}`)
    if (steady.status !== 200) throw new Error(`the steady service was not accepted: ${steady.status} ${steady.body}`)
    const started = Date.now()
    const deadline = started + seconds * 1000
    let running = true

    // The prober: the steady service, through HAProxy, every 100 ms.
    const prober = (async () => {
      while (running) {
        const at = Date.now()
        const { ok, detail } = await probe('/steady')
        probes.push({ at, ok, ...(ok ? {} : { detail }) })
        await sleep(100)
      }
    })()

    // Writers: each owns its services and certificates, so the last answer says what should be.
    const writer = async (client: number) => {
      const random = seeded(seed * 31 + client + 1)
      let version = 0
      while (running && Date.now() < deadline) {
        const service = `c${client}-s${Math.floor(random() * 3)}`
        const roll = random()
        const at = Date.now()
        let op: Op
        if (roll < 0.6) {
          version++
          const path = `/${service}/v${version}`
          // A third have their own backend (checked and reloaded), the rest are made live at run time.
          const own = version % 3 === 0
          const params = { serviceName: service, servicePath: path, port: String(upstream.port), outboundHostname: '127.0.0.1', ...(own ? { setResHeader: 'X-Chaos yes' } : {}) }
          const answer = await api(`reconfigure?${new URLSearchParams(params)}`)
          op = { client, kind: 'reconfigure', target: service, path, answer, at, end: Date.now() }
        } else if (roll < 0.85) {
          const answer = await api(`remove?${new URLSearchParams({ serviceName: service })}`)
          op = { client, kind: 'remove', target: service, answer, at, end: Date.now() }
        } else {
          version++
          const name = `c${client}-${version}.pem`
          const answer = await api(`cert?certName=${name}`, { method: 'PUT', body: pick(random, certs) })
          op = { client, kind: 'cert', target: name, answer, at, end: Date.now() }
        }
        // What the client can see at once: a 200 reconfigure is served, a refused or failed one is not.
        if (op.kind === 'reconfigure' && op.path && typeof op.answer.status === 'number') op.servedAfter = await served(op.path)
        ops.push(op)
        if (op.answer.status === 'unreachable') await sleep(200)
      }
    }

    // Faults, one at a time, at random moments 2–6 s apart.
    const injector = (async () => {
      const random = faultRandom
      while (Date.now() < deadline - 3000) {
        await sleep(2000 + random() * 4000)
        if (Date.now() >= deadline - 3000) break
        const kind = pick(random, FAULT_KINDS)
        const at = Date.now()
        faults.set(kind, (faults.get(kind) ?? 0) + 1)
        say(`${((at - started) / 1000).toFixed(1)} s: ${kind}`)
        if (kind === 'kill-worker' || kind === 'kill-master') {
          const pids = await haproxyPids(disk.dir)
          const pid = kind === 'kill-worker' ? pids.worker : pids.master
          try {
            if (!pid) throw new Error('no such process')
            process.kill(pid, 'SIGKILL')
          } catch {
            // None, or it exited between the look-up and the kill (the master was restarting it): no fault.
            faults.set(kind, (faults.get(kind) ?? 1) - 1)
            continue
          }
          windows.push({ kind, from: at, to: Date.now() + RESTART_WINDOW_MS.haproxy })
        } else if (kind === 'kill-daemon') {
          await daemon.killAndRestart()
          windows.push({ kind, from: at, to: Date.now() + RESTART_WINDOW_MS.daemon })
        } else if (kind === 'disk-full') {
          await disk.fill(0)
          await sleep(1000 + random() * 2000)
          await disk.drain()
        } else if (kind === 'slow-check') {
          await haproxy.slow(1 + Math.floor(random() * 3))
          await sleep(3000)
          await haproxy.normal()
        } else {
          await haproxy.kill(1 + Math.floor(random() * 2))
          await sleep(3000)
          await haproxy.normal()
        }
      }
    })()

    try {
      await Promise.all([...Array.from({ length: clients }, (_, client) => writer(client)), injector])
    } finally {
      // Also when a fault failed: the writers and the prober stop, so the run ends with its error.
      running = false
    }
    await prober
    await haproxy.normal()
    await disk.drain()

    // The end: what the running daemon lists and serves, then the same after one more kill -9.
    const snapshot = async () => {
      const config = await api('config?type=json')
      const listed = typeof config.status === 'number' && config.status === 200 ? (JSON.parse(config.body) as Record<string, unknown>) : {}
      const certsReply = await api('certs')
      const certNames = typeof certsReply.status === 'number' && certsReply.status === 200 ? ((JSON.parse(certsReply.body) as { Certs: Array<{ Name?: string; name?: string }> }).Certs ?? []).map((c) => String(c.Name ?? c.name)) : []
      return { listed, certNames, served }
    }
    const before = await snapshot()
    await daemon.killAndRestart()
    const after = await snapshot()
    const verdict = await judge({ ops, probes, windows, before, after, started })
    return { seconds, seed, clients, faults: Object.fromEntries(faults), restarts: daemon.restarts, ...verdict }
  } finally {
    await daemon.stop().catch(() => undefined)
    await stopLeftoverHaproxy(disk.dir)
    await upstream.close()
    await haproxy.remove()
    await disk.unmount()
  }
}

export type SoakReport = Awaited<ReturnType<typeof runSoak>>

/** A finished op's outcome, for the counts: 200, 4xx, 503, other 5xx, lost or unreachable. */
export function outcomeOf(answer: Answer): string {
  if (typeof answer.status !== 'number') return answer.status
  if (answer.status === 200) return '200'
  if (answer.status === 503) return '503'
  return answer.status < 500 ? '4xx' : '5xx'
}

