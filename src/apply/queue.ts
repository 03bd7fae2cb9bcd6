import { DfpError, errors, messageOf } from '../errors.js'
import { isFileSystemFailure } from '../files.js'
import type { Change } from '../state/registry.js'
import type { Pending } from './batch.js'

/**
 * The waiting room of the serialized apply loop. One turn at a time takes everything pending
 * (requests that arrive in the same tick join the first batch), so N concurrent requests cost one
 * validation and one reload. A turn that throws settles its whole batch: a DfpError as it is, a
 * file that could not be written as 503 (the machinery, not the request), anything else as 500.
 */
export class BatchQueue {
  private queue: Pending[] = []
  private running?: Promise<void>
  private shut = false

  constructor(
    private readonly applyBatch: (batch: Pending[]) => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** True once `close` was called: new changes are refused. */
  get closed(): boolean {
    return this.shut
  }

  /**
   * Queues a change (or, for `undefined`, a plain reload, or with `sync` a write of the live
   * configuration's files); settles when its batch has.
   */
  enqueue(change: Change | undefined, purpose?: 'sync'): Promise<void> {
    if (this.shut) return Promise.reject(errors.shuttingDown())
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...(change ? { change } : {}), ...(purpose ? { purpose } : {}), resolve, reject })
      this.kick()
    })
  }

  /** Settles once nothing is pending or running (tests wait on it instead of a timer). */
  async idle(): Promise<void> {
    // A turn may be queued behind the setImmediate that gathers a batch.
    await new Promise((resolve) => setImmediate(resolve))
    while (this.running) await this.running.catch(() => undefined)
  }

  /** Refuses new changes and waits for the running turn. */
  async close(): Promise<void> {
    this.shut = true
    await this.running
  }

  private kick(): void {
    this.running ??= this.drain().finally(() => {
      this.running = undefined
      // A request settled by the last batch may have queued another before `running` was
      // cleared; without this it would wait forever.
      if (this.queue.length > 0) this.kick()
    })
  }

  private async drain(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve))
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0)
      try {
        await this.applyBatch(batch)
      } catch (err) {
        this.onError(err)
        const failure = err instanceof DfpError ? err : isFileSystemFailure(err) ? errors.haproxyUnavailable(`the files could not be written: ${messageOf(err)}`) : errors.reloadFailed(String(err))
        for (const item of batch) item.reject(failure)
      }
    }
  }
}
