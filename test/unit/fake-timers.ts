import type { Timers } from '../../src/apply/timers.js'

/**
 * A clock that moves only when a test says so: `advance(ms)` fires, in time order, every timer
 * due by then (and those they set that fall due too). No real timer is waited on.
 */
export class FakeTimers implements Timers {
  private time = 0
  private nextId = 0
  private readonly pending = new Map<number, { at: number; fire: () => void }>()

  now(): number {
    return this.time
  }

  after(ms: number, fire: () => void): () => void {
    const id = this.nextId++
    this.pending.set(id, { at: this.time + Math.max(0, ms), fire })
    return () => this.pending.delete(id)
  }

  /** Timers set and not yet fired or cancelled. */
  get waiting(): number {
    return this.pending.size
  }

  /**
   * Moves the clock `ms` forward, firing due timers in order; `settle` runs after each (the
   * work a timer started, awaited before the next one fires).
   */
  async advance(ms: number, settle: () => Promise<void> = async () => undefined): Promise<void> {
    const until = this.time + ms
    for (;;) {
      let next: [number, { at: number; fire: () => void }] | undefined
      for (const entry of this.pending) if (entry[1].at <= until && (!next || entry[1].at < next[1].at)) next = entry
      if (!next) break
      this.pending.delete(next[0])
      this.time = Math.max(this.time, next[1].at)
      next[1].fire()
      await settle()
    }
    this.time = until
  }
}
