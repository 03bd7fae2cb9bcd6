import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { parseUsers } from '../auth/credentials.js'
import { errors } from '../errors.js'
import { flatStrings } from '../flat-strings.js'
import { booleanSchema } from '../field-values.js'
import type { ServiceChange } from '../state/registry.js'
import { renderCustomTemplate } from './custom-templates.js'
import { readDestinations } from './destination-params.js'
import { optional, optionalWord, ParamReader, type ParamSource } from './param-reader.js'
import { compressionAlgoSchema, connectionModeSchema, mimeTypes, serviceNameSchema } from './param-schemas.js'
import type { Service, User } from './types.js'

/** What parsing needs from the settings. */
export interface ParseOptions {
  /** SEPARATOR: splits list values. */
  separator: string
  /** HTTPS_ONLY: every http destination redirects plain HTTP to HTTPS. */
  httpsOnly?: boolean
  /** SECRETS_DIR, where `usersSecret` files are read. */
  secretsDir?: string
  /** USERS: passwords for `users` entries given without one. */
  globalUsers?: readonly User[]
  /** TEMPLATES_DIR, the only folder `templateFePath`/`templateBePath` are read from. */
  templatesDir?: string
  /** CHECK_RESOLVERS: checkResolvers of services that do not give it (theirs wins: D8). */
  checkResolvers?: boolean
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
  const encrypted = params.parsed('usersPassEncrypted', booleanSchema) ?? false
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

/** A SEPARATOR list of header rules (`Name value`): spaces are part of a rule, newlines are not. */
function headerRules(params: ParamReader, name: string, alias?: string): string[] {
  const source = params.has(name) || !alias ? name : alias
  return params
    .text(source)
    .split(params.separator)
    .map((rule) => rule.trim())
    .filter((rule) => rule !== '')
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
  const params = new ParamReader(source, options.separator)
  const rawName = params.text('serviceName')
  if (rawName === '') throw errors.serviceNameMissing()
  const serviceName = params.parsed('serviceName', serviceNameSchema) as string
  params.serviceName = serviceName
  // serviceDomainMatchAll is the original's deprecated way to ask for hdr_dom(host).
  const matchAll = params.parsed('serviceDomainMatchAll', booleanSchema) ?? false
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
    isDefaultBackend: params.parsed('isDefaultBackend', booleanSchema) ?? false,
    redirectWhenHttpProto: params.parsed('redirectWhenHttpProto', booleanSchema) ?? false,
    redirectUnlessHttpsProto: params.parsed('redirectUnlessHttpsProto', booleanSchema) ?? false,
    ...optional('compressionAlgo', params.parsed('compressionAlgo', compressionAlgoSchema)),
    ...optional('compressionType', params.parsed('compressionType', mimeTypes)),
    checkResolvers: params.parsed('checkResolvers', booleanSchema) ?? options.checkResolvers ?? false,
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
    destinations: readDestinations(params, options.httpsOnly === true),
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
  const params = new ParamReader(source, options.separator)
  if (params.text('serviceName') === '') throw errors.serviceNameMissing()
  const serviceName = params.parsed('serviceName', serviceNameSchema) as string
  params.serviceName = serviceName
  const replicas = params.parsed('replicas', z.string().regex(/^\d+$/, 'must be a whole number'))
  if (replicas !== undefined && Number(replicas) === 0) return { kind: 'remove', serviceName }
  const saved = Object.fromEntries(Object.entries(params.toRecord()).filter(([key]) => !requestOnly.has(key)))
  return flatStrings({ kind: 'put', service: parseService(source, options), params: saved })
}
