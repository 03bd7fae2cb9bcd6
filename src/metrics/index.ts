import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ServiceState } from '../state/registry.js'

/** The outcome of one reload, kept for the status page and `/metrics`. */
export interface ReloadRecord {
  /** ISO time the reload finished. */
  at: string
  ok: boolean
  /** From writing the configuration until its worker served it (or the failure). */
  ms: number
  error?: string
}

/** What the gauges read when scraped; bound by daemon.ts once everything exists. */
export interface MetricSources {
  state: () => ServiceState
  /** Confirmed reloads since start: the worker generation is this plus one. */
  reloads: () => number
  /** Time (ms since the epoch) of the last applied listener pull; undefined before it. */
  listenerLastSync: () => number | undefined
  /** Saved services HAProxy does not serve (src/apply/unserved.ts). */
  unserved?: () => number
}

/** How a request to the control API ended, for the per-endpoint counters. */
export const outcomeOf = (statusCode: number) => (statusCode < 400 ? 'ok' : statusCode < 500 ? 'refused' : 'failed')

/** The daemon's own figures, exposed in Prometheus format on `/metrics`. */
export function createMetrics() {
  const registry = new Registry()
  let sources: MetricSources | undefined
  let lastReload: ReloadRecord | undefined

  const lastReloadTime = new Gauge({ name: 'dfp_last_reload_timestamp_seconds', help: 'When the last reload finished (Unix time)', registers: [registry] })
  const lastReloadSuccess = new Gauge({ name: 'dfp_last_reload_success', help: '1 when the last reload was served, 0 when it failed', registers: [registry] })
  const metrics = {
    registry,
    reloads: new Counter({ name: 'dfp_reloads_total', help: 'HAProxy reloads that were confirmed', registers: [registry] }),
    reloadFailures: new Counter({
      name: 'dfp_reload_failures_total',
      help: 'Reloads HAProxy could not load (the previous configuration was restored)',
      registers: [registry],
    }),
    reloadDuration: new Histogram({
      name: 'dfp_reload_duration_seconds',
      help: 'Time from writing a configuration until its worker serves it',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    rejected: new Counter({ name: 'dfp_rejected_changes_total', help: 'Changes refused because HAProxy rejected them', registers: [registry] }),
    validationFailures: new Counter({
      name: 'dfp_validation_failures_total',
      help: 'Candidate configurations `haproxy -c` refused (a batch with a bad change is bisected, so one bad change can count several)',
      registers: [registry],
    }),
    runtimeChanges: new Counter({
      name: 'dfp_runtime_changes_total',
      help: 'Changes applied through the HAProxy Runtime API instead of a reload, by kind and outcome',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'dfp_requests_total',
      help: 'Control API requests by endpoint and status code',
      labelNames: ['endpoint', 'code'],
      registers: [registry],
    }),
    reconfigureRequests: new Counter({
      name: 'dfp_reconfigure_requests_total',
      help: 'reconfigure requests by outcome (ok, refused: 4xx, failed: 5xx)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    removeRequests: new Counter({
      name: 'dfp_remove_requests_total',
      help: 'remove requests by outcome (ok, refused: 4xx, failed: 5xx)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    services: new Gauge({ name: 'dfp_services', help: 'Services in the live configuration', registers: [registry] }),
    pendingChanges: new Gauge({ name: 'dfp_pending_changes', help: 'Change requests of the API waiting to be applied (at most MAX_PENDING_CHANGES)', registers: [registry] }),
    haproxyScrapes: new Counter({ name: 'haproxy_exporter_total_scrapes', help: 'Current total HAProxy scrapes.', registers: [registry] }),
    haproxyParseFailures: new Counter({ name: 'haproxy_exporter_csv_parse_failures', help: 'Number of errors while parsing CSV.', registers: [registry] }),

    /** Makes the gauges that read the daemon's state live. */
    bind(bound: MetricSources): void {
      sources = bound
    },

    /** Records a reload's outcome (apply.ts calls it once per reload attempt). */
    recordReload(record: Omit<ReloadRecord, 'at'>): void {
      lastReload = { at: new Date().toISOString(), ...record }
      lastReloadTime.set(Date.now() / 1000)
      lastReloadSuccess.set(record.ok ? 1 : 0)
    },

    /** The last reload, or undefined when none happened since start. */
    get lastReload(): ReloadRecord | undefined {
      return lastReload
    },
  }

  new Gauge({
    name: 'dfp_services_by_mode',
    help: 'Services in the live configuration by the mode of their destinations (a service with http and tcp destinations counts in both)',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      this.reset()
      if (!sources) return
      const counts = new Map<string, number>([
        ['http', 0],
        ['tcp', 0],
        ['sni', 0],
      ])
      for (const service of sources.state().values()) {
        for (const mode of new Set(service.destinations.map((d) => d.reqMode))) counts.set(mode, (counts.get(mode) ?? 0) + 1)
      }
      for (const [mode, count] of counts) this.set({ mode }, count)
    },
  })
  new Gauge({
    name: 'dfp_listener_last_sync_age_seconds',
    help: 'Seconds since services were last pulled from the swarm-listener (NaN before the first pull or without a listener)',
    registers: [registry],
    collect() {
      const at = sources?.listenerLastSync()
      this.set(at === undefined ? Number.NaN : (Date.now() - at) / 1000)
    },
  })
  new Gauge({
    name: 'dfp_services_unserved',
    help: 'Saved services HAProxy does not serve (a port in use, a definition it refuses since the restart); retried until it does',
    registers: [registry],
    collect() {
      this.set(sources?.unserved?.() ?? 0)
    },
  })
  new Gauge({
    name: 'dfp_haproxy_worker_generation',
    help: 'Generation of the HAProxy worker serving traffic: 1 after start, one more per confirmed reload',
    registers: [registry],
    collect() {
      if (sources) this.set(sources.reloads() + 1)
    },
  })
  return metrics
}

export type Metrics = ReturnType<typeof createMetrics>

/**
 * Counts a change made through HAProxy's Runtime API (stats socket) instead of a reload:
 * `kind` says what (`ssl-cert`, `server-addr`, `map`, …), `ok` whether HAProxy took it.
 */
export function countRuntimeChange(metrics: Metrics, kind: string, ok = true): void {
  metrics.runtimeChanges.inc({ kind, outcome: ok ? 'ok' : 'failed' })
}
