import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { compact } from '../compact.js'
import type { Destination, Service, User } from '../service/types.js'
import { redirectCode, templates } from './common.js'
import { pathRewriteRule } from '../service/path-rewrite.js'
import { GLOBAL_USERLIST, inGroup, names, serviceUserlist } from './names.js'
import { configWord, logFormatWord } from '../haproxy-text.js'

/** Slots of a server-template when the request gave no `replicas` (a global service). */
const DEFAULT_TEMPLATE_SLOTS = 10

/**
 * `<host>:<port>` of a server line (an IPv6 address in brackets) and, for a host name, the
 * resolvers that find it at run time (and, for a name of /etc/hosts, `hostsFileNames`, the system
 * lookup when the configuration loads: src/hosts-file.ts).
 */
export function serverAddress(host: string, port: string | number, hostsFileNames: ReadonlySet<string>, lookUpAtLoad = false) {
  const address = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  if (isIP(host)) return { address, resolvers: '' }
  return { address, resolvers: `${lookUpAtLoad || hostsFileNames.has(host.toLowerCase()) ? ' init-addr last,libc,none' : ''} resolvers docker` }
}

/** A server of a backend, as rendered: what a runtime delta needs to move it without a reload. */
export interface ServerFact {
  backend: string
  /** The server's name (of a `server` line; the prefix of a `server-template`). */
  name: string
  /** An IP literal or a host name HAProxy resolves. */
  host: string
  port: string | number
  /** `server-template`: several servers, found through DNS. */
  template: boolean
  /** Its `weight` (the service's `weight` parameter); absent: HAProxy's default, 1. */
  weight?: number
}

/** What one service's backends render to. */
export interface ServiceBackends {
  /** The backend sections (with the service's userlist). */
  text: string
  /**
   * `text` with the address of each IP-literal `server` and the weight of each server in
   * placeholders, for comparison only: equal shapes differ only in those addresses and weights.
   * `text` itself when there is no such server, else a hash of that text (kept for every
   * service, so kept small).
   */
  shape: string
  servers: ServerFact[]
}

/**
 * Servers of other services that share a route with this one and are served by its backend,
 * by the name of that backend (src/render/shared-routes.ts).
 */
export type SharedServers = ReadonlyMap<string, ReadonlyArray<{ service: Service; dest: Destination }>>

const ADDRESS_PLACEHOLDER = '<address>'
const WEIGHT_PLACEHOLDER = '<weight>'

/** The host a service's servers resolve: `tasks.<name>` for sticky sessions, `<name>-<serviceColor>` for blue-green. */
function serverHost(service: Service, dest: Destination): string {
  if (dest.outboundHostname !== undefined) return dest.outboundHostname
  const name = service.serviceColor === undefined ? service.serviceName : `${service.serviceName}-${service.serviceColor}`
  return service.sessionType === 'sticky-server' ? `tasks.${name}` : name
}

/**
 * The server line of a destination's backend on `port`:
 * - sessionType=sticky-server: `server-template <svc>_ <n> tasks.<svc>:<port> check …` — every
 *   task the `docker` resolvers return is a server, and the backend's dynamic cookie names it;
 * - discoveryType=DNS: `server-template <svc> <n> <host>:<port> check …`;
 * - else `server <svc> <host>:<port>[ check] …`;
 * each with ` weight <n>` when the service gives one.
 * Names are resolved again at run time through the `docker` resolvers, so a task that did not
 * exist at load time is found later without a reload. `forShape` puts the address of an
 * IP-literal server and the weight in placeholders (the shape).
 */
function serverLine(service: Service, dest: Destination, port: string | number, backend: string, hostsFileNames: ReadonlySet<string>, forShape = false, inSharedRoute = false) {
  const sticky = service.sessionType === 'sticky-server'
  const real = serverHost(service, dest)
  const fact = (name: string, template: boolean): ServerFact => ({ backend, name, host: real, port, template, ...(service.weight === undefined ? {} : { weight: service.weight }) })
  const kind = sticky ? fact(`${service.serviceName}_`, true) : fact(service.serviceName, service.discoveryType === 'DNS')
  // Looked up when the configuration loads, when not in the state file (`init-addr last,libc,none`):
  // a route moves to these servers in that reload, so without an address until the resolvers
  // answer its requests would get 503s — a colour (blue-green switches to a colour that runs
  // already), and every server of a backend serving a route shared by weight (the route moves to
  // the first member's backend when another joins: a server new to that backend).
  const colour = service.serviceColor !== undefined && dest.outboundHostname === undefined
  const { address, resolvers } = serverAddress(forShape && movableServer(kind) ? ADDRESS_PLACEHOLDER : real, port, hostsFileNames, colour || inSharedRoute)
  const ssl = dest.sslVerifyNone ? ' ssl verify none' : ''
  const weight = service.weight === undefined ? '' : ` weight ${forShape ? WEIGHT_PLACEHOLDER : service.weight}`
  const slots = service.replicas ?? DEFAULT_TEMPLATE_SLOTS
  if (kind.template) return { line: `server-template ${kind.name} ${slots} ${address} check${resolvers}${ssl}${weight}`, fact: kind }
  const check = (dest.reqMode !== 'http' && dest.checkTcp) || service.checkResolvers ? ' check' : ''
  return { line: `server ${kind.name} ${address}${check}${resolvers}${ssl}${weight}`, fact: kind }
}

/** Whether a server's address can be changed at run time (`set server … addr`): an IP literal `server`. */
export const movableServer = (server: ServerFact) => !server.template && isIP(server.host) !== 0

/** `user <name> (insecure-)password <password>` (configuration.txt 3.4), name and password as data. */
export const userLines = (users: User[]) => users.map((u) => `user ${configWord(u.name)} ${u.encrypted ? 'password' : 'insecure-password'} ${configWord(u.password)}`)

/** A header rule `Name value` (service-schema.ts) as the words of an add/set-header: the value a literal log-format string. */
const headerWords = (rule: string) => {
  const blank = rule.indexOf(' ')
  return blank === -1 ? configWord(rule) : `${configWord(rule.slice(0, blank))} ${logFormatWord(rule.slice(blank + 1))}`
}
const headerLines = (headers: Service['headers']) =>
  Object.fromEntries(Object.entries(headers).map(([kind, rules]) => [kind, rules.map(headerWords)])) as Service['headers']

/**
 * The auth lines of a service's http backend: its own users when it has some, else USERS
 * (service users replace the global ones, as the original documented; it required both — D14).
 */
function authLines(service: Service, dest: Destination, hasGlobalUsers: boolean): string[] {
  if (dest.ignoreAuthorization) return []
  const list = service.users.length > 0 ? serviceUserlist(service) : hasGlobalUsers ? GLOBAL_USERLIST : undefined
  if (!list) return []
  const realm = service.users.length > 0 ? `${service.serviceName}Realm` : 'defaultRealm'
  return [`acl ${list}:auth http_auth(${list})`, `http-request auth realm ${realm} if !${list}:auth`, 'http-request del-header Authorization']
}

/**
 * A service's backend sections, the servers in them, and their shape (the same sections with
 * each IP-literal server address and each weight in a placeholder, rendered only when the
 * service has such a server). `shared`: other services' servers its backends serve too.
 */
export function renderServiceBackends(service: Service, hasGlobalUsers: boolean, debug: boolean, hostsFileNames: ReadonlySet<string>, shared: SharedServers = new Map()): ServiceBackends {
  const servers: ServerFact[] = []
  const text = renderBackends(service, hasGlobalUsers, debug, hostsFileNames, shared, false, (fact) => servers.push(fact))
  const shape = servers.some((server) => movableServer(server) || server.weight !== undefined)
    ? `shape:${createHash('sha256').update(renderBackends(service, hasGlobalUsers, debug, hostsFileNames, shared, true, () => undefined)).digest('base64')}`
    : text
  // Kept for as long as the service lives: flat, not as the template's pieces (src/compact.ts).
  return compact({ text, shape, servers })
}

/** `seen` sees each server as it is rendered; `forShape` renders the shape (serverLine). */
function renderBackends(service: Service, hasGlobalUsers: boolean, debug: boolean, hostsFileNames: ReadonlySet<string>, shared: SharedServers, forShape: boolean, seen: (fact: ServerFact) => void): string {
  // A custom backend template replaces the generated backends (and userlist) of the service.
  if (service.customBackend !== undefined) return service.customBackend === '' ? '' : `\n${service.customBackend}`
  const userlist = service.users.length > 0 ? templates.userlist({ name: serviceUserlist(service), users: userLines(service.users) }) : ''
  const withPort = service.destinations.filter((dest) => dest.port !== '' && !inGroup(dest))
  const server = (dest: Destination, port: string | number, backend: string) => {
    // Members of a shared route follow on the backend that serves it (not on its HTTPS one).
    const members = port === dest.port ? (shared.get(backend) ?? []) : []
    const inSharedRoute = members.length > 0
    const lines = [serverLine(service, dest, port, backend, hostsFileNames, forShape, inSharedRoute)]
    for (const member of members) lines.push(serverLine(member.service, member.dest, member.dest.port, backend, hostsFileNames, forShape, true))
    for (const { fact } of lines) seen(fact)
    return lines.map(({ line }) => line).join('\n    ')
  }
  const http = (dest: Destination, https: boolean) => {
    const port = https ? (dest.httpsPort as number) : dest.port
    const pairs: Array<[string, string]> = [...(service.reqPathSearch ? [[service.reqPathSearch, service.reqPathReplace ?? ''] as [string, string]] : []), ...dest.reqPathSearchReplace]
    const rewrites = pairs.map(([search, replace]) => pathRewriteRule(search, replace))
    const name = https ? names(service, dest).httpsBackend : names(service, dest).backend
    return templates.backendHttp({
      name,
      timeoutServer: dest.timeoutServer,
      timeoutTunnel: dest.timeoutTunnel,
      server: server(dest, port, name),
      rewrites,
      // The HTTPS-port backend serves requests that came over TLS: no redirect, no denyHttp.
      httpsOnly: !https && dest.httpsOnly,
      redirectCode: redirectCode(dest),
      connectionMode: service.connectionMode,
      debug,
      compressionAlgo: service.compressionAlgo,
      compressionType: service.compressionType,
      headers: headerLines(service.headers),
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
        server: server(dest, dest.port, names(service, dest).backend),
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
