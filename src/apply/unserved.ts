import { messageOf } from '../errors.js'
import type { Logger } from 'pino'
import { type Change, changedService, type ServiceState } from '../state/registry.js'
import type { LiveState } from '../state/live.js'
import { realTimers, type Timers } from './timers.js'

/** Longest pause between two attempts at the unserved services. */
const MAX_RETRY_DELAY_MS = 15_000
const FIRST_RETRY_DELAY_MS = 1_000

/**
 * The saved services HAProxy could not serve when the daemon started (a port another process
 * holds, a definition this HAProxy refuses): a restart must not drop them. They stay in the
 * state file (`withKept`), are reported (LiveState.unserved: log, `/config?type=json`, status
 * page, `dfp_services_unserved`) and are applied again with a growing pause until HAProxy serves
 * them. A request that changes or removes one of them takes over (`forget`).
 */
export class UnservedRetry {
  private cancelTimer?: () => void
  private attempts = 0
  private stopped = false
  private forgotten = false

  constructor(
    private readonly live: LiveState,
    /** Queues a change in the apply loop; settles when it is live (and saved) or refused. */
    private readonly enqueue: (change: Change) => Promise<void>,
    private readonly log: Logger,
    private readonly timers: Timers = realTimers,
  ) {}

  /**
   * Applies the saved changes, keeping each service put that fails as unserved. They count as
   * unserved from the start, so the save of the batch that applies the others keeps them too.
   */
  async applyKeeping(changes: readonly Change[]): Promise<string[]> {
    const since = new Date().toISOString()
    for (const change of changes) {
      if (change.kind === 'put' && !this.live.unserved.has(change.service.serviceName)) {
        this.live.setUnserved(change.service.serviceName, { change, reason: 'not applied yet', since })
      }
    }
    const results = await Promise.allSettled(changes.map((change) => this.enqueue(change)))
    const failed: string[] = []
    results.forEach((result, i) => {
      const change = changes[i] as Change
      const name = changedService(change)
      if (change.kind !== 'put') {
        if (result.status === 'rejected') failed.push(name)
        return
      }
      const kept = this.live.unserved.get(name)
      // Forgotten meanwhile: a request replaced or removed it.
      if (!kept || kept.change !== change) return
      if (result.status === 'fulfilled') {
        this.live.clearUnserved(name)
        this.log.info({ service: name }, 'saved service served again')
      } else {
        const reason = messageOf(result.reason)
        this.live.setUnserved(name, { ...kept, reason })
        this.log.warn({ service: name, error: reason }, 'saved service could not be served; kept in the state and retried')
        failed.push(name)
      }
    })
    this.schedule()
    return failed
  }

  /** A request changed or removed `name`: its own outcome decides from now on. */
  forget(name: string): void {
    if (!this.live.unserved.has(name)) return
    this.live.clearUnserved(name)
    this.forgotten = true
  }

  /** True once after `forget` dropped a service: the state file must be written without it. */
  takeForgotten(): boolean {
    const forgotten = this.forgotten
    this.forgotten = false
    return forgotten
  }

  /** `state` plus the unserved services: what the state file must keep. */
  withKept(state: ServiceState): ServiceState {
    const kept = [...this.live.unserved.values()].map((entry) => entry.change)
    return kept.length === 0 ? state : state.with(kept)
  }

  stop(): void {
    this.stopped = true
    this.cancelTimer?.()
  }

  private schedule(): void {
    this.cancelTimer?.()
    if (this.stopped || this.live.unserved.size === 0) {
      this.attempts = 0
      return
    }
    const delay = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** this.attempts++)
    this.cancelTimer = this.timers.after(delay, () => {
      const changes = [...this.live.unserved.values()].map((entry) => entry.change)
      this.log.debug({ services: changes.length }, 'retrying the unserved saved services')
      this.applyKeeping(changes).catch((err) => this.log.warn({ err }, 'retrying unserved services failed'))
    })
  }
}
