import { Gauge, type Registry } from 'prom-client'
import type { AcmeManager } from './manager.js'

/**
 * ACME figures on `/metrics`, read from the manager at each scrape: orders by outcome, and per
 * requested certificate its expiry, next planned action and consecutive failures.
 */
export function registerAcmeMetrics(registry: Registry, acme: AcmeManager): void {
  new Gauge({
    name: 'dfp_acme_orders_total',
    help: 'ACME orders this replica sent since start, by outcome (issued, failed)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.set({ outcome: 'issued' }, acme.orders.issued)
      this.set({ outcome: 'failed' }, acme.orders.failed)
    },
  })
  const perCertificate = (name: string, help: string, value: (s: ReturnType<AcmeManager['status']>[number]) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['domains'],
      registers: [registry],
      collect() {
        this.reset()
        for (const status of acme.status()) {
          const v = value(status)
          if (v !== undefined) this.set({ domains: status.domains.join(',') }, v)
        }
      },
    })
  perCertificate('dfp_acme_certificate_expiry_timestamp_seconds', 'When the served ACME certificate expires (Unix time)', (s) => (s.certificate ? s.certificate.notAfter / 1000 : undefined))
  perCertificate('dfp_acme_next_attempt_timestamp_seconds', 'When dfp next renews, retries or checks the certificate (Unix time)', (s) => (s.nextAttemptAt === undefined ? undefined : s.nextAttemptAt / 1000))
  perCertificate('dfp_acme_consecutive_failures', 'Failed orders in a row for the certificate (0 once issued)', (s) => s.failures)
}
