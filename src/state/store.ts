import { readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { checkCertName, inspectCertificate } from '../certs/pem.js'
import { writeAtomic } from '../files.js'
import type { Change, ServiceChange, ServiceSource, ServiceState } from './registry.js'

const FORMAT = 1
const SOURCES: readonly ServiceSource[] = ['api', 'listener', 'env']

interface SavedState {
  format: number
  services: Array<{ source: ServiceSource; params: Record<string, string> }>
  /** Certificates uploaded through the API (PEM with key). */
  certificates?: Array<{ name: string; pem: string }>
}

/** Turns saved parameters back into a change; throws when they are no longer valid. */
export type ParamsParser = (params: Record<string, string>) => ServiceChange

/**
 * The desired state on disk (`CONFIG_DIR/dfp-state.json`): each service's source and the
 * parameters it was made from, so loading runs them through the same parser as a request.
 */
export class StateStore {
  readonly path: string

  constructor(
    configDir: string,
    private readonly log: Logger,
  ) {
    this.path = join(configDir, 'dfp-state.json')
  }

  /**
   * The saved services as changes. A missing file is an empty state; an unreadable or corrupt
   * one is moved aside (logged) and also gives an empty state; a service that no longer parses
   * is skipped with its reason.
   */
  async load(parse: ParamsParser): Promise<Change[]> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      return this.moveAside(err)
    }
    let saved: SavedState
    try {
      saved = JSON.parse(text) as SavedState
      if (saved?.format !== FORMAT || !Array.isArray(saved.services)) throw new Error(`not a format ${FORMAT} state file`)
    } catch (err) {
      return this.moveAside(err)
    }
    const changes: Change[] = []
    for (const entry of saved.services) {
      const params = entry && typeof entry.params === 'object' && entry.params ? entry.params : {}
      try {
        const change = parse(params)
        const source = SOURCES.includes(entry.source) ? entry.source : 'api'
        changes.push(change.kind === 'put' ? { ...change, source } : change)
      } catch (err) {
        this.log.warn({ service: params.serviceName, error: (err as Error).message }, 'saved service skipped: its parameters are no longer valid')
      }
    }
    for (const cert of Array.isArray(saved.certificates) ? saved.certificates : []) {
      const problem = typeof cert?.name === 'string' ? checkCertName(cert.name) : 'is missing'
      try {
        if (problem) throw new Error(`certName ${problem}`)
        inspectCertificate(String(cert.pem))
        changes.push({ kind: 'cert-put', name: cert.name, pem: String(cert.pem) })
      } catch (err) {
        this.log.warn({ certificate: cert?.name, error: (err as Error).message }, 'saved certificate skipped')
      }
    }
    this.log.info({ services: saved.services.length, certificates: saved.certificates?.length ?? 0, path: this.path }, 'state loaded')
    return changes
  }

  /** Writes the state atomically, readable only by its owner (it may hold passwords). */
  async save(state: ServiceState): Promise<void> {
    const saved: SavedState = {
      format: FORMAT,
      services: state.list().map(({ source, params }) => ({ source, params })),
      certificates: [...state.uploaded.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, pem]) => ({ name, pem })),
    }
    await writeAtomic(this.path, `${JSON.stringify(saved, null, 1)}\n`, 0o600)
  }

  private async moveAside(err: unknown): Promise<Change[]> {
    const aside = `${this.path}.corrupt-${Date.now()}`
    try {
      await rename(this.path, aside)
      this.log.error({ err, movedTo: aside }, 'state file unreadable; moved aside, starting without saved services')
    } catch (renameErr) {
      this.log.error({ err, renameErr }, 'state file unreadable and could not be moved aside; starting without saved services')
    }
    return []
  }
}
