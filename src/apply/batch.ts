import { DfpError, errors } from '../errors.js'
import type { FailureKind, Outcome } from '../outcome.js'
import { generatedNames } from '../render/index.js'
import { portSection } from '../render/tcp.js'
import type { Service } from '../service/types.js'
import { type Change, changedService, type ServiceState } from '../state/registry.js'

/** A request waiting for the apply loop: a change, or none for a plain reload request (or a write of the files: `sync`). */
export interface Pending {
  change?: Change
  purpose?: 'sync'
  resolve: () => void
  reject: (err: Error) => void
}

/** A pending request that carries a change. */
export type PendingChange = Pending & { change: Change }

/**
 * What a candidate state gave: accepted, refused by HAProxy (`refused`: bisected, the change
 * alone is to blame), or a failure that blames none of the changes (`unavailable`: the machinery
 * failed, 503; `systemic`: HAProxy could not even be put back, 500).
 */
export type CheckResult = Outcome<object, FailureKind>

/**
 * Refuses (409, naming the owner) each put whose generated names another service already has
 * in the state the batch builds up; returns the others, in order. `ownerIn` gives each name's
 * owner in `state` (src/apply/state-index.ts); the batch's own changes are laid over it.
 */
export function withoutNameConflicts(state: ServiceState, items: PendingChange[], ownerIn: (name: string) => string | undefined): PendingChange[] {
  // Names the batch gave (a service name) or freed (null) so far.
  const batchOwners = new Map<string, string | null>()
  const batchNames = new Map<string, string[]>()
  const owner = (name: string) => (batchOwners.has(name) ? (batchOwners.get(name) ?? undefined) : ownerIn(name))
  const forget = (serviceName: string) => {
    const previous = state.get(serviceName)
    const mine = batchNames.get(serviceName) ?? (previous ? generatedNames(previous) : [])
    for (const name of mine) if (owner(name) === serviceName) batchOwners.set(name, null)
    batchNames.set(serviceName, [])
  }
  const kept: PendingChange[] = []
  for (const item of items) {
    const change = item.change
    if (change.kind === 'remove') forget(change.serviceName)
    if (change.kind !== 'put') {
      kept.push(item)
      continue
    }
    const service = change.service
    const mine = generatedNames(service)
    const taken = mine.find((name) => (owner(name) ?? service.serviceName) !== service.serviceName)
    if (taken) {
      item.reject(errors.nameTaken(service.serviceName, taken, owner(taken) as string))
      continue
    }
    forget(service.serviceName)
    for (const name of mine) batchOwners.set(name, service.serviceName)
    batchNames.set(service.serviceName, mine)
    kept.push(item)
  }
  return kept
}

/**
 * Refuses (409, naming the owner) each put with a tcp, sni or TCP-group destination on a srcPort
 * that another section already binds: a tcp and an sni destination on one port (or two TCP
 * groups) would each bind it, and the kernel would split connections between them (the
 * original's D12). Destinations of one kind share their port's section, as before.
 * `claimants`: the services of `state` that bind a port of their own (src/apply/state-index.ts).
 */
export function withoutPortConflicts(state: ServiceState, items: PendingChange[], claimants: Iterable<Service>): PendingChange[] {
  const owners = new Map<number, { section: string; service: string }>()
  const claim = (service: Service, owners: Map<number, { section: string; service: string }>) => {
    for (const dest of service.destinations) {
      const section = portSection(dest)
      if (section !== undefined && !owners.has(dest.srcPort as number)) owners.set(dest.srcPort as number, { section, service: service.serviceName })
    }
  }
  for (const service of claimants) claim(service, owners)
  const kept: PendingChange[] = []
  for (const item of items) {
    const change = item.change
    const leaving = change.kind === 'remove' ? change.serviceName : change.kind === 'put' ? change.service.serviceName : undefined
    for (const [port, owner] of owners) if (owner.service === leaving) owners.delete(port)
    if (change.kind !== 'put') {
      kept.push(item)
      continue
    }
    const service = change.service
    const mine = new Map<number, { section: string; service: string }>()
    let clash: { port: number; section: string; owner: { section: string; service: string } } | undefined
    for (const dest of service.destinations) {
      const section = portSection(dest)
      if (section === undefined) continue
      const port = dest.srcPort as number
      const owner = owners.get(port) ?? mine.get(port)
      if (owner && owner.section !== section) clash ??= { port, section, owner }
      if (!mine.has(port)) mine.set(port, { section, service: service.serviceName })
    }
    if (clash) {
      // The service's previous definition keeps its ports.
      const previous = state.get(service.serviceName)
      if (previous) claim(previous, owners)
      item.reject(errors.portTaken(service.serviceName, clash.port, clash.section, clash.owner.section, clash.owner.service))
      continue
    }
    for (const [port, owner] of mine) if (!owners.has(port)) owners.set(port, owner)
    kept.push(item)
  }
  return kept
}

/** The error a request gets when a check failed for a reason that is not its change alone. */
export function failureOf(result: Exclude<CheckResult, { ok: true }>, service?: string): DfpError {
  if (result.kind === 'unavailable') return errors.haproxyUnavailable(result.error, service)
  if (result.kind === 'systemic') return errors.reloadFailed(result.error, service)
  return errors.rejectedByHaproxy(service ?? 'the configuration', result.error)
}

/**
 * Finds the largest order-respecting subset of `items` that passes `check` on top of `base`:
 * all of them when they pass together, else each half in turn. Items refused alone are handed
 * to `refused`; a failure that blames no change rejects every item it reached, unsplit.
 * `whole`: the state of all `items` on `base` when the caller built it already (the plan's), so
 * its rendering is not made again for an equal state built anew.
 */
export async function bisect(
  base: ServiceState,
  items: PendingChange[],
  check: (state: ServiceState) => Promise<CheckResult>,
  refused: (item: PendingChange, error: string) => void,
  whole?: ServiceState,
): Promise<PendingChange[]> {
  if (items.length === 0) return []
  const result = await check(whole ?? base.with(items.map((item) => item.change)))
  if (result.ok) return items
  if (result.kind !== 'refused') {
    for (const item of items) item.reject(failureOf(result, changedService(item.change)))
    return []
  }
  if (items.length === 1) {
    refused(items[0] as PendingChange, result.error)
    return []
  }
  const middle = Math.ceil(items.length / 2)
  const first = await bisect(base, items.slice(0, middle), check, refused)
  const second = await bisect(base.with(first.map((item) => item.change)), items.slice(middle), check, refused)
  return [...first, ...second]
}
