import { realTimers, type Timers } from './timers.js'

/**
 * When a deferred reload (or write) runs. After runtime changes the worker keeps removed
 * backends, and services made live in spares have no backend of their own yet: one reload loads
 * the file. It waits until no runtime change came for `delayMs`, so a burst is not cut by a
 * reload every request would wait for, but no longer than `maxDelayMs` after the first change.
 * Any other reload makes it unneeded (`cancel`).
 */
export class CatchUpTimer {
  /** Quiet time after the last runtime change (docs/architecture.md "makeLive"). */
  delayMs = 5000
  /** The longest a catch-up waits after the first runtime change. */
  maxDelayMs = 30_000
  private cancelTimer?: () => void
  private since?: number

  constructor(
    private readonly fire: () => void,
    private readonly timers: Timers = realTimers,
  ) {}

  /** A runtime change happened; `now`: run it at once. */
  schedule(now: boolean): void {
    const time = this.timers.now()
    this.since ??= time
    const delay = now ? 0 : Math.max(0, Math.min(this.delayMs, this.since + Math.max(this.maxDelayMs, this.delayMs) - time))
    this.cancelTimer?.()
    this.cancelTimer = this.timers.after(delay, () => {
      this.cancel()
      this.fire()
    })
  }

  cancel(): void {
    this.cancelTimer?.()
    this.cancelTimer = undefined
    this.since = undefined
  }
}
