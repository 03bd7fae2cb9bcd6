import type { Logger } from 'pino'
import { errors, messageOf } from '../errors.js'
import { redactConfig } from '../haproxy/redact.js'
import { planRuntimeDelta, type RuntimeDelta } from '../haproxy/runtime-delta.js'
import { countRuntimeChange, type Metrics } from '../metrics/index.js'
import type { Rendered, RenderSettings } from '../render/index.js'
import { type Change, changedService, ServiceState } from '../state/registry.js'
import { LiveState } from '../state/live.js'
import { bisect, type CheckResult, failureOf, type Pending, type PendingChange, withoutNameConflicts, withoutPortConflicts } from './batch.js'
import { newPortsInUse } from './port-check.js'
import type { HaproxyPort, StatePort } from './port.js'
import { UnservedRetry } from './unserved.js'
import { CatchUpTimer } from './catch-up.js'
import { swapCertificates } from './cert-swap.js'
import { BatchQueue } from './queue.js'
import { RenderCache } from './render-cache.js'
import { ServedHaproxy } from './served.js'
import { realTimers, type Timers } from './timers.js'
import { planServiceDelta, type ServiceDelta } from './service-delta.js'
import { NameIndex, PortClaimants, RouteClaims } from './state-index.js'

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
 * turn takes everything pending (N concurrent requests: one validation, one reload), refuses name
 * conflicts (409), keeps the changes HAProxy accepts (bisecting to find the ones it refuses),
 * makes them live through the Runtime API when it can and with a confirmed reload otherwise
 * (rolled back when the reload fails), saves the state, and only then answers: a 200 is live
 * and saved. A failure of the machinery (validator or master dead or timed out) is a 503 that
 * blames no change; a state that cannot be saved is rolled back and answered 503.
 */
export class ApplyCore {
  readonly live: LiveState
  private readonly queue = new BatchQueue(
    (batch) => this.applyBatch(batch),
    (err) => this.options.log.error({ err }, 'applying changes failed'),
  )
  private reloadCount = 0
  private runtimeCount = 0
  /** What HAProxy serves: the one record (src/apply/served.ts). */
  private readonly served: ServedHaproxy
  private readonly catchUp: CatchUpTimer
  /** The live text holds services made live at run time that `haproxy -c` has not checked. */
  private unvalidated = false
  /**
   * Changes made live from the changed services alone (src/apply/service-delta.ts) leave the files
   * behind the worker: they are written once changes pause, off the request path.
   */
  private readonly fileSync: CatchUpTimer
  private readonly renderCache: RenderCache
  private readonly names = new NameIndex()
  private readonly portClaimants = new PortClaimants()
  private readonly claims: RouteClaims

  /** Saved services HAProxy could not serve at start, retried until it does. */
  private readonly unserved: UnservedRetry

  constructor(private readonly options: ApplyCoreOptions) {
    this.live = options.live ?? new LiveState()
    const timers = options.timers ?? realTimers
    this.served = new ServedHaproxy({ live: this.live, port: options.port, render: (state) => this.render(state), log: options.log, timers })
    this.catchUp = new CatchUpTimer(() => {
      if (this.queue.closed || !this.served.worker) return
      this.options.log.debug("catch-up reload: the file's backends into the worker, removed ones out")
      this.queue.enqueue(undefined).catch((err) => this.options.log.warn({ err }, 'catch-up reload failed'))
    }, timers)
    this.fileSync = new CatchUpTimer(() => {
      if (this.queue.closed) return
      this.queue.enqueue(undefined, 'sync').catch((err) => this.options.log.warn({ err }, 'writing the files of the live configuration failed'))
    }, timers)
    this.unserved = new UnservedRetry(this.live, (change) => this.queue.enqueue(change), options.log)
    this.renderCache = new RenderCache(options.settings)
    this.claims = new RouteClaims(options.settings)
    this.fileSync.delayMs = 1000
    this.fileSync.maxDelayMs = 5000
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

  private get state(): ServiceState {
    return this.live.services
  }

  /**
   * Starts HAProxy on the `initial` services (the saved state) when HAProxy accepts them all,
   * else on none of them, then applies them through the loop, which keeps every one it accepts.
   */
  async start(initial: readonly Change[] = []): Promise<void> {
    const { port, log } = this.options
    const emptyRendered = this.render(this.state)
    const valid = await port.validate(this.state)
    if (!valid.ok) throw new Error(`the settings give a configuration HAProxy refuses: ${valid.error}`)
    const wanted = this.state.with(initial)
    let startWithAll = wanted !== this.state && (await port.validate(wanted)).ok
    const launch = (state: ServiceState, rendered: Rendered) =>
      this.served.exclusive(async () => {
        await port.writeArtefacts(state, { prune: true })
        await this.served.writeFiles(rendered)
        const result = await port.start(rendered.version)
        if (result.ok) this.served.loaded(state, rendered, result.pid)
        return result
      })
    const wantedRendered = this.render(wanted)
    let started = startWithAll ? await launch(wanted, wantedRendered) : undefined
    if (started && !started.ok) {
      // Valid but not loadable (a port in use, say): start empty, then let the loop sort them out.
      log.warn({ error: started.error }, 'haproxy could not start on the saved state; starting empty and applying it again')
      await port.stop(true)
      startWithAll = false
    }
    if (!startWithAll) started = await launch(this.state, emptyRendered)
    if (!started?.ok) throw new Error(`haproxy did not start: ${started?.error}`)
    log.info({ workerPid: started.pid, services: this.state.size }, 'haproxy started')
    if (!startWithAll && wanted !== this.state) {
      // Nothing saved is dropped: what HAProxy does not serve now stays in the state and is retried.
      const refused = await this.unserved.applyKeeping(initial)
      if (refused.length > 0) log.warn({ refused }, 'saved services or certificates not served by haproxy')
    }
  }

  /** Makes the changes live; settles when they are (and are saved), or rejects with the reason. */
  apply(changes: readonly Change[]): Promise<void> {
    for (const change of changes) this.unserved.forget(changedService(change))
    return Promise.all(changes.map((change) => this.queue.enqueue(change))).then(() => undefined)
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

  private livePortsCache?: { state: ServiceState; ports: Set<number> }

  /** The ports the live configuration binds (HAProxy holds them, so they are not probed). */
  private livePorts(): Set<number> {
    if (this.livePortsCache?.state !== this.state) {
      this.livePortsCache = { state: this.state, ports: new Set(this.render(this.state).ports.keys()) }
    }
    return this.livePortsCache.ports
  }

  /**
   * Sends runtime commands to the worker, counted and logged; false when HAProxy refused one
   * (the catch-up reload is then scheduled: it puts the worker on the files again, whatever part
   * of the commands it took).
   */
  private async sendRuntimeCommands(commands: RuntimeDelta['commands'], services: number): Promise<boolean> {
    const { port, metrics, log } = this.options
    try {
      await port.runtimeCommands(commands)
    } catch (err) {
      countRuntimeChange(metrics, 'map', false)
      log.warn({ error: messageOf(err) }, 'runtime change failed; reloading instead')
      this.scheduleCatchUp()
      return false
    }
    if (commands.length === 0) return true
    this.runtimeCount++
    countRuntimeChange(metrics, 'map')
    log.info({ commands: commands.length, services }, 'routes changed through the runtime API, without reload')
    return true
  }

  private render(state: ServiceState): Rendered {
    return this.renderCache.render(state)
  }

  private async applyBatch(batch: Pending[]): Promise<void> {
    const { port, store, metrics, log } = this.options
    const started = performance.now()
    const stateBefore = this.state
    const reloadsBefore = this.reloadCount
    const requested = batch.filter((item): item is PendingChange => item.change !== undefined)
    const changes = withoutPortConflicts(this.state, withoutNameConflicts(this.state, requested, this.names.ownerIn(this.state)), this.portClaimants.of(this.state))
    const refused = (item: PendingChange, error: string) => {
      metrics.rejected.inc()
      log.warn({ service: changedService(item.change), error }, 'change refused by haproxy; previous definition kept')
      item.reject(errors.rejectedByHaproxy(changedService(item.change), error))
    }
    let live = (await this.applyServicesAtRuntime(changes))
      ? changes
      : await bisect(this.state, await bisect(this.state, changes, (state) => this.validate(state), refused), (state) => this.makeLive(state, false), refused)
    const reloadRequests = batch.filter((item) => !item.change && item.purpose !== 'sync')
    const forced: CheckResult = reloadRequests.length === 0 || this.reloadCount > reloadsBefore ? { ok: true } : await this.forcedReload()
    metrics.services.set(this.state.size)
    // Candidates of refused changes may have rewritten them; the live state's version stays on disk.
    await port.writeArtefacts(this.state, { prune: true })
    if (store && (this.state !== stateBefore || this.unserved.takeForgotten())) {
      // Saved before anyone is answered, so an answered change survives a restart; a change that
      // cannot be saved is taken back, so the proxy and the file agree.
      const saved = await store.save(this.unserved.withKept(this.state)).then(
        () => undefined,
        (err: Error) => err,
      )
      if (saved) {
        log.error({ err: saved }, 'could not save the state; rolling the changes back')
        const back = await this.makeLive(stateBefore, false)
        if (!back.ok) log.error({ error: back.error }, 'the changes that could not be saved could not be rolled back either')
        await port.writeArtefacts(this.state, { prune: true })
        for (const item of live) item.reject(errors.stateNotSaved(saved.message, changedService(item.change)))
        live = []
      }
    }
    if (this.served.filesBehind && batch.some((item) => item.purpose === 'sync')) await this.served.syncFiles()
    for (const item of live) item.resolve()
    for (const item of batch) if (item.purpose === 'sync') item.resolve()
    for (const item of reloadRequests) {
      if (forced.ok) item.resolve()
      else item.reject(failureOf(forced.kind === 'refused' ? { ...forced, kind: 'systemic' } : forced))
    }
    log.debug({ requests: batch.length, applied: live.length, ms: Math.round(performance.now() - started) }, 'batch applied')
  }

  /**
   * Service changes the running worker can take through the Runtime API alone — map entries,
   * server addresses, new plain services into spare backends (src/render/spares.ts) — are made
   * live without `haproxy -c`: what changes in the file is a plain backend (the spares' text plus
   * a server line of checked parameters) or nothing, and the catch-up reload validates first.
   */
  private applyServicesAtRuntime(changes: PendingChange[]): Promise<boolean> {
    return this.served.exclusive(() => this.applyServicesAtRuntimeAlone(changes))
  }

  private async applyServicesAtRuntimeAlone(changes: PendingChange[]): Promise<boolean> {
    const worker = this.served.worker
    if (changes.length === 0 || !worker) return false
    if (!changes.every((item) => item.change.kind === 'put' || item.change.kind === 'remove')) return false
    const state = this.state.with(changes.map((item) => item.change))
    if (state === this.state) return true
    const names = new Set(changes.map((item) => changedService(item.change)))
    const delta = planServiceDelta(worker.view, this.state, state, names, this.options.settings, this.claims.countIn(this.state))
    if (delta) return this.applyDelta(state, delta, worker.pid)
    const before = this.live.config
    const rendered = this.render(state)
    if (!(await this.applyAtRuntime(state, rendered))) return false
    if (rendered.config !== before) this.unvalidated = true
    return true
  }

  /**
   * Makes `state` live by a delta planned from the changed services alone: the Runtime API
   * commands, and nothing rendered or written on the way (the files follow once changes pause).
   * False when the worker is not the one planned for or it refused a command: the caller then
   * renders everything, and a reload puts the worker on the files again.
   */
  private async applyDelta(state: ServiceState, delta: ServiceDelta, pid: number): Promise<boolean> {
    const { port } = this.options
    if (delta.commands.length > 0) {
      // A worker started again by the master (after a crash) loaded the files, not this view.
      if ((await port.workerPid()) !== pid) return false
      if (!(await this.sendRuntimeCommands(delta.commands, state.size))) return false
    }
    if (delta.backendsChanged) this.unvalidated = true
    // A restart after a crash, before the files are written, renders and loads this record.
    this.served.changedAtRuntime(state, delta.commit(), () => this.render(state).config, false)
    this.fileSync.schedule(false)
    if (delta.leftovers || delta.usedSpares) this.scheduleCatchUp()
    return true
  }

  /** A reload of the live state; after runtime changes (the catch-up) it is validated first. */
  private async forcedReload(): Promise<CheckResult> {
    if (this.unvalidated) {
      const checked = await this.validate(this.state, { force: true })
      if (!checked.ok) {
        this.options.log.error({ error: checked.error }, 'haproxy refuses the file of the services made live at run time; the worker keeps serving them')
        return checked
      }
    }
    return this.makeLive(this.state, true)
  }

  private async validate(state: ServiceState, { force = false } = {}): Promise<CheckResult> {
    const { port, settings, metrics, log } = this.options
    const rendered = this.render(state)
    // Map entries are plain words by construction (src/render/maps.ts), so new entries alone
    // cannot make a configuration HAProxy refuses.
    if (rendered.config === this.live.config && !force) return { ok: true }
    const taken = await newPortsInUse(port, rendered, this.livePorts())
    if (taken) return { ok: false, kind: 'refused', error: taken }
    const verdict = await port.validate(state)
    if (verdict.ok) return verdict
    if (verdict.kind === 'unavailable') {
      log.error({ error: verdict.error }, 'the configuration could not be checked')
      return verdict
    }
    // DISPLAY_CONFIG_ON_ERROR: the refused candidate goes to the log, whole, for debugging.
    if (settings.DISPLAY_CONFIG_ON_ERROR) log.warn({ error: verdict.error, config: redactConfig(rendered.config) }, 'configuration refused by haproxy')
    metrics.validationFailures.inc()
    return verdict
  }


  /**
   * Makes `state` live without a reload when the running worker already has every backend it
   * needs and differs only in its route maps or server addresses: the files are written (they
   * stay the source of truth), then the worker is changed through the Runtime API. False when a
   * reload is needed, or when the Runtime API failed (the reload then puts the worker back on the files).
   */
  private async applyAtRuntime(state: ServiceState, rendered: Rendered): Promise<boolean> {
    const { port, settings } = this.options
    const worker = this.served.worker
    if (!worker) return false
    const delta = planRuntimeDelta(worker.view, rendered, settings.CONFIG_DIR)
    if (!delta) return false
    // A worker started again by the master (after a crash) loaded the files, not this view.
    if ((delta.commands.length > 0 || rendered.config !== this.live.config) && (await port.workerPid()) !== worker.pid) return false
    if (!(await swapCertificates(this.options, this.state, state))) return false
    await this.served.writeFiles(rendered)
    if (!(await this.sendRuntimeCommands(delta.commands, state.size))) {
      // The live files back for the reload that follows (a change that follows may reload earlier).
      await this.served.writeFiles(this.render(this.state))
      return false
    }
    this.served.changedAtRuntime(state, delta.worker, rendered.config, true)
    if (delta.leftovers || delta.usedSpares) this.scheduleCatchUp()
    return true
  }

  private scheduleCatchUp(): void {
    if (this.queue.closed) return
    // Not sooner when spares run low: a reload in the middle of a burst is what every request of
    // it would wait for; once none is left, the next new service reloads anyway.
    this.catchUp.schedule(false)
  }

  /**
   * Makes the state's configuration live, at run time when it can, else by a reload. If HAProxy
   * cannot load it (a port in use, say, or the master died), the previous files are put back and
   * loaded again: `refused` when that worked, `systemic` when HAProxy could not be put back.
   */
  private makeLive(state: ServiceState, force: boolean): Promise<CheckResult> {
    return this.served.exclusive(() => this.makeLiveAlone(state, force))
  }

  private async makeLiveAlone(state: ServiceState, force: boolean): Promise<CheckResult> {
    const { port, metrics, log } = this.options
    const rendered = this.render(state)
    await port.writeArtefacts(state, { prune: false })
    if (!force && (await this.applyAtRuntime(state, rendered))) return { ok: true }
    const timer = metrics.reloadDuration.startTimer()
    await this.served.writeFiles(rendered)
    const loaded = await port.reload(rendered.version)
    const ms = Math.round(timer() * 1000)
    metrics.recordReload(loaded.ok ? { ok: true, ms } : { ok: false, ms, error: loaded.error })
    if (loaded.ok) {
      this.served.loaded(state, rendered, loaded.pid)
      this.unvalidated = false
      this.catchUp.cancel()
      this.reloadCount++
      metrics.reloads.inc()
      log.info({ outcome: 'ok', ms, workerPid: loaded.pid, services: state.size, reloads: this.reloadCount }, 'haproxy reloaded')
      return { ok: true }
    }
    metrics.reloadFailures.inc()
    log.error({ outcome: 'failed', ms, error: loaded.error, kind: loaded.kind }, 'haproxy could not load the new configuration; restoring the previous one')
    await port.writeArtefacts(this.state, { prune: false })
    // Rendering is deterministic: the live state renders to the files HAProxy served before.
    const restoring = this.render(this.state)
    await this.served.writeFiles(restoring)
    const restored = await port.reload(restoring.version)
    if (!restored.ok) log.error({ error: restored.error }, 'haproxy could not reload the previous configuration either')
    // The worker now runs the previous files (or, if that failed too, nobody knows what).
    if (restored.ok) this.served.loaded(this.state, restoring, restored.pid)
    else this.served.unknown()
    if (loaded.kind === 'unavailable') return { ok: false, kind: 'unavailable', error: loaded.error }
    return { ok: false, kind: !restored.ok || rendered.config === restoring.config ? 'systemic' : 'refused', error: loaded.error }
  }
}
