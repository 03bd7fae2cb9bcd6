import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import Handlebars from 'handlebars'
import { PROJECT_DIR, type Settings } from '../settings.js'
import { parseUsers } from '../service/params.js'
import type { Destination, Service, User } from '../service/types.js'
import { buildRouteMaps, isMapRouted, mapLookupLines, mapUseBackendLine, type RouteMaps } from './maps.js'

/** What rendering needs to know of the desired state. */
export interface RenderState {
  values(): Iterable<Service>
  certificateFiles(certDir: string): Array<{ name: string; loadPath: string }>
}

/** The settings rendering reads (a subset, so tests can pass literals). */
export type RenderSettings = Pick<
  Settings,
  | 'CONFIG_DIR'
  | 'ERRORFILES_DIR'
  | 'DEFAULT_PORTS'
  | 'BIND_PORTS'
  | 'DEFAULT_REQ_MODE'
  | 'CONNECTION_MODE'
  | 'EXTRA_GLOBAL'
  | 'EXTRA_FRONTEND'
  | 'RESOLVERS'
  | 'SERVICE_DOMAIN_ALGO'
  | 'SSL_BIND_CIPHERS'
  | 'SSL_BIND_OPTIONS'
  | 'TIMEOUT_CONNECT'
  | 'TIMEOUT_CLIENT'
  | 'TIMEOUT_SERVER'
  | 'TIMEOUT_QUEUE'
  | 'TIMEOUT_TUNNEL'
  | 'TIMEOUT_HTTP_REQUEST'
  | 'TIMEOUT_HTTP_KEEP_ALIVE'
  | 'HARD_STOP_AFTER'
  | 'CRT_LIST_PATH'
  | 'PREFERRED_CERTIFICATE'
  | 'ENABLE_H2'
  | 'CA_FILE'
  | 'USERS'
  | 'USERS_PASS_ENCRYPTED'
>

// Values are data, never template source, and are not HTML-escaped: they reach HAProxy as given.
function load(name: string): HandlebarsTemplateDelegate {
  const source = readFileSync(join(PROJECT_DIR, 'templates', `${name}.hbs`), 'utf8')
  return Handlebars.compile(source, { noEscape: true, strict: true })
}
const templates = {
  global: load('global'),
  frontendServices: load('frontend-services'),
  frontendTcp: load('frontend-tcp'),
  backendHttp: load('backend-http'),
  backendTcp: load('backend-tcp'),
  userlist: load('userlist'),
}

const ERROR_CODES = [400, 403, 405, 408, 429, 500, 502, 503, 504]
/** Prefix of the `description` line that names the configuration's version. */
export const VERSION_PREFIX = 'dfp-'

/** Path of HAProxy's admin socket (also used to confirm reloads). */
export const statsSocketPath = (configDir: string) => join(configDir, 'haproxy.sock')
/** Folder of the certificate copies HAProxy loads (`<source>/<name>`), written by the apply loop. */
export const certDir = (configDir: string) => join(configDir, 'certs')
/** The crt-list every `:ssl` bind uses. */
export const crtListPath = (settings: Pick<Settings, 'CRT_LIST_PATH' | 'CONFIG_DIR'>) => settings.CRT_LIST_PATH || join(settings.CONFIG_DIR, 'crt-list.txt')

/** `*` globs of PREFERRED_CERTIFICATE as anchored regular expressions. */
const globs = (list: string) =>
  commaList(list).map((glob) => new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*')}$`))

/**
 * The crt-list: one certificate file per line, folder files then secrets then uploaded ones;
 * files matching a PREFERRED_CERTIFICATE glob come first, in the order of the globs (§5.7).
 * HAProxy serves the first entry when no SNI matches.
 */
export function renderCrtList(state: RenderState, settings: RenderSettings): string {
  const files = state.certificateFiles(certDir(settings.CONFIG_DIR))
  const preferred = globs(settings.PREFERRED_CERTIFICATE)
  const bucket = (name: string) => {
    const index = preferred.findIndex((glob) => glob.test(name))
    return index === -1 ? preferred.length : index
  }
  const ordered = files.map((file, position) => ({ file, position, bucket: bucket(file.name) }))
  ordered.sort((a, b) => a.bucket - b.bucket || a.position - b.position)
  return ordered.map(({ file }) => `${file.loadPath}\n`).join('')
}

/** What `:ssl` in a port entry becomes (inventory §5.7), or undefined while nothing can be served. */
function sslBindOptions(hasCertificates: boolean, settings: RenderSettings): string | undefined {
  if (!hasCertificates) return undefined
  const alpn = settings.ENABLE_H2 ? 'h2,http/1.1' : 'http/1.1'
  const ca = settings.CA_FILE ? ` ca-file ${settings.CA_FILE} verify optional` : ''
  return ` ssl crt-list ${crtListPath(settings)} alpn ${alpn}${ca}`
}

/** Comma lists in settings become one item per entry (inventory §4). */
const commaList = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

/**
 * Frontend order of the original (inventory §5.3): services with a path under `/.well-known`
 * first, services with the path `/` last, otherwise by aclName byte-wise; serviceName breaks ties
 * so the same state always renders the same bytes.
 */
export function compareServices(a: Service, b: Service): number {
  return frontendRank(a) - frontendRank(b) || byteCompare(a.aclName, b.aclName) || byteCompare(a.serviceName, b.serviceName)
}

function frontendRank(s: Service): number {
  const paths = s.destinations.flatMap((d) => d.servicePath)
  if (paths.some((p) => p.toLowerCase().startsWith('/.well-known'))) return 0
  if (paths.includes('/')) return 2
  return 1
}

const byteCompare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** Names of inventory §5.8: the acl name, port and index are concatenated without separator. */
const names = (service: Service, dest: Destination) => {
  const id = `${service.aclName}${dest.port}_${dest.index}`
  return {
    backend: `${service.aclName}-be${dest.port}_${dest.index}`,
    url: `url_${id}`,
    urlExclude: `url_exclude_${id}`,
    domain: `domain_${id}`,
    srcPort: `srcPort_${service.aclName}${dest.srcPort}_${dest.index}`,
  }
}

/**
 * The backend and path-ACL names a service's destinations generate. Names concatenate aclName,
 * port and index without separators, so two services could generate the same name (the
 * original's D3 and D18): the apply loop refuses a service whose names another one uses.
 */
export function generatedNames(service: Service): string[] {
  return service.destinations.filter((d) => d.port !== '').flatMap((d) => {
    const n = names(service, d)
    return [n.backend, n.url]
  })
}

/**
 * Domain ACL lines. Domains starting with `*` are wildcards matched with `hdr_end(host)`;
 * the others keep the service's algorithm. Several `acl` lines with one name are OR-ed by HAProxy.
 */
function domainAcls(name: string, domains: string[], algo: string): string[] {
  const exact = domains.filter((d) => !d.startsWith('*'))
  const wildcard = domains.filter((d) => d.startsWith('*')).map((d) => d.replace(/^\*+|\*+$/g, ''))
  const lines: string[] = []
  if (exact.length) lines.push(`${name} ${algo} -i ${exact.join(' ')}`)
  if (wildcard.length) lines.push(`${name} hdr_end(host) -i ${wildcard.join(' ')}`)
  return lines
}

/** The rules a service adds to `frontend services` (inventory §5.3 parts 1 and 4). */
function serviceFrontend(service: Service, settings: RenderSettings) {
  const algo = service.serviceDomainAlgo ?? settings.SERVICE_DOMAIN_ALGO
  const acls: string[] = []
  const redirects: string[] = []
  const useBackends: string[] = []
  const http = service.destinations.filter((d) => d.reqMode === 'http' && d.port !== '')
  for (const dest of http) {
    const n = names(service, dest)
    const pathMatch = dest.servicePath.map((p) => ` ${dest.pathType} ${p}`).join('')
    acls.push(`${n.url}${pathMatch}`)
    if (dest.servicePathExclude.length) {
      acls.push(`${n.urlExclude}${dest.servicePathExclude.map((p) => ` ${dest.pathType} ${p}`).join('')}`)
    }
    acls.push(...domainAcls(n.domain, dest.serviceDomain, algo))
    if (dest.srcPort !== undefined) acls.push(`${n.srcPort} dst_port ${dest.srcPort}`)
    const conditions = [
      n.url,
      ...(dest.servicePathExclude.length ? [`!${n.urlExclude}`] : []),
      ...(dest.serviceDomain.length ? [n.domain] : []),
      ...(dest.srcPort !== undefined ? [n.srcPort] : []),
    ]
    useBackends.push(`${n.backend} if ${conditions.join(' ')}`)
    // Part 2 of §5.3: TLS ended in front of the proxy, which only sees X-Forwarded-Proto.
    if (service.redirectWhenHttpProto) {
      const proto = `is_${service.aclName}_http`
      const matched = [
        n.url,
        ...(dest.servicePathExclude.length ? [`!${n.urlExclude}`] : []),
        ...(dest.serviceDomain.length ? [n.domain] : []),
        ...(dest.srcPort !== undefined ? [n.srcPort] : []),
      ]
      redirects.push(`acl ${proto} hdr(X-Forwarded-Proto) http`)
      redirects.push(`http-request redirect scheme https${redirectCode(dest)} if ${proto} ${matched.join(' ')}`)
    }
  }
  // One default_backend per service, not one per destination (the original's D9).
  const first = http[0]
  const defaultBackend = service.isDefaultBackend && first ? names(service, first).backend : undefined
  return { acls, redirects, useBackends, defaultBackend }
}

const redirectCode = (dest: Destination) => (dest.httpsRedirectCode ? ` code ${dest.httpsRedirectCode}` : '')

function serverLine(service: Service, dest: Destination): string {
  const host = dest.outboundHostname ?? service.serviceName
  // Names are resolved again at run time through the `docker` resolvers, so a task that did not
  // exist at load time is found later without a reload.
  const resolvers = isIP(host) ? '' : ' resolvers docker'
  const check = dest.reqMode === 'tcp' && dest.checkTcp ? ' check' : ''
  const ssl = dest.sslVerifyNone ? ' ssl verify none' : ''
  return `server ${service.serviceName} ${isIP(host) === 6 ? `[${host}]` : host}:${dest.port}${check}${resolvers}${ssl}`
}

const userLines = (users: User[]) => users.map((u) => `user ${u.name} ${u.encrypted ? 'password' : 'insecure-password'} ${u.password}`)

/**
 * The auth lines of a service's http backend: its own users when it has some, else USERS
 * (service users replace the global ones, as the original documented; it required both — D14).
 */
function authLines(service: Service, dest: Destination, hasGlobalUsers: boolean): string[] {
  if (dest.ignoreAuthorization) return []
  const list = service.users.length > 0 ? `${service.serviceName}Users` : hasGlobalUsers ? 'defaultUsers' : undefined
  if (!list) return []
  const realm = service.users.length > 0 ? `${service.serviceName}Realm` : 'defaultRealm'
  return [`acl ${list}Acl http_auth(${list})`, `http-request auth realm ${realm} if !${list}Acl`, 'http-request del-header Authorization']
}

function renderBackends(service: Service, hasGlobalUsers: boolean): string {
  const userlist = service.users.length > 0 ? templates.userlist({ name: `${service.serviceName}Users`, users: userLines(service.users) }) : ''
  return userlist + service.destinations
    .filter((dest) => dest.port !== '')
    .map((dest) => {
      const common = {
        name: names(service, dest).backend,
        timeoutServer: dest.timeoutServer,
        timeoutTunnel: dest.timeoutTunnel,
        server: serverLine(service, dest),
      }
      if (dest.reqMode === 'tcp') return templates.backendTcp({ ...common, checkTcp: dest.checkTcp, backendExtra: service.backendExtra })
      const rewrites = [
        ...(service.reqPathSearch ? [[service.reqPathSearch, service.reqPathReplace ?? '']] : []),
        ...dest.reqPathSearchReplace,
      ]
      return templates.backendHttp({
        ...common,
        rewrites,
        httpsOnly: dest.httpsOnly,
        redirectCode: redirectCode(dest),
        connectionMode: service.connectionMode,
        headers: service.headers,
        allowedMethods: dest.allowedMethods.join(' '),
        deniedMethods: dest.deniedMethods.join(' '),
        denyHttp: dest.denyHttp,
        auth: authLines(service, dest, hasGlobalUsers),
        backendExtra: service.backendExtra,
      })
    })
    .join('')
}

/** One `tcpFE_<srcPort>` frontend per source port, sorted by port (fixes the original's D7). */
function renderTcpFrontends(services: Service[], settings: RenderSettings): string {
  const byPort = new Map<number, Array<{ backend: string; domainAcls: string[]; domainAclName?: string }>>()
  // The first destination on a port (in frontend order) sets the frontend's options (§5.5).
  const firstOnPort = new Map<number, Destination>()
  for (const service of services) {
    for (const dest of service.destinations) {
      if (dest.reqMode !== 'tcp' || dest.srcPort === undefined) continue
      const n = names(service, dest)
      if (!firstOnPort.has(dest.srcPort)) firstOnPort.set(dest.srcPort, dest)
      const routes = byPort.get(dest.srcPort) ?? []
      const acls = domainAcls(n.domain, dest.serviceDomain, service.serviceDomainAlgo ?? settings.SERVICE_DOMAIN_ALGO)
      routes.push(acls.length ? { backend: n.backend, domainAcls: acls, domainAclName: n.domain } : { backend: n.backend, domainAcls: [] })
      byPort.set(dest.srcPort, routes)
    }
  }
  return [...byPort.keys()]
    .sort((a, b) => a - b)
    .map((srcPort) => {
      const first = firstOnPort.get(srcPort)
      return templates.frontendTcp({ srcPort, routes: byPort.get(srcPort), timeoutClient: first?.timeoutClient, clitcpka: first?.clitcpka })
    })
    .join('')
}

interface ServiceParts {
  rank: number
  mapEligible: boolean
  frontend: ReturnType<typeof serviceFrontend>
  backends: string
}

/**
 * What one service renders to, computed once per service object and settings object (services
 * of a state are immutable and shared between states), so a render of 10 000 services after a
 * change costs the joins, not 10 000 template runs. Rendering stays a pure function as long as
 * what these parts hold depends on the service and the settings only: anything else (other
 * services, certificates) must be computed outside them.
 */
const partsCache = new WeakMap<RenderSettings, WeakMap<Service, ServiceParts>>()
function serviceParts(service: Service, settings: RenderSettings, hasGlobalUsers: boolean): ServiceParts {
  let cache = partsCache.get(settings)
  if (!cache) partsCache.set(settings, (cache = new WeakMap()))
  let parts = cache.get(service)
  if (!parts) {
    parts = {
      rank: frontendRank(service),
      mapEligible: isMapRouted(service, settings.SERVICE_DOMAIN_ALGO),
      frontend: serviceFrontend(service, settings),
      backends: renderBackends(service, hasGlobalUsers),
    }
    cache.set(service, parts)
  }
  return parts
}

/** A rendered state: the configuration, the route maps, and the parts a runtime delta compares. */
export interface Rendered {
  /** The whole haproxy.cfg. */
  config: string
  /** Entries of the route maps (src/render/maps.ts). */
  maps: RouteMaps
  /** Each service's backend sections (with its userlist), by serviceName. */
  backends: Map<string, string>
  /** Everything of the configuration but the backends and the version line. */
  frame: string
  /** The crt-list text (part of the version). */
  crtList: string
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
export function renderAll(state: RenderState, settings: RenderSettings, options: { mapRouting?: boolean } = {}): Rendered {
  const hasGlobalUsers = parseUsers(settings.USERS, settings.USERS_PASS_ENCRYPTED).users.length > 0
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
  const globalUsers = parseUsers(settings.USERS, settings.USERS_PASS_ENCRYPTED).users
  const ssl = sslBindOptions(crtList !== '', settings)
  // Map routing needs an http frontend; with DEFAULT_REQ_MODE=tcp every service keeps its ACLs.
  // (`mapRouting: false` renders the original one-ACL-per-service style, for the benchmark.)
  const mapsOn = settings.DEFAULT_REQ_MODE === 'http' && options.mapRouting !== false
  const routed = services.map((service) => ({ service, map: mapsOn && partsOf(service).mapEligible }))
  const maps = buildRouteMaps(routed.filter((r) => r.map).map(({ service }) => ({ service, backend: (d: Destination) => names(service, d).backend })))
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
  const backends = new Map(
    [...services].sort((a, b) => byteCompare(a.aclName, b.aclName)).map((s) => [s.serviceName, partsOf(s).backends] as const),
  )
  const parts = {
    global: templates.global({
      statsSocket: statsSocketPath(settings.CONFIG_DIR),
      hardStopAfter: settings.HARD_STOP_AFTER,
      extraGlobal: commaList(settings.EXTRA_GLOBAL),
      sslBindOptions: settings.SSL_BIND_OPTIONS,
      sslBindCiphers: settings.SSL_BIND_CIPHERS,
      resolvers: commaList(settings.RESOLVERS),
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
    userlist: globalUsers.length > 0 ? templates.userlist({ name: 'defaultUsers', users: userLines(globalUsers) }) : '',
    frontend: templates.frontendServices({
      // TLS binds need a certificate; until one is loaded they stay unbound (the original's D13).
      binds: bindHttp ? ports.filter((p) => ssl || !p.includes(':ssl')).map((p) => p.replace(':ssl', ssl ?? '')) : [],
      unboundPorts: bindHttp && !ssl ? ports.filter((p) => p.includes(':ssl')) : [],
      defaultReqMode: settings.DEFAULT_REQ_MODE,
      forwardFor: settings.DEFAULT_REQ_MODE === 'http',
      extraFrontend: commaList(settings.EXTRA_FRONTEND),
      mapLookups: mapsOn ? mapLookupLines(settings.CONFIG_DIR) : [],
      mapUseBackend: mapsOn ? mapUseBackendLine() : '',
      services: routed.filter((r) => hasLines(r) && (r.map || !isLast(r.service))).map(frontendOf),
      servicesAfterMaps: routed.filter((r) => !r.map && isLast(r.service)).map(frontendOf),
    }),
    tcp: renderTcpFrontends(services, settings),
  }
  const frame = parts.global + parts.userlist + parts.frontend + parts.tcp
  const body = frame + [...backends.values()].join('')
  // The crt-list is part of what HAProxy loads, so it is part of the version.
  const version = createHash('sha256').update(body).update(crtList).digest('hex').slice(0, 16)
  return { config: `global\n    description ${VERSION_PREFIX}${version}\n${body}`, maps, backends, frame, crtList }
}

/** The version a rendered configuration names in its `description` line. */
export function configVersion(config: string): string | undefined {
  return /^ {4}description (\S+)$/m.exec(config)?.[1]
}
