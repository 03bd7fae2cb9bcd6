import { lookup } from 'node:dns/promises'
import { errors } from '../errors.js'
import type { Settings } from '../settings.js'
import type { Service } from './types.js'

/**
 * FILTER_PROXY_INSTANCE_NAME: with it on, only requests whose `proxyInstanceName` equals
 * PROXY_INSTANCE_NAME (case-insensitive) are for this proxy; the rest are ignored with a 200, so
 * one listener can serve several proxies. The check comes before any other, so a request meant
 * for another proxy never draws an error here (the original validated it first).
 */
export function forThisInstance(params: Record<string, string>, settings: Pick<Settings, 'FILTER_PROXY_INSTANCE_NAME' | 'PROXY_INSTANCE_NAME'>): boolean {
  if (!settings.FILTER_PROXY_INSTANCE_NAME) return true
  return (params.proxyInstanceName ?? '').toLowerCase() === settings.PROXY_INSTANCE_NAME.toLowerCase()
}

/**
 * SKIP_ADDRESS_VALIDATION=false: the host of the first destination (outboundHostname, else the
 * service name) must resolve, or the request gets 503 naming it (a Swarm DNS entry appears a
 * moment after the service, so the listener's retry is welcome).
 */
export async function checkAddress(service: Service, settings: Pick<Settings, 'SKIP_ADDRESS_VALIDATION'>): Promise<void> {
  if (settings.SKIP_ADDRESS_VALIDATION) return
  const host = service.destinations[0]?.outboundHostname ?? service.serviceName
  const param = service.destinations[0]?.outboundHostname ? 'outboundHostname' : 'serviceName'
  try {
    await lookup(host)
  } catch (err) {
    throw errors.addressUnresolved(param, host, (err as NodeJS.ErrnoException).code ?? String(err), service.serviceName)
  }
}
