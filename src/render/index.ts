import { createHash } from 'node:crypto'
import { compact } from '../compact.js'
import { challengeMapPath } from '../config-paths.js'
import type { Service } from '../service/types.js'
import { renderServiceBackends, type ServiceBackends, userLines } from './backends.js'
import { byteCompare, commaList, debugOptions, type RenderSettings, type RenderState, serverStatePath, statsSocketPath, templates, VERSION_PREFIX } from './common.js'
import { renderCrtList, sslBindOptions } from './crt-list.js'
import { frontendRank, ownStatsPort, serviceFrontend, statsLines } from './frontend.js'
import { isMapRouted, mergeRouteEntries, type RouteEntry, serviceRouteEntries, mapLookupLines, mapLookupStyle, mapUseBackendLine, type MapLookupStyle, routeMapPaths, type RouteMapName, type RouteMaps } from './maps.js'
import { sharedRoutes } from './shared-routes.js'
import { renderSpares, spareCount, type SpareTexts } from './spares.js'
import { backendName, GLOBAL_USERLIST } from './names.js'
import { renderTcpFrontends, renderSniFrontends, renderTcpGroups, tcpPorts } from './tcp.js'

export { movableServer, type ServerFact, type ServiceBackends } from './backends.js'
export { crtListPath, type RenderSettings, type RenderState, serverStatePath, statsSocketPath } from './common.js'
export { renderCrtList } from './crt-list.js'
export { destinationBackends, generatedNames } from './names.js'

const ERROR_CODES = [400, 403, 405, 408, 429, 500, 502, 503, 504]

/**
 * What one service renders to, computed once per service object and settings object (services
 * of a state are immutable and shared between states), so a render of 10 000 services after a
 * change costs the joins, not 10 000 template runs. Rendering stays a pure function as long as
 * what these parts hold depends on the service and the settings only: anything else (other
 * services, certificates) must be computed outside them.
 */
class ServiceParts {
  readonly rank: number
  readonly mapEligible: boolean
  readonly backends: ServiceBackends
  // The frontend rules and map entries only when asked for: most services at scale are
  // map-routed and have no rules, and keeping them for 10 000 services costs megabytes.
  private rules?: ReturnType<typeof serviceFrontend>
  private entries?: RouteEntry[]

  constructor(
    private readonly service: Service,
    private readonly settings: RenderSettings,
    hasGlobalUsers: boolean,
  ) {
    this.rank = frontendRank(service)
    this.mapEligible = isMapRouted(service, settings.SERVICE_DOMAIN_ALGO)
    this.backends = renderServiceBackends(service, hasGlobalUsers, settings.DEBUG, settings.HOSTS_FILE_NAMES)
  }

  get frontend(): ReturnType<typeof serviceFrontend> {
    this.rules ??= serviceFrontend(this.service, this.settings)
    return this.rules
  }

  /** Its map entries, when it is map-routed. */
  get routeEntries(): RouteEntry[] {
    this.entries ??= compact(serviceRouteEntries(this.service, (dest) => backendName(this.service, dest)))
    return this.entries
  }
}

const partsCache = new WeakMap<RenderSettings, WeakMap<Service, ServiceParts>>()
function serviceParts(service: Service, settings: RenderSettings, hasGlobalUsers: boolean): ServiceParts {
  let cache = partsCache.get(settings)
  if (!cache) partsCache.set(settings, (cache = new WeakMap()))
  let parts = cache.get(service)
  if (!parts) cache.set(service, (parts = new ServiceParts(service, settings, hasGlobalUsers)))
  return parts
}

/**
 * What one service contributes to a rendering where it matters to a change made at run time
 * (src/apply/service-delta.ts): whether the maps route it, its map entries and its backends.
 * The same cached parts the whole rendering joins, so both always agree.
 */
export function serviceRouting(service: Service, settings: RenderSettings): { mapRouted: boolean; routeEntries: readonly RouteEntry[]; backends: ServiceBackends } {
  const parts = serviceParts(service, settings, settings.GLOBAL_USERS.length > 0)
  const mapRouted = settings.DEFAULT_REQ_MODE === 'http' && parts.mapEligible
  return { mapRouted, routeEntries: mapRouted ? parts.routeEntries : [], backends: parts.backends }
}

/** A rendered state: the configuration and the facts others need, so nobody reads the text back. */
export interface Rendered {
  /** The whole haproxy.cfg. */
  config: string
  /** What its `description` line names: a hash of everything HAProxy loads. */
  version: string
  /** Entries of the route maps (src/render/maps.ts). */
  maps: RouteMaps
  /** Each service's backend sections, their shape and servers, by serviceName. */
  backends: Map<string, ServiceBackends>
  /** Each bound port and the section that binds it (`frontend services`, `frontend tcpFE_…`, …). */
  ports: Map<number, string>
  /** Everything of the configuration but the backends and the version line. */
  frame: string
  /**
   * The frame with the `host-path` map lookup (src/render/maps.ts), which routes any maps: a
   * worker running it serves this rendering too (equal to `frame` in that style).
   */
  generalFrame: string
  /** The spare backends at the end of the file (src/render/spares.ts): names and text. */
  spares: { names: string[]; text: string }
  /** The crt-list text (part of the version). */
  crtList: string
}

export interface RenderOptions {
  /** false: the original one-ACL-per-service style, for the benchmark. */
  mapRouting?: boolean
  /**
   * The variant `haproxy -c` checks: server names are not looked up (an unresolvable name is
   * never an error, as init-addr ends with `none`, and lookups can take seconds) and the route
   * maps are read from `mapPaths` (the candidate's copies) instead of the live files.
   */
  validation?: { mapPaths: Record<RouteMapName, string> }
  /** Where the spares' texts are kept between renderings; without it they are rendered anew. */
  spareTexts?: SpareTexts
}

/**
 * The whole haproxy.cfg for a state: a pure function (no I/O, clock or randomness), so the same
 * state and settings always give the same bytes. The first line of `global` names a hash of the
 * rest, which the apply loop reads back from the running worker to confirm a reload.
 */
export function render(state: RenderState, settings: RenderSettings): string {
  return renderAll(state, settings).config
}

/** `render`, with the route maps and the parts of the configuration kept apart. */
export function renderAll(state: RenderState, settings: RenderSettings, options: RenderOptions = {}): Rendered {
  const globalUsers = settings.GLOBAL_USERS
  const hasGlobalUsers = globalUsers.length > 0
  const partsOf = (service: Service) => serviceParts(service, settings, hasGlobalUsers)
  const services = [...state.values()]
    .map((service) => ({ service, rank: partsOf(service).rank }))
    .sort((a, b) => a.rank - b.rank || byteCompare(a.service.aclName, b.service.aclName) || byteCompare(a.service.serviceName, b.service.serviceName))
    .map(({ service }) => service)
  const hasHttp = services.some((s) => s.destinations.some((d) => d.reqMode === 'http'))
  const ports = [...commaList(settings.DEFAULT_PORTS), ...commaList(settings.BIND_PORTS)]
  // Without services or with any http service, `frontend services` binds DEFAULT_PORTS (§5.2).
  const bindHttp = services.length === 0 || hasHttp
  const crtList = renderCrtList(state, settings)
  const ssl = sslBindOptions(crtList !== '', settings)
  // A port a tcp, sni or TCP-group section binds is left to it: binding it twice would let the
  // kernel split connections between two frontends (the original's D12).
  const tcpBound = tcpPorts(services)
  const takenBy = (entry: string) => tcpBound.get(Number(/^\d+/.exec(entry)?.[0]))
  // Map routing needs an http frontend; with DEFAULT_REQ_MODE=tcp every service keeps its ACLs.
  // (`mapRouting: false` renders the original one-ACL-per-service style, for the benchmark.)
  const mapsOn = settings.DEFAULT_REQ_MODE === 'http' && options.mapRouting !== false
  const routed = services.map((service) => ({ service, map: mapsOn && partsOf(service).mapEligible }))
  const maps = mergeRouteEntries(routed.filter((r) => r.map).map(({ service }) => partsOf(service).routeEntries))
  // ACL-routed services keep the original order around the maps: before them, except the
  // services with the path `/`, which the original puts last and which would otherwise catch
  // every request the maps route (docs/usage.md "Map routing").
  const frontendOf = ({ service, map }: { service: Service; map: boolean }) => {
    const rules = partsOf(service).frontend
    return map ? { ...rules, acls: [], redirects: [], useBackends: [] } : rules
  }
  // A map-routed service that is not the default backend has no line in the frontend.
  const hasLines = ({ service, map }: { service: Service; map: boolean }) => !map || service.isDefaultBackend
  const isLast = (s: Service) => partsOf(s).rank === 2
  // A backend that serves a route shared by weight holds the other members' servers too.
  const shared = sharedRoutes(services)
  const backendsOf = (s: Service) => {
    const members = shared.get(s.serviceName)
    return members ? renderServiceBackends(s, hasGlobalUsers, settings.DEBUG, settings.HOSTS_FILE_NAMES, members) : partsOf(s).backends
  }
  const backends = new Map([...services].sort((a, b) => byteCompare(a.aclName, b.aclName)).map((s) => [s.serviceName, backendsOf(s)] as const))
  const servicesAfterMaps = routed.filter((r) => !r.map && isLast(r.service)).map(frontendOf)
  const lookupStyle = mapLookupStyle(maps)
  const mapFiles = options.validation?.mapPaths ?? routeMapPaths(settings.CONFIG_DIR)
  // TLS binds need a certificate; until one is loaded they stay unbound (the original's D13).
  const binds = bindHttp ? ports.filter((p) => (ssl || !p.includes(':ssl')) && !takenBy(p)).map((p) => p.replace(':ssl', ssl ?? '')) : []
  const parts = {
    global: templates.global({
      statsSocket: statsSocketPath(settings.CONFIG_DIR),
      runAs: settings.HAPROXY_USER,
      serverStateFile: serverStatePath(settings.CONFIG_DIR),
      // A check reads neither the running worker's server state nor DNS.
      loadServerState: options.validation ? 'none' : 'global',
      initAddr: options.validation ? 'none' : 'last,none',
      hardStopAfter: settings.HARD_STOP_AFTER,
      extraGlobal: commaList(settings.EXTRA_GLOBAL),
      sslBindOptions: settings.SSL_BIND_OPTIONS,
      sslBindCiphers: settings.SSL_BIND_CIPHERS,
      resolvers: commaList(settings.RESOLVERS),
      debug: debugOptions(settings),
      dontLogNormal: !settings.DEBUG || settings.DEBUG_ERRORS_ONLY,
      compression: settings.COMPRESSION_ALGO ? { algo: settings.COMPRESSION_ALGO, type: settings.COMPRESSION_TYPE } : undefined,
      statsFrontend: ownStatsPort(settings) && statsLines(settings).length ? { port: settings.STATS_PORT, lines: statsLines(settings) } : undefined,
      connectionMode: settings.CONNECTION_MODE,
      errorCodes: ERROR_CODES,
      errorfilesDir: settings.ERRORFILES_DIR,
      timeouts: {
        connect: settings.TIMEOUT_CONNECT,
        client: settings.TIMEOUT_CLIENT,
        server: settings.TIMEOUT_SERVER,
        queue: settings.TIMEOUT_QUEUE,
        tunnel: settings.TIMEOUT_TUNNEL,
        httpRequest: settings.TIMEOUT_HTTP_REQUEST,
        httpKeepAlive: settings.TIMEOUT_HTTP_KEEP_ALIVE,
      },
    }),
    userlist: globalUsers.length > 0 ? templates.userlist({ name: GLOBAL_USERLIST, users: userLines(globalUsers) }) : '',
    frontend: (style: MapLookupStyle) => templates.frontendServices({
      binds,
      unboundPorts: bindHttp && !ssl ? ports.filter((p) => p.includes(':ssl') && !takenBy(p)) : [],
      takenPorts: bindHttp ? ports.flatMap((p) => (takenBy(p) ? [`${p} is not bound: ${takenBy(p)} binds its port`] : [])) : [],
      defaultReqMode: settings.DEFAULT_REQ_MODE,
      forwardFor: settings.DEFAULT_REQ_MODE === 'http',
      extraFrontend: commaList(settings.EXTRA_FRONTEND),
      debug: debugOptions(settings),
      captures: commaList(settings.CAPTURE_REQUEST_HEADER).map((entry) => {
        const [name, length] = entry.split(':')
        return { name, length }
      }),
      // A stats page in a tcp frontend would only draw a warning: it needs http mode.
      stats: !ownStatsPort(settings) && settings.DEFAULT_REQ_MODE === 'http' ? statsLines(settings) : [],
      mapLookups: mapsOn ? mapLookupLines(mapFiles, style, servicesAfterMaps.length > 0) : [],
      mapUseBackend: mapsOn ? mapUseBackendLine(mapFiles, style, servicesAfterMaps.length > 0) : '',
      acmeChallenges: state.acmeChallenges && settings.DEFAULT_REQ_MODE === 'http' ? challengeMapPath(settings.CONFIG_DIR) : '',
      services: routed.filter((r) => hasLines(r) && (r.map || !isLast(r.service))).map(frontendOf),
      servicesAfterMaps,
    }),
    tcp: renderTcpFrontends(services, settings) + renderSniFrontends(services, settings) + renderTcpGroups(services, settings),
  }
  const frame = parts.global + parts.userlist + parts.frontend(lookupStyle) + parts.tcp
  const generalFrame = lookupStyle === 'host-path' ? frame : parts.global + parts.userlist + parts.frontend('host-path') + parts.tcp
  const spareArgs = [spareCount(services.length), hasGlobalUsers, settings.DEBUG] as const
  const spares = mapsOn ? (options.spareTexts?.get(...spareArgs) ?? renderSpares(...spareArgs)) : { names: [], text: '' }
  const body = frame + [...backends.values()].map((b) => b.text).join('') + spares.text
  // The crt-list is part of what HAProxy loads, so it is part of the version.
  const version = createHash('sha256').update(body).update(crtList).digest('hex').slice(0, 16)
  return { config: `global\n    description ${VERSION_PREFIX}${version}\n${body}`, version: `${VERSION_PREFIX}${version}`, maps, backends, ports: boundPorts(bindHttp ? binds : [], tcpBound, settings), frame, generalFrame, crtList, spares }
}

/** The version a rendered configuration names in its `description` line. */
export function configVersion(config: string): string | undefined {
  return /^ {4}description (\S+)$/m.exec(config)?.[1]
}

/** Each port bound by `frontend services` (its DEFAULT_PORTS/BIND_PORTS entries), the stats frontend, and the tcp sections. */
function boundPorts(httpBinds: string[], tcpBound: Map<number, string>, settings: RenderSettings): Map<number, string> {
  const ports = new Map<number, string>()
  for (const entry of httpBinds) {
    const port = Number(/^\d+/.exec(entry)?.[0])
    if (port > 0) ports.set(port, 'frontend services')
  }
  if (ownStatsPort(settings) && statsLines(settings).length) ports.set(Number(settings.STATS_PORT), 'frontend stats')
  for (const [port, section] of tcpBound) ports.set(port, section)
  return ports
}
