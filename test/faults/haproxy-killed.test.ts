// Issue 20, item 2: kill -9 of the HAProxy master or of its worker at any moment of a burst of
// reconfigures. Every client is answered within 5 s of the kill (200 or 503, never an empty
// reply), every 200 is served and saved, every 503 is neither, and the services HAProxy served
// before are served again within 2 s. On e82721c the restart on the last good configuration wrote
// over the file a reload had just written: 39–40 of 40 clients got an empty reply at 10 s.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstreams, type TestDaemon } from '../helpers/daemon.js'
import { httpGet, until } from '../helpers/net.js'

const BURST = 60
const CONCURRENT = 20
const ANSWERED_WITHIN_MS = 5000
const RESTORED_WITHIN_MS = 2000

const logLines: Array<Record<string, unknown>> = []
const { daemon, upstreams } = await startWithUpstreams(['app'], {}, { logLines })
const port = String(upstreams.app.port)
// No catch-up reload of its own in the middle of a scenario: the kill is the only disturbance.
daemon.applier.catchUpDelayMs = 120_000

/** Even services are plain (made live at run time), odd ones have a backend of their own (a reload). */
const service = (name: string, index: number): Record<string, string> => ({
  serviceName: name,
  servicePath: `/${name}`,
  port,
  outboundHostname: '127.0.0.1',
  ...(index % 2 === 1 ? { setResHeader: 'X-Killed yes' } : {}),
})

/** The services of the saved state: the snapshot, then the log lines after it. */
async function savedServices(d: TestDaemon): Promise<Set<string>> {
  const names = new Set<string>()
  const snapshot = JSON.parse(await readFile(join(d.configDir, 'dfp-state.json'), 'utf8').catch(() => '{"services":[]}')) as { services?: Array<{ params: Record<string, string> }> }
  for (const entry of snapshot.services ?? []) if (entry.params.serviceName) names.add(entry.params.serviceName)
  const log = await readFile(join(d.configDir, 'dfp-state.log'), 'utf8').catch(() => '')
  for (const line of log.split('\n').slice(1)) {
    if (!line.trim()) continue
    const entry = JSON.parse(line) as { put?: { params: Record<string, string> }; remove?: string }
    if (entry.put?.params.serviceName) names.add(entry.put.params.serviceName)
    if (entry.remove) names.delete(entry.remove)
  }
  return names
}

async function proxyStatus(path: string): Promise<number> {
  return (await httpGet(daemon.proxyPort, path, {}, 2000)).status
}

async function workerPid(): Promise<number> {
  return (await daemon.haproxy.info(2000)).pid
}

interface Outcome {
  name: string
  status: number
  error?: string
  sentAt: number
  answeredAt: number
}

type Moment = 'at the first request' | 'during a reload' | `after ${number} answers`

/** Kills the master or the worker at `moment` of a burst of BURST reconfigures, CONCURRENT at a time. */
async function burstWithKill(prefix: string, target: 'master' | 'worker', moment: Moment) {
  const outcomes: Outcome[] = []
  let killedAt: number | undefined
  let restoredAt: number | undefined
  const kill = async () => {
    if (killedAt !== undefined) return
    killedAt = -1
    const pid = target === 'master' ? (daemon.port.master.pid as number) : await workerPid()
    process.kill(pid, 'SIGKILL')
    killedAt = Date.now()
    // The probe service was served before the burst: it is the "service restored" measure.
    const back = await until(async () => (await proxyStatus('/probe')) === 200, 20_000)
    if (back) restoredAt = Date.now()
  }
  let killing: Promise<void> | undefined
  const logStart = logLines.length
  const watchReload = moment === 'during a reload'
  let next = 0
  const client = async () => {
    while (next < BURST) {
      const index = next++
      const name = `${prefix}${index}`
      const sentAt = Date.now()
      const pending = daemon.call('reconfigure', service(name, index))
      if (moment === 'at the first request' && index === 0) killing ??= kill()
      if (watchReload && !killing) {
        void until(async () => logLines.slice(logStart).some((l) => String(l.haproxy ?? '').includes('Reloading HAProxy')), 30_000).then((seen) => {
          if (seen) killing ??= kill()
        })
      }
      try {
        const reply = await pending
        outcomes.push({ name, status: reply.status, sentAt, answeredAt: Date.now(), ...(reply.status >= 400 ? { error: reply.body } : {}) })
      } catch (err) {
        outcomes.push({ name, status: 0, error: String(err), sentAt, answeredAt: Date.now() })
      }
      if (moment === `after ${outcomes.length} answers`) killing ??= kill()
    }
  }
  await Promise.all(Array.from({ length: CONCURRENT }, client))
  await killing
  return { outcomes, killedAt: killedAt ?? 0, restoredAt }
}

t.before(async () => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'probe', servicePath: '/probe', port, outboundHostname: '127.0.0.1' })).status, 200)
})

const moments: Moment[] = ['at the first request', 'during a reload', 'after 10 answers', 'after 30 answers', 'after 50 answers']
const scenarios = (['master', 'worker'] as const).flatMap((target) => moments.map((moment) => [target, moment] as const))

for (const [index, [target, moment]] of scenarios.entries()) {
  t.test(`the ${target} killed ${moment}`, async (t) => {
    const { outcomes, killedAt, restoredAt } = await burstWithKill(`k${index}x`, target, moment)
    t.ok(killedAt > 0, 'the kill happened')
    t.equal(outcomes.length, BURST, 'every request has an outcome')
    const unanswered = outcomes.filter((o) => o.status !== 200 && o.status !== 503)
    t.same(unanswered, [], 'every client got 200 or 503')
    const late = outcomes.filter((o) => o.sentAt <= killedAt && o.answeredAt - killedAt > ANSWERED_WITHIN_MS)
    t.same(late.map((o) => ({ name: o.name, afterKillMs: o.answeredAt - killedAt, status: o.status })), [], `clients waiting at the kill answered within ${ANSWERED_WITHIN_MS} ms of it`)
    t.ok(restoredAt !== undefined, 'the services served before are served again')
    const restoredMs = (restoredAt ?? Infinity) - killedAt
    t.ok(restoredMs <= RESTORED_WITHIN_MS, `served again within ${RESTORED_WITHIN_MS} ms of the kill (${restoredMs} ms)`)
    const saved = await savedServices(daemon)
    for (const o of outcomes.filter((o) => o.status === 200)) {
      t.equal(await proxyStatus(`/${o.name}`), 200, `${o.name}: a 200 is served`)
      t.ok(saved.has(o.name), `${o.name}: a 200 is saved`)
    }
    for (const o of outcomes.filter((o) => o.status === 503)) {
      t.not(await proxyStatus(`/${o.name}`), 200, `${o.name}: a 503 is not served`)
      t.notOk(saved.has(o.name), `${o.name}: a 503 is not saved`)
    }
    const counts = { ok: outcomes.filter((o) => o.status === 200).length, unavailable: outcomes.filter((o) => o.status === 503).length, other: unanswered.length }
    const slowest = Math.max(0, ...outcomes.filter((o) => o.sentAt <= killedAt).map((o) => o.answeredAt - killedAt))
    t.comment(`${target} killed ${moment}: ${JSON.stringify(counts)}, slowest answer ${slowest} ms after the kill, restored in ${restoredMs} ms`)
  })
}
