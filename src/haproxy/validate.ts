import { messageOf } from '../errors.js'
import { rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { execa } from 'execa'
import type { RouteMapName } from '../render/maps.js'
import { firstAlert, haproxyEnvironment } from './master.js'
import type { Outcome } from '../outcome.js'
import { redactConfig } from './redact.js'

/**
 * `refused`: HAProxy read the configuration and said no. `unavailable`: the check itself did not
 * run to its end (killed, timed out, not started), which says nothing about the configuration.
 */
export type ValidationResult = Outcome

/** A file the configuration reads (a route map) with the content the candidate expects. */
export interface MapFile {
  path: string
  content: string
}

/** The candidate to check, rendered for the map paths it must read (see RenderOptions.validation). */
export type Candidate = (mapPaths: Record<RouteMapName, string>) => { config: string; mapFiles: MapFile[] }

const CHECK_TIMEOUT_MS = 120_000
/** What src/render/backends.ts writes on a server line looked up at load. */
const LOOKUP_AT_LOAD = ' init-addr last,libc,none '

/**
 * Checks a candidate configuration with `haproxy -c` before it may replace the live file, with
 * the candidate's own route maps written next to it. Only the exit status decides
 * (management.txt); the error is HAProxy's first alert, with the candidate's file name replaced
 * by the live one so line numbers read naturally. `check`: this check's number, unique in this
 * process (the caller counts; a random one by default).
 */
export async function validateConfig(bin: string, dir: string, candidate: Candidate, check: number | string = randomUUID()): Promise<ValidationResult> {
  // Candidates of checks that overlap (and of other daemons on the folder) never share a name.
  const id = `${process.pid}-${check}`
  const file = join(dir, `candidate-${id}.cfg`)
  const copy = (name: string) => join(dir, `candidate-${id}-${name}.map`)
  const rendered = candidate({ hostPath: copy('host-path'), path: copy('path') })
  const { mapFiles } = rendered
  // The check looks no name up: a server's own `init-addr … libc` (colours, shared routes, names of
  // /etc/hosts) would otherwise wait for the system resolver here too, as `default-server init-addr
  // none` of the validation render does not reach it.
  const config = rendered.config.replaceAll(LOOKUP_AT_LOAD, ' init-addr none ')
  try {
    try {
      for (const map of mapFiles) await writeFile(map.path, map.content)
      await writeFile(file, config, { mode: 0o600 })
    } catch (err) {
      // A full or read-only disk says nothing about the configuration.
      return { ok: false, kind: 'unavailable', error: `the candidate could not be written: ${messageOf(err)}` }
    }
    const result = await execa(bin, ['-c', '-f', file], { reject: false, all: true, timeout: CHECK_TIMEOUT_MS, env: haproxyEnvironment(), extendEnv: false })
    if (result.exitCode === 0) return { ok: true }
    const output = (result.all ?? '').split('\n')
    // Killed, timed out or never started: the machinery failed, not the configuration.
    if (result.exitCode === undefined || result.timedOut) {
      const why = result.timedOut ? `timed out after ${CHECK_TIMEOUT_MS} ms` : result.signal ? `killed by ${result.signal}` : 'did not run'
      return { ok: false, kind: 'unavailable', error: `haproxy -c ${why}` }
    }
    // HAProxy quotes the lines it refuses, passwords included.
    const error = redactConfig(
      (firstAlert(output) || output.find((l) => l.trim() !== '') || `haproxy -c exited with ${result.exitCode}`).replaceAll(file, 'haproxy.cfg').replaceAll(basename(file), 'haproxy.cfg'),
    )
    return { ok: false, kind: 'refused', error }
  } finally {
    await rm(file, { force: true })
    for (const map of mapFiles) await rm(map.path, { force: true })
  }
}
