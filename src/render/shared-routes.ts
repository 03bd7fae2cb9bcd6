import type { Destination, Service } from '../service/types.js'
import type { SharedServers } from './backends.js'
import { inGroup, names } from './names.js'

/**
 * Routes shared by weight (canary, docs/usage.md "Weights"): http destinations of services that
 * set `weight` and claim the same route (the same paths, path type, domains and source ports)
 * are served by ONE backend, that of the first of them in frontend order (the service that
 * would take the route anyway): it holds its own server and, after it, each other member's
 * server with that member's weight. HAProxy then splits the route's requests by the servers'
 * weights, and a weight changes at run time with `set weight` (management.txt 9.3), no reload.
 * Services without `weight` never share: the first in order takes the route, as before.
 */

/** What makes two destinations the same route. */
function routeKey(dest: Destination): string | undefined {
  if (dest.reqMode !== 'http' || dest.port === '' || inGroup(dest) || dest.servicePath.length === 0) return undefined
  const domains = dest.serviceDomain.map((domain) => domain.toLowerCase()).sort()
  return JSON.stringify([[...dest.servicePath].sort(), dest.pathType, domains, dest.srcPort ?? null, dest.srcHttpsPort ?? null])
}

/**
 * For each service whose backend serves a shared route, the other members' servers by the name
 * of that backend. `ordered`: the services in frontend order.
 */
export function sharedRoutes(ordered: readonly Service[]): Map<string, SharedServers> {
  const routes = new Map<string, Array<{ service: Service; dest: Destination }>>()
  for (const service of ordered) {
    if (service.weight === undefined || service.customBackend !== undefined) continue
    const keys = new Set<string>()
    for (const dest of service.destinations) {
      const key = routeKey(dest)
      // A service counts once per route, with its first destination on it.
      if (key === undefined || keys.has(key)) continue
      keys.add(key)
      const members = routes.get(key) ?? []
      members.push({ service, dest })
      routes.set(key, members)
    }
  }
  const shared = new Map<string, Map<string, Array<{ service: Service; dest: Destination }>>>()
  for (const [owner, ...others] of routes.values()) {
    if (owner === undefined || others.length === 0) continue
    const byBackend = shared.get(owner.service.serviceName) ?? new Map<string, Array<{ service: Service; dest: Destination }>>()
    const backend = names(owner.service, owner.dest).backend
    byBackend.set(backend, [...(byBackend.get(backend) ?? []), ...others])
    shared.set(owner.service.serviceName, byBackend)
  }
  return shared
}
