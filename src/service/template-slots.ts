import { lookupAddresses } from '../dns-lookup.js'
import type { Service } from './types.js'

/** How long a reconfigure waits on DNS to size a server-template; past it the default applies. */
const LOOKUP_TIMEOUT_MS = 1000

/**
 * The host whose addresses size a service's `server-template` (the name render/backends.ts puts
 * on it), when the service has one and did not say how many slots: discoveryType=DNS or
 * sessionType=sticky-server without `replicas`.
 */
export function unsizedTemplateHost(service: Service): string | undefined {
  if (service.replicas !== undefined) return undefined
  const sticky = service.sessionType === 'sticky-server'
  if (!sticky && service.discoveryType !== 'DNS') return undefined
  const dest = service.destinations[0]
  return dest?.outboundHostname ?? (sticky ? `tasks.${service.serviceName}` : service.serviceName)
}

/**
 * How many IPv4 addresses `host` has now (through DNS_SERVERS when set, else the system
 * resolver), at least 1; undefined when the lookup fails or takes over a second, so the template
 * keeps its default slots. One bounded lookup on the request path, never on a reload's.
 */
export async function addressCount(host: string, servers: readonly string[]): Promise<number | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS)
  })
  try {
    const addresses = await Promise.race([lookupAddresses(host, servers, { timeoutMs: LOOKUP_TIMEOUT_MS, tries: 1, family: 4 }), late])
    return addresses === undefined ? undefined : Math.max(1, new Set(addresses).size)
  } catch {
    return undefined
  } finally {
    clearTimeout(timer)
  }
}
