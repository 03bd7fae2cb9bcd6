import { wantsAcme } from '../acme/request.js'
import { mapAddPayloads, type RuntimeDelta, serverAddressChanges, type WorkerView } from '../haproxy/runtime-delta.js'
import { type RenderSettings, serviceRouting, type ServiceBackends } from '../render/index.js'
import { type RouteMapName, routeMapPaths, type RouteMaps } from '../render/maps.js'
import { plainBackends, spareCommands } from '../render/spares.js'
import type { ServiceEntry, ServiceState } from '../state/registry.js'

/** A runtime delta found from the changed services alone. */
export interface ServiceDelta extends RuntimeDelta {
  /** A backend of the file changed (new, or a server address): the next reload validates first. */
  backendsChanged: boolean
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

  const backends = new Map(worker.backends)
  const aliases = new Map(worker.aliases)
  const free = [...worker.freeSpares]
  const servers: string[] = []
  let backendsChanged = false
  for (const [name, text] of next) {
    const running = worker.backends.get(name)
    backends.set(name, text)
    if (running?.text === text.text) continue
    backendsChanged = true
    if (running === undefined) {
      // A new service: into spares when it is plain and enough are left, else a reload.
      const plain = plainBackends(text.text, worker.plainShape)
      if (!plain || plain.length > free.length) return undefined
      for (const backend of plain) {
        const spare = free.shift() as string
        aliases.set(backend.backend, spare)
        servers.push(...spareCommands(spare, backend))
      }
      continue
    }
    const moved = serverAddressChanges(running, text, aliases)
    if (!moved) return undefined
    servers.push(...moved)
  }

  // Map values are `<length>:<backend>`; the worker's name the spare a backend lives in.
  const inWorker = (value: string) => {
    const colon = value.indexOf(':')
    const alias = aliases.get(value.slice(colon + 1))
    return alias === undefined ? value : `${value.slice(0, colon + 1)}${alias}`
  }
  const files = routeMapPaths(settings.CONFIG_DIR)
  const maps: RouteMaps = { hostPath: worker.maps.hostPath, path: worker.maps.path }
  const adds: string[] = []
  const sets: string[] = []
  const dels: string[] = []
  for (const map of MAP_NAMES) {
    if (wanted[map].size === 0) continue
    const entries = new Map(worker.maps[map])
    const added: string[] = []
    for (const [key, value] of wanted[map]) {
      const old = entries.get(key)
      if (value === null) {
        if (old !== undefined) dels.push(`del map ${files[map]} ${key}`)
        entries.delete(key)
        continue
      }
      const target = inWorker(value)
      if (old === undefined) added.push(`${key} ${target}`)
      else if (old !== target) sets.push(`set map ${files[map]} ${key} ${target}`)
      entries.set(key, target)
    }
    adds.push(...mapAddPayloads(files[map], added))
    maps[map] = entries
  }
  return {
    // New routes first and removed ones last, so a moved route never has a gap.
    commands: [...servers, ...adds, ...sets, ...dels],
    worker: { ...worker, backends, maps, freeSpares: free, aliases },
    leftovers: backends.size > after.size,
    usedSpares: aliases.size > 0,
    backendsChanged,
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
