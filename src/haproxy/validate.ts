import { rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { execa } from 'execa'
import { firstAlert } from './master.js'

export type ValidationResult = { ok: true } | { ok: false; error: string }

/** A file the configuration reads (a route map) with the content the candidate expects. */
export interface MapFile {
  path: string
  content: string
}

let counter = 0

/**
 * Checks a candidate configuration with `haproxy -c` before it may replace the live file.
 * Only the exit status decides (management.txt); the error is HAProxy's first alert, with the
 * candidate's file name replaced by the live one so line numbers read naturally.
 */
export async function validateConfig(bin: string, dir: string, config: string, maps: MapFile[] = []): Promise<ValidationResult> {
  const id = `${process.pid}-${++counter}`
  const file = join(dir, `candidate-${id}.cfg`)
  // The candidate's own maps are checked with it: copies next to it replace the live files.
  const copies = maps.map((map) => ({ ...map, copy: join(dir, `candidate-${id}-${basename(map.path)}`) }))
  let text = config
  for (const map of copies) {
    await writeFile(map.copy, map.content)
    text = text.replaceAll(map.path, map.copy)
  }
  // Server names are resolved at load time and at run time; an unresolvable name is never an
  // error (init-addr ends with `none`), so the check skips the lookups, which can take seconds.
  await writeFile(file, text.replace(/^( {4}default-server init-addr) \S+$/m, '$1 none'))
  try {
    const result = await execa(bin, ['-c', '-f', file], { reject: false, all: true, timeout: 120_000 })
    if (result.exitCode === 0) return { ok: true }
    const lines = (result.all ?? '').split('\n')
    const error = (firstAlert(lines) || lines.find((l) => l.trim() !== '') || `haproxy -c exited with ${result.exitCode}`)
      .replaceAll(file, 'haproxy.cfg')
      .replaceAll(basename(file), 'haproxy.cfg')
    return { ok: false, error }
  } finally {
    await rm(file, { force: true })
    for (const map of copies) await rm(map.copy, { force: true })
  }
}
