import { messageOf } from '../errors.js'
import { rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { execa } from 'execa'
import type { RouteMapName } from '../render/maps.js'
import { firstAlert, haproxyEnvironment } from './master.js'
import { redactConfig } from './redact.js'

/**
 * `refused`: HAProxy read the configuration and said no. `unavailable`: the check itself did not
 * run to its end (killed, timed out, not started), which says nothing about the configuration.
 */
export type ValidationResult = { ok: true } | { ok: false; kind: 'refused' | 'unavailable'; error: string }

/** A file the configuration reads (a route map) with the content the candidate expects. */
export interface MapFile {
  path: string
  content: string
}

/** The candidate to check, rendered for the map paths it must read (see RenderOptions.validation). */
export type Candidate = (mapPaths: Record<RouteMapName, string>) => { config: string; mapFiles: MapFile[] }

let counter = 0
const CHECK_TIMEOUT_MS = 120_000

/**
 * Checks a candidate configuration with `haproxy -c` before it may replace the live file, with
 * the candidate's own route maps written next to it. Only the exit status decides
 * (management.txt); the error is HAProxy's first alert, with the candidate's file name replaced
 * by the live one so line numbers read naturally.
 */
export async function validateConfig(bin: string, dir: string, candidate: Candidate): Promise<ValidationResult> {
  const id = `${process.pid}-${++counter}`
  const file = join(dir, `candidate-${id}.cfg`)
  const copy = (name: string) => join(dir, `candidate-${id}-${name}.map`)
  const { config, mapFiles } = candidate({ hostPath: copy('host-path'), path: copy('path') })
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
