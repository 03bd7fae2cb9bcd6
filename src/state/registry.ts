import type { Service } from '../service/types.js'

/** Where a service definition came from: the HTTP API, a listener pull, or the environment. */
export type ServiceSource = 'api' | 'listener' | 'env'

/** A service as stored: its definition and what it was made from, so it can be saved and re-read. */
export interface ServiceEntry {
  service: Service
  source: ServiceSource
  /** The parameters it was parsed from (first value of each key). */
  params: Record<string, string>
}

/** A change to the desired state: a service defined (again) or removed. */
export type Change =
  | { kind: 'put'; service: Service; source?: ServiceSource; params?: Record<string, string> }
  | { kind: 'remove'; serviceName: string }

export const changedService = (change: Change) => (change.kind === 'put' ? change.service.serviceName : change.serviceName)

/** Services keyed by serviceName. Immutable: applying changes gives a new state. */
export class ServiceState {
  private constructor(private readonly entries: ReadonlyMap<string, ServiceEntry>) {}

  static empty(): ServiceState {
    return new ServiceState(new Map())
  }

  get size(): number {
    return this.entries.size
  }

  get(serviceName: string): Service | undefined {
    return this.entries.get(serviceName)?.service
  }

  *values(): IterableIterator<Service> {
    for (const entry of this.entries.values()) yield entry.service
  }

  /** Every entry, sorted by service name (the order they are saved in). */
  list(): ServiceEntry[] {
    return [...this.entries.values()].sort((a, b) => byName(a.service.serviceName, b.service.serviceName))
  }

  /**
   * The state after `changes`, in order. A service the listener reported stays a listener
   * service when it is updated through the API (the listener pushes its changes that way), so a
   * later pull can still remove it.
   */
  with(changes: readonly Change[]): ServiceState {
    const next = new Map(this.entries)
    let changed = false
    for (const change of changes) {
      if (change.kind === 'remove') {
        changed = next.delete(change.serviceName) || changed
        continue
      }
      const name = change.service.serviceName
      const previous = next.get(name)
      const source = change.source === 'api' && previous?.source === 'listener' ? 'listener' : (change.source ?? 'api')
      const entry = { service: change.service, source, params: change.params ?? {} }
      if (previous && sameEntry(previous, entry)) continue
      next.set(name, entry)
      changed = true
    }
    // An unchanged state stays the same object: callers compare identity to skip saving.
    return changed ? new ServiceState(next) : this
  }

  /** Services by name, sorted, for `/config?type=json`. */
  toJSON(): Record<string, Service> {
    return Object.fromEntries(this.list().map((entry) => [entry.service.serviceName, entry.service]))
  }
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const sameEntry = (a: ServiceEntry, b: ServiceEntry) =>
  a.source === b.source && JSON.stringify(a.params) === JSON.stringify(b.params) && JSON.stringify(a.service) === JSON.stringify(b.service)
