import { join } from 'node:path'
import { runtimeWordProblem } from '../haproxy-text.js'
import type { Destination, Service } from '../service/types.js'

/**
 * Map routing (issue 6). Services whose rules are plain path prefixes and/or exact domains are
 * routed by two HAProxy maps instead of one ACL block each, so the configuration, `haproxy -c`
 * and per-request routing stay fast at 10 000 services, and their routes can be changed
 * through the Runtime API (`add map`/`set map`/`del map`) without a reload:
 *
 * - `host-path.map`: `<lowercase host><path prefix> <path length>:<backend>`, looked up with
 *   `map_beg` on the request's host (lowercased, `:port` removed) followed by its path;
 * - `path.map`: `<path prefix> <path length>:<backend>`, looked up with `map_beg` on the path.
 *
 * `map_beg` indexes its keys in a prefix tree and returns the LONGEST matching prefix
 * (configuration.txt 7.3.1 "map_beg"; measured on HAProxy 2.6). Both maps are looked up; the
 * longer matching path wins, and on equal length the entry naming the request's domain.
 */

/** The two route maps: key → backend name, in the order they are written. */
export interface RouteMaps {
  // Values are `<path length>:<backend>`.
  hostPath: Map<string, string>
  path: Map<string, string>
}

export type RouteMapName = keyof RouteMaps

/** Where HAProxy reads the route maps (the files are the source of truth, written atomically). */
export const routeMapPaths = (configDir: string): Record<RouteMapName, string> => ({
  hostPath: join(configDir, 'maps', 'host-path.map'),
  path: join(configDir, 'maps', 'path.map'),
})

/** The map file text: one `key value` line per entry. */
export const mapFileText = (map: ReadonlyMap<string, string>) => [...map].map(([key, value]) => `${key} ${value}\n`).join('')

/**
 * How `frontend services` looks the maps up, the cheapest way that is still correct for the
 * services configured (docs/performance.md "Per-request cost"):
 * - `path`: no map-routed service has a domain (`host-path.map` is empty), so one `map_beg` on
 *   the path is the whole rule, inside the `use_backend` itself;
 * - `host-path`: both maps are looked up and the longer matching path wins (a chain of
 *   `set-var`s, about 0.5 µs a request on this machine against under 0.1 µs for `path`).
 * The style is part of the frame. A worker running `host-path` routes any maps, so only the
 * first domain entry needs a reload (`Rendered.generalFrame`), not the removal of the last one.
 */
export type MapLookupStyle = 'path' | 'host-path'

export const mapLookupStyle = (maps: RouteMaps): MapLookupStyle => (maps.hostPath.size > 0 ? 'host-path' : 'path')

/**
 * The `frontend services` lines that set `txn.dfp_backend` from the maps (placed before any
 * `use_backend`, as HAProxy evaluates every `http-request` rule first anyway). `rulesAfter`:
 * ACL rules follow the map rule, so a request the maps do not route must reach them.
 */
export function mapLookupLines(files: Record<RouteMapName, string>, style: MapLookupStyle, rulesAfter: boolean): string[] {
  if (style === 'path') return rulesAfter ? [`http-request set-var(txn.dfp_backend) path,map_beg(${files.path}),field(2,:)`] : []
  return [
    'http-request set-var(txn.dfp_path) path',
    `http-request set-var(txn.dfp_by_host) req.hdr(host),lower,field(1,:),concat(,txn.dfp_path,),map_beg(${files.hostPath})`,
    `http-request set-var(txn.dfp_by_path) path,map_beg(${files.path})`,
    'http-request set-var(txn.dfp_host_len) var(txn.dfp_by_host),field(1,:)',
    'http-request set-var(txn.dfp_backend) var(txn.dfp_by_host),field(2,:)',
    // the path-only entry wins when there is no domain entry or when its path is longer
    'http-request set-var(txn.dfp_backend) var(txn.dfp_by_path),field(2,:) if !{ var(txn.dfp_by_host) -m found } || { var(txn.dfp_by_path),field(1,:),sub(txn.dfp_host_len) -m int gt 0 }',
  ]
}

/**
 * The rule that sends a request to the backend the maps found. Without a condition, a name that
 * is empty or no backend's makes HAProxy stop evaluating `use_backend` rules and take the
 * `default_backend` (stream.c, process_switching_rules) — what a request no rule routes gets.
 */
export function mapUseBackendLine(files: Record<RouteMapName, string>, style: MapLookupStyle, rulesAfter: boolean): string {
  if (style === 'path' && !rulesAfter) return `%[path,map_beg(${files.path}),field(2,:)]`
  return '%[var(txn.dfp_backend)] if { var(txn.dfp_backend) -m found }'
}

/** The domain algorithms whose meaning a map keyed by the exact host keeps (see docs/usage.md). */
const MAP_DOMAIN_ALGOS = new Set(['hdr_beg(host)', 'hdr(host)'])

// Keys are single words of a map file and of a Runtime API command line (haproxy-text.ts
// runtimeWordProblem: no blanks, `;`, `#`, quotes, backslashes, `<`/`>` — `<<` opens a payload).
// Other paths are routed by ACLs, where they are written as data.
const SAFE_PATH = /^\/[\x21-\x7e]*$/
const runtimeSafe = (key: string) => runtimeWordProblem(key) === undefined
const SAFE_NAME = /^[A-Za-z0-9._-]+$/
const SAFE_DOMAIN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/

/**
 * How each field of a destination may look for the destination to be map-routed. This is a
 * WHITELIST: a field that is not listed here (one added later, say) keeps its service on ACL
 * routing as soon as it holds anything but an empty value (undefined, false, '', [], {}).
 * `true` marks fields that only shape the backend and so never matter to routing.
 */
const DESTINATION_FIELDS: Record<string, true | ((dest: Destination) => boolean)> = {
  index: true,
  port: true,
  reqMode: (d) => d.reqMode === 'http',
  srcPort: (d) => d.srcPort === undefined,
  servicePath: (d) => d.servicePath.length > 0 && d.servicePath.every((p) => SAFE_PATH.test(p) && runtimeSafe(p)),
  pathType: (d) => d.pathType === 'path_beg',
  servicePathExclude: (d) => d.servicePathExclude.length === 0,
  serviceDomain: (d) => d.serviceDomain.every((domain) => SAFE_DOMAIN.test(domain)),
  outboundHostname: true,
  reqPathSearchReplace: true,
  timeoutServer: true,
  timeoutTunnel: true,
  httpsOnly: true,
  httpsRedirectCode: true,
  allowedMethods: true,
  deniedMethods: true,
  denyHttp: true,
  ignoreAuthorization: true,
  sslVerifyNone: true,
  verifyClientSsl: true,
  userDef: true,
}

/** The same whitelist for the service-level fields (`destinations` is checked one by one). */
const SERVICE_FIELDS: Record<string, true | ((service: Service, domainAlgo: string) => boolean)> = {
  serviceName: true,
  // Part of the backend names in map values (`<length>:<backend>`, split at the `:`).
  aclName: (s) => SAFE_NAME.test(s.aclName),
  // A service that names its algorithm keeps it, on ACLs (`serviceDomainAlgo=hdr_beg(host)` is
  // how a service keeps the original's host-prefix matching, docs/usage.md).
  serviceDomainAlgo: (s, algo) =>
    (s.serviceDomainAlgo === undefined && MAP_DOMAIN_ALGOS.has(algo)) || s.destinations.every((d) => d.serviceDomain.length === 0),
  // default_backend is a line of its own, independent of the rules.
  isDefaultBackend: true,
  redirectWhenHttpProto: (s) => !s.redirectWhenHttpProto,
  reqPathSearch: true,
  reqPathReplace: true,
  headers: true,
  connectionMode: true,
  backendExtra: true,
  users: true,
  compressionAlgo: true,
  compressionType: true,
  checkResolvers: true,
  // DNS discovery and sticky sessions change the server lines only.
  discoveryType: true,
  replicas: true,
  sessionType: true,
  // Weights and colours change the server lines only (a shared route: src/render/shared-routes.ts).
  weight: true,
  serviceColor: true,
  proxyInstanceName: true,
  userDef: true,
  destinations: true,
}

const isEmptyValue = (value: unknown): boolean => {
  if (value === undefined || value === null || value === false || value === '') return true
  if (Array.isArray(value)) return value.length === 0
  if (typeof value === 'object') return Object.values(value as object).every(isEmptyValue)
  return false
}

// Every rule runs (a field may be absent, as an optional one is when not given), and every
// field without a rule must be empty.
const fieldsPass = <T extends object>(object: T, rules: Record<string, true | ((o: T) => boolean)>): boolean =>
  Object.values(rules).every((rule) => rule === true || rule(object)) &&
  Object.entries(object).every(([field, value]) => field in rules || isEmptyValue(value))

/**
 * Whether a service is routed by the maps: it has at least one http destination with a port,
 * and every such destination, and the service itself, pass the whitelist above. Destinations
 * without a port route nothing and are ignored. `domainAlgo` is SERVICE_DOMAIN_ALGO.
 */
export function isMapRouted(service: Service, domainAlgo: string): boolean {
  const routed = service.destinations.filter((d) => d.port !== '')
  if (routed.length === 0) return false
  if (!routed.every((d) => fieldsPass(d, DESTINATION_FIELDS))) return false
  return (
    Object.values(SERVICE_FIELDS).every((rule) => rule === true || rule(service, domainAlgo)) &&
    Object.entries(service).every(([field, value]) => field in SERVICE_FIELDS || isEmptyValue(value))
  )
}

/** One service's map entries, in its order: `[map, key, value]`. */
export type RouteEntry = readonly [RouteMapName, string, string]

/** The entries a map-routed service puts in the maps (they depend on the service alone). */
export function serviceRouteEntries(service: Service, backend: (dest: Destination) => string): RouteEntry[] {
  const entries: RouteEntry[] = []
  for (const dest of service.destinations) {
    if (dest.port === '') continue
    for (const path of dest.servicePath) {
      const value = `${Buffer.byteLength(path)}:${backend(dest)}`
      if (dest.serviceDomain.length === 0) entries.push(['path', path, value])
      for (const domain of dest.serviceDomain) entries.push(['hostPath', `${domain.toLowerCase()}${path}`, value])
    }
  }
  return entries
}

/** The maps of services' entries given in frontend order: the first to claim a key keeps it. */
export function mergeRouteEntries(services: Iterable<readonly RouteEntry[]>): RouteMaps {
  const maps: RouteMaps = { hostPath: new Map(), path: new Map() }
  for (const entries of services) {
    for (const [name, key, value] of entries) if (!maps[name].has(key)) maps[name].set(key, value)
  }
  return maps
}

/** The map files of `maps` at their live paths, or at `paths` (a candidate's copies). */
export const routeMapFiles = (configDir: string, maps: RouteMaps, paths = routeMapPaths(configDir)) => {
  return (Object.keys(paths) as RouteMapName[]).map((name) => ({ path: paths[name], content: mapFileText(maps[name]) }))
}
