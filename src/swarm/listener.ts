import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { ApplyCore } from '../apply/core.js'
import { forThisInstance } from '../service/instance.js'
import { parseChange } from '../service/params.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import { type Change, changedService } from '../state/registry.js'

const CALL_TIMEOUT_MS = 5000
const FIRST_RETRY_MS = 250

export interface ListenerCallResult {
  address: string
  error?: string
}

/**
 * Keeps the services of the Docker Flow Swarm Listener(s) of LISTENER_ADDRESS: pulls
 * `get-services` at start (retrying with bounded backoff and jitter while no listener answers),
 * applies every valid service in one batch, and removes the listener services it no longer
 * reports. With REPEAT_RELOAD it pulls again every RELOAD_INTERVAL.
 */
export class ListenerSync {
  readonly addresses: string[]
  private initialPullApplied = false
  /** When (ms since the epoch) the last pull was applied; undefined before the first. */
  lastSync?: number
  private stopped = new AbortController()
  private running?: Promise<void>

  constructor(
    private readonly settings: Settings,
    /** Where the listener's services are applied. */
    private readonly applier: Pick<ApplyCore, 'apply'>,
    /** What HAProxy serves now: the listener services to remove when the listener stops reporting them. */
    private readonly live: LiveState,
    private readonly log: Logger,
  ) {
    this.addresses = settings.LISTENER_ADDRESS
  }

  /** True once the first full pull has been applied (at once without a listener). */
  get ready(): boolean {
    return this.initialPullApplied || this.addresses.length === 0
  }

  start(): void {
    if (this.addresses.length > 0) this.running = this.run().catch((err) => this.log.error({ err }, 'listener sync stopped'))
  }

  async stop(): Promise<void> {
    this.stopped.abort()
    await this.running
  }

  /** Asks every listener to send its services again (`notify-services`). */
  async notifyAll(): Promise<ListenerCallResult[]> {
    return Promise.all(
      this.addresses.map(async (address) => {
        try {
          const reply = await fetch(`${address}/v1/docker-flow-swarm-listener/notify-services`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) })
          return reply.ok ? { address } : { address, error: `answered ${reply.status}` }
        } catch (err) {
          return { address, error: errorText(err) }
        }
      }),
    )
  }

  /**
   * One more pull, each listener tried once (the first that answers is used): what a replica
   * missed before other replicas could reach it (src/swarm/peer-sync.ts). False when none answered.
   */
  async pullOnce(): Promise<boolean> {
    for (const address of this.addresses) {
      if (this.stopped.signal.aborted) return false
      try {
        await this.pull(address)
        this.lastSync = Date.now()
        return true
      } catch (err) {
        this.log.warn({ listener: address, error: errorText(err) }, 'pulling services from the listener failed')
      }
    }
    return false
  }

  private async run(): Promise<void> {
    const { RELOAD_INTERVAL, RELOAD_ATTEMPTS, REPEAT_RELOAD } = this.settings
    // One listener is retried until it answers (as the original did); several are tried
    // RELOAD_ATTEMPTS times each, and the first that answers is used.
    const limit = this.addresses.length === 1 ? Infinity : RELOAD_ATTEMPTS
    const failures = new Map(this.addresses.map((a) => [a, 0]))
    let delay = FIRST_RETRY_MS
    while (!this.stopped.signal.aborted) {
      let pulled = false
      for (const address of this.addresses) {
        if ((failures.get(address) ?? 0) >= limit || this.stopped.signal.aborted) continue
        try {
          await this.pull(address)
          pulled = true
          break
        } catch (err) {
          failures.set(address, (failures.get(address) ?? 0) + 1)
          this.log.warn({ listener: address, error: errorText(err), attempt: failures.get(address) }, 'pulling services from the listener failed')
        }
      }
      if (pulled) {
        this.lastSync = Date.now()
        delay = FIRST_RETRY_MS
        failures.forEach((_, address) => failures.set(address, 0))
        if (!REPEAT_RELOAD) return
        await this.pause(RELOAD_INTERVAL)
        continue
      }
      if ([...failures.values()].every((n) => n >= limit)) {
        this.log.error({ listeners: this.addresses, attempts: RELOAD_ATTEMPTS }, 'no listener answered; giving up the pull (the proxy stays not ready)')
        return
      }
      // Exponential backoff up to RELOAD_INTERVAL, with ±20 % jitter so replicas spread out.
      await this.pause(delay * (0.8 + Math.random() * 0.4))
      delay = Math.min(delay * 2, RELOAD_INTERVAL)
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopped.signal }).catch(() => undefined)
  }

  /** One full pull from one listener, applied as one batch. */
  private async pull(address: string): Promise<void> {
    const reply = await fetch(`${address}/v1/docker-flow-swarm-listener/get-services`, {
      signal: AbortSignal.any([AbortSignal.timeout(CALL_TIMEOUT_MS), this.stopped.signal]),
    })
    if (reply.status !== 200) throw new Error(`Swarm Listener responded with the status code ${reply.status}`)
    const body: unknown = await reply.json()
    if (!Array.isArray(body)) throw new Error('get-services did not return a JSON array')

    const changes: Change[] = []
    const reported = new Set<string>()
    for (const item of body) {
      const params = flatStrings(item)
      if (!forThisInstance(params, this.settings)) continue
      if (params.serviceName) reported.add(params.serviceName)
      try {
        const change = parseChange(params, this.settings.PARSE_OPTIONS)
        changes.push(change.kind === 'put' ? { ...change, source: 'listener' } : change)
      } catch (err) {
        this.log.warn({ service: params.serviceName, error: errorText(err) }, 'listener service skipped')
      }
    }
    // Listener services it no longer reports are gone; services from the API or env stay.
    for (const entry of this.live.services.list()) {
      if (entry.source === 'listener' && !reported.has(entry.service.serviceName)) {
        changes.push({ kind: 'remove', serviceName: entry.service.serviceName })
      }
    }
    // Queued in one tick, so the loop applies them as one batch with one reload.
    const results = await Promise.allSettled(changes.map((change) => this.applier.apply([change])))
    const refused = results.flatMap((r, i) => (r.status === 'rejected' ? [{ change: changes[i], error: errorText(r.reason) }] : []))
    for (const { change, error } of refused) this.log.warn({ service: change && changedService(change), error }, 'listener service refused')
    this.initialPullApplied = true
    this.log.info({ listener: address, services: body.length, applied: changes.length - refused.length, refused: refused.length }, 'services pulled from the listener')
  }
}

/** A listener map's values as strings (the listener sends strings; numbers and bools are tolerated). */
function flatStrings(item: unknown): Record<string, string> {
  if (!item || typeof item !== 'object' || Array.isArray(item)) return {}
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(item)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = String(value)
  }
  return out
}

const errorText = (err: unknown) => (err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err))
