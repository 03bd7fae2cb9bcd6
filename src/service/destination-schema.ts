import { z } from 'zod'
import { booleanSchema } from '../field-values.js'
import { isSet, listOf, optional, optionalOf, optionalWord, refuse, text, wordBreakers } from './param-fields.js'
import { balanceSchema, groupNameSchema, portSchema, redirectCodeSchema, reqModeSchema } from './param-schemas.js'
import { rewriteProblem } from './path-rewrite.js'
import { domainToASCII } from 'node:url'
import { pathAsSent } from '../haproxy-text.js'

const MAX_DESTINATIONS = 10

/** Parameters whose presence with suffix `.N` creates destination N (inventory §3.2). */
const destinationKeys = ['servicePath', 'port', 'serviceDomain', 'httpsPort'] as const

// RFC 9110 §5.1: a field name is a token.
const headerName = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * `serviceHeader`: SEPARATOR-delimited `Name:value` pairs (split at the first `:`; blanks around
 * name and value are dropped), sorted by name as the original iterated them.
 */
const serviceHeaders = (separator: string) =>
  text.transform((value, ctx): Array<[name: string, value: string]> => {
    const pairs = new Map<string, string>()
    for (const item of value.split(separator)) {
      if (item.trim() === '') continue
      const colon = item.indexOf(':')
      const header = colon === -1 ? '' : item.slice(0, colon).trim()
      const headerValue = colon === -1 ? '' : item.slice(colon + 1).trim()
      // A quote would be read again by the argument parser of hdr() (configuration.txt 7.3).
      if (!headerName.test(header) || header.includes("'") || headerValue === '') return refuse(ctx, value, `${JSON.stringify(item)} must be "Header:value"`)
      if (wordBreakers.test(headerValue)) return refuse(ctx, value, `the value of ${header} must not contain spaces or "#"`)
      if (pairs.has(header)) return refuse(ctx, value, `${header} is given twice`)
      pairs.set(header, headerValue)
    }
    return [...pairs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  })

/** HTTP method names (RFC 9110 §9: a token; HAProxy matches them as given). */
const methods = (separator: string) =>
  listOf(separator).transform((list, ctx) => {
    const bad = list.find((method) => !/^[A-Za-z][A-Za-z-]*$/.test(method))
    return bad === undefined ? list : refuse(ctx, list, `${JSON.stringify(bad)} is not an HTTP method name`)
  })

/** `search,replace` pairs separated by `:`, each an `http-request replace-path` rule, in order. */
const rewritePairs = text.transform((value, ctx) =>
  value
    .split(':')
    .filter((pair) => pair !== '')
    .map((pair): [search: string, replace: string] => {
      const [search = '', replace = ''] = pair.split(',')
      if (search === '') return refuse(ctx, value, 'each pair must be "search,replace"')
      const problem = rewriteProblem(search, replace)
      return problem ? refuse(ctx, value, `${search},${replace}: ${problem}`) : [search, replace]
    }),
)

const flag = optionalOf(booleanSchema)

/** Paths (servicePath, servicePathExclude) as clients send them: non-ASCII percent-encoded (haproxy-text.ts). */
const pathList = (separator: string) => listOf(separator).transform((paths) => paths.map(pathAsSent))

/**
 * Domains as the Host header carries them: an internationalised name in its ASCII form
 * (RFC 5891, punycode `xn--…`), wildcard `*` prefixes kept.
 */
const domainList = (separator: string) =>
  listOf(separator).transform((domains, ctx) =>
    domains.map((domain) => {
      if (/^[\x21-\x7e]*$/.test(domain)) return domain
      const [, stars = '', rest = ''] = /^(\**)(.*)$/.exec(domain) ?? []
      const ascii = domainToASCII(rest)
      return ascii === '' ? refuse(ctx, domains, `${JSON.stringify(domain)} is not a domain name`) : `${stars}${ascii}`
    }),
  )

/**
 * `outboundHostname`: a host name (RFC 1123 labels, `_` allowed as Docker names have it) or an IP
 * literal. It is a word of the server line and of the Runtime API's `add server`/`set server addr`,
 * where `;` would start another command (haproxy-text.ts runtimeWordProblem).
 */
const hostSchema = z.string().regex(/^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$|^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/, 'must be a host name or an IP address')

/** `pathType`: the fetch path ACLs match with (configuration.txt 7.3.6), optionally case-insensitive. */
const PATH_TYPE = /^((path|url|base)(_(beg|end|reg|sub|dir|dom|len))?|req_ssl_sni|req\.ssl_sni)( -i)?$/
const pathType = text.transform((value, ctx) => (value.trim() === '' || PATH_TYPE.test(value.trim()) ? value : refuse(ctx, value, 'must be path, path_beg, path_end, path_reg, path_sub, path_dir, path_dom (or url…, base…, req_ssl_sni), optionally followed by " -i"')))

/**
 * The parameters of one destination, in the order they are checked (the first wrong one is the
 * one a refusal names), and the Destination they make (inventory §3.4). `index` is N of
 * `param.N`, 0 when not indexed.
 */
export const destinationSchema = (separator: string, forceHttpsOnly: boolean) =>
  z
    .object({
      index: z.number(),
      reqMode: optionalOf(reqModeSchema),
      httpsPort: optionalOf(portSchema),
      srcPort: optionalOf(portSchema),
      srcHttpsPort: optionalOf(portSchema),
      servicePath: pathList(separator),
      serviceDomain: domainList(separator),
      serviceGroup: optionalOf(groupNameSchema),
      balanceGroup: optionalOf(balanceSchema),
      userDef: text,
      reqPathSearchReplace: rewritePairs,
      port: optionalOf(portSchema),
      pathType,
      servicePathExclude: pathList(separator),
      outboundHostname: optionalOf(hostSchema),
      timeoutServer: optionalWord,
      timeoutTunnel: optionalWord,
      httpsOnly: flag,
      httpsRedirectCode: optionalOf(redirectCodeSchema),
      allowedMethods: methods(separator),
      deniedMethods: methods(separator),
      denyHttp: flag,
      ignoreAuthorization: flag,
      sslVerifyNone: flag,
      timeoutClient: optionalWord,
      clitcpka: flag,
      checkTcp: flag,
      serviceHeader: serviceHeaders(separator),
      userAgent: listOf(separator),
      redirectFromDomain: domainList(separator),
      verifyClientSsl: flag,
    })
    .transform((given) => {
      // How it is routed: rules in `frontend services` (http), its own `tcpFE_<srcPort>` or TCP
      // group (tcp), or by TLS server name in `frontend service_<srcPort>` (sni).
      const reqMode = given.reqMode ?? 'http'
      // httpsPort makes srcPort default to 80 and srcHttpsPort to 443 (inventory §3.2).
      const srcPort = given.srcPort ?? (given.httpsPort === undefined ? undefined : '80')
      const srcHttpsPort = given.srcHttpsPort ?? (given.httpsPort === undefined ? undefined : '443')
      const { servicePath, serviceDomain } = given
      return {
        index: given.index,
        reqMode,
        /** Port of the service's tasks; '' only on indexed destinations that route nothing. */
        port: given.port ?? '',
        /** http: an extra `dst_port` condition; tcp: the port the frontend binds. */
        ...optional('srcPort', srcPort === undefined ? undefined : Number(srcPort)),
        // A domain without a path routes every path of that domain (inventory §3.2); an sni
        // destination matches its domains as server names instead.
        servicePath: servicePath.length === 0 && serviceDomain.length > 0 ? (reqMode === 'sni' ? serviceDomain : ['/']) : servicePath,
        // For sni the original's path_beg default matched nothing useful: match the server name.
        pathType: given.pathType.trim() || (reqMode === 'sni' ? 'req_ssl_sni -i' : 'path_beg'),
        servicePathExclude: given.servicePathExclude,
        serviceDomain,
        /** Host of the server line; the service name when absent. */
        ...optional('outboundHostname', given.outboundHostname),
        /** `search,replace` pairs applied with regsub, in order. */
        reqPathSearchReplace: given.reqPathSearchReplace,
        ...optional('timeoutServer', given.timeoutServer),
        ...optional('timeoutTunnel', given.timeoutTunnel),
        /** Redirect plain-HTTP requests of this destination to HTTPS (its backend's first rule). */
        httpsOnly: (given.httpsOnly ?? false) || forceHttpsOnly,
        /** Status of the HTTPS redirects (301, 302, 303, 307 or 308); HAProxy's 302 when absent. */
        ...optional('httpsRedirectCode', given.httpsRedirectCode),
        /** Only these methods pass (others get 403). */
        allowedMethods: given.allowedMethods,
        /** These methods get 403. */
        deniedMethods: given.deniedMethods,
        /** Plain-HTTP requests get 403 (the backend only serves TLS connections). */
        denyHttp: given.denyHttp ?? false,
        /** No authentication on this destination, whatever the service or USERS say. */
        ignoreAuthorization: given.ignoreAuthorization ?? false,
        /** The service speaks TLS: servers get ` ssl verify none`. */
        sslVerifyNone: given.sslVerifyNone ?? false,
        /** tcp: `timeout client <v>s` of its frontend (from the first destination on that port). */
        ...optional('timeoutClient', given.timeoutClient),
        /** tcp: TCP keep-alive towards clients (`option clitcpka`, first destination on the port). */
        clitcpka: given.clitcpka ?? false,
        /** tcp: health checks (`option tcp-check`, ` check` on the server). */
        checkTcp: given.checkTcp ?? false,
        /** http: a second backend `https-<aclName>-be<httpsPort>_<index>` for requests on srcHttpsPort. */
        ...optional('httpsPort', given.httpsPort === undefined ? undefined : Number(given.httpsPort)),
        /** http: the port HTTPS requests arrive on (443 when httpsPort is set). */
        ...optional('srcHttpsPort', srcHttpsPort === undefined ? undefined : Number(srcHttpsPort)),
        /** http: `Header:value` pairs that must all match, sorted by header name. */
        serviceHeader: given.serviceHeader,
        /** http: substrings of User-Agent; one must match. */
        userAgent: given.userAgent,
        /** Hosts redirected (301) to the first serviceDomain. */
        redirectFromDomain: given.redirectFromDomain,
        /** http: only clients with a valid certificate (CA_FILE) pass. */
        verifyClientSsl: given.verifyClientSsl ?? false,
        /** tcp: member of the TCP group `listen tcpListen_<serviceGroup>_<srcPort>` instead of a tcpFE. */
        ...optional('serviceGroup', given.serviceGroup),
        /** tcp group: `balance <balanceGroup>` (the first member in frontend order sets it). */
        ...optional('balanceGroup', given.balanceGroup),
        /** Free text for custom templates. */
        ...optional('userDef', given.userDef || undefined),
      }
    })

/** The parameter names of a destination's fields (all but `index`). */
const destinationFields = Object.keys(destinationSchema(',', false).in.shape).filter((field) => field !== 'index')

/** One destination's fields, and the parameter each came from (what a refusal names). */
interface DestinationInput {
  fields: Record<string, string | number | undefined>
  params: Record<string, string>
}

/**
 * The pre-step of the destination schema: indexed destinations 1..MAX_DESTINATIONS, stopping at
 * the first index none of whose keys is set; without any, one non-indexed destination (index 0).
 * A field of destination N reads `name.N` when it is set, else the non-indexed `name` (the
 * fallback that makes a non-indexed value apply to every indexed destination).
 */
export function destinationInputs(values: Record<string, string>): DestinationInput[] {
  const input = (index: number): DestinationInput => {
    const fields: DestinationInput['fields'] = { index }
    const params: DestinationInput['params'] = {}
    for (const field of destinationFields) {
      const param = index > 0 && isSet(values, `${field}.${index}`) ? `${field}.${index}` : field
      fields[field] = values[param]
      params[field] = param
    }
    return { fields, params }
  }
  const indexed: DestinationInput[] = []
  for (let n = 1; n <= MAX_DESTINATIONS; n++) {
    if (!destinationKeys.some((name) => isSet(values, `${name}.${n}`))) break
    indexed.push(input(n))
  }
  return indexed.length > 0 ? indexed : [input(0)]
}
