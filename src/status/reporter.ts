import type { AcmeManager } from '../acme/manager.js'
import { messageOf } from '../errors.js'
import type { HaproxyClient } from '../haproxy/client.js'
import { parseStats, showStatOf, type StatRow } from '../haproxy/stats.js'
import type { Metrics } from '../metrics/index.js'
import { destinationBackends } from '../render/index.js'
import type { ServiceEntry } from '../state/registry.js'
import type { LiveState } from '../state/live.js'
import type { ListenerSync } from '../swarm/listener.js'
import { buildStatusReport, matchesQuery, type Paging, type StatusReport } from './report.js'
import { TrafficRates } from './traffic.js'

/** One page of the services matching `query` (lowercase; empty: all of them). */
export interface PageRequest {
  query: string
  page: number
  perPage: number
}

/** Where the status report reads from; each is read when a report is asked for. */
export interface StatusSources {
  live: LiveState
  haproxy: Pick<HaproxyClient, 'statsSocket' | 'stats' | 'masterPid'>
  metrics: Pick<Metrics, 'lastReload'>
  listener: Pick<ListenerSync, 'addresses' | 'ready' | 'lastSync'>
  acme: Pick<AcmeManager, 'status'>
  /** The apply core: its reload count, and the spare backends services were made live in. */
  applier: { readonly reloads: number; readonly spareAliases: ReadonlyMap<string, string> }
}

/**
 * The data of `/status`: the services (one page of them when asked), their statistics from
 * HAProxy, the traffic rates between two reports, and the state of reloads, listener and ACME.
 * It keeps the traffic samples of the backends it reported, pruned to the services there are.
 */
export class StatusReporter {
  private readonly rates = new TrafficRates()

  constructor(private readonly sources: StatusSources) {}

  /**
   * The whole report, or with `wanted` one page of it; then HAProxy is asked for the statistics
   * of that page's backends only, so a page costs the same at 10 000 services as at 10.
   */
  async report(wanted?: PageRequest): Promise<StatusReport> {
    const { live, haproxy, metrics, listener, acme, applier } = this.sources
    const all = live.services.list()
    let entries = all
    let paging: Paging | undefined
    if (wanted) {
      const matching = wanted.query === '' ? all : all.filter((entry) => matchesQuery(entry, wanted.query))
      const page = Math.min(wanted.page, Math.max(1, Math.ceil(matching.length / wanted.perPage)))
      entries = matching.slice((page - 1) * wanted.perPage, page * wanted.perPage)
      paging = { query: wanted.query, page, perPage: wanted.perPage, matched: matching.length, total: all.length }
    }
    let stats: StatRow[] | undefined
    let statsError: string | undefined
    try {
      stats = await this.statistics(wanted ? entries : undefined)
    } catch (err) {
      statsError = messageOf(err)
    }
    const traffic = this.rates.read(stats ?? [])
    if (this.rates.size > 2 * all.length + 100) this.rates.keepOnly(new Set(backendsOf(all)))
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

  /** The statistics rows of `entries`' backends (all of HAProxy's when undefined), under their own names. */
  private async statistics(entries: readonly ServiceEntry[] | undefined): Promise<StatRow[]> {
    const { haproxy, applier } = this.sources
    // A service made live in a spare backend has its statistics there until the catch-up reload.
    const aliases = applier.spareAliases
    const ownName = new Map([...aliases].map(([own, spare]) => [spare, own]))
    const rows = entries ? await showStatOf(haproxy.statsSocket, backendsOf(entries).map((name) => aliases.get(name) ?? name)) : parseStats(await haproxy.stats())
    if (ownName.size === 0) return rows
    return rows.map((row) => {
      const own = row.pxname === undefined ? undefined : ownName.get(row.pxname)
      return own === undefined ? row : { ...row, pxname: own }
    })
  }
}

/** The backend names of `entries`' destinations. */
const backendsOf = (entries: readonly ServiceEntry[]) => entries.flatMap(({ service }) => service.destinations.flatMap((dest) => destinationBackends(service, dest)))
