import { ServiceState } from './registry.js'

/**
 * What HAProxy serves now: the services and the configuration text, as the apply core last made
 * them live. Routes, metrics, the status page, the listener and the certificate watcher read it
 * here; only the apply core (src/apply/core.ts) changes it.
 */
export class LiveState {
  private current = ServiceState.empty()
  private text = ''
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
    return this.text
  }

  /** Records a state and its configuration as live (the apply core, once HAProxy serves them). */
  set(services: ServiceState, config: string): void {
    const changed = services !== this.current
    this.current = services
    this.text = config
    if (changed) for (const listener of this.listeners) listener(services)
  }
}
