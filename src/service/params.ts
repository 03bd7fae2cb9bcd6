import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderCustomTemplate } from './custom-templates.js'
import { z } from 'zod'
import { errors } from '../errors.js'
import type { Settings } from '../settings.js'
import type { ServiceChange } from '../state/registry.js'
import type { Destination, ReqMode, Service, User } from './types.js'

/** A flat parameter map: an HTTP query, one element of the listener's JSON, or DFP_SERVICE_* env. */
export type ParamSource = Record<string, unknown> | URLSearchParams

/** What parsing needs from the settings. */
export interface ParseOptions {
  /** SEPARATOR: splits list values. */
  separator: string
  /** HTTPS_ONLY: every http destination redirects plain HTTP to HTTPS. */
  httpsOnly?: boolean
  /** SECRETS_DIR, where `usersSecret` files are read. */
  secretsDir?: string
  /** USERS: passwords for `users` entries given without one. */
  globalUsers?: User[]
  /** TEMPLATES_DIR, the only folder `templateFePath`/`templateBePath` are read from. */
  templatesDir?: string
  /** CHECK_RESOLVERS: checkResolvers of services that do not give it (theirs wins: D8). */
  checkResolvers?: boolean
}

/** The parse options the settings give. */
export const parseOptions = (
  settings: Pick<Settings, 'SEPARATOR' | 'HTTPS_ONLY' | 'SECRETS_DIR' | 'USERS' | 'USERS_PASS_ENCRYPTED' | 'TEMPLATES_DIR' | 'CHECK_RESOLVERS'>,
): ParseOptions => ({
  separator: settings.SEPARATOR,
  httpsOnly: settings.HTTPS_ONLY,
  secretsDir: settings.SECRETS_DIR,
  globalUsers: parseUsers(settings.USERS, settings.USERS_PASS_ENCRYPTED).users,
  templatesDir: settings.TEMPLATES_DIR,
  checkResolvers: settings.CHECK_RESOLVERS,
})

export const MAX_DESTINATIONS = 10
const MAX_VALUE_LENGTH = 4096

// Values are spliced into haproxy.cfg as given. A newline or control character would end the
// line and let a value add directives of its own, so every value is refused if it has one.
const controlChars = /[\x00-\x1f\x7f]/
// Values that HAProxy reads as one word (names, ports, hosts, paths) must not contain blanks
// or a comment start either, or they would add words to the line they are spliced into.
const wordBreakers = /[\s#]/

const serviceNameSchema = z
  .string()
  .max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"')
const portSchema = z
  .string()
  .regex(/^\d{1,5}$/, 'must be a port number')
  .refine((v) => +v >= 1 && +v <= 65535, 'must be between 1 and 65535')
  .transform((v) => String(Number(v)))
const reqModeSchema = z.string().transform((v) => v.toLowerCase()).pipe(z.enum(['http', 'tcp', 'sni'], 'must be http, tcp or sni'))
// strconv.ParseBool forms plus gorilla/schema's "on", as the original accepted.
const boolSchema = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['1', 't', 'true', 'on', '0', 'f', 'false', 'off'], 'must be true or false'))
  .transform((v) => ['1', 't', 'true', 'on'].includes(v))

const redirectCodeSchema = z.enum(['301', '302', '303', '307', '308'], 'must be 301, 302, 303, 307 or 308')
// HAProxy's compression algorithms (configuration.txt 4.2 "compression").
export const COMPRESSION_ALGOS = ['identity', 'gzip', 'deflate', 'raw-deflate'] as const
const compressionAlgoSchema = z
  .string()
  .transform((v) => v.split(/[\s,]+/).filter((a) => a !== ''))
  .pipe(z.array(z.enum(COMPRESSION_ALGOS, 'must be identity, gzip, deflate or raw-deflate')).min(1, 'must name an algorithm'))
  .transform((algos) => algos.join(' '))
// A MIME type (RFC 9110 §8.3.1: type "/" subtype, tokens).
const mimeTypes = z
  .string()
  .transform((v) => v.split(/[\s,]+/).filter((t) => t !== ''))
  .pipe(z.array(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+\/[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be MIME types such as text/html')).min(1, 'must name a MIME type'))
  .transform((types) => types.join(' '))
const groupNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must start with a letter or digit and contain only letters, digits, ".", "_" and "-"')
const balanceSchema = z.string().regex(/^[a-z][a-z_-]*(\([^\s()]*\))?$/, 'must be an HAProxy balance algorithm such as roundrobin, leastconn or source')
const connectionModeSchema = z.enum(['http-keep-alive', 'http-server-close', 'httpclose'], 'must be http-keep-alive, http-server-close or httpclose')

/** Reads values from one source, refusing values that cannot be written into haproxy.cfg. */
class ParamReader {
  private readonly values = new Map<string, string>()
  /** The service the parameters describe, named in errors once known. */
  serviceName?: string
  readonly separator: string
  constructor(source: ParamSource, options: ParseOptions) {
    this.separator = options.separator
    const entries = source instanceof URLSearchParams ? source.entries() : Object.entries(source)
    for (const [key, raw] of entries) {
      // A repeated key counts once, with its first value (Go's url.Values.Get).
      const value = Array.isArray(raw) ? raw[0] : raw
      if (this.values.has(key) || value === undefined || value === null) continue
      this.values.set(key, String(value))
    }
  }

  /** The raw value of `name`; '' when absent. Checked for control characters and length. */
  text(name: string): string {
    const value = this.values.get(name) ?? ''
    if (value.length > MAX_VALUE_LENGTH) throw this.invalid(name, `must be at most ${MAX_VALUE_LENGTH} characters`)
    if (controlChars.test(value)) throw this.invalid(name, 'must not contain newlines or control characters')
    return value
  }

  /** A value HAProxy reads as one word. */
  word(name: string): string {
    const value = this.text(name)
    if (wordBreakers.test(value)) throw this.invalid(name, 'must not contain spaces or "#"')
    return value
  }

  /** A SEPARATOR-delimited list of words; empty items are dropped. */
  list(name: string): string[] {
    const value = this.text(name)
    const items = value.split(this.separator).filter((item) => item !== '')
    for (const item of items) {
      if (wordBreakers.test(item)) throw this.invalid(name, 'items must not contain spaces or "#"')
    }
    return items
  }

  parsed<T>(name: string, schema: z.ZodType<T>): T | undefined {
    const value = this.text(name)
    if (value === '') return undefined
    const result = schema.safeParse(value)
    if (!result.success) throw this.invalid(name, result.error.issues[0]?.message ?? 'is invalid')
    return result.data
  }

  invalid(name: string, problem: string) {
    return errors.invalidParameter(name, problem, this.serviceName)
  }

  has(name: string): boolean {
    return (this.values.get(name) ?? '') !== ''
  }

  /** Every parameter with its (first) value. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

/** Parameters whose presence with suffix `.N` creates destination N (inventory §3.2). */
const destinationKeys = ['servicePath', 'port', 'serviceDomain', 'httpsPort'] as const

/**
 * Reads destination fields: `name.N` when present, else the non-indexed `name` (the fallback
 * that makes a non-indexed value apply to every indexed destination).
 */
function readDestination(params: ParamReader, index: number, options: ParseOptions): Destination {
  const key = (name: string) => (index > 0 && params.has(`${name}.${index}`) ? `${name}.${index}` : name)
  const reqMode = (params.parsed(key('reqMode'), reqModeSchema) ?? 'http') as ReqMode
  const httpsPort = params.parsed(key('httpsPort'), portSchema)
  // httpsPort makes srcPort default to 80 and srcHttpsPort to 443 (inventory §3.2).
  const srcPort = params.parsed(key('srcPort'), portSchema) ?? (httpsPort === undefined ? undefined : '80')
  const srcHttpsPort = params.parsed(key('srcHttpsPort'), portSchema) ?? (httpsPort === undefined ? undefined : '443')
  const servicePath = params.list(key('servicePath'))
  const serviceDomain = params.list(key('serviceDomain'))
  const serviceGroup = params.parsed(key('serviceGroup'), groupNameSchema)
  const balanceGroup = params.parsed(key('balanceGroup'), balanceSchema)
  const userDef = params.text(key('userDef'))
  const rewriteKey = key('reqPathSearchReplace')
  const reqPathSearchReplace = params
    .text(rewriteKey)
    .split(':')
    .filter((pair) => pair !== '')
    .map((pair): [string, string] => {
      const [search = '', replace = ''] = pair.split(',')
      if (search === '') throw params.invalid(rewriteKey, 'each pair must be "search,replace"')
      return [search, replace]
    })
  return {
    index,
    reqMode,
    port: params.parsed(key('port'), portSchema) ?? '',
    ...(srcPort === undefined ? {} : { srcPort: Number(srcPort) }),
    // A domain without a path routes every path of that domain (inventory §3.2); an sni
    // destination matches its domains as server names instead.
    servicePath: servicePath.length === 0 && serviceDomain.length > 0 ? (reqMode === 'sni' ? serviceDomain : ['/']) : servicePath,
    // For sni the original's path_beg default matched nothing useful: match the server name.
    pathType: params.text(key('pathType')).trim() || (reqMode === 'sni' ? 'req_ssl_sni -i' : 'path_beg'),
    servicePathExclude: params.list(key('servicePathExclude')),
    serviceDomain,
    ...optionalWord(params, key('outboundHostname'), 'outboundHostname'),
    reqPathSearchReplace,
    ...optionalWord(params, key('timeoutServer'), 'timeoutServer'),
    ...optionalWord(params, key('timeoutTunnel'), 'timeoutTunnel'),
    httpsOnly: (params.parsed(key('httpsOnly'), boolSchema) ?? false) || options.httpsOnly === true,
    ...optional('httpsRedirectCode', params.parsed(key('httpsRedirectCode'), redirectCodeSchema)),
    allowedMethods: methods(params, key('allowedMethods')),
    deniedMethods: methods(params, key('deniedMethods')),
    denyHttp: params.parsed(key('denyHttp'), boolSchema) ?? false,
    ignoreAuthorization: params.parsed(key('ignoreAuthorization'), boolSchema) ?? false,
    sslVerifyNone: params.parsed(key('sslVerifyNone'), boolSchema) ?? false,
    ...optionalWord(params, key('timeoutClient'), 'timeoutClient'),
    clitcpka: params.parsed(key('clitcpka'), boolSchema) ?? false,
    checkTcp: params.parsed(key('checkTcp'), boolSchema) ?? false,
    ...(httpsPort === undefined ? {} : { httpsPort: Number(httpsPort) }),
    ...(srcHttpsPort === undefined ? {} : { srcHttpsPort: Number(srcHttpsPort) }),
    serviceHeader: serviceHeaders(params, key('serviceHeader')),
    userAgent: params.list(key('userAgent')),
    redirectFromDomain: params.list(key('redirectFromDomain')),
    verifyClientSsl: params.parsed(key('verifyClientSsl'), boolSchema) ?? false,
    ...optional('serviceGroup', serviceGroup),
    ...optional('balanceGroup', balanceGroup),
    ...optional('userDef', userDef || undefined),
  }
}

// RFC 9110 §5.1: a field name is a token.
const headerName = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * `serviceHeader`: SEPARATOR-delimited `Name:value` pairs (split at the first `:`; blanks around
 * name and value are dropped), sorted by name as the original iterated them.
 */
function serviceHeaders(params: ParamReader, name: string): Array<[string, string]> {
  const pairs = new Map<string, string>()
  for (const item of params.text(name).split(params.separator)) {
    if (item.trim() === '') continue
    const colon = item.indexOf(':')
    const header = colon === -1 ? '' : item.slice(0, colon).trim()
    const value = colon === -1 ? '' : item.slice(colon + 1).trim()
    if (!headerName.test(header) || value === '') throw params.invalid(name, `${JSON.stringify(item)} must be "Header:value"`)
    if (wordBreakers.test(value)) throw params.invalid(name, `the value of ${header} must not contain spaces or "#"`)
    if (pairs.has(header)) throw params.invalid(name, `${header} is given twice`)
    pairs.set(header, value)
  }
  return [...pairs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

// userlist entries are `user <name> (insecure-)password <password>`: both are single words.
const userWord = /^[^\s#:,]+$/

/**
 * The entries of a `user:password` list (USERS, `users`, API_USERS): split on commas and
 * newlines, trimmed, empty ones dropped, each split at its first `:` (no `:`: the whole entry
 * is the name, the password is empty).
 */
export function credentialEntries(text: string): Array<{ entry: string; name: string; password: string; hasColon: boolean }> {
  return text
    .split(/[,\n]/)
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((entry) => {
      const colon = entry.indexOf(':')
      return colon === -1 ? { entry, name: entry, password: '', hasColon: false } : { entry, name: entry.slice(0, colon), password: entry.slice(colon + 1), hasColon: true }
    })
}

/**
 * `name:password` entries, comma or newline separated (inventory §5.6). An entry without a
 * password is dropped unless `fallback` (the usersSecret file, then USERS) has the name.
 */
export function parseUsers(text: string, encrypted: boolean, fallback: User[] = []): { users: User[]; invalid?: string } {
  const users: User[] = []
  for (const { name, password } of credentialEntries(text)) {
    if (!userWord.test(name) || (password !== '' && /[\s#]/.test(password))) return { users, invalid: `user ${JSON.stringify(name)} has a name or password HAProxy cannot read (no spaces, "#", ":" or ",")` }
    const known = password === '' ? fallback.find((u) => u.name === name) : undefined
    if (password !== '') users.push({ name, password, encrypted })
    else if (known) users.push(known)
  }
  return { users }
}

/** Reads `$SECRETS_DIR/dfp_users_<name>`; undefined when there is no such secret. */
function readUsersSecret(secretsDir: string, name: string): string | undefined {
  try {
    return readFileSync(join(secretsDir, `dfp_users_${name}`), 'utf8').replace(/[\r\n]+$/, '')
  } catch {
    return undefined
  }
}

/** The service's users: `users`, completed and extended by the `usersSecret` file. */
function readServiceUsers(params: ParamReader, options: ParseOptions): User[] {
  const encrypted = params.parsed('usersPassEncrypted', boolSchema) ?? false
  const secretName = params.word('usersSecret')
  let fromSecret: User[] = []
  if (secretName !== '') {
    if (!/^[A-Za-z0-9_.-]+$/.test(secretName) || secretName.includes('..')) throw params.invalid('usersSecret', 'must be a secret name (letters, digits, ".", "_", "-")')
    const text = options.secretsDir === undefined ? undefined : readUsersSecret(options.secretsDir, secretName)
    if (text === undefined) throw params.invalid('usersSecret', `no secret dfp_users_${secretName} in the secrets folder`)
    const parsed = parseUsers(text, encrypted)
    if (parsed.invalid) throw params.invalid('usersSecret', parsed.invalid)
    fromSecret = parsed.users
  }
  const parsed = parseUsers(params.text('users'), encrypted, [...fromSecret, ...(options.globalUsers ?? [])])
  if (parsed.invalid) throw params.invalid('users', parsed.invalid)
  const names = new Set(parsed.users.map((u) => u.name))
  return [...parsed.users, ...fromSecret.filter((u) => !names.has(u.name))]
}

/** HTTP method names (RFC 9110 §9: a token; HAProxy matches them as given). */
function methods(params: ParamReader, name: string): string[] {
  const list = params.list(name)
  for (const method of list) {
    if (!/^[A-Za-z][A-Za-z-]*$/.test(method)) throw params.invalid(name, `${JSON.stringify(method)} is not an HTTP method name`)
  }
  return list
}

/** A SEPARATOR list of header rules (`Name value`): spaces are part of a rule, newlines are not. */
function headerRules(params: ParamReader, name: string, alias?: string): string[] {
  const source = params.has(name) || !alias ? name : alias
  return params
    .text(source)
    .split(params.separator)
    .map((rule) => rule.trim())
    .filter((rule) => rule !== '')
}

const optional = <K extends string, V>(field: K, value: V | undefined): Partial<Record<K, V>> =>
  value === undefined ? {} : ({ [field]: value } as Record<K, V>)

function optionalWord<K extends string>(params: ParamReader, name: string, field: K): Partial<Record<K, string>> {
  const value = params.word(name)
  return value === '' ? {} : ({ [field]: value } as Record<K, string>)
}

/**
 * Indexed destinations 1..10, stopping at the first index none of whose keys is set; without
 * any, one non-indexed destination (index 0).
 */
function readDestinations(params: ParamReader, options: ParseOptions): Destination[] {
  const indexed: Destination[] = []
  for (let n = 1; n <= MAX_DESTINATIONS; n++) {
    if (!destinationKeys.some((name) => params.has(`${name}.${n}`))) break
    indexed.push(readDestination(params, n, options))
  }
  return indexed.length > 0 ? indexed : [readDestination(params, 0, options)]
}

/** The checks of inventory §3.5, in its order and with its messages and status codes. */
function checkRoutable(service: Service): void {
  for (const dest of service.destinations) {
    if (dest.reqMode === 'http') {
      if (dest.servicePath.length === 0 && dest.serviceDomain.length === 0) throw errors.httpWithoutPathOrDomain(service.serviceName)
    } else if (dest.srcPort === undefined || dest.port === '') {
      throw errors.tcpWithoutPorts(service.serviceName)
    }
    // A destination may serve HTTPS requests only (httpsPort without port).
    if (dest.port === '' && dest.httpsPort === undefined) throw errors.portMissing(service.serviceName)
  }
}

/** Checks between parameters that the schemas of each cannot see. */
function checkCombinations(service: Service, params: ParamReader): void {
  for (const dest of service.destinations) {
    const suffix = dest.index > 0 ? `.${dest.index}` : ''
    // The original wrote a truncated frontend block here (its D16).
    if (dest.redirectFromDomain.length > 0 && dest.serviceDomain.length === 0) {
      throw params.invalid(`redirectFromDomain${suffix}`, 'needs serviceDomain: its first domain is where the redirect goes')
    }
    if (dest.reqMode !== 'http') {
      if (dest.httpsPort !== undefined) throw params.invalid(`httpsPort${suffix}`, 'applies to reqMode http only')
      if (dest.serviceHeader.length > 0) throw params.invalid(`serviceHeader${suffix}`, 'applies to reqMode http only')
      if (dest.userAgent.length > 0) throw params.invalid(`userAgent${suffix}`, 'applies to reqMode http only')
      if (dest.redirectFromDomain.length > 0) throw params.invalid(`redirectFromDomain${suffix}`, 'applies to reqMode http only')
    }
    if (dest.reqMode === 'sni' && dest.servicePath.length === 0) throw params.invalid(`servicePath${suffix}`, 'reqMode sni needs the server names to match (servicePath or serviceDomain)')
    if (dest.serviceGroup !== undefined && dest.reqMode !== 'tcp') throw params.invalid(`serviceGroup${suffix}`, 'applies to reqMode tcp only')
  }
  if (service.compressionType !== undefined && service.compressionAlgo === undefined) {
    throw params.invalid('compressionType', 'needs compressionAlgo')
  }
}

/**
 * Turns a flat parameter map into a validated Service. Unknown parameters are ignored and only
 * the parameters below are read, so internal fields cannot be set from outside.
 * Throws a DfpError (400/409) naming the parameter and the problem.
 */
export function parseService(source: ParamSource, options: ParseOptions): Service {
  const params = new ParamReader(source, options)
  const rawName = params.text('serviceName')
  if (rawName === '') throw errors.serviceNameMissing()
  const serviceName = params.parsed('serviceName', serviceNameSchema) as string
  params.serviceName = serviceName
  // serviceDomainMatchAll is the original's deprecated way to ask for hdr_dom(host).
  const matchAll = params.parsed('serviceDomainMatchAll', boolSchema) ?? false
  const serviceDomainAlgo = params.word('serviceDomainAlgo') || (matchAll ? 'hdr_dom(host)' : '')
  const reqPathSearch = params.text('reqPathSearch')
  const discoveryType = params.parsed('discoveryType', z.string().transform((v) => v.toUpperCase()).pipe(z.enum(['DNS'], 'must be DNS (or absent)')))
  const replicas = params.parsed('replicas', z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().max(10_000, 'must be at most 10000')))
  const sessionType = params.parsed('sessionType', z.enum(['sticky-server'], 'must be sticky-server'))
  const userDef = params.text('userDef')
  const service: Service = {
    serviceName,
    aclName: params.parsed('aclName', serviceNameSchema) ?? serviceName,
    ...(serviceDomainAlgo === '' ? {} : { serviceDomainAlgo }),
    isDefaultBackend: params.parsed('isDefaultBackend', boolSchema) ?? false,
    redirectWhenHttpProto: params.parsed('redirectWhenHttpProto', boolSchema) ?? false,
    redirectUnlessHttpsProto: params.parsed('redirectUnlessHttpsProto', boolSchema) ?? false,
    ...optional('compressionAlgo', params.parsed('compressionAlgo', compressionAlgoSchema)),
    ...optional('compressionType', params.parsed('compressionType', mimeTypes)),
    checkResolvers: params.parsed('checkResolvers', boolSchema) ?? options.checkResolvers ?? false,
    ...optional('discoveryType', discoveryType),
    // Only server-templates use the count; elsewhere it would make equal services differ.
    ...optional('replicas', replicas === undefined || replicas === 0 || (discoveryType === undefined && sessionType === undefined) ? undefined : replicas),
    ...optional('sessionType', sessionType),
    ...optionalWord(params, 'proxyInstanceName', 'proxyInstanceName'),
    ...optional('userDef', userDef || undefined),
    ...(reqPathSearch === '' ? {} : { reqPathSearch, reqPathReplace: params.text('reqPathReplace') }),
    headers: {
      // addHeader and setHeader are the original's deprecated names.
      addReqHeader: headerRules(params, 'addReqHeader', 'addHeader'),
      setReqHeader: headerRules(params, 'setReqHeader', 'setHeader'),
      addResHeader: headerRules(params, 'addResHeader'),
      setResHeader: headerRules(params, 'setResHeader'),
      delReqHeader: headerRules(params, 'delReqHeader'),
      delResHeader: headerRules(params, 'delResHeader'),
    },
    ...optional('connectionMode', params.parsed('connectionMode', connectionModeSchema)),
    ...optional('backendExtra', params.text('backendExtra').trim() || undefined),
    users: readServiceUsers(params, options),
    destinations: readDestinations(params, options),
  }
  checkRoutable(service)
  checkCombinations(service, params)
  // Custom templates see the service as parsed so far; their output replaces generated text.
  const custom: Partial<Pick<Service, 'customFrontend' | 'customBackend'>> = {}
  for (const [name, field] of [['templateFePath', 'customFrontend'], ['templateBePath', 'customBackend']] as const) {
    const path = params.text(name)
    if (path === '') continue
    const rendered = renderCustomTemplate(path, options.templatesDir, service)
    if (!rendered.ok) throw params.invalid(name, rendered.problem)
    custom[field] = rendered.text
  }
  return { ...service, ...custom }
}

/** Parameters that steer a request rather than describe the service; they are not saved. */
const requestOnly = new Set(['distribute', 'serviceCert'])

/**
 * A reconfigure request as a change to the state: `replicas=0` removes the service (how the
 * listener reports a service scaled to zero), anything else defines it. The parameters are kept
 * with the service so the saved state can be parsed again the same way.
 */
export function parseChange(source: ParamSource, options: ParseOptions): ServiceChange {
  const params = new ParamReader(source, options)
  if (params.text('serviceName') === '') throw errors.serviceNameMissing()
  const serviceName = params.parsed('serviceName', serviceNameSchema) as string
  params.serviceName = serviceName
  const replicas = params.parsed('replicas', z.string().regex(/^\d+$/, 'must be a whole number'))
  if (replicas !== undefined && Number(replicas) === 0) return { kind: 'remove', serviceName }
  const saved = Object.fromEntries(Object.entries(params.toRecord()).filter(([key]) => !requestOnly.has(key)))
  return { kind: 'put', service: parseService(source, options), params: saved }
}
