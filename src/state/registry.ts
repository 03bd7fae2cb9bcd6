import { wantsAcme } from '../service/acme-request.js'
import { withoutPasswords } from '../service/public.js'
import type { Service, ServiceChange, ServiceSource } from '../service/types.js'
import { LayeredMap } from './layered-map.js'

export type { ServiceChange, ServiceSource }

/** A service as stored: its definition and what it was made from, so it can be saved and re-read. */
export interface ServiceEntry {
  service: Service
  source: ServiceSource
  /** The parameters it was parsed from (first value of each key). */
  params: Record<string, string>
}

/** A certificate: from CERTS_DIR, a `cert-*` secret, uploaded, or issued through ACME. */
export interface CertificateFile {
  name: string
  /** Where it was found (folder and secret certificates); HAProxy loads a copy, see `loadPath`. */
  path: string
  source: 'folder' | 'secret' | 'uploaded' | 'acme'
  pem: string
}

/** A certificate with the path of the copy HAProxy loads: `<certDir>/<source>/<name>`. */
export interface LoadedCertificate extends CertificateFile {
  loadPath: string
}

/** A change to the desired state. */
export type Change =
  | ServiceChange
  /** A certificate uploaded through the API (or `serviceCert`), kept in the saved state. */
  | { kind: 'cert-put'; name: string; pem: string }
  /** What CERTS_DIR and the secrets folder hold now (replaces the previous scan). */
  | { kind: 'cert-scan'; files: CertificateFile[] }
  /** A certificate issued through ACME (kept by src/acme/store.ts, not in the saved state). */
  | { kind: 'acme-put'; name: string; pem: string }

/** What a change is about, for messages: a service name, `certificate <name>`, or the folders. */
export const changedService = (change: Change) => {
  switch (change.kind) {
    case 'put':
      return change.service.serviceName
    case 'remove':
      return change.serviceName
    case 'cert-put':
      return `certificate ${change.name}`
    case 'cert-scan':
      return 'certificate folders'
    case 'acme-put':
      return `ACME certificate ${change.name}`
  }
}

/**
 * The desired state: services keyed by serviceName, uploaded certificates keyed by name, and the
 * certificate files found in the folders. Immutable: applying changes gives a new state.
 */
export class ServiceState {
  private constructor(
    /** Shared with the state it was made from, under the changes (src/state/layered-map.ts). */
    private readonly entries: LayeredMap<string, ServiceEntry>,
    /** Uploaded certificates: name → PEM. */
    readonly uploaded: ReadonlyMap<string, string> = new Map(),
    /** Certificate files of CERTS_DIR and the secrets folder, in that order. */
    readonly scanned: readonly CertificateFile[] = [],
    /** Certificates issued through ACME: name → PEM. */
    readonly acme: ReadonlyMap<string, string> = new Map(),
    /** The state this one was made from by `with`, and the services that differ. */
    private readonly origin?: { parent: WeakRef<ServiceState>; names: ReadonlySet<string> },
    /** How many services ask for an ACME certificate and have an http destination, kept by `with`. */
    private readonly tally: Tally = { acme: 0, http: 0 },
  ) {}

  /**
   * The names of the services whose entries differ between `earlier` and this state, when this
   * state was made from it by a few `with` calls; undefined when that is not known (then compare
   * the entries). Lets the indexes kept across states (src/apply/state-index.ts), the state log
   * and the ACME requests do work in proportion to a change, not to the number of services.
   * The parents are held weakly: a state keeps no earlier state alive.
   */
  changedSince(earlier: ServiceState): ReadonlySet<string> | undefined {
    const names = new Set<string>()
    let state: ServiceState | undefined = this
    for (let hops = 0; hops < 16 && state; hops++) {
      if (state === earlier) return names
      if (!state.origin) return undefined
      for (const name of state.origin.names) names.add(name)
      state = state.origin.parent.deref()
    }
    return undefined
  }

  static empty(): ServiceState {
    return new ServiceState(LayeredMap.empty())
  }

  /**
   * Every certificate HAProxy should load (folder files, secrets, then uploaded ones), each from
   * a copy dfp owns in `certDir`: the copy keeps the last good content when a watched file is
   * being rewritten or turns invalid.
   */
  certificateFiles(certDir: string): LoadedCertificate[] {
    const uploaded = [...this.uploaded.entries()]
      .sort(([a], [b]) => byName(a, b))
      .map(([name, pem]) => ({ name, pem, source: 'uploaded' as const, path: `${certDir}/uploaded/${name}` }))
    const acme = [...this.acme.entries()]
      .sort(([a], [b]) => byName(a, b))
      .map(([name, pem]) => ({ name, pem, source: 'acme' as const, path: `${certDir}/acme/${name}` }))
    return [...this.scanned, ...uploaded, ...acme].map((file) => ({ ...file, loadPath: `${certDir}/${file.source}/${file.name}` }))
  }

  /** Whether any service asks for an ACME certificate: HAProxy then answers HTTP-01 challenges. */
  get acmeChallenges(): boolean {
    return this.tally.acme > 0
  }

  /** Whether any service has an http destination (`frontend services` then binds its ports). */
  get hasHttp(): boolean {
    return this.tally.http > 0
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

  /** The entries by service name, unsorted; an unchanged service keeps its entry object. */
  get entryMap(): ReadonlyMap<string, ServiceEntry> {
    return this.entries
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
    // The entries the changes set (an entry) or remove (undefined), applied at the end in one go.
    const edits = new Map<string, ServiceEntry | undefined>()
    const current = (name: string) => (edits.has(name) ? edits.get(name) : this.entries.get(name))
    let uploaded = this.uploaded
    let scanned = this.scanned
    let acme = this.acme
    let changed = false
    const names = new Set<string>()
    for (const change of changes) {
      if (change.kind === 'acme-put') {
        if (acme.get(change.name) === change.pem) continue
        acme = new Map(acme).set(change.name, change.pem)
        changed = true
        continue
      }
      if (change.kind === 'cert-put') {
        if (uploaded.get(change.name) === change.pem) continue
        uploaded = new Map(uploaded).set(change.name, change.pem)
        changed = true
        continue
      }
      if (change.kind === 'cert-scan') {
        if (JSON.stringify(scanned) === JSON.stringify(change.files)) continue
        scanned = change.files
        changed = true
        continue
      }
      if (change.kind === 'remove') {
        if (current(change.serviceName)) {
          edits.set(change.serviceName, undefined)
          changed = true
          names.add(change.serviceName)
        }
        continue
      }
      const name = change.service.serviceName
      const previous = current(name)
      const requested = change.source ?? 'api'
      const source = requested === 'api' && previous?.source === 'listener' ? 'listener' : requested
      const entry = { service: change.service, source, params: change.params ?? {} }
      if (previous && sameEntry(previous, entry)) continue
      edits.set(name, entry)
      changed = true
      names.add(name)
    }
    // An unchanged state stays the same object: callers compare identity to skip saving.
    if (!changed) return this
    const tally = { ...this.tally }
    for (const [name, entry] of edits) {
      const previous = this.entries.get(name)
      if (previous) count(tally, previous, -1)
      if (entry) count(tally, entry, 1)
    }
    return new ServiceState(this.entries.with(edits), uploaded, scanned, acme, { parent: new WeakRef(this), names }, tally)
  }

  /** Services by name, sorted, for `/config?type=json` (without passwords). */
  toJSON(): Record<string, ReturnType<typeof withoutPasswords>> {
    return Object.fromEntries(this.list().map((entry) => [entry.service.serviceName, withoutPasswords(entry.service)]))
  }
}

/** Counts of services with a property, kept by `ServiceState.with` so no reader iterates every service. */
interface Tally {
  acme: number
  http: number
}

const count = (tally: Tally, entry: ServiceEntry, by: 1 | -1) => {
  if (wantsAcme(entry.params)) tally.acme += by
  if (entry.service.destinations.some((d) => d.reqMode === 'http')) tally.http += by
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

const sameEntry = (a: ServiceEntry, b: ServiceEntry) =>
  a.source === b.source && JSON.stringify(a.params) === JSON.stringify(b.params) && JSON.stringify(a.service) === JSON.stringify(b.service)
