import type { FastifyInstance } from 'fastify'
import type { AcmeManager } from '../acme/manager.js'
import type { ApplyCore } from '../apply/core.js'
import { errors, messageOf } from '../errors.js'
import type { HaproxyClient } from '../haproxy/client.js'
import { parseStats, showStatOf, type StatRow } from '../haproxy/stats.js'
import type { Metrics } from '../metrics/index.js'
import { destinationBackends } from '../render/index.js'
import { statusPage } from '../status/page.js'
import { buildStatusReport, matchesQuery, type Paging, type StatusReport } from '../status/report.js'
import { TrafficRates } from '../status/traffic.js'
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
const MAX_PER_PAGE = 500
const DEFAULT_PER_PAGE = 50
const MAX_PAGE = 1_000_000
const MAX_QUERY = 200

/** `q`, `page` and `perPage` of a status request; undefined when none is given (everything). */
function pagingOf(params: Record<string, string>): { query: string; page: number; perPage: number } | undefined {
  const { q, page, perPage } = params
  if (q === undefined && page === undefined && perPage === undefined) return undefined
  const whole = (name: string, value: string | undefined, fallback: number, max: number) => {
    if (value === undefined) return fallback
    if (!/^\d{1,7}$/.test(value) || Number(value) < 1 || Number(value) > max) throw errors.invalidParameter(name, `must be a whole number from 1 to ${max}, not ${JSON.stringify(value.slice(0, 40))}`)
    return Number(value)
  }
  if ((q ?? '').length > MAX_QUERY) throw errors.invalidParameter('q', `must be at most ${MAX_QUERY} characters long`)
  return { query: (q ?? '').trim().toLowerCase(), page: whole('page', page, 1, MAX_PAGE), perPage: whole('perPage', perPage, DEFAULT_PER_PAGE, MAX_PER_PAGE) }
}

/**
 * `/status`: the status page for people (HTML); `/status?type=json` and `/status.json`: the same
 * data for scripts. Read-only. With `q`, `page` or `perPage` the JSON holds one page of the
 * services matching `q`, and HAProxy is asked for the statistics of that page's backends only,
 * so a page costs the same at 10 000 services as at 10.
 */
export async function statusRoutes(app: FastifyInstance, { applier, live, haproxy, metrics, listener, acme }: StatusRoutesOptions): Promise<void> {
  const rates = new TrafficRates()

  async function report(params: Record<string, string>): Promise<StatusReport> {
    const wanted = pagingOf(params)
    const all = live.services.list()
    let entries = all
    let paging: Paging | undefined
    if (wanted) {
      const matching = wanted.query === '' ? all : all.filter((entry) => matchesQuery(entry, wanted.query))
      const page = Math.min(wanted.page, Math.max(1, Math.ceil(matching.length / wanted.perPage)))
      entries = matching.slice((page - 1) * wanted.perPage, page * wanted.perPage)
      paging = { query: wanted.query, page, perPage: wanted.perPage, matched: matching.length, total: all.length }
    }
    const backendsOf = (list: typeof all) => list.flatMap(({ service }) => service.destinations.flatMap((dest) => destinationBackends(service, dest)))
    let stats: StatRow[] | undefined
    let statsError: string | undefined
    try {
      // A service made live in a spare backend has its statistics there until the catch-up reload.
      const aliases = applier.spareAliases
      const ownName = new Map([...aliases].map(([own, spare]) => [spare, own]))
      const rows = wanted ? await showStatOf(haproxy.statsSocket, backendsOf(entries).map((name) => aliases.get(name) ?? name)) : parseStats(await haproxy.stats())
      stats = ownName.size === 0 ? rows : rows.map((row) => (row.pxname !== undefined && ownName.has(row.pxname) ? { ...row, pxname: ownName.get(row.pxname) as string } : row))
    } catch (err) {
      statsError = messageOf(err)
    }
    const traffic = rates.read(stats ?? [])
    if (rates.size > 2 * all.length + 100) rates.keepOnly(new Set(backendsOf(all)))
    return buildStatusReport({
      entries,
      unserved: [...live.unserved].map(([serviceName, { reason, since }]) => ({ serviceName, reason, since })),
      stats,
      ...(statsError ? { statsError } : {}),
      masterPid: haproxy.masterPid,
      reloads: applier.reloads,
      lastReload: metrics.lastReload,
      listener: { addresses: listener.addresses, ready: listener.ready, lastSync: listener.lastSync },
      acme: acme.status(),
      traffic,
      ...(paging ? { paging } : {}),
    })
  }

  app.get('/status', async (request, reply) => {
    const params = requestParams(request)
    if ((params.type ?? '').toLowerCase() === 'json') return report(params)
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(REFRESH_SECONDS))
  })
  app.get('/status.json', async (request) => report(requestParams(request)))
}
