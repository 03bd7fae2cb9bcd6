import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { DfpError, errors } from '../errors.js'
import { writeAtomic } from '../files.js'
import { countRuntimeChange, type Metrics } from '../metrics/index.js'
import { certDir } from '../config-paths.js'
import { configVersion, crtListPath, generatedNames, type Rendered, renderAll, renderCrtList, statsSocketPath } from '../render/index.js'
import { routeMapFiles, type RouteMaps } from '../render/maps.js'
import type { Settings } from '../settings.js'
import { type Change, changedService, ServiceState } from '../state/registry.js'
import type { StateStore } from '../state/store.js'
import { HaproxyMaster } from './master.js'
import { sendCommand, showInfo } from './runtime.js'
import { planRuntimeDelta, sendCommands, type WorkerView, workerView } from './runtime-delta.js'
import { validateConfig } from './validate.js'

interface Pending {
  /** A change to make live, or none for a plain reload request. */
  change?: Change
  resolve: () => void
  reject: (err: Error) => void
}

type CheckResult = { ok: true } | { ok: false; error: string; systemic: boolean }

/**
 * The only way changes reach HAProxy: one serialized loop. Each turn takes everything pending,
 * keeps the changes whose configuration HAProxy accepts (bisecting to find the ones it refuses),
 * renders once, skips output identical to the live file, and makes the rest live with a
 * confirmed reload. Each request is settled when its change is live or refused.
 */
export class ConfigApplier {
  private state = ServiceState.empty()
  private live = ''
  private queue: Pending[] = []
  private running?: Promise<void>
  private closed = false
  private reloadCount = 0
  private runtimeCount = 0
  /** What the running worker loaded, and its pid: the base of runtime deltas. */
  private worker?: { view: WorkerView; pid: number }
  private catchUp?: NodeJS.Timeout
  /**
   * How long after a runtime change that left removed backends in the worker it is reloaded
   * on the file, to free them (docs/architecture.md "Runtime changes"). Other reloads in
   * between do it earlier.
   */
  catchUpDelayMs = 5000
  /** Content last written to each artefact path (certificates, crt-list). */
  private readonly artefacts = new Map<string, string>()
  readonly configPath: string
  readonly master: HaproxyMaster

  constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    /** Where the state is saved after every change that became live. */
    private readonly store?: StateStore,
  ) {
    this.configPath = join(settings.CONFIG_DIR, 'haproxy.cfg')
    this.master = new HaproxyMaster({
      bin: settings.HAPROXY_BIN,
      configPath: this.configPath,
      statsSocket: statsSocketPath(settings.CONFIG_DIR),
      runDir: settings.CONFIG_DIR,
      reloadTimeoutMs: settings.RELOAD_TIMEOUT * 1000,
      terminateOnReload: settings.TERMINATE_ON_RELOAD,
      log: log.child({ component: 'haproxy' }),
    })
  }

  /** The services of the live configuration. */
  get services(): ServiceState {
    return this.state
  }

  /** Confirmed reloads since start. */
  get reloads(): number {
    return this.reloadCount
  }

  /** Batches made live through the Runtime API alone (no reload) since start. */
  get runtimeChanges(): number {
    return this.runtimeCount
  }

  /** The text of the live configuration. */
  get liveConfig(): string {
    return this.live
  }

  /**
   * Starts HAProxy on the `initial` services (the saved state) when HAProxy accepts them all,
   * else on none of them, then applies them through the loop, which keeps every one it accepts.
   */
  async start(initial: readonly Change[] = []): Promise<void> {
    await mkdir(this.settings.CONFIG_DIR, { recursive: true })
    const emptyRendered = renderAll(this.state, this.settings)
    const empty = emptyRendered.config
    const valid = await validateConfig(this.settings.HAPROXY_BIN, this.settings.CONFIG_DIR, empty, routeMapFiles(this.settings.CONFIG_DIR, emptyRendered.maps))
    if (!valid.ok) throw new Error(`the settings give a configuration HAProxy refuses: ${valid.error}`)
    const wanted = this.state.with(initial)
    const wantedRendered = renderAll(wanted, this.settings)
    const text = wantedRendered.config
    let startWithAll = wanted !== this.state && (await this.validate(wanted)).ok
    const launch = async (state: ServiceState, rendered: Rendered) => {
      await this.writeArtefacts(state, { prune: true })
      await this.writeMaps(rendered.maps)
      await writeAtomic(this.configPath, rendered.config)
      const result = await this.master.start(configVersion(rendered.config) ?? '')
      if (result.ok) this.worker = { view: workerView(rendered), pid: result.pid }
      return result
    }
    let started = startWithAll ? await launch(wanted, wantedRendered) : { ok: false as const, error: '' }
    if (!started.ok && startWithAll) {
      // Valid but not loadable (a port in use, say): start empty, then let the loop sort them out.
      this.log.warn({ error: started.error }, 'haproxy could not start on the saved state; starting empty and applying it again')
      await this.master.stop(true)
      this.master.resume()
      startWithAll = false
    }
    if (!startWithAll) started = await launch(this.state, emptyRendered)
    if (!started.ok) throw new Error(`haproxy did not start: ${started.error}`)
    const first = startWithAll ? text : empty
    this.live = first
    if (startWithAll) this.state = wanted
    this.log.info({ masterPid: this.master.pid, workerPid: started.pid, services: this.state.size }, 'haproxy started')
    if (!startWithAll && wanted !== this.state) {
      const results = await Promise.allSettled(initial.map((change) => this.enqueue(change)))
      const refused = results.flatMap((r, i) => (r.status === 'rejected' ? [changedService(initial[i] as Change)] : []))
      if (refused.length > 0) this.log.warn({ refused }, 'saved services or certificates refused by haproxy')
    }
  }

  /** Makes the changes live; settles when they are, or rejects with the reason HAProxy gave. */
  apply(changes: readonly Change[]): Promise<void> {
    return Promise.all(changes.map((change) => this.enqueue(change))).then(() => undefined)
  }

  /** Reloads HAProxy on the configuration rendered from the current state. */
  reload(): Promise<void> {
    return this.enqueue(undefined)
  }

  /** Refuses new changes, finishes the running batch and stops HAProxy (`hard`: at once). */
  async close({ hard = false } = {}): Promise<void> {
    this.closed = true
    clearTimeout(this.catchUp)
    await this.running
    await this.master.stop(hard)
  }

  private enqueue(change: Change | undefined): Promise<void> {
    if (this.closed) return Promise.reject(errors.shuttingDown())
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...(change ? { change } : {}), resolve, reject })
      this.kick()
    })
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
    // Let requests that arrive in the same tick join the first batch.
    await new Promise((resolve) => setImmediate(resolve))
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0)
      try {
        await this.applyBatch(batch)
      } catch (err) {
        this.log.error({ err }, 'applying changes failed')
        const failure = err instanceof DfpError ? err : errors.reloadFailed(String(err))
        for (const item of batch) item.reject(failure)
      }
    }
  }

  private async applyBatch(batch: Pending[]): Promise<void> {
    const started = performance.now()
    const stateBefore = this.state
    const reloadsBefore = this.reloadCount
    const changes = this.withoutNameConflicts(batch.filter((item) => item.change))
    const valid = await this.bisect(this.state, changes, (state) => this.validate(state))
    const live = await this.bisect(this.state, valid, (state) => this.makeLive(state, false))
    const reloadRequests = batch.filter((item) => !item.change)
    const forced = reloadRequests.length === 0 || this.reloadCount > reloadsBefore ? { ok: true as const } : await this.makeLive(this.state, true)
    this.metrics.services.set(this.state.size)
    // Candidates of refused changes may have rewritten them; the live state's version stays on disk.
    await this.writeArtefacts(this.state, { prune: true })
    if (this.store && this.state !== stateBefore) {
      // Saved before anyone is answered, so an answered change survives a restart. The change is
      // live either way; a state that cannot be saved is only lost on restart.
      await this.store.save(this.state).catch((err) => this.log.error({ err }, 'could not save the state'))
    }
    for (const item of live) item.resolve()
    for (const item of reloadRequests) {
      if (forced.ok) item.resolve()
      else item.reject(errors.reloadFailed(forced.error))
    }
    this.log.debug({ requests: batch.length, applied: live.length, ms: Math.round(performance.now() - started) }, 'batch applied')
  }

  /**
   * Refuses (409, naming the owner) each put whose generated names another service already has
   * in the state the batch builds up; the others go on.
   */
  private withoutNameConflicts(items: Pending[]): Pending[] {
    const owners = new Map<string, string>()
    for (const service of this.state.values()) for (const name of generatedNames(service)) owners.set(name, service.serviceName)
    const kept: Pending[] = []
    for (const item of items) {
      const change = item.change as Change
      if (change.kind === 'remove') {
        for (const [name, owner] of owners) if (owner === change.serviceName) owners.delete(name)
      }
      if (change.kind !== 'put') {
        kept.push(item)
        continue
      }
      const service = change.service
      const mine = generatedNames(service)
      const taken = mine.find((name) => (owners.get(name) ?? service.serviceName) !== service.serviceName)
      if (taken) {
        item.reject(errors.nameTaken(service.serviceName, taken, owners.get(taken) as string))
        continue
      }
      for (const [name, owner] of owners) if (owner === service.serviceName) owners.delete(name)
      for (const name of mine) owners.set(name, service.serviceName)
      kept.push(item)
    }
    return kept
  }

  /**
   * Finds the largest prefix-respecting subset of `items` that passes `check` on top of `base`:
   * all of them when they pass together, else each half in turn. Items that fail alone are
   * rejected with HAProxy's error; a systemic failure rejects every item it reached.
   */
  private async bisect(base: ServiceState, items: Pending[], check: (state: ServiceState) => Promise<CheckResult>): Promise<Pending[]> {
    if (items.length === 0) return []
    const result = await check(base.with(items.map((item) => item.change as Change)))
    if (result.ok) return items
    if (result.systemic) {
      for (const item of items) item.reject(errors.reloadFailed(result.error, changedService(item.change as Change)))
      return []
    }
    if (items.length === 1) {
      const [item] = items as [Pending]
      this.metrics.rejected.inc()
      this.log.warn({ service: changedService(item.change as Change), error: result.error }, 'change refused by haproxy; previous definition kept')
      item.reject(errors.rejectedByHaproxy(changedService(item.change as Change), result.error))
      return []
    }
    const middle = Math.ceil(items.length / 2)
    const first = await this.bisect(base, items.slice(0, middle), check)
    const second = await this.bisect(base.with(first.map((item) => item.change as Change)), items.slice(middle), check)
    return [...first, ...second]
  }

  private async validate(state: ServiceState): Promise<CheckResult> {
    const rendered = renderAll(state, this.settings)
    // Map entries are plain words by construction (src/render/maps.ts), so new entries alone
    // cannot make a configuration HAProxy refuses.
    if (rendered.config === this.live) return { ok: true }
    await this.writeArtefacts(state)
    const result = await validateConfig(this.settings.HAPROXY_BIN, this.settings.CONFIG_DIR, rendered.config, routeMapFiles(this.settings.CONFIG_DIR, rendered.maps))
    // DISPLAY_CONFIG_ON_ERROR: the refused candidate goes to the log, whole, for debugging.
    if (!result.ok && this.settings.DISPLAY_CONFIG_ON_ERROR) this.log.warn({ error: result.error, config: rendered.config }, 'configuration refused by haproxy')
    if (!result.ok) this.metrics.validationFailures.inc()
    return result.ok ? result : { ...result, systemic: false }
  }

  /**
   * Writes what the configuration refers to besides itself: the copies of the certificates and
   * the crt-list. The running HAProxy holds its certificates in memory, so only a load reads
   * them; they are written again for the live state at the end of every batch. `prune`
   * (only for a state that is live) also removes the copies that state no longer has: a
   * candidate's removals must not reach the disk before it is served.
   */
  private async writeArtefacts(state: ServiceState, { prune = false } = {}): Promise<void> {
    const write = async (path: string, content: string, mode: number) => {
      if (this.artefacts.get(path) === content) return
      await writeAtomic(path, content, mode)
      this.artefacts.set(path, content)
    }
    const dir = certDir(this.settings.CONFIG_DIR)
    const files = state.certificateFiles(dir)
    const wanted = new Set(files.map((f) => f.loadPath))
    for (const source of ['folder', 'secret', 'uploaded']) {
      const sub = join(dir, source)
      await mkdir(sub, { recursive: true, mode: 0o700 })
      if (!prune) continue
      for (const name of await readdir(sub)) {
        const path = join(sub, name)
        if (!wanted.has(path) && !name.includes('.tmp-')) {
          await rm(path, { force: true })
          this.artefacts.delete(path)
        }
      }
    }
    for (const file of files) await write(file.loadPath, file.pem, 0o600)
    await write(crtListPath(this.settings), renderCrtList(state, this.settings), 0o644)
  }

  /**
   * Certificates whose file stays the same but whose content changes are swapped in the running
   * HAProxy through its Runtime API (`set ssl cert` + `commit ssl cert`, management.txt §9.3):
   * no reload, no connection dropped. False when HAProxy refused one (a reload is then needed).
   */
  private async swapCertificates(from: ServiceState, to: ServiceState): Promise<boolean> {
    const dir = certDir(this.settings.CONFIG_DIR)
    const before = new Map(from.certificateFiles(dir).map((f) => [f.loadPath, f.pem]))
    const changed = to.certificateFiles(dir).filter((f) => before.has(f.loadPath) && before.get(f.loadPath) !== f.pem)
    for (const file of changed) {
      try {
        const set = await sendCommand(this.master.statsSocket, `set ssl cert ${file.loadPath} <<\n${file.pem.trimEnd()}\n`)
        if (!/Transaction (created|updated)/.test(set)) throw new Error(set.trim())
        const commit = await sendCommand(this.master.statsSocket, `commit ssl cert ${file.loadPath}`, 10_000)
        if (!/Success!/.test(commit)) throw new Error(commit.trim())
        countRuntimeChange(this.metrics, 'ssl-cert')
        this.log.info({ certificate: file.loadPath }, 'certificate swapped without reload')
      } catch (err) {
        countRuntimeChange(this.metrics, 'ssl-cert', false)
        await sendCommand(this.master.statsSocket, `abort ssl cert ${file.loadPath}`).catch(() => undefined)
        this.log.warn({ certificate: file.loadPath, error: (err as Error).message }, 'runtime certificate swap failed; reloading instead')
        return false
      }
    }
    return true
  }

  /**
   * Makes `state` live without a reload when the running worker already has every backend it
   * needs and differs only in its route maps: the map files and the configuration are written
   * (they stay the source of truth), then the worker's maps are changed through the Runtime API.
   * False when a reload is needed, or when the Runtime API failed (the reload then puts the
   * worker back on the files).
   */
  private async applyAtRuntime(state: ServiceState, rendered: Rendered): Promise<boolean> {
    const worker = this.worker
    if (!worker) return false
    const delta = planRuntimeDelta(worker.view, rendered, this.settings.CONFIG_DIR)
    if (!delta) return false
    // A worker started again by the master (after a crash) loaded the files, not this view.
    if (delta.commands.length > 0 || rendered.config !== this.live) {
      const pid = await showInfo(this.master.statsSocket, 1000).then((info) => info.pid, () => undefined)
      if (pid !== worker.pid) return false
    }
    if (!(await this.swapCertificates(this.state, state))) return false
    await this.writeMaps(rendered.maps)
    if (rendered.config !== this.live) await writeAtomic(this.configPath, rendered.config)
    try {
      await sendCommands(this.master.statsSocket, delta.commands)
    } catch (err) {
      countRuntimeChange(this.metrics, 'map', false)
      this.log.warn({ error: (err as Error).message }, 'runtime map update failed; reloading instead')
      return false
    }
    this.worker = { view: delta.worker, pid: worker.pid }
    this.state = state
    this.live = rendered.config
    if (delta.commands.length > 0) {
      this.runtimeCount++
      countRuntimeChange(this.metrics, 'map')
      this.log.info({ commands: delta.commands.length, services: state.size }, 'routes changed through the runtime API, without reload')
    }
    if (delta.leftovers) this.scheduleCatchUp()
    return true
  }

  /**
   * After a runtime removal the worker keeps the removed backends; one reload, at most
   * `catchUpDelayMs` later, loads the file without them (none if another reload came first).
   */
  private scheduleCatchUp(): void {
    if (this.catchUp || this.closed) return
    this.catchUp = setTimeout(() => {
      this.catchUp = undefined
      if (this.closed || !this.worker) return
      this.log.debug('reloading to free the backends of removed services')
      this.enqueue(undefined).catch((err) => this.log.warn({ err }, 'catch-up reload failed'))
    }, this.catchUpDelayMs)
    this.catchUp.unref()
  }

  /** The route maps on disk (the last ones written). */
  private liveMaps?: RouteMaps

  private async writeMaps(maps: RouteMaps): Promise<void> {
    await mkdir(join(this.settings.CONFIG_DIR, 'maps'), { recursive: true })
    for (const file of routeMapFiles(this.settings.CONFIG_DIR, maps)) {
      if (this.artefacts.get(file.path) === file.content) continue
      await writeAtomic(file.path, file.content)
      this.artefacts.set(file.path, file.content)
    }
    this.liveMaps = maps
  }

  /**
   * Replaces the live file with the state's configuration and reloads. If HAProxy cannot load
   * it (a port in use, say), the previous file is put back and loaded again.
   */
  private async makeLive(state: ServiceState, force: boolean): Promise<CheckResult> {
    const rendered = renderAll(state, this.settings)
    const text = rendered.config
    await this.writeArtefacts(state)
    if (!force && (await this.applyAtRuntime(state, rendered))) return { ok: true }
    const previous = this.live
    const previousMaps = this.liveMaps
    const timer = this.metrics.reloadDuration.startTimer()
    await this.writeMaps(rendered.maps)
    await writeAtomic(this.configPath, text)
    const loaded = await this.master.reload(configVersion(text) ?? '')
    const ms = Math.round(timer() * 1000)
    this.metrics.recordReload(loaded.ok ? { ok: true, ms } : { ok: false, ms, error: loaded.error })
    if (loaded.ok) {
      this.worker = { view: workerView(rendered), pid: loaded.pid }
      clearTimeout(this.catchUp)
      this.catchUp = undefined
      this.state = state
      this.live = text
      this.reloadCount++
      this.metrics.reloads.inc()
      this.log.info({ outcome: 'ok', ms, workerPid: loaded.pid, services: state.size, reloads: this.reloadCount }, 'haproxy reloaded')
      return { ok: true }
    }
    this.metrics.reloadFailures.inc()
    this.log.error({ outcome: 'failed', ms, error: loaded.error }, 'haproxy could not load the new configuration; restoring the previous one')
    await this.writeArtefacts(this.state)
    if (previousMaps) await this.writeMaps(previousMaps)
    await writeAtomic(this.configPath, previous)
    const restored = await this.master.reload(configVersion(previous) ?? '')
    if (!restored.ok) this.log.error({ error: restored.error }, 'haproxy could not reload the previous configuration either')
    // The worker now runs the previous files (or, if that failed too, nobody knows what).
    this.worker = restored.ok ? { view: workerView(renderAll(this.state, this.settings)), pid: restored.pid } : undefined
    return { ok: false, error: loaded.error, systemic: !restored.ok || text === previous }
  }
}
