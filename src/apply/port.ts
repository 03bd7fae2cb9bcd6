import type { Rendered } from '../render/index.js'
import type { RuntimeCommand } from '../haproxy/commands.js'
import type { Outcome } from '../outcome.js'
import type { ServiceState } from '../state/registry.js'
import type { StateCheckpoint } from '../state/store.js'

/** What HAProxy said about a configuration (src/outcome.ts). */
export type Verdict = Outcome

/** A load (start or reload) confirmed by the worker that serves it, or why not. */
export type LoadVerdict = Outcome<{ pid: number }>

/**
 * Everything the apply core does to the outside world, so the core itself does no I/O and its
 * decisions can be tested with a fake (test/unit/apply-core.test.ts). The real one is
 * src/apply/haproxy-port.ts.
 */
export interface HaproxyPort {
  /** `haproxy -c` of the state's configuration (its certificate copies written first). */
  validate(state: ServiceState): Promise<Verdict>
  /**
   * Writes the certificate copies and the crt-list of `state`; `prune` (only for a state that is
   * live) also removes the copies it no longer has.
   */
  writeArtefacts(state: ServiceState, options: { prune: boolean }): Promise<void>
  /** Writes the route maps and the configuration file HAProxy loads next. */
  writeConfig(rendered: Rendered): Promise<void>
  /** Starts HAProxy on the written files and waits until a worker serves `version`. */
  start(version: string): Promise<LoadVerdict>
  /**
   * Starts HAProxy again after its master died, on the written files; `oldPid`: the worker of
   * the dead master, which may answer for a moment and is not taken for the new one.
   */
  restart(version: string, oldPid: number | undefined): Promise<LoadVerdict>
  /** Calls `listener` when a master that served exits without being asked to. */
  onExit(listener: () => void): void
  /** Reloads HAProxy on the written files and waits until a new worker serves `version`. */
  reload(version: string): Promise<LoadVerdict>
  /** Stops HAProxy (`hard`: at once). */
  stop(hard: boolean): Promise<void>
  /** The pid of the worker answering the Runtime API, undefined when none answers. */
  workerPid(): Promise<number | undefined>
  /** Runtime API commands (`add map`, `set server … addr`, …); throws with HAProxy's answer. */
  runtimeCommands(commands: readonly RuntimeCommand[]): Promise<void>
  /** The ports of `ports` another process listens on (checked before a reload binds them). */
  portsInUse(ports: readonly number[]): Promise<number[]>
  /** `set ssl cert` + `commit ssl cert` of a loaded certificate; throws (after aborting) when refused. */
  swapCertificate(loadPath: string, pem: string): Promise<void>
}

/** Where the state is saved before anyone is answered. */
export interface StatePort {
  /** `compact: false`: append only, so `rewind` can take it back. */
  save(state: ServiceState, options?: { compact?: boolean }): Promise<void>
  /**
   * With `rewind`: the state is saved before a change is made live and taken back when it is not
   * (docs/guarantees.md "A full disk"); a store without them is saved once the change is live.
   */
  checkpoint?(): Promise<StateCheckpoint>
  rewind?(checkpoint: StateCheckpoint): Promise<void>
  /** Rewrites the snapshot when the log has grown past it (never throws). */
  compactIfDue?(state: ServiceState): Promise<void>
  /** Once started: the snapshot written anew when another parser (or none) wrote the one loaded. */
  refreshSnapshot?(state: ServiceState): Promise<void>
}
