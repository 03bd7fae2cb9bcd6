import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join } from 'node:path'
import Handlebars from 'handlebars'
import { certDir } from '../config-paths.js'
import { PROJECT_DIR, type Settings } from '../settings.js'
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
  | 'GLOBAL_USERS'
  | 'STATS_USER'
  | 'STATS_PASS'
  | 'STATS_URI'
  | 'STATS_PORT'
  | 'CAPTURE_REQUEST_HEADER'
  | 'COMPRESSION_ALGO'
  | 'COMPRESSION_TYPE'
  | 'DEBUG'
  | 'DEBUG_ERRORS_ONLY'
  | 'DEBUG_HTTP_FORMAT'
  | 'DEBUG_TCP_FORMAT'
  | 'DEBUG_LOG_ADDRESS'
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
  frontendSni: load('frontend-sni'),
  listenTcpGroup: load('listen-tcp-group'),
  backendHttp: load('backend-http'),
  backendTcp: load('backend-tcp'),
  userlist: load('userlist'),
}

const ERROR_CODES = [400, 403, 405, 408, 429, 500, 502, 503, 504]
/** Prefix of the `description` line that names the configuration's version. */
export const VERSION_PREFIX = 'dfp-'

/** Path of HAProxy's admin socket (also used to confirm reloads). */
export const statsSocketPath = (configDir: string) => join(configDir, 'haproxy.sock')
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
  const httpsId = `${service.aclName}${dest.httpsPort}_${dest.index}`
  return {
    backend: `${service.aclName}-be${dest.port}_${dest.index}`,
    httpsBackend: `https-${service.aclName}-be${dest.httpsPort}_${dest.index}`,
    url: `url_${id}`,
    urlExclude: `url_exclude_${id}`,
    domain: `domain_${id}`,
    urlHttps: `url_https_${httpsId}`,
    urlExcludeHttps: `url_exclude_https_${httpsId}`,
    domainHttps: `domain_https_${httpsId}`,
    srcPort: `srcPort_${service.aclName}${dest.srcPort}_${dest.index}`,
    srcHttpsPort: `srcHttpsPort_${service.aclName}${dest.srcHttpsPort}_${dest.index}`,
    /** `user_agent_<acl>_<agents, every run of other characters as "_">_<index>`. */
    userAgent: `user_agent_${service.aclName}_${dest.userAgent.join('_').replace(/[^A-Za-z0-9]+/g, '_')}_${dest.index}`,
    /** SNI ACLs are numbered by the destination's position (1-based) in its service. */
    sni: `sni_${service.aclName}${dest.port}-${service.destinations.indexOf(dest) + 1}`,
  }
}

/** A TCP-group member gets a server in `listen tcpListen_…`, no frontend and no backend. */
const inGroup = (dest: Destination) => dest.reqMode === 'tcp' && dest.serviceGroup !== undefined

/** The backends a destination of a service has in haproxy.cfg (its HTTPS-port backend second). */
export function destinationBackends(service: Service, dest: Destination): string[] {
  const n = names(service, dest)
  return [...(dest.port !== '' && !inGroup(dest) ? [n.backend] : []), ...(dest.httpsPort !== undefined ? [n.httpsBackend] : [])]
}

/**
 * The backend and path-ACL names a service's destinations generate. Names concatenate aclName,
 * port and index without separators, so two services could generate the same name (the
 * original's D3 and D18): the apply loop refuses a service whose names another one uses.
 */
export function generatedNames(service: Service): string[] {
  return service.destinations.flatMap((d) => {
    const n = names(service, d)
    return [
      ...(d.port !== '' ? [n.backend, d.reqMode === 'sni' ? n.sni : n.url] : []),
      ...(d.httpsPort !== undefined ? [n.httpsBackend, n.urlHttps] : []),
    ]
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

/** The lines of a custom template's output, as written (no indentation added). */
/** ` <type> <value>` per value: the matching part of an `acl` line. */
const paths = (type: string, list: string[]) => list.map((p) => ` ${type} ${p}`).join('')

const customLines = (text: string | undefined) => (text === undefined || text === '' ? [] : text.replace(/\n$/, '').split('\n'))

/** The rules a service adds to `frontend services` (inventory §5.3 parts 1 to 4). */
function serviceFrontend(service: Service, settings: RenderSettings) {
  // A custom frontend template replaces the generated rules, in the same place (the original's D10).
  if (service.customFrontend !== undefined) return { acls: [], redirects: [], useBackends: [], defaultBackend: undefined, custom: customLines(service.customFrontend) }
  const algo = service.serviceDomainAlgo ?? settings.SERVICE_DOMAIN_ALGO
  const acls: string[] = []
  const fromDomain: string[] = []
  const whenHttp: string[] = []
  const unlessHttps: string[] = []
  const useBackends: string[] = []
  // serviceHeader ACLs are numbered across the whole service, so that two destinations never
  // declare the same name (the original restarted the count in use_backend only: its D4).
  let headerCount = 0
  const http = service.destinations.filter((d) => d.reqMode === 'http')
  for (const dest of http) {
    const n = names(service, dest)
    const headers = dest.serviceHeader.map(([name, value]) => ({ acl: `hdr_${service.aclName}${dest.port}_${headerCount++}`, name, value }))
    if (dest.port !== '') {
      acls.push(`${n.url}${paths(dest.pathType, dest.servicePath)}`)
      if (dest.servicePathExclude.length) acls.push(`${n.urlExclude}${paths(dest.pathType, dest.servicePathExclude)}`)
      acls.push(...domainAcls(n.domain, dest.serviceDomain, algo))
      acls.push(...headers.map((h) => `${h.acl} hdr(${h.name}) ${h.value}`))
    }
    if (dest.httpsPort !== undefined) {
      acls.push(`${n.urlHttps}${paths(dest.pathType, dest.servicePath)}`)
      if (dest.servicePathExclude.length) acls.push(`${n.urlExcludeHttps}${paths(dest.pathType, dest.servicePathExclude)}`)
      acls.push(...domainAcls(n.domainHttps, dest.serviceDomain, algo))
      if (dest.port === '') acls.push(...headers.map((h) => `${h.acl} hdr(${h.name}) ${h.value}`))
    }
    const withSrcPort = dest.srcPort !== undefined && dest.port !== ''
    const withSrcHttpsPort = dest.srcHttpsPort !== undefined && dest.httpsPort !== undefined
    if (withSrcPort) acls.push(`${n.srcPort} dst_port ${dest.srcPort}`)
    if (withSrcHttpsPort) acls.push(`${n.srcHttpsPort} dst_port ${dest.srcHttpsPort}`)
    if (dest.userAgent.length) acls.push(`${n.userAgent} hdr_sub(User-Agent) -i ${dest.userAgent.join(' ')}`)
    for (const host of dest.redirectFromDomain) {
      fromDomain.push(`http-request redirect code 301 prefix http://${dest.serviceDomain[0]} if { hdr_beg(host) -i ${host} }`)
    }
    if (dest.port === '') {
      if (dest.httpsPort !== undefined) useBackends.push(httpsUseBackend(dest, n, headers, withSrcHttpsPort))
      continue
    }
    // Parts 2 and 3 of §5.3: TLS ended in front of the proxy, which only sees X-Forwarded-Proto.
    const plain = { url: n.url, urlExclude: n.urlExclude, domain: n.domain }
    const matched = routeConditions(dest, plain, { port: withSrcPort ? n.srcPort : undefined })
    if (service.redirectWhenHttpProto) {
      const proto = `is_${service.aclName}_http`
      whenHttp.push(`acl ${proto} hdr(X-Forwarded-Proto) http`)
      whenHttp.push(`http-request redirect scheme https${redirectCode(dest)} if ${proto} ${matched.join(' ')}`)
    }
    if (service.redirectUnlessHttpsProto) {
      const proto = `is_${service.aclName}_https`
      unlessHttps.push(`acl ${proto} hdr(X-Forwarded-Proto) https`)
      unlessHttps.push(`http-request redirect scheme https${redirectCode(dest)} if !${proto} ${matched.join(' ')}`)
    }
    const conditions = routeConditions(dest, plain, { headers: headers.map((h) => h.acl), port: withSrcPort ? n.srcPort : undefined, userAgent: n.userAgent })
    useBackends.push(`${n.backend} if ${conditions.join(' ')}`)
    if (dest.httpsPort !== undefined) useBackends.push(httpsUseBackend(dest, n, headers, withSrcHttpsPort))
  }
  // One default_backend per service, not one per destination (the original's D9).
  const first = http.find((d) => d.port !== '')
  const defaultBackend = service.isDefaultBackend && first ? names(service, first).backend : undefined
  return { acls, redirects: [...fromDomain, ...whenHttp, ...unlessHttps], useBackends, defaultBackend, custom: [] }
}

/**
 * The ACLs a route's rule requires, in the original's order: path, not excluded path, domain,
 * headers, destination port, user agent (each only when the destination has it).
 */
function routeConditions(
  dest: Destination,
  acl: { url: string; urlExclude: string; domain: string },
  extra: { headers?: string[]; port?: string | undefined; userAgent?: string },
): string[] {
  return [
    acl.url,
    ...(dest.servicePathExclude.length ? [`!${acl.urlExclude}`] : []),
    ...(dest.serviceDomain.length ? [acl.domain] : []),
    ...(extra.headers ?? []),
    ...(extra.port ? [extra.port] : []),
    ...(extra.userAgent && dest.userAgent.length ? [extra.userAgent] : []),
  ]
}

/** `use_backend https-…` of a destination with httpsPort (requests arriving on srcHttpsPort). */
function httpsUseBackend(dest: Destination, n: ReturnType<typeof names>, headers: Array<{ acl: string }>, withSrcHttpsPort: boolean): string {
  const https = { url: n.urlHttps, urlExclude: n.urlExcludeHttps, domain: n.domainHttps }
  const conditions = routeConditions(dest, https, { headers: headers.map((h) => h.acl), port: withSrcHttpsPort ? n.srcHttpsPort : undefined, userAgent: n.userAgent })
  return `${n.httpsBackend} if ${conditions.join(' ')}`
}

const redirectCode = (dest: Destination) => (dest.httpsRedirectCode ? ` code ${dest.httpsRedirectCode}` : '')

/** Slots of a server-template when the request gave no `replicas` (a global service). */
export const DEFAULT_TEMPLATE_SLOTS = 10

/**
 * The server line of a destination's backend on `port`:
 * - sessionType=sticky-server: `server-template <svc>_ <n> tasks.<svc>:<port> check …` — every
 *   task the `docker` resolvers return is a server, and the backend's dynamic cookie names it;
 * - discoveryType=DNS: `server-template <svc> <n> <host>:<port> check …`;
 * - else `server <svc> <host>:<port>[ check] …`.
 * Names are resolved again at run time through the `docker` resolvers, so a task that did not
 * exist at load time is found later without a reload.
 */
/**
 * `<host>:<port>` of a server line (an IPv6 address in brackets) and, for a host name, the
 * resolvers that find it again at run time.
 */
function serverAddress(host: string, port: string | number) {
  return { address: `${isIP(host) === 6 ? `[${host}]` : host}:${port}`, resolvers: isIP(host) ? '' : ' resolvers docker' }
}

function serverLine(service: Service, dest: Destination, port: string | number): string {
  const sticky = service.sessionType === 'sticky-server'
  const { address, resolvers } = serverAddress(dest.outboundHostname ?? (sticky ? `tasks.${service.serviceName}` : service.serviceName), port)
  const ssl = dest.sslVerifyNone ? ' ssl verify none' : ''
  const slots = service.replicas ?? DEFAULT_TEMPLATE_SLOTS
  if (sticky) return `server-template ${service.serviceName}_ ${slots} ${address} check${resolvers}${ssl}`
  if (service.discoveryType === 'DNS') return `server-template ${service.serviceName} ${slots} ${address} check${resolvers}${ssl}`
  const check = (dest.reqMode !== 'http' && dest.checkTcp) || service.checkResolvers ? ' check' : ''
  return `server ${service.serviceName} ${address}${check}${resolvers}${ssl}`
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

function renderBackends(service: Service, hasGlobalUsers: boolean, debug: boolean): string {
  // A custom backend template replaces the generated backends (and userlist) of the service.
  if (service.customBackend !== undefined) return service.customBackend === '' ? '' : `\n${service.customBackend}`
  const userlist = service.users.length > 0 ? templates.userlist({ name: `${service.serviceName}Users`, users: userLines(service.users) }) : ''
  const withPort = service.destinations.filter((dest) => dest.port !== '' && !inGroup(dest))
  const http = (dest: Destination, https: boolean) => {
    const port = https ? (dest.httpsPort as number) : dest.port
    const rewrites = [...(service.reqPathSearch ? [[service.reqPathSearch, service.reqPathReplace ?? '']] : []), ...dest.reqPathSearchReplace]
    return templates.backendHttp({
      name: https ? names(service, dest).httpsBackend : names(service, dest).backend,
      timeoutServer: dest.timeoutServer,
      timeoutTunnel: dest.timeoutTunnel,
      server: serverLine(service, dest, port),
      rewrites,
      // The HTTPS-port backend serves requests that came over TLS: no redirect, no denyHttp.
      httpsOnly: !https && dest.httpsOnly,
      redirectCode: redirectCode(dest),
      connectionMode: service.connectionMode,
      debug,
      compressionAlgo: service.compressionAlgo,
      compressionType: service.compressionType,
      headers: service.headers,
      clientCertAcl: dest.verifyClientSsl ? `valid_client_cert_${service.serviceName}${port}` : undefined,
      allowedMethods: dest.allowedMethods.join(' '),
      deniedMethods: dest.deniedMethods.join(' '),
      denyHttp: !https && dest.denyHttp,
      stickyCookie: service.sessionType === 'sticky-server' ? service.serviceName : undefined,
      auth: authLines(service, dest, hasGlobalUsers),
      backendExtra: service.backendExtra,
    })
  }
  const backends = withPort.map((dest) => {
    if (dest.reqMode !== 'http') {
      return templates.backendTcp({
        name: names(service, dest).backend,
        timeoutServer: dest.timeoutServer,
        timeoutTunnel: dest.timeoutTunnel,
        server: serverLine(service, dest, dest.port),
        checkTcp: dest.checkTcp,
        backendExtra: service.backendExtra,
      })
    }
    return http(dest, false)
  })
  // HTTPS-port backends come after all the others (inventory §5.6).
  const httpsBackends = service.destinations.filter((dest) => dest.reqMode === 'http' && dest.httpsPort !== undefined).map((dest) => http(dest, true))
  return userlist + [...backends, ...httpsBackends].join('')
}

/** The first destination (in frontend order) on each source port sets its frontend's options (§5.5). */
function bySrcPort<T>(services: Service[], select: (dest: Destination) => boolean, route: (service: Service, dest: Destination) => T) {
  const byPort = new Map<number, { first: Destination; routes: T[] }>()
  for (const service of services) {
    for (const dest of service.destinations) {
      if (!select(dest) || dest.srcPort === undefined) continue
      const entry = byPort.get(dest.srcPort) ?? { first: dest, routes: [] }
      entry.routes.push(route(service, dest))
      byPort.set(dest.srcPort, entry)
    }
  }
  return [...byPort.entries()].sort(([a], [b]) => a - b)
}

/** One `tcpFE_<srcPort>` frontend per source port, sorted by port (fixes the original's D7). */
function renderTcpFrontends(services: Service[], settings: RenderSettings): string {
  const ports = bySrcPort(
    services,
    (dest) => dest.reqMode === 'tcp' && !inGroup(dest),
    (service, dest) => {
      const n = names(service, dest)
      const acls = domainAcls(n.domain, dest.serviceDomain, service.serviceDomainAlgo ?? settings.SERVICE_DOMAIN_ALGO)
      return acls.length ? { backend: n.backend, domainAcls: acls, domainAclName: n.domain } : { backend: n.backend, domainAcls: [] }
    },
  )
  return ports
    .map(([srcPort, { first, routes }]) => templates.frontendTcp({ srcPort, routes, timeoutClient: first.timeoutClient, clitcpka: first.clitcpka, debug: debugOptions(settings) }))
    .join('')
}

/**
 * One `frontend service_<srcPort>` per source port of sni destinations, sorted by port: TLS
 * passes through, routed on the server name of the ClientHello. `use_backend` names the backend
 * by aclName, as the backend is named (the original used serviceName: its D2).
 */
function renderSniFrontends(services: Service[], settings: RenderSettings): string {
  const ports = bySrcPort(
    services,
    (dest) => dest.reqMode === 'sni',
    (service, dest) => {
      const n = names(service, dest)
      const srcPortAcl = dest.srcPort !== undefined
      return [
        `acl ${n.sni}${paths(dest.pathType, dest.servicePath)}`,
        ...(srcPortAcl ? [`acl ${n.srcPort} dst_port ${dest.srcPort}`] : []),
        `use_backend ${n.backend} if ${n.sni}${srcPortAcl ? ` ${n.srcPort}` : ''}`,
      ]
    },
  )
  return ports
    .map(([srcPort, { first, routes }]) => templates.frontendSni({ srcPort, rules: routes.flat(), timeoutClient: first.timeoutClient, clitcpka: first.clitcpka, debug: settings.DEBUG }))
    .join('')
}

/**
 * One `listen tcpListen_<group>_<srcPort>` per TCP group, groups by name: its first member (in
 * frontend order) gives the port and options, every member destination a server. Members'
 * backendExtra lines go into the listen section (the original appended them to whatever section
 * came before: its D11).
 */
function renderTcpGroups(services: Service[], settings: RenderSettings): string {
  const groups = new Map<string, Array<{ service: Service; dest: Destination }>>()
  for (const service of services) {
    for (const dest of service.destinations) {
      if (!inGroup(dest)) continue
      const members = groups.get(dest.serviceGroup as string) ?? []
      members.push({ service, dest })
      groups.set(dest.serviceGroup as string, members)
    }
  }
  return [...groups.keys()]
    .sort(byteCompare)
    .map((group) => {
      const members = groups.get(group) ?? []
      const { dest: target } = members[0] as { dest: Destination }
      const servers = members.map(({ service, dest }) => {
        const { address, resolvers } = serverAddress(dest.outboundHostname ?? service.serviceName, dest.port)
        return `server ${group}-${service.serviceName}${dest.port}_${dest.index} ${address}${dest.checkTcp ? ' check' : ''}${resolvers}`
      })
      const extra = [...new Set(members.flatMap(({ service }) => (service.backendExtra ? [service.backendExtra] : [])))]
      return templates.listenTcpGroup({
        debug: settings.DEBUG,
        group,
        srcPort: target.srcPort,
        clitcpka: target.clitcpka,
        checkTcp: target.checkTcp,
        timeoutClient: target.timeoutClient,
        timeoutServer: target.timeoutServer,
        timeoutTunnel: target.timeoutTunnel,
        balance: target.balanceGroup,
        servers,
        extra,
      })
    })
    .join('')
}

/** Ports a tcp, sni or TCP-group section binds. */
function tcpPorts(services: Service[]): Map<number, string> {
  const ports = new Map<number, string>()
  for (const service of services) {
    for (const dest of service.destinations) {
      if (dest.srcPort === undefined || dest.reqMode === 'http' || ports.has(dest.srcPort)) continue
      const section = dest.reqMode === 'sni' ? `frontend service_${dest.srcPort}` : inGroup(dest) ? `listen tcpListen_${dest.serviceGroup}_${dest.srcPort}` : `frontend tcpFE_${dest.srcPort}`
      ports.set(dest.srcPort, section)
    }
  }
  return ports
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
      backends: renderBackends(service, hasGlobalUsers, settings.DEBUG),
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
 * The statistics page (inventory §5.6), on when STATS_USER and STATS_PASS are both set (`none`
 * for either: no credentials). With STATS_PORT (other than 80) it has a frontend of its own;
 * otherwise it answers on `frontend services`. The original put these lines in `defaults`, which
 * turned the page on in every proxy; here only where it is served.
 */
function statsLines(settings: RenderSettings): string[] {
  if (!settings.STATS_USER || !settings.STATS_PASS) return []
  const auth = settings.STATS_USER === 'none' || settings.STATS_PASS === 'none' ? [] : [`stats auth ${settings.STATS_USER}:${settings.STATS_PASS}`]
  return ['stats enable', 'stats refresh 30s', 'stats realm Strictly\\ Private', `stats uri ${settings.STATS_URI}`, ...auth]
}
const ownStatsPort = (settings: RenderSettings) => settings.STATS_PORT !== '' && settings.STATS_PORT !== 80

/** DEBUG: HAProxy sends request logs to the daemon's syslog receiver (src/haproxy/syslog.ts). */
const debugOptions = (settings: RenderSettings) =>
  settings.DEBUG ? { address: settings.DEBUG_LOG_ADDRESS, httpFormat: settings.DEBUG_HTTP_FORMAT, tcpFormat: settings.DEBUG_TCP_FORMAT } : undefined

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
    userlist: globalUsers.length > 0 ? templates.userlist({ name: 'defaultUsers', users: userLines(globalUsers) }) : '',
    frontend: templates.frontendServices({
      // TLS binds need a certificate; until one is loaded they stay unbound (the original's D13).
      binds: bindHttp ? ports.filter((p) => (ssl || !p.includes(':ssl')) && !takenBy(p)).map((p) => p.replace(':ssl', ssl ?? '')) : [],
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
      mapLookups: mapsOn ? mapLookupLines(settings.CONFIG_DIR) : [],
      mapUseBackend: mapsOn ? mapUseBackendLine() : '',
      services: routed.filter((r) => hasLines(r) && (r.map || !isLast(r.service))).map(frontendOf),
      servicesAfterMaps: routed.filter((r) => !r.map && isLast(r.service)).map(frontendOf),
    }),
    tcp: renderTcpFrontends(services, settings) + renderSniFrontends(services, settings) + renderTcpGroups(services, settings),
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
