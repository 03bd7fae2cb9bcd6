import type { Logger } from 'pino'
import { errors, messageOf } from '../errors.js'
import type { RuntimeCommand } from '../haproxy/commands.js'
import { countRuntimeChange, type Metrics } from '../metrics/index.js'
import type { Rendered, RenderSettings } from '../render/index.js'
import { type Change, changedService, type ServiceState } from '../state/registry.js'
import { LiveState } from '../state/live.js'
import { bisect, type CheckResult, failureOf, type Pending, type PendingChange, withoutNameConflicts, withoutPortConflicts } from './batch.js'
import { CatchUpTimer } from './catch-up.js'
import { swapCertificates } from './cert-swap.js'
import { CandidateCheck } from './check.js'
import { DurableBatch, type DurableDeps } from './durable.js'
import { reloadOnto } from './load.js'
import { type Plan, planChange } from './plan.js'
import type { HaproxyPort, StatePort } from './port.js'
import { BatchQueue } from './queue.js'
import { RenderCache } from './render-cache.js'
import { ServedHaproxy } from './served.js'
import { StateIndexes } from './state-index.js'
import { realTimers, type Timers } from './timers.js'
import { UnservedRetry } from './unserved.js'

export interface ApplyCoreOptions {
  settings: RenderSettings & { DISPLAY_CONFIG_ON_ERROR: boolean }
  port: HaproxyPort
  /** Where the state is saved before anyone is answered; none: nothing is saved. */
  store?: StatePort
  log: Logger
  metrics: Metrics
  /** What is live; the core is its only writer. */
  live?: LiveState
  /** The clock and timers (a fake one in unit tests). */
  timers?: Timers
}

/**
 * The only way changes reach HAProxy: one serialized loop, with every effect behind a port. Each
 * turn takes everything pending (N concurrent requests: one plan, one validation, one reload),
 * refuses name conflicts (409), plans the batch once (src/apply/plan.ts) and carries the plan
 * out: Runtime API commands, or a validation that keeps the changes HAProxy accepts (bisecting
 * to find the ones it refuses) and a confirmed reload (rolled back when it fails); a runtime plan
 * that fails falls back to that reload. It then saves the state, and only then answers: a 200 is
 * live and saved. A failure of the machinery (validator or master dead or timed out) is a 503
 * that blames no change. The state is saved before a change is made live and taken back out of
 * the log when it is not: a state that cannot be saved is not applied (or rolled back), 503.
 */
export class ApplyCore {
  readonly live: LiveState
  private readonly queue = new BatchQueue(
    (batch) => this.applyBatch(batch),
    (err) => this.options.log.error({ err }, 'applying changes failed'),
  )
  private reloadCount = 0
  private runtimeCount = 0
  private planCount = 0
  /** What HAProxy serves: the one record (src/apply/served.ts). */
  private readonly served: ServedHaproxy
  private readonly catchUp: CatchUpTimer
  /** The live text holds services made live at run time that `haproxy -c` has not checked. */
  private unvalidated = false
  /**
   * Changes planned from the changed services alone (src/apply/service-delta.ts) leave the files
   * behind the worker: they are written once changes pause, off the request path.
   */
  private readonly fileSync: CatchUpTimer
  private readonly renderCache: RenderCache
  private readonly checker: CandidateCheck
  private readonly indexes: StateIndexes
  /** Saved services HAProxy could not serve at start, retried until it does. */
  private readonly unserved: UnservedRetry

  constructor(private readonly options: ApplyCoreOptions) {
    const { port, log, metrics, settings } = options
    this.live = options.live ?? new LiveState()
    const timers = options.timers ?? realTimers
    const render = (state: ServiceState) => this.render(state)
    this.served = new ServedHaproxy({ live: this.live, port, render, log, timers })
    this.renderCache = new RenderCache(settings)
    this.checker = new CandidateCheck({ settings, port, metrics, log, live: this.live, render })
    this.indexes = new StateIndexes(settings)
    this.catchUp = new CatchUpTimer(() => {
      if (this.queue.closed || !this.served.worker) return
      log.debug("catch-up reload: the file's backends into the worker, removed ones out")
      this.queue.enqueue(undefined).catch((err) => log.warn({ err }, 'catch-up reload failed'))
    }, timers)
    this.fileSync = new CatchUpTimer(() => {
      if (this.queue.closed) return
      this.queue.enqueue(undefined, 'sync').catch((err) => log.warn({ err }, 'writing the files of the live configuration failed'))
    }, timers)
    this.fileSync.delayMs = 1000
    this.fileSync.maxDelayMs = 5000
    this.unserved = new UnservedRetry(this.live, (change) => this.queue.enqueue(change), log, timers)
  }

  /** Quiet time after runtime changes before the catch-up reload (src/apply/catch-up.ts). */
  get catchUpDelayMs(): number {
    return this.catchUp.delayMs
  }

  set catchUpDelayMs(ms: number) {
    this.catchUp.delayMs = ms
  }

  /** Confirmed reloads since start. */
  get reloads(): number {
    return this.reloadCount
  }

  /** Backends that live in a spare backend of the running worker until the catch-up reload: name → spare. */
  get spareAliases(): ReadonlyMap<string, string> {
    return this.served.worker?.view.aliases ?? new Map()
  }

  /** Batches made live through the Runtime API alone (no reload) since start. */
  get runtimeChanges(): number {
    return this.runtimeCount
  }

  /** Plans made and whole configurations rendered since start (one plan per batch of changes). */
  get work(): { plans: number; renders: number } {
    return { plans: this.planCount, renders: this.renderCache.renders }
  }

  private get state(): ServiceState {
    return this.live.services
  }

  /**
   * Starts HAProxy on the `initial` services (the saved state) when HAProxy accepts them all,
   * else on none of them, then applies them through the loop, which keeps every one it accepts.
   * The start itself is the check of the saved state (no `haproxy -c` before it: at 50 000
   * services that was seconds of a cold start); one that fails falls back to none.
   */
  async start(initial: readonly Change[] = []): Promise<void> {
    const { port, log } = this.options
    const valid = await port.validate(this.state)
    if (!valid.ok) throw new Error(`the settings give a configuration HAProxy refuses: ${valid.error}`)
    const wanted = this.state.with(initial)
    let startWithAll = wanted !== this.state
    const launch = (state: ServiceState) =>
      this.served.exclusive(async () => {
        const rendered = this.render(state)
        await port.writeArtefacts(state, { prune: true })
        await this.served.writeFiles(rendered)
        const result = await port.start(rendered.version)
        if (result.ok) this.served.loaded(state, rendered, result.pid)
        return result
      })
    const empty = this.state
    let started = startWithAll ? await launch(wanted) : undefined
    if (started && !started.ok) {
      // Refused, or valid but not loadable (a port in use, say): start empty, then let the loop
      // find what HAProxy accepts.
      log.warn({ error: started.error }, 'haproxy could not start on the saved state; starting empty and applying it again')
      await port.stop(true)
      startWithAll = false
    }
    if (!startWithAll) started = await launch(empty)
    if (!started?.ok) throw new Error(`haproxy did not start: ${started?.error}`)
    log.info({ workerPid: started.pid, services: this.state.size }, 'haproxy started')
    if (!startWithAll && wanted !== this.state) {
      // Nothing saved is dropped: what HAProxy does not serve now stays in the state and is retried.
      const refused = await this.unserved.applyKeeping(initial)
      if (refused.length > 0) log.warn({ refused }, 'saved services or certificates not served by haproxy')
    }
    await this.options.store?.refreshSnapshot?.(this.unserved.withKept(this.state))
    this.indexes.update(this.state)
  }

  /** Makes the changes live; settles when they are (and are saved), or rejects with the reason. */
  apply(changes: readonly Change[]): Promise<void> {
    for (const change of changes) this.unserved.forget(changedService(change))
    return Promise.all(changes.map((change) => this.queue.enqueue(change))).then(() => undefined)
  }

  /** Settles once no batch, load or restart is pending or running. */
  async idle(): Promise<void> {
    await this.queue.idle()
    await this.served.exclusive(async () => undefined)
    await this.queue.idle()
  }

  /** Reloads HAProxy on the configuration rendered from the current state. */
  reload(): Promise<void> {
    return this.queue.enqueue(undefined)
  }

  /** Refuses new changes, finishes the running batch and stops HAProxy (`hard`: at once). */
  async close({ hard = false } = {}): Promise<void> {
    const closing = this.queue.close()
    this.catchUp.cancel()
    this.fileSync.cancel()
    this.unserved.stop()
    await closing
    this.served.close()
    if (this.served.filesBehind) await this.served.syncFiles().catch((err) => this.options.log.warn({ err }, 'writing the files of the live configuration failed'))
    await this.served.exclusive(() => this.options.port.stop(hard))
  }

  private render(state: ServiceState): Rendered {
    return this.renderCache.render(state)
  }

  private get durableDeps(): DurableDeps {
    const { port, store, log } = this.options
    return { store, log, unserved: this.unserved, state: () => this.state, makeLive: (state) => this.makeLive(state), writeArtefacts: (state) => port.writeArtefacts(state, { prune: true }) }
  }

  private async applyBatch(batch: Pending[]): Promise<void> {
    const { port, store, metrics, log } = this.options
    const started = performance.now()
    const stateBefore = this.state
    const reloadsBefore = this.reloadCount
    const requested = batch.filter((item): item is PendingChange => item.change !== undefined)
    let changes = withoutPortConflicts(this.state, withoutNameConflicts(this.state, requested, this.indexes.names.ownerIn(this.state)), this.indexes.portClaimants.of(this.state))
    const refused = (item: PendingChange, error: string) => {
      metrics.rejected.inc()
      log.warn({ service: changedService(item.change), error }, 'change refused by haproxy; previous definition kept')
      item.reject(errors.rejectedByHaproxy(changedService(item.change), error))
    }
    // Saved first, then made live (src/apply/durable.ts): a change that cannot be saved never
    // reaches HAProxy; what is then not made live is taken back out of the log.
    const durable = new DurableBatch(this.durableDeps, stateBefore)
    // The batch's target, made once: saved, planned and loaded as the same object, so the state
    // log and the indexes see it as a few changes on the state before (ServiceState.changedSince).
    const target = stateBefore.with(changes.map((item) => item.change))
    changes = await durable.saveFirst(changes, target)
    let live = changes
    try {
      if (changes.length > 0) {
        this.planCount++
        const before = this.state
        const edits = changes.map((item) => item.change)
        const after = before === stateBefore ? target : before.with(edits)
        const plan = planChange({ worker: this.served.worker, before, changes: edits, after, settings: this.options.settings, claims: this.indexes.claims.countIn(before), render: (state) => this.render(state) })
        if (plan.kind !== 'unchanged' && !(await this.carryOut(plan))) {
          // The reload: what HAProxy refuses is found by bisection, the rest is loaded.
          const accepted = await bisect(this.state, changes, (state) => this.checker.check(state), refused, plan.state)
          live = await bisect(this.state, accepted, (state) => this.makeLive(state), refused, accepted.length === changes.length ? plan.state : undefined)
        }
      }
    } catch (err) {
      // A file that could not be written (a full disk) half-way: back to what was live and saved.
      await durable.backOut()
      throw err
    }
    const reloadRequests = batch.filter((item) => !item.change && item.purpose !== 'sync')
    const forced: CheckResult = reloadRequests.length === 0 || this.reloadCount > reloadsBefore ? { ok: true } : await this.forcedReload()
    metrics.services.set(this.state.size)
    // Candidates of refused changes may have rewritten them; the live state's version stays on disk.
    await port.writeArtefacts(this.state, { prune: true })
    live = await durable.settle(changes, live)
    if (this.served.filesBehind && batch.some((item) => item.purpose === 'sync')) await this.served.syncFiles()
    for (const item of live) item.resolve()
    for (const item of batch) if (item.purpose === 'sync') item.resolve()
    for (const item of reloadRequests) {
      if (forced.ok) item.resolve()
      else item.reject(failureOf(forced.kind === 'refused' ? { ...forced, kind: 'systemic' } : forced))
    }
    log.debug({ requests: batch.length, applied: live.length, ms: Math.round(performance.now() - started) }, 'batch applied')
    // Off the request path: after a start on 50 000 services the next request waited 230 ms for this.
    this.indexes.update(this.state)
  }

  /**
   * Carries out a runtime plan: true when the worker serves its state now. False for a reload
   * plan, and when the plan cannot be carried out (the worker is not the one planned for, a
   * certificate it refuses, a command it refuses): the batch then reloads.
   */
  private async carryOut(plan: Plan): Promise<boolean> {
    if (plan.kind === 'unchanged') return true
    if (plan.kind === 'reload') return false
    // Certificates are swapped only once HAProxy accepts them.
    if (plan.check && !(await this.checker.check(plan.state)).ok) return false
    return this.served.exclusive(async () => {
      const { port } = this.options
      // A worker started again by the master (after a crash) loaded the files, not this view.
      if (this.served.worker?.pid !== plan.pid || (await port.workerPid()) !== plan.pid) return false
      const { state, rendered } = plan
      if (rendered) {
        await port.writeArtefacts(state, { prune: false })
        if (!(await swapCertificates(this.options, this.state, state))) return false
        await this.served.writeFiles(rendered)
      }
      if (!(await this.sendRuntimeCommands(plan.commands, state.size))) {
        // The live files back for the reload that follows.
        if (rendered) await this.served.writeFiles(this.render(this.state))
        return false
      }
      if (plan.backendsChanged) this.unvalidated = true
      // Without a rendering, the text is rendered when first read (and the files once changes pause).
      this.served.changedAtRuntime(state, plan.changes, rendered?.config ?? (() => this.render(state).config), rendered !== undefined)
      if (!rendered) this.fileSync.schedule(false)
      // Not sooner when spares run low: a reload in the middle of a burst is what every request of
      // it would wait for; once none is left, the next new service reloads anyway.
      if (plan.leftovers || plan.usedSpares) this.catchUp.schedule(false)
      return true
    })
  }

  /**
   * Sends runtime commands to the worker, counted and logged; false when HAProxy refused one
   * (the catch-up reload is then scheduled: it puts the worker on the files again, whatever part
   * of the commands it took, should the reload that follows not happen).
   */
  private async sendRuntimeCommands(commands: readonly RuntimeCommand[], services: number): Promise<boolean> {
    const { port, metrics, log } = this.options
    try {
      await port.runtimeCommands(commands)
    } catch (err) {
      countRuntimeChange(metrics, 'map', false)
      log.warn({ error: messageOf(err) }, 'runtime change failed; reloading instead')
      if (!this.queue.closed) this.catchUp.schedule(false)
      return false
    }
    if (commands.length === 0) return true
    this.runtimeCount++
    countRuntimeChange(metrics, 'map')
    log.info({ commands: commands.length, services }, 'routes changed through the runtime API, without reload')
    return true
  }

  /** A reload of the live state; after runtime changes (the catch-up) it is validated first. */
  private async forcedReload(): Promise<CheckResult> {
    if (this.unvalidated) {
      const checked = await this.checker.check(this.state, { force: true })
      if (!checked.ok) {
        this.options.log.error({ error: checked.error }, 'haproxy refuses the file of the services made live at run time; the worker keeps serving them')
        return checked
      }
    }
    return this.makeLive(this.state)
  }

  /** Reloads HAProxy on `state` (src/apply/load.ts), counted. */
  private async makeLive(state: ServiceState): Promise<CheckResult> {
    const { port, metrics, log } = this.options
    const result = await reloadOnto({ port, served: this.served, metrics, log, render: (s) => this.render(s) }, state)
    if (result.ok) {
      this.unvalidated = false
      this.catchUp.cancel()
      this.reloadCount++
    }
    return result
  }
}
