import type { Destination, Service } from '../service/types.js'
import { customLines, paths, redirectCode, type RenderSettings } from './common.js'
import { domainAcls, names } from './names.js'
import { aclPatterns, configWord, logFormatWord } from '../haproxy-text.js'

/** `<acl> hdr(<name>) <value>`: the header name inside the fetch and the value, each as data. */
const headerAcl = (h: { acl: string; name: string; value: string }) => `${h.acl} ${configWord(`hdr(${h.name})`)}${aclPatterns([h.value])}`

/** Frontend order of the original (inventory §5.3): `/.well-known` paths first, `/` last. */
export function frontendRank(s: Service): number {
  const paths = s.destinations.flatMap((d) => d.servicePath)
  if (paths.some((p) => p.toLowerCase().startsWith('/.well-known'))) return 0
  if (paths.includes('/')) return 2
  return 1
}

/** The rules a service adds to `frontend services` (inventory §5.3 parts 1 to 4). */
export function serviceFrontend(service: Service, settings: RenderSettings) {
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
      acls.push(...headers.map(headerAcl))
    }
    if (dest.httpsPort !== undefined) {
      acls.push(`${n.urlHttps}${paths(dest.pathType, dest.servicePath)}`)
      if (dest.servicePathExclude.length) acls.push(`${n.urlExcludeHttps}${paths(dest.pathType, dest.servicePathExclude)}`)
      acls.push(...domainAcls(n.domainHttps, dest.serviceDomain, algo))
      if (dest.port === '') acls.push(...headers.map(headerAcl))
    }
    const withSrcPort = dest.srcPort !== undefined && dest.port !== ''
    const withSrcHttpsPort = dest.srcHttpsPort !== undefined && dest.httpsPort !== undefined
    if (withSrcPort) acls.push(`${n.srcPort} dst_port ${dest.srcPort}`)
    if (withSrcHttpsPort) acls.push(`${n.srcHttpsPort} dst_port ${dest.srcHttpsPort}`)
    if (dest.userAgent.length) acls.push(`${n.userAgent} hdr_sub(User-Agent) -i${aclPatterns(dest.userAgent)}`)
    for (const host of dest.redirectFromDomain) {
      // the prefix is a log-format string (configuration.txt 4.2 "http-request redirect")
      fromDomain.push(`http-request redirect code 301 prefix ${logFormatWord(`http://${dest.serviceDomain[0]}`)} if { hdr_beg(host) -i${aclPatterns([host])} }`)
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

/**
 * The statistics page (inventory §5.6), on when STATS_USER and STATS_PASS are both set (`none`
 * for either: no credentials). With STATS_PORT (other than 80) it has a frontend of its own;
 * otherwise it answers on `frontend services`. The original put these lines in `defaults`, which
 * turned the page on in every proxy; here only where it is served.
 */
export function statsLines(settings: RenderSettings): string[] {
  if (!settings.STATS_USER || !settings.STATS_PASS) return []
  const auth = settings.STATS_USER === 'none' || settings.STATS_PASS === 'none' ? [] : [`stats auth ${settings.STATS_USER}:${settings.STATS_PASS}`]
  return ['stats enable', 'stats refresh 30s', 'stats realm Strictly\\ Private', `stats uri ${settings.STATS_URI}`, ...auth]
}
export const ownStatsPort = (settings: RenderSettings) => settings.STATS_PORT !== '' && settings.STATS_PORT !== 80
