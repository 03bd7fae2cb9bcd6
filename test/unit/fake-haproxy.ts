import { pino } from 'pino'
import { ApplyCore } from '../../src/apply/core.js'
import type { HaproxyPort, LoadVerdict, StatePort, Verdict } from '../../src/apply/port.js'
import type { DfpError } from '../../src/errors.js'
import { commandLine, type RuntimeCommand } from '../../src/haproxy/commands.js'
import { createMetrics } from '../../src/metrics/index.js'
import type { Rendered } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import type { Change, ServiceState } from '../../src/state/registry.js'
import { FakeTimers } from './fake-timers.js'

// A scripted HAProxy, a state file and a core on a fake clock, for the apply core's unit tests
// (test/unit/apply-core.test.ts, test/unit/apply-plan.test.ts). test/e2e/ drives the real one.

export const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent' })
export const put = (q: string): Change => ({ kind: 'put', service: parseService(new URLSearchParams(q), { separator: ',' }) })
export const web = (name: string, extra = '') => put(`serviceName=${name}&servicePath=/${name}&port=80${extra}`)
/** A service with a backend line of its own: no spare fits it, so it needs validation and a reload. */
export const own = (name: string) => web(name, '&timeoutServer=9')

/**
 * A scripted HAProxy. `haproxy -c` refuses any state with a service named `bad…`; a reload fails
 * (and a start) when the files hold a service named `unbindable…` (as a port held by another
 * process does);
 * `validator` and `reloadOutcomes` script machinery failures.
 */
export class FakeHaproxy implements HaproxyPort {
  validations = 0
  reloadCalls = 0
  commands: string[] = []
  validator: 'up' | 'down' = 'up'
  /** Outcomes of the next reloads, in order, before the scripted behaviour applies. */
  reloadOutcomes: LoadVerdict[] = []
  /** What the configuration file holds (the last write). */
  file?: Rendered
  served?: string
  pid = 100

  async validate(state: ServiceState): Promise<Verdict> {
    this.validations++
    if (this.validator === 'down') return { ok: false, kind: 'unavailable', error: 'haproxy -c killed by SIGKILL' }
    const bad = [...state.values()].find((s) => s.serviceName.startsWith('bad'))
    return bad ? { ok: false, kind: 'refused', error: `[/cfg/haproxy.cfg:99] unknown keyword in backend ${bad.serviceName}` } : { ok: true }
  }
  async writeArtefacts(): Promise<void> {}
  /** Every configuration written, in order. */
  writes: Rendered[] = []
  async writeConfig(rendered: Rendered): Promise<void> {
    this.file = rendered
    this.writes.push(rendered)
  }
  async start(version: string): Promise<LoadVerdict> {
    const unbindable = [...(this.file?.backends.keys() ?? [])].find((name) => name.startsWith('unbindable'))
    if (unbindable) return { ok: false, kind: 'refused', error: `Starting frontend tcpFE_${unbindable}: cannot bind socket` }
    this.served = version
    return { ok: true, pid: this.pid }
  }
  restarts = 0
  /** What happened to the files and the master, in order. */
  events: string[] = []
  async restart(version: string): Promise<LoadVerdict> {
    this.restarts++
    this.events.push('restart')
    return this.start(version)
  }
  /** While set, a reload waits for it before answering. */
  reloadGate?: Promise<void>
  private exitListeners: Array<() => void> = []
  onExit(listener: () => void): void {
    this.exitListeners.push(listener)
  }
  /** The master dies (kill -9): the worker is gone until a restart. */
  crash(): void {
    this.served = undefined
    this.pid++
    for (const listener of this.exitListeners) listener()
  }
  async reload(version: string): Promise<LoadVerdict> {
    this.reloadCalls++
    this.events.push('reload')
    if (this.reloadGate) await this.reloadGate
    const scripted = this.reloadOutcomes.shift()
    if (scripted) return scripted
    const unbindable = [...(this.file?.backends.keys() ?? [])].find((name) => name.startsWith('unbindable'))
    if (unbindable) return { ok: false, kind: 'refused', error: `Starting frontend tcpFE_${unbindable}: cannot bind socket` }
    this.served = version
    return { ok: true, pid: ++this.pid }
  }
  async stop(): Promise<void> {}
  async workerPid(): Promise<number | undefined> {
    return this.pid
  }
  /** Runtime command batches to refuse, from now on. */
  runtimeFailures = 0
  async runtimeCommands(commands: readonly RuntimeCommand[]): Promise<void> {
    if (this.runtimeFailures > 0) {
      this.runtimeFailures--
      throw new Error('No such backend.')
    }
    this.commands.push(...commands.map(commandLine))
  }
  async swapCertificate(): Promise<void> {}
  /** Ports another process holds. */
  held = new Set<number>()
  async portsInUse(ports: readonly number[]): Promise<number[]> {
    return ports.filter((port) => this.held.has(port))
  }
}

/** A state file that records every save, and fails while `failing`. */
export class FakeStore implements StatePort {
  saved: ServiceState[] = []
  failing = false
  async save(state: ServiceState): Promise<void> {
    if (this.failing) throw new Error('ENOSPC: no space left on device')
    this.saved.push(state)
  }
  get last(): string[] {
    return [...(this.saved.at(-1)?.values() ?? [])].map((s) => s.serviceName).sort()
  }
}

export async function started(initial: Change[] = []) {
  const port = new FakeHaproxy()
  const store = new FakeStore()
  const clock = new FakeTimers()
  const core = new ApplyCore({ settings, port, store, log: pino({ level: 'silent' }), metrics: createMetrics(), timers: clock })
  await core.start(initial)
  port.validations = 0
  const names = () => [...core.live.services.values()].map((s) => s.serviceName).sort()
  /** Moves the fake clock `ms` on, waiting for the work each timer starts. */
  const later = (ms: number) => clock.advance(ms, () => core.idle())
  return { port, store, core, names, clock, later }
}

/** Settles every promise; each answer as 200 or the error's status and code. */
export const answers = (promises: Array<Promise<void>>) =>
  Promise.all(promises.map((p) => p.then(() => ({ status: 200, code: 'OK', message: '' }), (err: DfpError) => ({ status: err.statusCode, code: err.code, message: err.message }))))
