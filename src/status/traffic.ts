import { type StatRow, statType } from '../haproxy/stats.js'

/** Traffic of a backend from HAProxy's counters: rates over the time since an earlier sample. */
export interface Traffic {
  /** HTTP requests per second (`req_tot`), null until two samples are at least a second apart. */
  requestsPerSecond: number | null
  /** Responses with a 5xx status per second (`hrsp_5xx`), same. */
  http5xxPerSecond: number | null
  /** Average response time of the last 1 024 requests, in ms (`rtime`), null without requests. */
  responseTimeMs: number | null
  /** Requests since the worker started (its counters start again at each reload). */
  requestsTotal: number | null
}

interface Sample {
  at: number
  requests: number
  errors: number
}

const MIN_INTERVAL_MS = 1000
const num = (value: string | undefined) => (value === undefined || value === '' ? null : Number(value))
const round = (value: number) => Math.round(value * 100) / 100

/**
 * Keeps one earlier sample per backend so that each refresh of the status page can turn
 * HAProxy's cumulative counters into rates. A sample is replaced once it is a second old, so
 * several readers polling at once still measure over at least a second; counters that went
 * down (a reload started a new worker) start over.
 */
export class TrafficRates {
  private readonly samples = new Map<string, Sample>()

  /** Traffic of each backend row in `rows`, by backend name. */
  read(rows: readonly StatRow[], now = Date.now()): Map<string, Traffic> {
    const traffic = new Map<string, Traffic>()
    for (const row of rows) {
      if (row.type !== statType.backend || !row.pxname) continue
      const requests = num(row.req_tot)
      const errors = num(row.hrsp_5xx) ?? 0
      const responseTime = num(row.rtime)
      const before = this.samples.get(row.pxname)
      const current: Sample = { at: now, requests: requests ?? 0, errors }
      let perSecond: { requests: number; errors: number } | undefined
      if (before && current.requests >= before.requests && current.errors >= before.errors && now - before.at >= MIN_INTERVAL_MS) {
        const seconds = (now - before.at) / 1000
        perSecond = { requests: (current.requests - before.requests) / seconds, errors: (current.errors - before.errors) / seconds }
      }
      const stale = !before || current.requests < before.requests || current.errors < before.errors || now - before.at >= MIN_INTERVAL_MS
      if (stale) this.samples.set(row.pxname, current)
      traffic.set(row.pxname, {
        requestsPerSecond: perSecond ? round(perSecond.requests) : null,
        http5xxPerSecond: perSecond ? round(perSecond.errors) : null,
        responseTimeMs: requests ? responseTime : null,
        requestsTotal: requests,
      })
    }
    return traffic
  }

  get size(): number {
    return this.samples.size
  }

  /** Forgets backends that are no longer configured. */
  keepOnly(backends: ReadonlySet<string>): void {
    for (const name of this.samples.keys()) if (!backends.has(name)) this.samples.delete(name)
  }
}
