import { messageOf } from '../errors.js'
import { open, readFile, rename, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { checkCertName, inspectCertificate } from '../pem.js'
import { writeAtomic } from '../files.js'
import { compact as compactObject } from '../compact.js'
import type { Service } from '../service/types.js'
import type { Change, ServiceChange, ServiceSource, ServiceState } from './registry.js'

// Format 1: the whole state in dfp-state.json, rewritten on every save (still loaded).
// Format 2: dfp-state.json is a snapshot with a generation; dfp-state.log holds the changes
// since, one JSON line each, after a header line naming the same generation.
const FORMAT = 2
const SOURCES: readonly ServiceSource[] = ['api', 'listener', 'env']
/** The log is folded into a new snapshot once it has more lines than this or the snapshot. */
const MIN_COMPACTION_LINES = 256
/** Parameters whose service depends on files read while parsing: such a service is always parsed again. */
const READS_FILES = ['templateFePath', 'templateBePath', 'usersSecret']

export interface SavedService {
  source: ServiceSource
  params: Record<string, string>
  /** The service as parsed from `params`, when the snapshot names the parser (`SavedState.parser`). */
  service?: Service
}

export interface SavedState {
  format: number
  generation?: number
  /**
   * The parser the snapshot's `service` fields came from (src/service/fingerprint.ts): a loader
   * with the same one takes them as they are instead of parsing every service again.
   */
  parser?: string
  services: SavedService[]
  /** Certificates uploaded through the API (PEM with key). */
  certificates?: Array<{ name: string; pem: string }>
}

/** One line of the log after its header `{"generation":n}`. */
type LogLine = { put: SavedService } | { remove: string } | { cert: { name: string; pem: string } } | { certRemoved: string }

/** A position of the files (StateStore.checkpoint). */
export interface StateCheckpoint {
  generation: number
  /** The log's size; undefined before the first save. */
  size: number | undefined
  lines: number
  saved: ServiceState | undefined
}

/** Turns saved parameters back into a change; throws when they are no longer valid. */
export type ParamsParser = (params: Record<string, string>) => ServiceChange

/**
 * The desired state on disk: each service's source and the parameters it was made from, so
 * loading runs them through the same parser as a request. A save appends what changed since the
 * last one to `dfp-state.log` (work in proportion to the change, not to the number of services);
 * when the log outgrows the snapshot, both are rewritten: the snapshot `dfp-state.json` first
 * (atomically, with the next generation), then an empty log of that generation. A log whose
 * generation is not the snapshot's is already part of it (a stop between the two writes).
 */
export class StateStore {
  readonly path: string
  readonly logPath: string
  private generation = 0
  private logLines = 0
  private snapshotSize = 0
  /** What the files hold; undefined until the first save, which writes a snapshot. */
  private saved: ServiceState | undefined
  /** The snapshot loaded was written by another parser (or without services as parsed). */
  private staleSnapshot = false

  constructor(
    configDir: string,
    private readonly log: Logger,
    /** The parser's fingerprint: snapshots then keep each parsed service, and a load with the same one reuses them. */
    private readonly parser?: string,
  ) {
    this.path = join(configDir, 'dfp-state.json')
    this.logPath = join(configDir, 'dfp-state.log')
  }

  /**
   * The saved services as changes. A missing file is an empty state; an unreadable or corrupt
   * snapshot is moved aside (logged) and also gives an empty state; a service that no longer
   * parses is skipped with its reason, as is a log line that is not JSON (a torn last write).
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
      if ((saved?.format !== 1 && saved?.format !== FORMAT) || !Array.isArray(saved.services)) throw new Error(`not a format 1 or ${FORMAT} state file`)
    } catch (err) {
      return this.moveAside(err)
    }
    const services = new Map<string, SavedService>()
    for (const entry of saved.services) {
      const params = entry && typeof entry.params === 'object' && entry.params ? entry.params : {}
      services.set(String(params.serviceName), { source: entry?.source, params, ...(entry?.service ? { service: entry.service } : {}) })
    }
    const certificates = new Map((Array.isArray(saved.certificates) ? saved.certificates : []).map((c) => [c?.name, c?.pem] as const))
    if (saved.format === FORMAT) await this.replayLog(Number(saved.generation), services, certificates)
    const changes: Change[] = []
    // A snapshot of this very parser (same code, same settings) holds what parsing gives.
    const trusted = this.parser !== undefined && saved.parser === this.parser
    this.staleSnapshot = this.parser !== undefined && !trusted && services.size > 0
    let reused = 0
    for (const [name, entry] of services) {
      try {
        const keep = trusted && entry.service !== undefined && typeof entry.service === 'object' && !READS_FILES.some((key) => key in entry.params)
        if (keep) reused++
        const change: ServiceChange = keep ? { kind: 'put', service: compactObject(entry.service as Service), params: compactObject(entry.params) } : parse(entry.params)
        const source = SOURCES.includes(entry.source) ? entry.source : 'api'
        changes.push(change.kind === 'put' ? { ...change, source } : change)
      } catch (err) {
        this.log.warn({ service: name, error: messageOf(err) }, 'saved service skipped: its parameters are no longer valid')
      }
    }
    for (const [name, pem] of certificates) {
      const problem = typeof name === 'string' ? checkCertName(name) : 'is missing'
      try {
        if (problem) throw new Error(`certName ${problem}`)
        inspectCertificate(String(pem))
        changes.push({ kind: 'cert-put', name: name as string, pem: String(pem) })
      } catch (err) {
        this.log.warn({ certificate: name, error: messageOf(err) }, 'saved certificate skipped')
      }
    }
    this.generation = Number.isSafeInteger(saved.generation) ? Number(saved.generation) : 0
    this.log.info({ services: services.size, parsed: services.size - reused, certificates: certificates.size, path: this.path }, 'state loaded')
    return changes
  }

  /**
   * Makes the files hold `state`, readable only by their owner (they may hold passwords): the
   * entries that differ from the last save are appended to the log (the services a few `with`
   * calls changed, else one identity check per service, as an unchanged service keeps its entry
   * object), or everything is
   * written as a new snapshot when there is no last save or the log has grown past it.
   */
  async save(state: ServiceState, { compact = true }: { compact?: boolean } = {}): Promise<void> {
    const previous = this.saved
    if (previous === undefined) return this.compact(state)
    if (previous === state) return
    const lines: LogLine[] = []
    const changed = state.changedSince(previous)
    if (changed) {
      for (const name of [...changed].sort()) {
        const entry = state.entryMap.get(name)
        if (entry === previous.entryMap.get(name)) continue
        lines.push(entry ? { put: { source: entry.source, params: entry.params } } : { remove: name })
      }
    } else {
      for (const [name, entry] of state.entryMap) {
        if (previous.entryMap.get(name) !== entry) lines.push({ put: { source: entry.source, params: entry.params } })
      }
      for (const name of previous.entryMap.keys()) if (!state.entryMap.has(name)) lines.push({ remove: name })
    }
    for (const [name, pem] of state.uploaded) if (previous.uploaded.get(name) !== pem) lines.push({ cert: { name, pem } })
    for (const name of previous.uploaded.keys()) if (!state.uploaded.has(name)) lines.push({ certRemoved: name })
    if (lines.length === 0) {
      this.saved = state
      return
    }
    if (compact && this.compactionDue) return this.compact(state)
    const handle = await open(this.logPath, 'a', 0o600)
    const size = (await handle.stat()).size
    try {
      await handle.appendFile(lines.map((line) => `${JSON.stringify(line)}\n`).join(''))
      await handle.datasync()
    } catch (err) {
      // A full disk cuts the append short: the lines before it stay whole, and no torn line is
      // left for the next append to run into (which would make both unreadable).
      await handle.truncate(size).catch((truncateErr: unknown) => this.log.error({ err: truncateErr, path: this.logPath }, 'state log could not be cut back after a failed append'))
      throw err
    } finally {
      await handle.close()
    }
    this.logLines += lines.length
    this.saved = state
  }

  private get compactionDue(): boolean {
    return this.logLines > Math.max(MIN_COMPACTION_LINES, this.snapshotSize)
  }

  /**
   * Folds the log into a new snapshot when it is due and `state` is what the files hold. The
   * log already holds `state`, so a failure (a full disk) loses nothing: logged, not thrown.
   */
  async compactIfDue(state: ServiceState): Promise<void> {
    if (!this.compactionDue || this.saved === undefined) return
    await this.compact(state).catch((err: unknown) => this.log.warn({ err, path: this.path }, 'state snapshot not rewritten; the log keeps growing until it is'))
  }

  /**
   * After a start on a snapshot another parser wrote (an upgrade, changed settings): writes it
   * anew, so the next start takes the services as they are instead of parsing them all. Only
   * while nothing was saved since the load (`state` is then what the files hold); a failure is
   * logged, the files stay as they were.
   */
  async refreshSnapshot(state: ServiceState): Promise<void> {
    if (!this.staleSnapshot || this.saved !== undefined) return
    this.staleSnapshot = false
    await this.compact(state).catch((err: unknown) => this.log.warn({ err, path: this.path }, 'state snapshot not rewritten for the next start'))
  }

  /** Where the files are now: `rewind` takes them back here. */
  async checkpoint(): Promise<StateCheckpoint> {
    const size = this.saved === undefined ? undefined : await stat(this.logPath).then((s) => s.size, () => undefined)
    return { generation: this.generation, size, lines: this.logLines, saved: this.saved }
  }

  /**
   * Takes the log back to `checkpoint` (a truncation: it needs no disk space) when it has only
   * grown since; after a compaction in between, the next save appends what differs instead.
   */
  async rewind(checkpoint: StateCheckpoint): Promise<void> {
    if (checkpoint.generation !== this.generation || checkpoint.size === undefined || checkpoint.saved === undefined) return
    await truncate(this.logPath, checkpoint.size)
    this.logLines = checkpoint.lines
    this.saved = checkpoint.saved
  }

  private async compact(state: ServiceState): Promise<void> {
    const generation = this.generation + 1
    const entries = state.list()
    const certificates = [...state.uploaded.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, pem]) => ({ name, pem }))
    const parser = this.parser
    // One service a line, written in parts (src/files.ts), never the whole text as one string.
    function* text(): Generator<string> {
      yield `{"format":${FORMAT},"generation":${generation},${parser === undefined ? '' : `"parser":${JSON.stringify(parser)},`}"services":[\n`
      for (const [index, { source, params, service }] of entries.entries()) {
        const saved: SavedService = parser === undefined ? { source, params } : { source, params, service }
        yield `${index === 0 ? '' : ',\n'}${JSON.stringify(saved)}`
      }
      yield `\n],"certificates":${JSON.stringify(certificates)}}\n`
    }
    await writeAtomic(this.path, text(), 0o600)
    await writeAtomic(this.logPath, `${JSON.stringify({ generation })}\n`, 0o600)
    this.generation = generation
    this.logLines = 0
    this.snapshotSize = entries.length
    this.saved = state
  }

  private async replayLog(generation: number, services: Map<string, SavedService>, certificates: Map<unknown, unknown>): Promise<void> {
    let text: string
    try {
      text = await readFile(this.logPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.error({ err, path: this.logPath }, 'state log unreadable; using the snapshot alone')
      return
    }
    if (!text.endsWith('\n')) {
      // A write cut short by a kill or a full disk: the lines before it are whole and kept.
      const whole = text.lastIndexOf('\n') + 1
      this.log.warn({ path: this.logPath, bytes: text.length - whole }, 'state log ends in a torn line; cut back to the last whole line')
      await truncate(this.logPath, Buffer.byteLength(text.slice(0, whole))).catch((err: unknown) => this.log.error({ err, path: this.logPath }, 'state log could not be repaired'))
      text = text.slice(0, whole)
    }
    const [header, ...lines] = text.split('\n')
    const logGeneration = (() => {
      try {
        return (JSON.parse(header ?? '') as { generation?: unknown }).generation
      } catch {
        return undefined
      }
    })()
    if (logGeneration !== generation) return // already folded into the snapshot
    for (const [index, text] of lines.entries()) {
      if (text === '') continue
      let line: LogLine
      try {
        line = JSON.parse(text) as LogLine
      } catch {
        this.log.warn({ path: this.logPath, line: index + 2 }, 'state log line skipped: not JSON (a write cut short)')
        continue
      }
      if ('put' in line && line.put?.params) services.set(String(line.put.params.serviceName), line.put)
      else if ('remove' in line) services.delete(line.remove)
      else if ('cert' in line && line.cert) certificates.set(line.cert.name, line.cert.pem)
      else if ('certRemoved' in line) certificates.delete(line.certRemoved)
    }
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
