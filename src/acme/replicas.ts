import { messageOf } from '../errors.js'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import type { AcmeCertificate } from './store.js'

/** How replicas are found and reached: the proxy's `Distributor` (tasks.<SERVICE_NAME>, PORT). */
export interface ReplicaDirectory {
  replicas(): Promise<string[]>
  ownAddresses(): Set<string>
  urlOf(address: string, path: string): string
}

export const ACME_API = '/v1/docker-flow-proxy/acme'
const TIMEOUT_MS = 5000
// A peer holds a challenge answer until its HAProxy serves the ACME rule (up to 20 s, src/routes/acme.ts).
const CHALLENGE_TIMEOUT_MS = 25_000
// A replica answers a certificate push once HAProxy serves it, which can take a reload.
const PUSH_TIMEOUT_MS = 30_000

/** Sorts IPv4 addresses by their numeric value (others after them, as text). */
export function byAddress(a: string, b: string): number {
  const value = (ip: string) => (isIP(ip) === 4 ? ip.split('.').reduce((sum, part) => sum * 256 + Number(part), 0) : Number.MAX_SAFE_INTEGER)
  return value(a) - value(b) || (a < b ? -1 : a > b ? 1 : 0)
}

/**
 * Which replica orders, given the replicas' addresses in order and a reachability check: the first
 * (lowest address) that answers. This one orders when it comes first among those that answer, or
 * when it is not among them at all (not a Swarm service: alone). Pure but for `reachable`.
 */
export async function chooseOrderer(addresses: readonly string[], own: ReadonlySet<string>, reachable: (address: string) => Promise<boolean>): Promise<'self' | string> {
  if (!addresses.some((address) => own.has(address))) return 'self'
  for (const address of [...addresses].sort(byAddress)) {
    if (own.has(address)) return 'self'
    if (await reachable(address)) return address
  }
  return 'self'
}

/**
 * ACME across the replicas of the proxy service. The rule: the replica with the lowest address
 * among those answering on the API orders; every replica asks its peers for certificates they
 * hold before anything is ordered, the orderer sends what it issued to every peer, and challenge
 * answers are published on every replica (any of them may receive the validation request).
 */
export class AcmeReplicas {
  constructor(
    private readonly directory: ReplicaDirectory,
    private readonly log: Logger,
    /** `Basic …` for the replicas' API_USERS, when they have some. */
    private readonly authorization?: string,
  ) {}

  /** The other replicas' addresses; none when the proxy is not a Swarm service (lookup fails). */
  async peers(): Promise<string[]> {
    const own = this.directory.ownAddresses()
    return (await this.all()).filter((address) => !own.has(address))
  }

  /** `self` when this replica orders, else the address of the replica that does. */
  async orderer(): Promise<'self' | string> {
    return chooseOrderer(await this.all(), this.directory.ownAddresses(), (address) => this.ping(address))
  }

  /** Whether `address` is another replica of the proxy service (only those receive certificates). */
  async isPeer(address: string): Promise<boolean> {
    return (await this.peers()).includes(address)
  }

  /** Publishes (or, with `keyAuthorization` undefined, withdraws) a challenge answer on every peer. */
  async shareChallenge(token: string, keyAuthorization?: string): Promise<void> {
    const peers = await this.peers()
    const path = `${ACME_API}/challenge?${new URLSearchParams({ token })}`
    await Promise.all(
      peers.map(async (address) => {
        const sent = await this.send(address, path, keyAuthorization === undefined ? { method: 'DELETE' } : { method: 'PUT', body: keyAuthorization, type: 'text/plain' }, CHALLENGE_TIMEOUT_MS)
        if (!sent.ok) this.log.warn({ replica: address, token, error: sent.message }, 'a replica did not take the ACME challenge answer')
      }),
    )
  }

  /** Sends certificates to `addresses` (every peer when omitted); a failure is logged per replica. */
  async pushCertificates(certificates: readonly AcmeCertificate[], addresses?: string[]): Promise<number> {
    if (certificates.length === 0) return 0
    const targets = addresses ?? (await this.peers())
    const body = JSON.stringify({ certificates: certificates.map(({ domains, pem, issuedAt, directoryUrl }) => ({ domains, pem, issuedAt, directoryUrl })) })
    const results = await Promise.all(targets.map((address) => this.send(address, `${ACME_API}/certificates`, { method: 'PUT', body, type: 'application/json' }, PUSH_TIMEOUT_MS)))
    results.forEach((result, i) => {
      if (!result.ok) this.log.warn({ replica: targets[i], error: result.message }, 'sending ACME certificates to a replica failed')
    })
    return results.filter((result) => result.ok).length
  }

  /**
   * Asks every peer to send the certificates it holds to this replica's address (they arrive as
   * pushes before this returns). The peer sends only to an address of tasks.<SERVICE_NAME>.
   */
  async askPeersToShare(): Promise<void> {
    const all = await this.all()
    const own = this.directory.ownAddresses()
    const self = all.find((address) => own.has(address))
    if (self === undefined) return
    const path = `${ACME_API}/share?${new URLSearchParams({ address: self })}`
    await Promise.all(all.filter((address) => !own.has(address)).map((address) => this.send(address, path, { method: 'POST' }, PUSH_TIMEOUT_MS)))
  }

  private async all(): Promise<string[]> {
    try {
      return (await this.directory.replicas()).sort(byAddress)
    } catch (err) {
      this.log.debug({ error: messageOf(err) }, 'no replicas found: ACME works alone')
      return []
    }
  }

  private async ping(address: string): Promise<boolean> {
    return (await this.send(address, '/v1/docker-flow-proxy/ping', { method: 'GET' }, 2000)).ok
  }

  private async send(address: string, path: string, request: { method: string; body?: string; type?: string }, timeoutMs = TIMEOUT_MS): Promise<{ ok: boolean; message: string }> {
    try {
      const reply = await fetch(this.directory.urlOf(address, path), {
        method: request.method,
        ...(request.body === undefined ? {} : { body: request.body }),
        headers: {
          ...(request.body === undefined ? {} : { 'content-type': request.type ?? 'text/plain' }),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await reply.text()
      return { ok: reply.ok, message: reply.ok ? '' : `${reply.status} ${text.slice(0, 200)}` }
    } catch (err) {
      return { ok: false, message: messageOf(err) }
    }
  }
}
