import { compact } from '../compact.js'
import { aclPatterns } from '../haproxy-text.js'
import type { Destination, Service } from '../service/types.js'

/** Names of inventory §5.8: the acl name, port and index are concatenated without separator. */
/** A destination's backend name alone (`names` builds every name; the maps need this one per render). */
export const backendName = (service: Service, dest: Destination) => `${service.aclName}-be${dest.port}_${dest.index}`

export const names = (service: Service, dest: Destination) => {
  const id = `${service.aclName}${dest.port}_${dest.index}`
  const httpsId = `${service.aclName}${dest.httpsPort}_${dest.index}`
  return {
    backend: backendName(service, dest),
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

/**
 * Userlists live in a namespace of their own: a service's is `users:<serviceName>`, USERS' is
 * `dfp:users`. serviceName cannot hold a `:`, so no service can name USERS' userlist or another
 * service's (two services with one userlist name would be merged by HAProxy).
 */
export const serviceUserlist = (service: Service) => `users:${service.serviceName}`
export const GLOBAL_USERLIST = 'dfp:users'

/** A TCP-group member gets a server in `listen tcpListen_…`, no frontend and no backend. */
export const inGroup = (dest: Destination) => dest.reqMode === 'tcp' && dest.serviceGroup !== undefined

/** The backends a destination of a service has in haproxy.cfg (its HTTPS-port backend second). */
export function destinationBackends(service: Service, dest: Destination): string[] {
  const n = names(service, dest)
  return [...(dest.port !== '' && !inGroup(dest) ? [n.backend] : []), ...(dest.httpsPort !== undefined ? [n.httpsBackend] : [])]
}

/**
 * The backend and ACL names (path, srcPort, user agent) a service's destinations generate. Names concatenate aclName,
 * port and index without separators, so two services could generate the same name (the
 * original's D3 and D18): the apply loop refuses a service whose names another one uses.
 */
export function generatedNames(service: Service): string[] {
  let found = generatedCache.get(service)
  if (!found) generatedCache.set(service, (found = compact(computeGeneratedNames(service))))
  return found
}

const generatedCache = new WeakMap<Service, string[]>()

function computeGeneratedNames(service: Service): string[] {
  // serviceHeader ACLs `hdr_<acl><port>_<n>`, numbered across the service's http destinations
  // (render/frontend.ts): `a1`+`23` and `a12`+`3` would share them too.
  let headerCount = 0
  const headerAcls = service.destinations.filter((d) => d.reqMode === 'http').flatMap((d) => d.serviceHeader.map(() => `hdr_${service.aclName}${d.port}_${headerCount++}`))
  return [...headerAcls, ...service.destinations.flatMap((d) => {
    const n = names(service, d)
    return [
      ...(d.port !== '' ? [n.backend, d.reqMode === 'sni' ? n.sni : n.url] : []),
      ...(d.httpsPort !== undefined ? [n.httpsBackend, n.urlHttps] : []),
      // ACLs named after srcPort or the user agents collide on their own (`a1`+`23` and `a12`+`3`
      // both give srcPort_a123_0, D18); HAProxy would OR the two lines and route one service's
      // traffic by the other's condition.
      ...(d.srcPort !== undefined && d.port !== '' ? [n.srcPort] : []),
      ...(d.srcHttpsPort !== undefined && d.httpsPort !== undefined ? [n.srcHttpsPort] : []),
      ...(d.userAgent.length > 0 ? [n.userAgent] : []),
    ]
  })]
}

/**
 * Domain ACL lines. Domains starting with `*` are wildcards matched with `hdr_end(host)`;
 * the others keep the service's algorithm. Several `acl` lines with one name are OR-ed by HAProxy.
 */
export function domainAcls(name: string, domains: string[], algo: string): string[] {
  const exact = domains.filter((d) => !d.startsWith('*'))
  const wildcard = domains.filter((d) => d.startsWith('*')).map((d) => d.replace(/^\*+|\*+$/g, ''))
  const lines: string[] = []
  if (exact.length) lines.push(`${name} ${algo} -i${aclPatterns(exact)}`)
  if (wildcard.length) lines.push(`${name} hdr_end(host) -i${aclPatterns(wildcard)}`)
  return lines
}
