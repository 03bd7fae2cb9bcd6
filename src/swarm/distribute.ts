import { promises as dns } from 'node:dns'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Settings } from '../settings.js'

/** What one replica answered to a distributed request. */
export interface ReplicaOutcome {
  address: string
  ok: boolean
  status?: number
  message: string
  attempts: number
}

export class DistributeLookupError extends Error {}

// A replica that could not be reached or failed on its side (5xx) is asked again this often.
const RETRY_DELAYS_MS = [500, 1500]

/**
 * Sends a request to every other replica of the proxy service: the addresses of
 * `tasks.<SERVICE_NAME>` (resolved with DNS_SERVERS, or the system resolver), on PORT, in
 * parallel, each call with a timeout, with `distribute=false` so it is not sent on again.
 */
export class Distributor {
  constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
  ) {}

  /** Addresses of every replica, this one included. */
  async replicas(): Promise<string[]> {
    const name = `tasks.${this.settings.SERVICE_NAME}`
    let addresses: string[]
    try {
      const servers = this.settings.DNS_SERVERS.split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
      if (servers.length > 0) {
        const resolver = new dns.Resolver({ timeout: 2000, tries: 2 })
        resolver.setServers(servers)
        addresses = await resolver.resolve4(name)
      } else {
        addresses = (await dns.lookup(name, { all: true })).map((a) => a.address)
      }
    } catch (err) {
      throw new DistributeLookupError(
        `Could not perform DNS lookup for ${name}. If the proxy is not called 'proxy', you must set SERVICE_NAME=<name-of-the-proxy> on the proxy service. (${(err as Error).message})`,
      )
    }
    return [...new Set(addresses)].sort()
  }

  /** This daemon's own addresses: it applies a distributed request itself, not over HTTP. */
  ownAddresses(): Set<string> {
    const own = new Set<string>()
    if (isIP(this.settings.IP)) own.add(this.settings.IP)
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) own.add(a.address)
    return own
  }

  /**
   * Sends `endpoint?params&distribute=false` (with the same method and body) to every other
   * replica; never throws for a replica. `authorization` (the caller's header, API_USERS) is
   * passed on: the replicas share the proxy service's users.
   */
  async send(endpoint: string, params: Record<string, string>, request: { method?: string; body?: string; authorization?: string | undefined } = {}): Promise<ReplicaOutcome[]> {
    const own = this.ownAddresses()
    const others = (await this.replicas()).filter((address) => !own.has(address))
    if (request.body !== undefined) {
      // The body is the payload (a certificate): parameters go in the query.
      const query = new URLSearchParams({ ...params, distribute: 'false' })
      return Promise.all(others.map((address) => this.sendTo(address, `/v1/docker-flow-proxy/${endpoint}?${query}`, request)))
    }
    // Parameters as a form body: a serviceCert would not fit in a request line.
    const form = { method: 'POST', body: new URLSearchParams(params).toString(), contentType: 'application/x-www-form-urlencoded', authorization: request.authorization }
    return Promise.all(others.map((address) => this.sendTo(address, `/v1/docker-flow-proxy/${endpoint}?distribute=false`, form)))
  }

  /** The URL of `path` on the replica at `address` (the API listens on PORT on every replica). */
  urlOf(address: string, path: string): string {
    return `http://${isIP(address) === 6 ? `[${address}]` : address}:${this.settings.PORT}${path}`
  }

  private async sendTo(address: string, path: string, request: { method?: string; body?: string; contentType?: string; authorization?: string | undefined }): Promise<ReplicaOutcome> {
    const url = this.urlOf(address, path)
    // A replica answers when the change is live there, which can take up to RELOAD_TIMEOUT.
    const timeoutMs = this.settings.RELOAD_TIMEOUT * 1000 + 5000
    let outcome: ReplicaOutcome = { address, ok: false, message: 'not sent', attempts: 0 }
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      if (attempt > 0) await sleep(RETRY_DELAYS_MS[attempt - 1])
      try {
        const reply = await fetch(url, {
          method: request.method ?? 'GET',
          ...(request.body === undefined ? {} : { body: request.body }),
          headers: {
            ...(request.body === undefined ? {} : { 'content-type': request.contentType ?? 'application/x-pem-file' }),
            ...(request.authorization ? { authorization: request.authorization } : {}),
          },
          signal: AbortSignal.timeout(timeoutMs),
        })
        const body = await reply.text()
        let message = ''
        try {
          message = String((JSON.parse(body) as { Message?: unknown }).Message ?? '')
        } catch {
          message = body.slice(0, 200)
        }
        outcome = { address, ok: reply.status === 200, status: reply.status, message, attempts: attempt + 1 }
        // A 4xx is the replica's verdict on the request; asking again would not change it.
        if (reply.status < 500) break
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''
        outcome = { address, ok: false, message: `${(err as Error).message}${cause}`, attempts: attempt + 1 }
      }
      this.log.warn({ replica: address, attempt: attempt + 1, status: outcome.status, error: outcome.message }, 'distributing to a replica failed')
    }
    return outcome
  }
}
