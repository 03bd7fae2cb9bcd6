import type { Logger } from 'pino'
import { errors, messageOf } from '../errors.js'
import { changedService, type ServiceState } from '../state/registry.js'
import type { StateCheckpoint } from '../state/store.js'
import type { CheckResult, PendingChange } from './batch.js'
import type { StatePort } from './port.js'
import type { UnservedRetry } from './unserved.js'

/** What saving a batch needs of the core. */
export interface DurableDeps {
  store: StatePort | undefined
  log: Logger
  unserved: UnservedRetry
  /** The state HAProxy serves now. */
  state(): ServiceState
  /** HAProxy back on a state (a reload). */
  makeLive(state: ServiceState): Promise<CheckResult>
  /** The live state's files (maps, certificates, crt-list) written again. */
  writeArtefacts(state: ServiceState): Promise<void>
}

/**
 * The batch's part of "a 200 is durable, a 503 is not applied" (docs/guarantees.md, "A full
 * disk"): a store that can take an append back (`checkpoint`/`rewind`) is saved before the
 * changes are made live and rewound when they are not; any other is saved once they are live,
 * and the changes are rolled back when that save fails.
 */
export class DurableBatch {
  private checkpoint: StateCheckpoint | undefined

  constructor(
    private readonly deps: DurableDeps,
    private readonly before: ServiceState,
  ) {}

  /**
   * Saves the batch's `target` (its changes on the state before it) first; the changes that
   * cannot be saved are rejected (503) and dropped.
   */
  async saveFirst(changes: PendingChange[], target: ServiceState): Promise<PendingChange[]> {
    const { store, log, unserved } = this.deps
    if (!store?.checkpoint || !store.rewind || changes.length === 0) return changes
    this.checkpoint = await store.checkpoint()
    const failed = await store.save(unserved.withKept(target), { compact: false }).then(() => undefined, (err: unknown) => err)
    if (failed === undefined) return changes
    log.error({ err: failed }, 'could not save the state; the changes are not applied')
    for (const item of changes) item.reject(errors.stateNotSaved(messageOf(failed), changedService(item.change)))
    return []
  }

  /**
   * Once the batch is carried out: the log matches what is live (rewound, or saved now), or the
   * changes are rolled back and rejected. Returns the changes to answer 200.
   */
  async settle(changes: readonly PendingChange[], live: PendingChange[]): Promise<PendingChange[]> {
    const { store, log, unserved } = this.deps
    // Everything saved first is live: the log holds the live state already.
    const savedFirst = this.checkpoint !== undefined && changes.length > 0 && live.length === changes.length
    if (savedFirst) {
      unserved.takeForgotten()
      await store?.compactIfDue?.(unserved.withKept(this.deps.state()))
      return live
    }
    if (store?.rewind && this.checkpoint) await store.rewind(this.checkpoint)
    if (!store || (this.deps.state() === this.before && !unserved.takeForgotten())) return live
    // Saved before anyone is answered, so an answered change survives a restart; a change that
    // cannot be saved is taken back, so the proxy and the file agree.
    const saved = await store.save(unserved.withKept(this.deps.state())).then(() => undefined, (err: unknown) => err)
    if (saved === undefined) return live
    log.error({ err: saved }, 'could not save the state; rolling the changes back')
    const back = await this.deps.makeLive(this.before)
    if (!back.ok) log.error({ error: back.error }, 'the changes that could not be saved could not be rolled back either')
    await this.deps.writeArtefacts(this.deps.state())
    for (const item of live) item.reject(errors.stateNotSaved(messageOf(saved), changedService(item.change)))
    return []
  }

  /**
   * After the batch failed half-way (a file could not be written): HAProxy back on the state
   * before it when part of it went live, and the log back to the checkpoint. Best effort; each
   * failure is logged.
   */
  async backOut(): Promise<void> {
    const { store, log, unserved } = this.deps
    if (this.deps.state() !== this.before) {
      const back = await this.deps.makeLive(this.before).catch((err: unknown): CheckResult => ({ ok: false, kind: 'unavailable', error: messageOf(err) }))
      if (!back.ok) log.error({ error: back.error }, 'a batch that failed half-way could not be rolled back')
    }
    await this.deps.writeArtefacts(this.deps.state()).catch((err: unknown) => log.warn({ err }, 'the files of the live state could not be written back'))
    if (this.checkpoint && store?.rewind) {
      await store.rewind(this.checkpoint).catch((err: unknown) => log.error({ err }, 'the state log could not be taken back'))
      if (this.deps.state() !== this.before) await store.save(unserved.withKept(this.deps.state())).catch((err: unknown) => log.error({ err }, 'the state could not be saved'))
    }
  }
}
