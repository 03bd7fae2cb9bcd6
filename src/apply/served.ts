import type { Logger } from 'pino'
import { messageOf } from '../errors.js'
import type { Rendered } from '../render/index.js'
import type { LiveState } from '../state/live.js'
import type { ServiceState } from '../state/registry.js'
import type { HaproxyPort, LoadVerdict } from './port.js'
import type { Timers } from './timers.js'
import { applyChanges, type ViewChanges, type WorkerView, workerView } from './worker-view.js'

/** The running worker as far as the record knows it: what it loaded (and took since at run time), and its pid. */
export interface Worker {
  view: WorkerView
  pid: number
}

/** Pause before the n-th restart in a row that failed: none for the first, then 250 ms doubling up to 30 s. */
const restartDelay = (failures: number) => (failures === 0 ? 0 : Math.min(30_000, 250 * 2 ** Math.min(failures - 1, 7)))

export interface ServedOptions {
  /** The published face of the record (routes, metrics, listeners read it). */
  live: LiveState
  port: HaproxyPort
  render: (state: ServiceState) => Rendered
  log: Logger
  timers: Timers
}

/**
 * The one record of what HAProxy serves: the services (published in LiveState with their
 * configuration text), the running worker's view and pid, and whether the files on disk are
 * behind it. Everything that changes what HAProxy serves or the files it loads — a reload, runtime
 * commands, a write of the files, a restart — runs through `exclusive`, one at a time, so a
 * restart never writes over a candidate another load is about to read.
 *
 * When the master dies (killed, or its worker killed), this module starts it again on what the
 * record says is served: it writes those files and starts HAProxy on them. The master itself
 * renders and writes nothing (src/haproxy/master.ts).
 */
export class ServedHaproxy {
  private current?: Worker
  private turn: Promise<unknown> = Promise.resolve()
  private behind = false
  private failedRestarts = 0
  private cancelRestart?: () => void
  private closed = false

  constructor(private readonly options: ServedOptions) {
    options.port.onExit(() => this.scheduleRestart())
  }

  /** The running worker, undefined when nobody knows what it serves (a failed restore, a master being restarted). */
  get worker(): Worker | undefined {
    return this.current
  }

  /** The services HAProxy serves. */
  get services(): ServiceState {
    return this.options.live.services
  }

  /** The files on disk are behind what the worker serves (changes made at run time before they were written). */
  get filesBehind(): boolean {
    return this.behind
  }

  /** Runs `task` alone among everything that loads, writes HAProxy's files or sends it runtime commands. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.turn.then(task, task)
    this.turn = run.catch(() => undefined)
    return run
  }

  /** A worker (`pid`) confirmed serving `rendered`, the configuration of `state`. */
  loaded(state: ServiceState, rendered: Rendered, pid: number): void {
    this.current = { view: workerView(rendered), pid }
    this.options.live.set(state, rendered.config)
  }

  /**
   * The worker took runtime commands: it now serves `state`, its view changed by `changes` (in
   * place: the view is this record's own); `config` is its configuration's text (rendered when
   * first read), already on disk when `written`.
   */
  changedAtRuntime(state: ServiceState, changes: ViewChanges, config: string | (() => string), written: boolean): void {
    if (!this.current) throw new Error('runtime commands without a known worker')
    applyChanges(this.current.view, changes)
    this.options.live.set(state, config)
    if (!written) this.behind = true
  }

  /** A load and its restore both failed: what the worker serves is unknown until the next load. */
  unknown(): void {
    this.current = undefined
  }

  /** Writes the route maps and the configuration file of `rendered` (a candidate or the record's own). */
  async writeFiles(rendered: Rendered): Promise<void> {
    await this.options.port.writeConfig(rendered)
    this.behind = false
  }

  /** Writes the files of what the worker serves. */
  syncFiles(): Promise<void> {
    return this.exclusive(() => this.writeFiles(this.options.render(this.services)))
  }

  /** No restart from now on (the daemon stops HAProxy). */
  close(): void {
    this.closed = true
    this.cancelRestart?.()
  }

  private scheduleRestart(): void {
    if (this.closed) return
    this.cancelRestart?.()
    this.cancelRestart = this.options.timers.after(restartDelay(this.failedRestarts), () => void this.restart())
  }

  /** Starts HAProxy again on the files of what the record says is served. */
  private async restart(): Promise<void> {
    const { port, render, log } = this.options
    const result = await this.exclusive(async (): Promise<LoadVerdict | undefined> => {
      if (this.closed) return undefined
      const state = this.services
      const rendered = render(state)
      await port.writeArtefacts(state, { prune: false })
      await this.writeFiles(rendered)
      const started = await port.restart(rendered.version, this.current?.pid)
      if (started.ok) this.loaded(state, rendered, started.pid)
      else this.current = undefined
      return started
    }).catch((err): LoadVerdict => ({ ok: false, kind: 'unavailable', error: messageOf(err) }))
    if (!result) return
    if (result.ok) {
      this.failedRestarts = 0
      log.warn({ workerPid: result.pid, services: this.services.size }, 'haproxy restarted on the configuration it served')
      return
    }
    this.failedRestarts++
    log.error({ error: result.error, failures: this.failedRestarts }, 'haproxy could not be restarted; trying again')
    this.scheduleRestart()
  }
}
