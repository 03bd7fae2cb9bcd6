import type { Service } from '../service/types.js'

/** A change to the desired state: a service defined (again) or removed. */
export type Change = { kind: 'put'; service: Service } | { kind: 'remove'; serviceName: string }

export const changedService = (change: Change) => (change.kind === 'put' ? change.service.serviceName : change.serviceName)

/** Services keyed by serviceName. Immutable: applying changes gives a new state. */
export class ServiceState {
  private constructor(private readonly services: ReadonlyMap<string, Service>) {}

  static empty(): ServiceState {
    return new ServiceState(new Map())
  }

  get size(): number {
    return this.services.size
  }

  get(serviceName: string): Service | undefined {
    return this.services.get(serviceName)
  }

  values(): IterableIterator<Service> {
    return this.services.values()
  }

  with(changes: readonly Change[]): ServiceState {
    const next = new Map(this.services)
    for (const change of changes) {
      if (change.kind === 'put') next.set(change.service.serviceName, change.service)
      else next.delete(change.serviceName)
    }
    return new ServiceState(next)
  }

  /** Services by name, sorted, for `/config?type=json`. */
  toJSON(): Record<string, Service> {
    return Object.fromEntries([...this.services.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }
}
