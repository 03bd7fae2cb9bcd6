/**
 * The clock and timers of the apply core, injected so its unit tests run on a fake clock
 * (test/unit/fake-timers.ts) and none waits on a real timer.
 */
export interface Timers {
  /** Milliseconds since an arbitrary origin. */
  now(): number
  /** Calls `fire` once after `ms`; the returned function cancels it. Never keeps the process alive. */
  after(ms: number, fire: () => void): () => void
}

/** Node's clock and timers. */
export const realTimers: Timers = {
  now: () => performance.now(),
  after: (ms, fire) => {
    const timer = setTimeout(fire, ms)
    timer.unref()
    return () => clearTimeout(timer)
  },
}
