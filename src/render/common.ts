import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Handlebars from 'handlebars'
import { aclPatterns } from '../haproxy-text.js'
import { PROJECT_DIR, type Settings } from '../settings.js'
import type { Destination, Service } from '../service/types.js'

/** What rendering needs to know of the desired state. */
export interface RenderState {
  values(): Iterable<Service>
  certificateFiles(certDir: string): Array<{ name: string; loadPath: string }>
  /** Whether a service asks for an ACME certificate, so HTTP-01 challenges must be answered. */
  readonly acmeChallenges?: boolean
}

/** The settings rendering reads (a subset, so tests can pass literals). */
export type RenderSettings = Pick<
  Settings,
  | 'CONFIG_DIR'
  | 'ERRORFILES_DIR'
  | 'HAPROXY_USER'
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
  | 'HOSTS_FILE_NAMES'
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
export const templates = {
  global: load('global'),
  frontendServices: load('frontend-services'),
  frontendTcp: load('frontend-tcp'),
  frontendSni: load('frontend-sni'),
  listenTcpGroup: load('listen-tcp-group'),
  backendHttp: load('backend-http'),
  backendTcp: load('backend-tcp'),
  userlist: load('userlist'),
}

/** Prefix of the `description` line that names the configuration's version. */
export const VERSION_PREFIX = 'dfp-'

/** Path of HAProxy's admin socket (also used to confirm reloads). */
export const statsSocketPath = (configDir: string) => join(configDir, 'haproxy.sock')
/** Where `show servers state` is saved before each reload, for the next worker (init-addr last). */
export const serverStatePath = (configDir: string) => join(configDir, 'haproxy.state')
/** The crt-list every `:ssl` bind uses. */
export const crtListPath = (settings: Pick<Settings, 'CRT_LIST_PATH' | 'CONFIG_DIR'>) => settings.CRT_LIST_PATH || join(settings.CONFIG_DIR, 'crt-list.txt')

/** Comma lists in settings become one item per entry (inventory §4). */
export { commaList } from '../field-values.js'

export const byteCompare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** ` <type> <values>`: the matching part of an `acl` line, each value as data (haproxy-text.ts). */
export const paths = (type: string, list: string[]) => (list.length === 0 ? '' : ` ${type}${aclPatterns(list)}`)

/** The lines of a custom template's output, as written (no indentation added). */
export const customLines = (text: string | undefined) => (text === undefined || text === '' ? [] : text.replace(/\n$/, '').split('\n'))

export const redirectCode = (dest: Destination) => (dest.httpsRedirectCode ? ` code ${dest.httpsRedirectCode}` : '')

/** DEBUG: HAProxy sends request logs to the daemon's syslog receiver (src/haproxy/syslog.ts). */
export const debugOptions = (settings: RenderSettings) =>
  settings.DEBUG ? { address: settings.DEBUG_LOG_ADDRESS, httpFormat: settings.DEBUG_HTTP_FORMAT, tcpFormat: settings.DEBUG_TCP_FORMAT } : undefined
