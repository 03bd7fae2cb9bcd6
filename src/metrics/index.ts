import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The daemon's own figures, exposed in Prometheus format on `/metrics`. */
export function createMetrics() {
  const registry = new Registry()
  return {
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
    requests: new Counter({
      name: 'dfp_requests_total',
      help: 'Control API requests by endpoint and status code',
      labelNames: ['endpoint', 'code'],
      registers: [registry],
    }),
    services: new Gauge({ name: 'dfp_services', help: 'Services in the live configuration', registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
