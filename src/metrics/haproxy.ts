import { Gauge, Registry } from 'prom-client'
import { statType, type StatRow } from '../haproxy/stats.js'
import { SERVER_STATES, serverState } from '../haproxy/server-state.js'

// The families of the original's exporter (a copy of prometheus/haproxy_exporter, inventory
// §8.2): CSV column → metric name, all gauges, labelled `frontend`, `backend` or
// `backend`+`server`. Dashboards built on the original keep working.
const common = {
  scur: 'current_sessions',
  smax: 'max_sessions',
  slim: 'limit_sessions',
  stot: 'connections_total',
  bin: 'bytes_in_total',
  bout: 'bytes_out_total',
  rate: 'current_session_rate',
  rate_max: 'max_session_rate',
} as const
const queueAndErrors = {
  qcur: 'current_queue',
  qmax: 'max_queue',
  econ: 'connection_errors_total',
  eresp: 'response_errors_total',
  wretr: 'retry_warnings_total',
  wredis: 'redispatch_warnings_total',
  weight: 'weight',
} as const
const families = {
  frontend: { ...common, dreq: 'requests_denied_total', ereq: 'request_errors_total', rate_lim: 'limit_session_rate', req_tot: 'http_requests_total' },
  backend: { ...common, ...queueAndErrors },
  server: { ...common, ...queueAndErrors, chkfail: 'check_failures_total', downtime: 'downtime_seconds_total', check_duration: 'check_duration_milliseconds' },
} as const
const responseCodes = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const

/** `UP`, `UP 1/3`, `OPEN`, `no check` … count as up (the exporter's rule); anything else as down. */
const isUp = (status: string) => /^(UP|UP \d+\/\d+|OPEN|no check)$/.test(status)

/**
 * HAProxy's statistics as Prometheus text in the original's `haproxy_*` families, plus
 * `haproxy_up`. `rows` undefined means HAProxy could not be asked (then only `haproxy_up 0`).
 * A fresh registry per scrape: a proxy that disappeared leaves no stale series.
 */
export async function haproxyMetricsText(rows: StatRow[] | undefined): Promise<string> {
  const registry = new Registry()
  const up = new Gauge({ name: 'haproxy_up', help: 'Was the last scrape of haproxy successful.', registers: [registry] })
  up.set(rows ? 1 : 0)
  if (!rows) return registry.metrics()

  const gauges = new Map<string, Gauge>()
  const gauge = (kind: keyof typeof families, name: string, labels: string[]) => {
    const full = `haproxy_${kind}_${name}`
    let g = gauges.get(full)
    if (!g) {
      g = new Gauge({ name: full, help: `HAProxy ${kind} ${name.replaceAll('_', ' ')}.`, labelNames: labels, registers: [registry] })
      gauges.set(full, g)
    }
    return g
  }
  const set = (g: Gauge, labels: Record<string, string>, value: string | undefined) => {
    if (value === undefined || value === '') return
    const n = Number(value)
    if (Number.isFinite(n)) g.set(labels, n)
  }

  for (const row of rows) {
    const kind = row.type === statType.frontend ? 'frontend' : row.type === statType.backend ? 'backend' : row.type === statType.server ? 'server' : undefined
    if (!kind) continue
    const labels: Record<string, string> =
      kind === 'frontend' ? { frontend: row.pxname ?? '' } : kind === 'backend' ? { backend: row.pxname ?? '' } : { backend: row.pxname ?? '', server: row.svname ?? '' }
    const labelNames = Object.keys(labels)
    for (const [column, name] of Object.entries(families[kind])) set(gauge(kind, name, labelNames), labels, row[column])
    if (kind !== 'frontend') gauge(kind, 'up', labelNames).set(labels, isUp(row.status ?? '') ? 1 : 0)
    if (kind === 'server') {
      // One series per state, 1 for the server's current one (src/haproxy/server-state.ts).
      const state = serverState(row.status ?? '', row.weight === undefined || row.weight === '' ? null : Number(row.weight))
      for (const each of SERVER_STATES) gauge(kind, 'state', [...labelNames, 'state']).set({ ...labels, state: each }, each === state ? 1 : 0)
    }
    const responses = gauge(kind, 'http_responses_total', [...labelNames, 'code'])
    for (const code of responseCodes) set(responses, { ...labels, code }, row[`hrsp_${code}`])
  }
  return registry.metrics()
}
