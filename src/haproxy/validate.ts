import { rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { execa } from 'execa'
import { firstAlert } from './master.js'

export type ValidationResult = { ok: true } | { ok: false; error: string }

let counter = 0

/**
 * Checks a candidate configuration with `haproxy -c` before it may replace the live file.
 * Only the exit status decides (management.txt); the error is HAProxy's first alert, with the
 * candidate's file name replaced by the live one so line numbers read naturally.
 */
export async function validateConfig(bin: string, dir: string, config: string): Promise<ValidationResult> {
  const file = join(dir, `candidate-${process.pid}-${++counter}.cfg`)
  // Server names are resolved at load time and at run time; an unresolvable name is never an
  // error (init-addr ends with `none`), so the check skips the lookups, which can take seconds.
  await writeFile(file, config.replace(/^( {4}default-server init-addr) \S+$/m, '$1 none'))
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
  }
}
