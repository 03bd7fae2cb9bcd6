import { wantsAcme } from '../service/acme-request.js'
import { type RenderSettings, serviceRouting, type ServiceBackends } from '../render/index.js'
import type { RouteMapName } from '../render/maps.js'
import type { ServiceEntry, ServiceState } from '../state/registry.js'
import type { RuntimeDelta } from './runtime-plan.js'
import { diffBackends, diffMaps, type WorkerView } from './worker-view.js'

/**
 * The Runtime API commands that make the running worker serve `after`, computed from the
 * services of the batch (`names`) alone, so a change costs the same at 10 000 services as at 10:
 * no rendering of the whole configuration, no comparison of every backend and map entry.
 *
 * It answers only when it can tell from those services that nothing else of the configuration
 * changes — every version of each (before and after) is map-routed, is not the default backend,
 * asks for no ACME certificate, and its map keys are claimed by no other service (whose order
 * would decide who wins them) — and then gives the same commands as the whole comparison
 * (src/apply/runtime-plan.ts), through the same diff (src/apply/worker-view.ts). Otherwise undefined, and the caller renders everything.
 * `claims(map, key)` counts the services of `before` that claim a key (src/apply/state-index.ts).
 */
export function planServiceDelta(
  view: WorkerView,
  before: ServiceState,
  after: ServiceState,
  names: ReadonlySet<string>,
  settings: RenderSettings,
  claims: (map: RouteMapName, key: string) => number,
): RuntimeDelta | undefined {
  const routing = (entry: ServiceEntry | undefined) => (entry ? serviceRouting(entry.service, settings) : undefined)
  // Keys the batch's services claim before and after: map → key → value (after) or null (before only).
  const wanted: Record<RouteMapName, Map<string, string | null>> = { hostPath: new Map(), path: new Map() }
  const next = new Map<string, ServiceBackends>()
  for (const name of names) {
    const old = before.entryMap.get(name)
    const now = after.entryMap.get(name)
    for (const entry of [old, now]) if (entry && !frameNeutral(entry, settings)) return undefined
    for (const [map, key] of routing(old)?.routeEntries ?? []) {
      if (claims(map, key) > 1) return undefined
      if (!wanted[map].has(key)) wanted[map].set(key, null)
    }
    const current = routing(now)
    if (!current) continue
    const own = new Set<string>()
    for (const [map, key, value] of current.routeEntries) {
      // A service's first entry for a key is its own; another changed service's is a conflict.
      if (own.has(`${map} ${key}`)) continue
      own.add(`${map} ${key}`)
      if (typeof wanted[map].get(key) === 'string') return undefined
      const claimedBefore = claims(map, key) - (routing(old)?.routeEntries.some(([m, k]) => m === map && k === key) ? 1 : 0)
      if (claimedBefore > 0) return undefined
      wanted[map].set(key, value)
    }
    next.set(name, current.backends)
  }
  // The first domain entry changes the lookup of a worker that looks up paths only.
  if (!view.generalLookup && [...wanted.hostPath.values()].some((value) => value !== null)) return undefined
  // `frontend services` binds its ports while it has an http service or none at all (src/render/index.ts).
  if (!bindsHttp(before) || !bindsHttp(after)) return undefined

  const backends = diffBackends(view, next)
  if (!backends) return undefined
  const maps = diffMaps(view, { hostPath: wanted.hostPath, path: wanted.path }, backends.alias, settings.CONFIG_DIR)
  return {
    commands: [...backends.commands, ...maps.commands],
    changes: { backends: backends.backends, aliases: backends.aliases, sparesTaken: backends.sparesTaken, maps: maps.changes },
    leftovers: view.backends.size + backends.added > after.size,
    usedSpares: view.aliases.size + backends.aliases.size > 0,
    backendsChanged: backends.changed,
  }
}

/**
 * Whether a version of a service leaves everything of the configuration but its backends and
 * its map entries as it is: it is map-routed (so it has no rule in `frontend services`), binds
 * no port of its own, is not the default backend, and asks for no ACME certificate (the
 * challenge rule comes with the first such service).
 */
function frameNeutral(entry: ServiceEntry, settings: RenderSettings): boolean {
  const { service } = entry
  return (
    serviceRouting(service, settings).mapRouted &&
    !service.isDefaultBackend &&
    service.destinations.every((d) => d.reqMode === 'http' && d.srcPort === undefined && d.srcHttpsPort === undefined) &&
    !wantsAcme(entry.params)
  )
}

const bindsHttp = (state: ServiceState) => state.size === 0 || state.hasHttp
