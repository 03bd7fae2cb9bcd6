import type { Rendered } from '../render/index.js'
import type { RuntimeCommand } from '../render/spares.js'
import type { ServiceState } from '../state/registry.js'
import type { StateCheckpoint } from '../state/store.js'

/**
 * What HAProxy said about a configuration. `refused`: HAProxy read it and said no (a verdict on
 * the change). `unavailable`: the validator or the master died or timed out, which says nothing
 * about the change (answered 503, never 400).
 */
export type Verdict = { ok: true } | { ok: false; kind: 'refused' | 'unavailable'; error: string }

/** A load (start or reload) confirmed by the worker that serves it, or why not. */
export type LoadVerdict = { ok: true; pid: number } | { ok: false; kind: 'refused' | 'unavailable'; error: string }

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
  /**
   * Writes the route maps and the configuration file HAProxy loads next; `served`: the worker
   * already serves it (made live through the Runtime API), so a restart after a crash loads it.
   */
  writeConfig(rendered: Rendered, options?: { served?: boolean }): Promise<void>
  /** Starts HAProxy on the written files and waits until a worker serves `version`. */
  start(version: string): Promise<LoadVerdict>
  /** Reloads HAProxy on the written files and waits until a new worker serves `version`. */
  reload(version: string): Promise<LoadVerdict>
  /** Stops HAProxy (`hard`: at once). */
  stop(hard: boolean): Promise<void>
  /** The pid of the worker answering the Runtime API, undefined when none answers. */
  workerPid(): Promise<number | undefined>
  /**
   * The worker serves what `rendered` renders (changes made through the Runtime API before the
   * files are written): what HAProxy loads, its files written then, if it has to be restarted
   * after a crash.
   */
  noteServed(rendered: () => Rendered): void
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
}
