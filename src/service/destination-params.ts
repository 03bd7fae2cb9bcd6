import { booleanSchema } from '../field-values.js'
import { optional, optionalWord, type ParamReader, wordBreakers } from './param-reader.js'
import { balanceSchema, groupNameSchema, portSchema, redirectCodeSchema, reqModeSchema } from './param-schemas.js'
import type { Destination, ReqMode } from './types.js'

const MAX_DESTINATIONS = 10

/** Parameters whose presence with suffix `.N` creates destination N (inventory §3.2). */
const destinationKeys = ['servicePath', 'port', 'serviceDomain', 'httpsPort'] as const

/**
 * Reads destination fields: `name.N` when present, else the non-indexed `name` (the fallback
 * that makes a non-indexed value apply to every indexed destination).
 */
function readDestination(params: ParamReader, index: number, forceHttpsOnly: boolean): Destination {
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
    httpsOnly: (params.parsed(key('httpsOnly'), booleanSchema) ?? false) || forceHttpsOnly,
    ...optional('httpsRedirectCode', params.parsed(key('httpsRedirectCode'), redirectCodeSchema)),
    allowedMethods: methods(params, key('allowedMethods')),
    deniedMethods: methods(params, key('deniedMethods')),
    denyHttp: params.parsed(key('denyHttp'), booleanSchema) ?? false,
    ignoreAuthorization: params.parsed(key('ignoreAuthorization'), booleanSchema) ?? false,
    sslVerifyNone: params.parsed(key('sslVerifyNone'), booleanSchema) ?? false,
    ...optionalWord(params, key('timeoutClient'), 'timeoutClient'),
    clitcpka: params.parsed(key('clitcpka'), booleanSchema) ?? false,
    checkTcp: params.parsed(key('checkTcp'), booleanSchema) ?? false,
    ...(httpsPort === undefined ? {} : { httpsPort: Number(httpsPort) }),
    ...(srcHttpsPort === undefined ? {} : { srcHttpsPort: Number(srcHttpsPort) }),
    serviceHeader: serviceHeaders(params, key('serviceHeader')),
    userAgent: params.list(key('userAgent')),
    redirectFromDomain: params.list(key('redirectFromDomain')),
    verifyClientSsl: params.parsed(key('verifyClientSsl'), booleanSchema) ?? false,
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

/** HTTP method names (RFC 9110 §9: a token; HAProxy matches them as given). */
function methods(params: ParamReader, name: string): string[] {
  const list = params.list(name)
  for (const method of list) {
    if (!/^[A-Za-z][A-Za-z-]*$/.test(method)) throw params.invalid(name, `${JSON.stringify(method)} is not an HTTP method name`)
  }
  return list
}

/**
 * Indexed destinations 1..MAX_DESTINATIONS, stopping at the first index none of whose keys is set; without
 * any, one non-indexed destination (index 0).
 */
export function readDestinations(params: ParamReader, forceHttpsOnly: boolean): Destination[] {
  const indexed: Destination[] = []
  for (let n = 1; n <= MAX_DESTINATIONS; n++) {
    if (!destinationKeys.some((name) => params.has(`${name}.${n}`))) break
    indexed.push(readDestination(params, n, forceHttpsOnly))
  }
  return indexed.length > 0 ? indexed : [readDestination(params, 0, forceHttpsOnly)]
}
