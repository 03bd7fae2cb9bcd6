import { messageOf } from '../errors.js'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { execa, type ResultPromise } from 'execa'
import type { Logger } from 'pino'
import { writeAtomic } from '../files.js'
import type { Outcome } from '../outcome.js'
import { redactConfig } from './redact.js'
import { sendCommand, showInfo, type WorkerInfo } from './runtime.js'

export interface MasterOptions {
  bin: string
  configPath: string
  statsSocket: string
  /** The configuration's `server-state-file`: `show servers state` is saved there before a reload. */
  serverStateFile?: string
  /** Folder for the master CLI socket and the master's pid file. */
  runDir: string
  /** Longest wait for a reload to be served, in ms. */
  reloadTimeoutMs: number
  /** TERMINATE_ON_RELOAD: the previous worker is stopped at once, cutting its connections (`-st`). */
  terminateOnReload?: boolean
  log: Logger
}

/**
 * A load confirmed by the worker that serves it, or why not: `refused` when HAProxy named a
 * problem of the configuration (its first alert), `unavailable` when it exited or timed out
 * without naming one (a verdict on nothing but the machinery).
 */
export type LoadResult = Outcome<{ pid: number }>

/** A failed load: refused when HAProxy gave an alert, else unavailable with `otherwise`. */
const failedLoad = (alert: string, otherwise: string): LoadResult =>
  alert ? { ok: false, kind: 'refused', error: alert } : { ok: false, kind: 'unavailable', error: otherwise }

/** How a master that served ended without being asked to. */
export interface MasterExit {
  exitCode?: number
  signal?: string
}

interface OutputLine {
  seq: number
  text: string
}

const KEPT_LINES = 500
// The only variables HAProxy inherits: where programs are, the locale and time zone, and the
// resolver options glibc reads when HAProxy looks names up. Not the daemon's secrets (USERS,
// API_USERS, STATS_PASS, …), which `env(…)` or `"$NAME"` in a configuration could reveal.
const INHERITED = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'RES_OPTIONS', 'LOCALDOMAIN', 'HOSTALIASES']

// glibc's own default is 5 s per query and 2 attempts: a name Docker's DNS does not know yet (it
// asks the host's servers, which may never answer) held a configuration load 10 s (swarm.md).
const RES_OPTIONS_DEFAULT = 'timeout:1 attempts:1'

/**
 * The environment HAProxy (the master, its workers and `haproxy -c`) runs with; RES_OPTIONS is
 * `timeout:1 attempts:1` unless the daemon's environment sets it, which bounds each system lookup
 * while a configuration loads (`init-addr … libc`: colours, servers of shared routes, names of
 * /etc/hosts) to about a second.
 */
export function haproxyEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const inherited = Object.fromEntries(INHERITED.flatMap((name) => (env[name] === undefined ? [] : [[name, env[name] as string]])))
  return { RES_OPTIONS: RES_OPTIONS_DEFAULT, ...inherited }
}

// A server-state file without servers (format version 1), for a start without one: HAProxy warns
// about a missing file.
const NO_SERVER_STATE = '1\n# be_id be_name srv_id srv_name srv_addr\n'
// After SIGUSR2 the master logs "Reloading HAProxy"; without that line the signal was lost
// (reference/haproxy-facts.md B.2), so it is sent again after this long.
const RESEND_AFTER_MS = 1500
const POLL_MS = 15
// What every reload prints once per proxy (HAProxy tags it WARNING): logged at debug level, or
// a reload of 1 000 services would write 1 000 warnings.
// A worker that took Runtime API commands prefixes its lines with `CLI : `, and tells of each
// server dfp takes out of or puts into maintenance through them (a new service at run time).
const routineOutput =
  /\] +\(\d+\) : ((CLI : )?(Proxy \S+ stopped|Stopping (frontend|backend|proxy) |Paused |Resumed )|Former worker \(\d+\) exited with code 0|CLI : Server \S+ is (UP\/READY \(leaving forced maintenance\)|going DOWN for maintenance\.))/

/** The log level of a line HAProxy printed: its routine reload chatter is debug. */
export const outputLevel = (text: string): 'debug' | 'error' | 'warn' | 'info' =>
  routineOutput.test(text) ? 'debug' : text.includes('[ALERT]') ? 'error' : text.includes('[WARNING]') ? 'warn' : 'info'

/**
 * Runs HAProxy in master-worker mode (`-W`) as a child process. Reloads go through the master
 * (SIGUSR2), which passes the listening sockets to the new worker, and are confirmed by reading
 * back the version of the running configuration. It loads only the file it is told to load and
 * writes no configuration itself: when a master that served dies (killed, or its worker killed:
 * HAProxy's master exits when its worker fails), `onExit` listeners are told, and the owner of
 * what HAProxy serves (src/apply/served.ts) writes those files and calls `start` again.
 */
export class HaproxyMaster {
  private child?: ResultPromise
  private stopping = false
  private lines: OutputLine[] = []
  private seq = 0
  /** Set once a master served its configuration: only the death of such a master is reported. */
  private served = false
  private readonly exitListeners: Array<(exit: MasterExit) => void> = []
  readonly masterSocket: string
  readonly statsSocket: string
  private readonly pidFile: string

  constructor(private readonly options: MasterOptions) {
    this.masterSocket = join(options.runDir, 'master.sock')
    this.statsSocket = options.statsSocket
    this.pidFile = join(options.runDir, 'haproxy-master.pid')
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** True while a master process runs (it may have died a moment ago without being reported yet). */
  get running(): boolean {
    const child = this.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  /** Calls `listener` when a master that served exits without being asked to. */
  onExit(listener: (exit: MasterExit) => void): void {
    this.exitListeners.push(listener)
  }

  /**
   * Starts a master on the current file and waits until a worker serves `version`. `oldPid`: the
   * worker of a master that died, which may still answer on the stats socket for a moment.
   */
  async start(version: string, oldPid?: number): Promise<LoadResult> {
    await this.stopLeftover()
    const stateFile = this.options.serverStateFile
    if (stateFile && !existsSync(stateFile)) await writeAtomic(stateFile, NO_SERVER_STATE)
    const cursor = this.seq
    this.spawn()
    const result = await this.confirm(version, oldPid, cursor, false)
    this.served = result.ok
    return result
  }

  /** Asks the master to load the current file and waits until a new worker serves `version`. */
  async reload(version: string): Promise<LoadResult> {
    // A dead master loads nothing: the change is not applied, and says nothing about it.
    if (!this.running) return { ok: false, kind: 'unavailable', error: 'haproxy is not running (it is being restarted)' }
    const before = await this.workerInfo()
    await this.saveServerState()
    const cursor = this.seq
    this.signalReload()
    const result = await this.confirm(version, before?.pid, cursor, true)
    if (result.ok && this.options.terminateOnReload && before?.pid) {
      // SIGTERM makes a worker stop now instead of finishing its connections (management.txt §4).
      try {
        process.kill(before.pid, 'SIGTERM')
      } catch {
        // it already finished
      }
    }
    return result
  }

  /** Allows a start again after `stop` (the daemon's own start-up fallback). */
  resume(): void {
    this.stopping = false
  }

  /** Stops HAProxy: gracefully (old connections finish) unless `hard`. */
  async stop(hard = false, graceMs = 10_000): Promise<void> {
    this.stopping = true
    const child = this.child
    if (!child || child.exitCode !== null) return
    const signal = hard ? 'SIGTERM' : 'SIGUSR1'
    child.kill(signal)
    const exited = child.then(() => true, () => true)
    const deadline = Date.now() + graceMs
    // A signal that reaches the master while it re-executes itself (a reload finishing) is lost
    // (reference/haproxy-facts.md B.2), as for the reload: sent again until it exits.
    while (!(await Promise.race([exited, sleep(Math.min(RESEND_AFTER_MS, Math.max(0, deadline - Date.now())), false)]))) {
      if (Date.now() >= deadline) {
        child.kill('SIGKILL')
        await exited
        break
      }
      child.kill(signal)
    }
    rmSync(this.pidFile, { force: true })
  }

  private spawn(): void {
    const { bin, configPath, log } = this.options
    const child = execa(bin, ['-W', '-S', `${this.masterSocket},mode,600`, '-f', configPath], {
      env: haproxyEnvironment(),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      buffer: false,
      cleanup: true,
    })
    this.child = child
    writeFileSync(this.pidFile, `${child.pid}\n`)
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (text) => this.onLine(text))
    }
    child.then((result) => {
      if (this.child !== child || this.stopping || !this.served) return
      this.served = false
      log.error({ exitCode: result.exitCode, signal: result.signal }, 'haproxy master exited')
      const exit: MasterExit = { exitCode: result.exitCode, signal: result.signal }
      for (const listener of this.exitListeners) listener(exit)
    })
  }

  /**
   * Stops a master left behind by a daemon that was killed without a chance to stop it, and
   * waits (up to 5 s) until it has released its ports.
   */
  private async stopLeftover(): Promise<void> {
    const isHaproxy = (pid: number) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('haproxy')
      } catch {
        return false
      }
    }
    let pid: number
    try {
      pid = Number(readFileSync(this.pidFile, 'utf8').trim())
    } catch {
      return // no pid file: nothing was left behind
    }
    if (!(pid > 0) || !isHaproxy(pid)) return
    process.kill(pid, 'SIGTERM')
    this.options.log.warn({ masterPid: pid }, 'stopped an haproxy left running by a previous daemon')
    for (let waited = 0; waited < 5000 && isHaproxy(pid); waited += 50) await sleep(50)
  }

  /**
   * The running worker's server addresses and health, for the next one to start from
   * (`load-server-state-from-file`, `init-addr last`): no name is looked up while a configuration
   * loads, and a healthy server is not marked down by a reload. Without it (no worker answering),
   * the next worker's servers start without address until the resolvers find them.
   */
  private async saveServerState(): Promise<void> {
    const path = this.options.serverStateFile
    if (!path) return
    try {
      const state = await sendCommand(this.options.statsSocket, 'show servers state', 5000)
      // The first line is the format version HAProxy checks when it reads the file.
      if (!/^1\n/.test(state)) throw new Error(state.slice(0, 200))
      await writeAtomic(path, state)
    } catch (err) {
      this.options.log.warn({ error: messageOf(err) }, 'could not save the servers state before the reload')
      await writeAtomic(path, NO_SERVER_STATE).catch(() => undefined)
    }
  }

  private signalReload(): void {
    this.child?.kill('SIGUSR2')
  }

  private onLine(text: string): void {
    // HAProxy quotes the lines it complains about, passwords included: they are blanked before
    // the line reaches the log or an answer. Its routine lines (one per server or proxy) quote
    // nothing of the configuration, and are many.
    const level = outputLevel(text)
    const shown = level === 'debug' ? text : redactConfig(text)
    this.lines.push({ seq: ++this.seq, text: shown })
    // Cut back in steps: a reload at 10 000 services prints 11 000 lines.
    if (this.lines.length > 2 * KEPT_LINES) this.lines.splice(0, this.lines.length - KEPT_LINES)
    this.options.log[level]({ haproxy: shown }, 'haproxy')
  }

  private linesSince(cursor: number): string[] {
    return this.lines.filter((l) => l.seq > cursor).map((l) => l.text)
  }

  private async workerInfo(): Promise<WorkerInfo | undefined> {
    try {
      return await showInfo(this.options.statsSocket, 1000)
    } catch {
      return undefined
    }
  }

  /**
   * Waits until the worker owning the stats socket runs `version` and is not `oldPid`, or the
   * master reports a loading failure, or it exits, or the timeout passes.
   */
  private async confirm(version: string, oldPid: number | undefined, cursor: number, resend: boolean): Promise<LoadResult> {
    const child = this.child
    const deadline = Date.now() + this.options.reloadTimeoutMs
    let lastSignal = Date.now()
    while (Date.now() < deadline) {
      const output = this.linesSince(cursor)
      if (output.some((l) => l.includes('Loading failure'))) return failedLoad(firstAlert(output), 'haproxy exited')
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        // A master that started and died (killed, or its worker killed) says nothing about the
        // configuration a reload offered it; a start that exits names its problem in an alert.
        if (resend) return { ok: false, kind: 'unavailable', error: `haproxy exited during the reload${firstAlert(output) ? `: ${firstAlert(output)}` : ''}` }
        return failedLoad(firstAlert(output), 'haproxy exited')
      }
      const info = await this.workerInfo()
      if (info && info.description === version && info.pid !== oldPid) return { ok: true, pid: info.pid }
      if (resend && !output.some((l) => l.includes('Reloading HAProxy')) && Date.now() - lastSignal > RESEND_AFTER_MS) {
        this.options.log.warn('haproxy did not acknowledge the reload signal; sending it again')
        this.signalReload()
        lastSignal = Date.now()
      }
      await sleep(POLL_MS)
    }
    return { ok: false, kind: 'unavailable', error: `the new configuration was not served within ${this.options.reloadTimeoutMs} ms` }
  }
}

/** HAProxy's first alert, without its `[ALERT] (pid) :` prefix. */
export function firstAlert(lines: string[]): string {
  const alerts = lines.filter((l) => l.includes('[ALERT]')).map((l) => l.replace(/^.*\[ALERT\]\s*\(\d+\)\s*:\s*/, ''))
  return alerts.find((l) => !l.startsWith('[haproxy.main()]')) ?? alerts[0] ?? ''
}
