import type { FastifyInstance } from 'fastify'
import type { AcmeManager } from '../acme/manager.js'
import type { ApplyCore } from '../apply/core.js'
import type { HaproxyClient } from '../haproxy/client.js'
import { parseStats, type StatRow } from '../haproxy/stats.js'
import type { Metrics } from '../metrics/index.js'
import { statusPage } from '../status/page.js'
import { buildStatusReport, type StatusReport } from '../status/report.js'
import type { LiveState } from '../state/live.js'
import type { ListenerSync } from '../swarm/listener.js'
import { requestParams } from './request-params.js'

export interface StatusRoutesOptions {
  applier: ApplyCore
  live: LiveState
  haproxy: HaproxyClient
  metrics: Metrics
  listener: ListenerSync
  acme: Pick<AcmeManager, 'status'>
}

/** Seconds between two refreshes of the status page. */
const REFRESH_SECONDS = 5

/**
 * `/status`: the status page for people (HTML); `/status?type=json` and `/status.json`: the same
 * data for scripts. Read-only.
 */
export async function statusRoutes(app: FastifyInstance, { applier, live, haproxy, metrics, listener, acme }: StatusRoutesOptions): Promise<void> {
  async function report(): Promise<StatusReport> {
    let stats: StatRow[] | undefined
    let statsError: string | undefined
    try {
      stats = parseStats(await haproxy.stats())
    } catch (err) {
      statsError = (err as Error).message
    }
    return buildStatusReport({
      entries: live.services.list(),
      unserved: [...live.unserved].map(([serviceName, { reason, since }]) => ({ serviceName, reason, since })),
      stats,
      ...(statsError ? { statsError } : {}),
      masterPid: haproxy.masterPid,
      reloads: applier.reloads,
      lastReload: metrics.lastReload,
      listener: { addresses: listener.addresses, ready: listener.ready, lastSync: listener.lastSync },
      acme: acme.status(),
    })
  }

  app.get('/status', async (request, reply) => {
    const type = (requestParams(request).type ?? '').toLowerCase()
    if (type === 'json') return report()
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(REFRESH_SECONDS))
  })
  app.get('/status.json', async () => report())
}
