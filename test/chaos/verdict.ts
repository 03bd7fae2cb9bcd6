// The chaos soak's checks (test/chaos/soak.ts), from what each client saw: every 200 is served
// and in the state (also after a kill -9), every refused or failed change is not, and requests to
// the service nobody changed failed only within the documented restart windows.
import type { Answer } from './machinery.js'

export interface Op {
  client: number
  kind: 'reconfigure' | 'remove' | 'cert'
  /** The service or certificate name. */
  target: string
  /** A reconfigure's servicePath, unique to it: served means this very change is live. */
  path?: string
  answer: Answer
  at: number
  end: number
  /** A reconfigure's path requested through HAProxy right after the answer. */
  servedAfter?: boolean
}

export interface Probe {
  at: number
  ok: boolean
  /** What a failed probe got: a status, or the error. */
  detail?: string
}

export interface Window {
  kind: string
  from: number
  to: number
}

/** What the daemon lists and serves at one moment. */
export interface Seen {
  listed: Record<string, unknown>
  certNames: string[]
  served: (path: string) => Promise<boolean>
}

const ABSENT = '(absent)'

function outcome(answer: Answer): string {
  if (typeof answer.status !== 'number') return answer.status
  if (answer.status === 200) return '200'
  if (answer.status === 503) return '503'
  return answer.status < 500 ? '4xx' : '5xx'
}

/** The path a listed service is served on (its servicePath, `/<name>/v<n>`), or ABSENT. */
function listedPath(listed: Record<string, unknown>, name: string): string {
  const entry = listed[name]
  if (entry === undefined) return ABSENT
  return new RegExp(`/${name}/v\\d+`).exec(JSON.stringify(entry))?.[0] ?? '(unknown path)'
}

export async function judge({ ops, probes, windows, before, after, started }: { ops: Op[]; probes: Probe[]; windows: Window[]; before: Seen; after: Seen; started: number }) {
  const seconds = (at: number) => `${((at - started) / 1000).toFixed(1)} s`
  /** The last fault before `at`, for a violation's line. */
  const lastFault = (at: number) => {
    const window = windows.filter((w) => w.from <= at).at(-1)
    return window ? `${window.kind} at ${seconds(window.from)}, its window ended ${at - window.to} ms before` : 'no fault before'
  }
  const violations: string[] = []
  const requests: Record<string, Record<string, number>> = {}
  for (const op of ops) {
    const byKind = (requests[op.kind] ??= {})
    byKind[outcome(op.answer)] = (byKind[outcome(op.answer)] ?? 0) + 1
  }
  // Why changes were not applied: the status and message of each answer other than 200, without their service-specific parts.
  const reasons: Record<string, number> = {}
  for (const op of ops) {
    if (typeof op.answer.status !== 'number' || op.answer.status === 200) continue
    const message = /"Message":"([^"]*)"/.exec(op.answer.body)?.[1] ?? op.answer.body
    const reason = message.replace(/tmp-\d+|\/[^ ,)']*\//g, '…/').replace(/service \S+/g, 'service …').slice(0, 140)
    const key = `${op.answer.status} ${reason}`
    reasons[key] = (reasons[key] ?? 0) + 1
  }
  const inWindow = (from: number, to: number) => windows.some((w) => w.from <= to && w.to >= from)

  // At once: a 200 reconfigure is served (unless HAProxy was being restarted), a refused or failed one is not.
  let excused200 = 0
  for (const op of ops) {
    if (op.kind !== 'reconfigure' || op.servedAfter === undefined) continue
    const status = op.answer.status
    if (status === 200 && !op.servedAfter) {
      if (inWindow(op.at, op.end + 2500)) excused200++
      else violations.push(`${op.target} ${op.path}: answered 200 at ${seconds(op.end)}, not served right after (${lastFault(op.end)})`)
    }
    if (typeof status === 'number' && status !== 200 && op.servedAfter) violations.push(`${op.target} ${op.path}: answered ${status}, yet served`)
  }

  // In the end: each service is in a state its answers allow, before and after a kill -9.
  const services = new Map<string, Set<string>>()
  const certificates = new Map<string, 'listed' | 'not listed' | 'either'>()
  for (const op of ops) {
    const status = op.answer.status
    if (op.kind === 'cert') {
      if (status === 200) certificates.set(op.target, 'listed')
      else if (status === 'lost') certificates.set(op.target, 'either')
      else certificates.set(op.target, 'not listed')
      continue
    }
    const allowed = services.get(op.target) ?? new Set([ABSENT])
    const result = op.kind === 'remove' ? ABSENT : (op.path as string)
    if (status === 200) services.set(op.target, new Set([result]))
    else if (status === 'lost') services.set(op.target, allowed.add(result))
    else services.set(op.target, allowed)
  }
  let checkedServices = 0
  for (const [when, seen] of [['before the last kill -9', before], ['after the last kill -9', after]] as const) {
    for (const [name, allowed] of services) {
      checkedServices++
      const path = listedPath(seen.listed, name)
      if (!allowed.has(path)) violations.push(`${when}: ${name} is ${path}, its answers allow ${[...allowed].join(' or ')}`)
      else if (path !== ABSENT && !(await seen.served(path))) violations.push(`${when}: ${name} listed on ${path} but not served`)
    }
    for (const [name, expected] of certificates) {
      const listed = seen.certNames.includes(name)
      if (expected === 'listed' && !listed) violations.push(`${when}: certificate ${name} answered 200, not listed`)
      if (expected === 'not listed' && listed) violations.push(`${when}: certificate ${name} refused or failed, yet listed`)
    }
  }

  // The prober: failures only within a restart window.
  const failed = probes.filter((probe) => !probe.ok)
  // A probe is in a window when it was in flight during it (a probe gives up after 2 s): one sent
  // just before a kill is reset by it.
  const outside = failed.filter((probe) => !inWindow(probe.at, probe.at + 2000))
  for (const probe of outside.slice(0, 20)) violations.push(`the steady service failed at ${seconds(probe.at)} (${probe.detail ?? 'no detail'}), outside every restart window (${lastFault(probe.at)})`)
  if (outside.length > 20) violations.push(`… and ${outside.length - 20} more failures of the steady service outside the windows`)

  return {
    requests,
    reasons,
    probes: { total: probes.length, ok: probes.length - failed.length, failedInWindows: failed.length - outside.length, failedOutside: outside.length },
    excused200,
    checked: { services: services.size, certificates: certificates.size, serviceChecks: checkedServices },
    violations,
  }
}
