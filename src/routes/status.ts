import type { FastifyInstance } from 'fastify'
import type { ConfigApplier } from '../haproxy/apply.js'
import { parseStats, showStat, type StatRow } from '../haproxy/stats.js'
import type { Metrics } from '../metrics/index.js'
import { statusPage } from '../status/page.js'
import { buildStatusReport, type StatusReport } from '../status/report.js'
import type { ListenerSync } from '../swarm/listener.js'
import { requestParams } from './request-params.js'

export interface StatusRoutesOptions {
  applier: ConfigApplier
  metrics: Metrics
  listener: ListenerSync
}

/** Seconds between two refreshes of the status page. */
const REFRESH_SECONDS = 5

/**
 * `/status`: the status page for people (HTML); `/status?type=json` and `/status.json`: the same
 * data for scripts. Read-only.
 */
export async function statusRoutes(app: FastifyInstance, { applier, metrics, listener }: StatusRoutesOptions): Promise<void> {
  async function report(): Promise<StatusReport> {
    let stats: StatRow[] | undefined
    let statsError: string | undefined
    try {
      stats = parseStats(await showStat(applier.master.statsSocket))
    } catch (err) {
      statsError = (err as Error).message
    }
    return buildStatusReport({
      entries: applier.services.list(),
      stats,
      ...(statsError ? { statsError } : {}),
      masterPid: applier.master.pid,
      reloads: applier.reloads,
      lastReload: metrics.lastReload,
      listener: { addresses: listener.addresses, ready: listener.ready, lastSync: listener.lastSync },
    })
  }

  app.get('/status', async (request, reply) => {
    const type = (requestParams(request).type ?? '').toLowerCase()
    if (type === 'json') return report()
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(REFRESH_SECONDS))
  })
  app.get('/status.json', async () => report())
}
