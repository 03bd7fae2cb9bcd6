import type { Destination, Service } from '../service/types.js'
import { byteCompare, debugOptions, paths, type RenderSettings, templates } from './common.js'
import { domainAcls, inGroup, names } from './names.js'
import { serverAddress } from './backends.js'

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
export function renderTcpFrontends(services: Service[], settings: RenderSettings): string {
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
export function renderSniFrontends(services: Service[], settings: RenderSettings): string {
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
export function renderTcpGroups(services: Service[], settings: RenderSettings): string {
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
        const { address, resolvers } = serverAddress(dest.outboundHostname ?? service.serviceName, dest.port, settings.HOSTS_FILE_NAMES)
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

/** The section a tcp, sni or TCP-group destination's srcPort is bound by; undefined for http. */
export function portSection(dest: Destination): string | undefined {
  if (dest.srcPort === undefined || dest.reqMode === 'http') return undefined
  return dest.reqMode === 'sni' ? `frontend service_${dest.srcPort}` : inGroup(dest) ? `listen tcpListen_${dest.serviceGroup}_${dest.srcPort}` : `frontend tcpFE_${dest.srcPort}`
}

/** Ports a tcp, sni or TCP-group section binds. */
export function tcpPorts(services: Service[]): Map<number, string> {
  const ports = new Map<number, string>()
  for (const service of services) {
    for (const dest of service.destinations) {
      const section = portSection(dest)
      if (section === undefined || ports.has(dest.srcPort as number)) continue
      ports.set(dest.srcPort as number, section)
    }
  }
  return ports
}
