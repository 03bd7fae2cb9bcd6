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
export function serverAddress(host: string, port: string | number, hostsFileNames: ReadonlySet<string>) {
  const address = `${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  if (isIP(host)) return { address, resolvers: '' }
  return { address, resolvers: `${hostsFileNames.has(host.toLowerCase()) ? ' init-addr last,libc,none' : ''} resolvers docker` }
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
}

/** What one service's backends render to. */
export interface ServiceBackends {
  /** The backend sections (with the service's userlist). */
  text: string
  /**
   * `text` with the address of each IP-literal `server` in a placeholder, for comparison only:
   * equal shapes differ only in those addresses. `text` itself when there is no such server,
   * else a hash of that text (kept for every service, so kept small).
   */
  shape: string
  servers: ServerFact[]
}

const ADDRESS_PLACEHOLDER = '<address>'

/**
 * The server line of a destination's backend on `port`:
 * - sessionType=sticky-server: `server-template <svc>_ <n> tasks.<svc>:<port> check …` — every
 *   task the `docker` resolvers return is a server, and the backend's dynamic cookie names it;
 * - discoveryType=DNS: `server-template <svc> <n> <host>:<port> check …`;
 * - else `server <svc> <host>:<port>[ check] …`.
 * Names are resolved again at run time through the `docker` resolvers, so a task that did not
 * exist at load time is found later without a reload. `host` replaces the address (the shape).
 */
function serverLine(service: Service, dest: Destination, port: string | number, backend: string, hostsFileNames: ReadonlySet<string>, host?: string) {
  const sticky = service.sessionType === 'sticky-server'
  const real = dest.outboundHostname ?? (sticky ? `tasks.${service.serviceName}` : service.serviceName)
  const { address, resolvers } = serverAddress(host ?? real, port, hostsFileNames)
  const ssl = dest.sslVerifyNone ? ' ssl verify none' : ''
  const slots = service.replicas ?? DEFAULT_TEMPLATE_SLOTS
  const fact = (name: string, template: boolean): ServerFact => ({ backend, name, host: real, port, template })
  if (sticky) return { line: `server-template ${service.serviceName}_ ${slots} ${address} check${resolvers}${ssl}`, fact: fact(`${service.serviceName}_`, true) }
  if (service.discoveryType === 'DNS') return { line: `server-template ${service.serviceName} ${slots} ${address} check${resolvers}${ssl}`, fact: fact(service.serviceName, true) }
  const check = (dest.reqMode !== 'http' && dest.checkTcp) || service.checkResolvers ? ' check' : ''
  return { line: `server ${service.serviceName} ${address}${check}${resolvers}${ssl}`, fact: fact(service.serviceName, false) }
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
 * each IP-literal server address in a placeholder, rendered only when the service has one).
 */
export function renderServiceBackends(service: Service, hasGlobalUsers: boolean, debug: boolean, hostsFileNames: ReadonlySet<string>): ServiceBackends {
  const servers: ServerFact[] = []
  const text = renderBackends(service, hasGlobalUsers, debug, hostsFileNames, (fact) => {
    servers.push(fact)
    return undefined
  })
  const shape = servers.some(movableServer)
    ? `shape:${createHash('sha256').update(renderBackends(service, hasGlobalUsers, debug, hostsFileNames, (fact) => (movableServer(fact) ? ADDRESS_PLACEHOLDER : undefined))).digest('base64')}`
    : text
  // Kept for as long as the service lives: flat, not as the template's pieces (src/compact.ts).
  return compact({ text, shape, servers })
}

/** `hostOf` sees each server as it is rendered and may replace its host (for the shape). */
function renderBackends(service: Service, hasGlobalUsers: boolean, debug: boolean, hostsFileNames: ReadonlySet<string>, hostOf: (fact: ServerFact) => string | undefined): string {
  // A custom backend template replaces the generated backends (and userlist) of the service.
  if (service.customBackend !== undefined) return service.customBackend === '' ? '' : `\n${service.customBackend}`
  const userlist = service.users.length > 0 ? templates.userlist({ name: serviceUserlist(service), users: userLines(service.users) }) : ''
  const withPort = service.destinations.filter((dest) => dest.port !== '' && !inGroup(dest))
  const server = (dest: Destination, port: string | number, backend: string) => {
    const { fact } = serverLine(service, dest, port, backend, hostsFileNames)
    return serverLine(service, dest, port, backend, hostsFileNames, hostOf(fact)).line
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
