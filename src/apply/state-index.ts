import { generatedNames, type RenderSettings, serviceRouting } from '../render/index.js'
import type { RouteMapName } from '../render/maps.js'
import { portSection } from '../render/tcp.js'
import type { Service } from '../service/types.js'
import { ServiceState } from '../state/registry.js'

/**
 * An index over the services of a state, kept from one state to the next by the services that
 * changed (`ServiceState.changedSince`; else found by identity, as states share the entry
 * objects of unchanged services). At 10 000 services, building an index from scratch on every
 * batch cost more than the change itself.
 */
abstract class IncrementalIndex {
  private indexed = ServiceState.empty()

  protected abstract add(service: Service): void
  protected abstract drop(service: Service): void

  /** Brings the index to `state`: through the services that changed when known, else by comparing every entry. */
  protected update(state: ServiceState): void {
    if (state === this.indexed) return
    const before = this.indexed.entryMap
    const after = state.entryMap
    const changed = state.changedSince(this.indexed)
    if (changed) {
      for (const name of changed) {
        const [old, now] = [before.get(name), after.get(name)]
        if (old === now) continue
        if (old) this.drop(old.service)
        if (now) this.add(now.service)
      }
    } else {
      for (const [name, entry] of before) if (after.get(name) !== entry) this.drop(entry.service)
      for (const [name, entry] of after) if (before.get(name) !== entry) this.add(entry.service)
    }
    this.indexed = state
  }
}

/**
 * The owner of each generated name (backend and ACL names, src/render/names.ts): the 409 check
 * of a batch reads it. A name two services share (a state saved before the check existed) keeps
 * both, so removing one leaves the other its owner.
 */
export class NameIndex extends IncrementalIndex {
  private readonly owners = new Map<string, string>()
  private readonly shared = new Map<string, Set<string>>()

  /** The owner of `name` in `state`, if any. */
  ownerIn(state: ServiceState): (name: string) => string | undefined {
    this.update(state)
    return (name) => this.owners.get(name)
  }

  protected add(service: Service): void {
    for (const name of generatedNames(service)) {
      const owner = this.owners.get(name)
      if (owner === undefined) this.owners.set(name, service.serviceName)
      else if (owner !== service.serviceName) {
        const all = this.shared.get(name) ?? new Set([owner])
        this.shared.set(name, all.add(service.serviceName))
      }
    }
  }

  protected drop(service: Service): void {
    for (const name of generatedNames(service)) {
      const all = this.shared.get(name)
      if (all) {
        all.delete(service.serviceName)
        if (this.owners.get(name) === service.serviceName) this.owners.set(name, all.values().next().value as string)
        if (all.size === 1) this.shared.delete(name)
      } else if (this.owners.get(name) === service.serviceName) this.owners.delete(name)
    }
  }
}

/** How many services claim each key of the route maps (src/render/maps.ts). */
export class RouteClaims extends IncrementalIndex {
  private readonly counts: Record<RouteMapName, Map<string, number>> = { hostPath: new Map(), path: new Map() }

  constructor(private readonly settings: RenderSettings) {
    super()
  }

  /** The number of services of `state` whose entries claim `key` of map `map`. */
  countIn(state: ServiceState): (map: RouteMapName, key: string) => number {
    this.update(state)
    return (map, key) => this.counts[map].get(key) ?? 0
  }

  private keys(service: Service): Array<[RouteMapName, string]> {
    const seen = new Set<string>()
    const keys: Array<[RouteMapName, string]> = []
    for (const [map, key] of serviceRouting(service, this.settings).routeEntries) {
      if (seen.has(`${map} ${key}`)) continue
      seen.add(`${map} ${key}`)
      keys.push([map, key])
    }
    return keys
  }

  protected add(service: Service): void {
    for (const [map, key] of this.keys(service)) this.counts[map].set(key, (this.counts[map].get(key) ?? 0) + 1)
  }

  protected drop(service: Service): void {
    for (const [map, key] of this.keys(service)) {
      const count = (this.counts[map].get(key) ?? 0) - 1
      if (count > 0) this.counts[map].set(key, count)
      else this.counts[map].delete(key)
    }
  }
}

/** The services that bind a port of their own (a tcp, sni or TCP-group destination): the port check of a batch reads them. */
export class PortClaimants extends IncrementalIndex {
  private readonly services = new Map<string, Service>()

  of(state: ServiceState): Iterable<Service> {
    this.update(state)
    return this.services.values()
  }

  protected add(service: Service): void {
    if (service.destinations.some((dest) => portSection(dest) !== undefined)) this.services.set(service.serviceName, service)
  }

  protected drop(service: Service): void {
    if (this.services.get(service.serviceName) === service) this.services.delete(service.serviceName)
  }
}

/** The indexes a batch reads, brought to a state together (the core does so once a batch is answered). */
export class StateIndexes {
  readonly names = new NameIndex()
  readonly portClaimants = new PortClaimants()
  readonly claims: RouteClaims

  constructor(settings: RenderSettings) {
    this.claims = new RouteClaims(settings)
  }

  update(state: ServiceState): void {
    this.names.ownerIn(state)
    this.claims.countIn(state)
    this.portClaimants.of(state)
  }
}
