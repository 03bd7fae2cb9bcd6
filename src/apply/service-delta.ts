import { wantsAcme } from '../service/acme-request.js'
import { intoSpares, mapAddPayloads, type RuntimeDelta, serverAddressChanges, valueInWorker, type WorkerView } from '../haproxy/runtime-delta.js'
import { type RenderSettings, serviceRouting, type ServiceBackends } from '../render/index.js'
import { type RouteMapName, routeMapPaths, type RouteMaps } from '../render/maps.js'
import type { RuntimeCommand } from '../render/spares.js'
import type { ServiceEntry, ServiceState } from '../state/registry.js'

/** A runtime delta found from the changed services alone. */
export interface ServiceDelta extends Omit<RuntimeDelta, 'worker'> {
  /** A backend of the file changed (new, or a server address): the next reload validates first. */
  backendsChanged: boolean
  /**
   * The worker once the commands are applied. The view planned from is changed in place when
   * it owns its collections (else they are copied first, once): no copy of 10 000 entries per change.
   */
  commit(): WorkerView
}

/** A worker view whose collections are its own, so a delta may change them in place. */
interface OwnedView extends WorkerView {
  backends: Map<string, ServiceBackends>
  maps: RouteMaps
  freeSpares: string[]
  aliases: Map<string, string>
}

const owned = new WeakSet<WorkerView>()

function ownedView(view: WorkerView): OwnedView {
  if (owned.has(view)) return view as OwnedView
  const copy: OwnedView = {
    ...view,
    backends: new Map(view.backends),
    maps: { hostPath: new Map(view.maps.hostPath), path: new Map(view.maps.path) },
    freeSpares: [...view.freeSpares],
    aliases: new Map(view.aliases),
  }
  owned.add(copy)
  return copy
}

const MAP_NAMES: readonly RouteMapName[] = ['hostPath', 'path']

/**
 * The Runtime API commands that make the running worker serve `after`, computed from the
 * services of the batch (`names`) alone, so a change costs the same at 10 000 services as at 10:
 * no rendering of the whole configuration, no comparison of every backend and map entry.
 *
 * It answers only when it can tell from those services that nothing else of the configuration
 * changes — every version of each (before and after) is map-routed, is not the default backend,
 * asks for no ACME certificate, and its map keys are claimed by no other service (whose order
 * would decide who wins them) — and then gives the same commands as the whole comparison
 * (src/haproxy/runtime-delta.ts). Otherwise undefined, and the caller renders everything.
 * `claims(map, key)` counts the services of `before` that claim a key (src/apply/state-index.ts).
 */
export function planServiceDelta(
  worker: WorkerView,
  before: ServiceState,
  after: ServiceState,
  names: ReadonlySet<string>,
  settings: RenderSettings,
  claims: (map: RouteMapName, key: string) => number,
): ServiceDelta | undefined {
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
  if (!worker.generalLookup && [...wanted.hostPath.values()].some((value) => value !== null)) return undefined
  // `frontend services` binds its ports while it has an http service or none at all (src/render/index.ts).
  if (!bindsHttp(before) || !bindsHttp(after)) return undefined

  // The spares this batch takes, and the backends they take (besides the worker's).
  const free = [...worker.freeSpares]
  const aliases = new Map<string, string>()
  const alias = (backend: string) => aliases.get(backend) ?? worker.aliases.get(backend)
  const servers: RuntimeCommand[] = []
  let backendsChanged = false
  let added = 0
  for (const [name, text] of next) {
    const running = worker.backends.get(name)
    if (running === undefined) added++
    if (running?.text === text.text) continue
    backendsChanged = true
    if (running === undefined) {
      const added = intoSpares(text, worker.plainShape, free, aliases)
      if (!added) return undefined
      servers.push(...added)
      continue
    }
    const moved = serverAddressChanges(running, text, { get: alias })
    if (!moved) return undefined
    servers.push(...moved)
  }

  const files = routeMapPaths(settings.CONFIG_DIR)
  const adds: string[] = []
  const sets: string[] = []
  const dels: string[] = []
  const mapChanges: Array<[RouteMapName, string, string | null]> = []
  for (const map of MAP_NAMES) {
    const newEntries: string[] = []
    for (const [key, value] of wanted[map]) {
      const old = worker.maps[map].get(key)
      if (value === null) {
        if (old !== undefined) dels.push(`del map ${files[map]} ${key}`)
        mapChanges.push([map, key, null])
        continue
      }
      const target = valueInWorker(value, alias)
      if (old === undefined) newEntries.push(`${key} ${target}`)
      else if (old !== target) sets.push(`set map ${files[map]} ${key} ${target}`)
      mapChanges.push([map, key, target])
    }
    adds.push(...mapAddPayloads(files[map], newEntries))
  }
  const backendCount = worker.backends.size + added
  const usedSpares = worker.aliases.size + aliases.size > 0
  return {
    // New routes first and removed ones last, so a moved route never has a gap.
    commands: [...servers, ...adds, ...sets, ...dels],
    leftovers: backendCount > after.size,
    usedSpares,
    backendsChanged,
    commit: () => {
      const view = ownedView(worker)
      for (const [name, text] of next) view.backends.set(name, text)
      for (const [backend, spare] of aliases) view.aliases.set(backend, spare)
      view.freeSpares.splice(0, worker.freeSpares.length - free.length)
      for (const [map, key, value] of mapChanges) {
        if (value === null) view.maps[map].delete(key)
        else view.maps[map].set(key, value)
      }
      return view
    },
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

const bindsHttp = (state: ServiceState) => {
  if (state.size === 0) return true
  for (const service of state.values()) if (service.destinations.some((d) => d.reqMode === 'http')) return true
  return false
}
