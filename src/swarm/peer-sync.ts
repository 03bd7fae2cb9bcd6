import { messageOf } from '../errors.js'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { inspectCertificate } from '../pem.js'
import type { ApplyCore } from '../apply/core.js'
import type { ApiUser } from '../auth/api-users.js'
import { parseChange } from '../service/params.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import { type Change, changedService, type ServiceState } from '../state/registry.js'
import type { Distributor } from './distribute.js'

/**
 * What one replica hands a replica that starts (`GET /v1/docker-flow-proxy/peer-state`): the
 * services created through the API and the uploaded certificates, keys included. Listener
 * services are not in it (the new replica pulls those from the listener), nor folder and secret
 * certificates (every replica reads its own).
 */
export interface PeerState {
  format: 1
  services: Array<{ params: Record<string, string> }>
  certificates: Array<{ name: string; pem: string }>
}

export const PEER_STATE_PATH = '/v1/docker-flow-proxy/peer-state'
/** The header a replica proves itself with when API_USERS is set (docs/swarm.md, "New replicas"). */
export const REPLICA_TOKEN_HEADER = 'x-dfp-replica-token'

export function peerStateOf(state: ServiceState): PeerState {
  return {
    format: 1,
    services: state.list().flatMap((entry) => (entry.source === 'api' ? [{ params: entry.params }] : [])),
    certificates: [...state.uploaded].map(([name, pem]) => ({ name, pem })),
  }
}

/**
 * The replicas' shared proof: an HMAC of a fixed text keyed by the API_USERS entries, which every
 * replica of the service has (same environment or secret) and nobody else needs. Undefined
 * without API_USERS.
 */
export function replicaToken(apiUsers: readonly ApiUser[]): string | undefined {
  if (apiUsers.length === 0) return undefined
  const key = apiUsers.map((user) => `${user.name}:${user.password}`).join('\n')
  return createHmac('sha256', key).update('dfp replica peer-state').digest('hex')
}

export function isReplicaToken(apiUsers: readonly ApiUser[], header: string | string[] | undefined): boolean {
  const expected = replicaToken(apiUsers)
  if (!expected || typeof header !== 'string' || header.length !== expected.length) return false
  return timingSafeEqual(Buffer.from(header), Buffer.from(expected))
}

// Bounds: the lookup of tasks.<SERVICE_NAME>, each peer's answer, how many peers are asked.
const LOOKUP_TIMEOUT_MS = 5000
const PEER_TIMEOUT_MS = 5000
const PEERS_ASKED = 3
// How often, and how long, a replica looks for itself in tasks.<SERVICE_NAME> after it is ready.
const LISTED_POLL_MS = 1000
const LISTED_WAIT_MS = 180_000
// Once listed, the replica catches up again after this long: the replica that distributes a change
// may see it listed later than it sees itself (each Swarm node's DNS learns the others' tasks by gossip).
const LISTED_SETTLE_MS = 5000

/**
 * At start, takes from one other replica (found through `tasks.<SERVICE_NAME>`, as distribute
 * finds them) what a replica cannot get from the listener or its own folders: the services
 * created through the API and the uploaded certificates. Runs in the background once HAProxy
 * serves the saved state; `ready` (part of `successfulinitreload`) is true once it is done,
 * whatever the outcome: without peers, or when none answers, the replica starts on what it has.
 */
export class PeerSync {
  private done = false
  private readonly stopped = new AbortController()
  private running?: Promise<void>

  private readonly settings: Settings
  private readonly applier: ApplyCore
  private readonly distributor: Distributor
  private readonly log: Logger
  /** The listener pull, done once more when the replica is listed (see `catchUpWhenListed`). */
  private readonly listener?: { pullOnce(): Promise<boolean> }

  constructor(options: { settings: Settings; applier: ApplyCore; live: LiveState; distributor: Distributor; log: Logger; listener?: { pullOnce(): Promise<boolean> } }) {
    this.settings = options.settings
    this.applier = options.applier
    this.distributor = options.distributor
    this.log = options.log
    this.listener = options.listener
  }

  get ready(): boolean {
    return this.done
  }

  start(): void {
    this.running = this.run()
      .catch((err) => {
        this.log.warn({ err }, 'taking the state of a peer failed; starting on what this replica has')
        return false
      })
      .then((listed) => {
        this.done = true
        if (listed === false) return this.catchUpWhenListed()
      })
      .catch((err) => this.log.warn({ err }, 'catching up once listed failed'))
  }

  async stop(): Promise<void> {
    this.stopped.abort()
    await this.running
  }

  /**
   * Takes a peer's state; true when this replica is already in `tasks.<SERVICE_NAME>`, false when
   * it is not listed yet — also when the name gave no answer: replicas that start together (a
   * global service deployed on every node) find nobody listed, and are listed one after the other.
   */
  private async run(): Promise<boolean> {
    const own = this.distributor.ownAddresses()
    const lookup = this.distributor.replicas()
    lookup.catch(() => undefined)
    let timer: ReturnType<typeof setTimeout> | undefined
    // Bounded, and given up at once when the daemon stops.
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS)
      this.stopped.signal.addEventListener('abort', () => resolve(undefined), { once: true })
    })
    const addresses = await Promise.race([lookup, timeout])
      .catch((err: Error) => {
        this.log.info({ error: err.message.split('(')[0]?.trim() }, 'no peers to take the state from')
        return undefined
      })
      .finally(() => clearTimeout(timer))
    const listed = addresses !== undefined && addresses.some((address) => own.has(address))
    await this.takeFromPeers((addresses ?? []).filter((address) => !own.has(address)))
    return listed
  }

  private async takeFromPeers(others: string[]): Promise<void> {
    for (const peer of others.slice(0, PEERS_ASKED)) {
      if (this.stopped.signal.aborted) return
      const state = await this.fetchFrom(peer).catch((err: Error) => {
        this.log.warn({ peer, error: err.message }, 'peer did not give its state')
        return undefined
      })
      if (!state) continue
      await this.applyState(peer, state)
      return
    }
  }

  /**
   * Docker lists a task with a health check in `tasks.<SERVICE_NAME>` only once it is healthy, so
   * changes distributed between this replica's listener pull and that moment never reached it.
   * Once it finds itself listed (polled, bounded), it pulls from the listener and takes a peer's
   * state once more, and again LISTED_SETTLE_MS later, for the replicas whose node's DNS listed it
   * after its own did: from then on, distribution reaches it.
   */
  private async catchUpWhenListed(): Promise<void> {
    const own = this.distributor.ownAddresses()
    const deadline = Date.now() + LISTED_WAIT_MS
    while (!this.stopped.signal.aborted && Date.now() < deadline) {
      await this.pause(LISTED_POLL_MS)
      const addresses = await this.distributor.replicas().catch(() => [] as string[])
      if (!addresses.some((address) => own.has(address))) continue
      for (const round of [1, 2]) {
        if (this.stopped.signal.aborted) return
        if (round === 2) await this.pause(LISTED_SETTLE_MS)
        const now = round === 1 ? addresses : await this.distributor.replicas().catch(() => addresses)
        await this.listener?.pullOnce()
        await this.takeFromPeers(now.filter((address) => !own.has(address)))
      }
      this.log.info({ service: this.settings.SERVICE_NAME }, 'listed in tasks of the service: caught up with the listener and a peer')
      return
    }
  }

  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.stopped.signal }).catch(() => undefined)
  }

  private async applyState(peer: string, state: PeerState): Promise<void> {
    const changes: Change[] = []
    for (const { params } of state.services) {
      try {
        const change = parseChange(params, this.settings.PARSE_OPTIONS)
        changes.push(change.kind === 'put' ? { ...change, source: 'api', params } : change)
      } catch (err) {
        this.log.warn({ peer, service: params.serviceName, error: messageOf(err) }, 'peer service skipped')
      }
    }
    for (const { name, pem } of state.certificates) {
      try {
        inspectCertificate(pem)
        changes.push({ kind: 'cert-put', name, pem })
      } catch (err) {
        this.log.warn({ peer, certificate: name, error: messageOf(err) }, 'peer certificate skipped')
      }
    }
    // One batch: every change is queued in this tick. Each settles on its own.
    const results = await Promise.allSettled(changes.map((change) => this.applier.apply([change])))
    const refused = results.flatMap((result, i) => (result.status === 'rejected' ? [changedService(changes[i] as Change)] : []))
    if (refused.length > 0) this.log.warn({ peer, refused }, 'peer changes refused by haproxy')
    this.log.info({ peer, services: state.services.length, certificates: state.certificates.length }, 'took the state of a peer')
  }

  /** GET peer-state from `address`, with the replicas' token when API_USERS is set. */
  private fetchFrom(address: string): Promise<PeerState> {
    const token = replicaToken(this.settings.API_USERS)
    const url = new URL(this.distributor.urlOf(address, PEER_STATE_PATH))
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          headers: token ? { [REPLICA_TOKEN_HEADER]: token } : {},
          timeout: PEER_TIMEOUT_MS,
          signal: this.stopped.signal,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('error', reject)
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8')
            if (res.statusCode !== 200) return reject(new Error(`answered ${res.statusCode}: ${body.slice(0, 200)}`))
            try {
              const state = JSON.parse(body) as PeerState
              if (state?.format !== 1 || !Array.isArray(state.services) || !Array.isArray(state.certificates)) throw new Error('not a peer state')
              resolve(state)
            } catch (err) {
              reject(err)
            }
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${PEER_TIMEOUT_MS} ms`)))
      req.on('error', reject)
      req.end()
    })
  }
}
