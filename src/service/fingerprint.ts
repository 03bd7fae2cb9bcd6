import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ParseOptions } from './service-schema.js'

/**
 * What a parsed service depends on besides its parameters: the code that parses it (every
 * module of the daemon, as it runs: `dist/` or `src/`) and the parse options (settings). The
 * state snapshot keeps each service as parsed with this fingerprint next to it
 * (src/state/store.ts), so a start by the same code with the same settings takes them as they
 * are: at 50 000 services parsing them again was 9 of a cold start's 18 s. Any change of code or
 * settings gives another fingerprint, and every service is parsed again.
 */
export function parserFingerprint(options: ParseOptions, root = fileURLToPath(new URL('..', import.meta.url))): string {
  const hash = createHash('sha256')
  hash.update(JSON.stringify(options))
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.(js|ts)$/.test(entry.name)) hash.update(entry.name).update(readFileSync(path))
    }
  }
  walk(root)
  return hash.digest('base64url')
}
