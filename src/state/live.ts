import { type ServiceChange, ServiceState } from './registry.js'

/** A saved service HAProxy could not serve at start: kept in the state, reported and retried. */
export interface UnservedService {
  change: Extract<ServiceChange, { kind: 'put' }>
  /** Why it is not served (HAProxy's line, or a port in use). */
  reason: string
  /** When it was found unserved (ISO time). */
  since: string
}

/**
 * What HAProxy serves now: the services and the configuration text, as the apply core last made
 * them live. Routes, metrics, the status page, the listener and the certificate watcher read it
 * here; only the apply core (src/apply/core.ts) changes it.
 */
export class LiveState {
  private current = ServiceState.empty()
  private text: string | (() => string) = ''
  private readonly notServed = new Map<string, UnservedService>()

  /** Saved services HAProxy does not serve (yet), by name: src/apply/unserved.ts retries them. */
  get unserved(): ReadonlyMap<string, UnservedService> {
    return this.notServed
  }

  /** Records why a saved service is not served (the apply core). */
  setUnserved(name: string, entry: UnservedService): void {
    this.notServed.set(name, entry)
  }

  /** The service is served, replaced or removed: no longer reported as unserved. */
  clearUnserved(name: string): void {
    this.notServed.delete(name)
  }

  private readonly listeners: Array<(services: ServiceState) => void> = []

  /** Calls `listener` with every new set of services that becomes live (ACME reads what services ask for). */
  onServicesChange(listener: (services: ServiceState) => void): void {
    this.listeners.push(listener)
  }

  /** The services of the live configuration. */
  get services(): ServiceState {
    return this.current
  }

  /** The text of the live configuration. */
  get config(): string {
    if (typeof this.text === 'function') this.text = this.text()
    return this.text
  }

  /**
   * Records a state and its configuration as live (the apply core, once HAProxy serves them).
   * The text may come as a function, called when first read: a change made live through the
   * Runtime API needs no rendering of the whole configuration on its way.
   */
  set(services: ServiceState, config: string | (() => string)): void {
    const changed = services !== this.current
    this.current = services
    this.text = config
    // A copy: a listener of `until` takes itself out while being called.
    if (changed) for (const listener of [...this.listeners]) listener(services)
  }

  /**
   * Resolves true once `check` holds for the live services (at once when it already does), or
   * false after `timeoutMs`.
   */
  until(check: (services: ServiceState) => boolean, timeoutMs: number): Promise<boolean> {
    if (check(this.current)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        const index = this.listeners.indexOf(listener)
        if (index !== -1) this.listeners.splice(index, 1)
        resolve(ok)
      }
      const listener = (services: ServiceState) => {
        if (check(services)) done(true)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      this.listeners.push(listener)
    })
  }
}
