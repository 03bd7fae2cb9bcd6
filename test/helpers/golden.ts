import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateConfig, type ValidationResult } from '../../src/haproxy/validate.js'
import { type RenderSettings, type RenderState, renderAll } from '../../src/render/index.js'
import { routeMapFiles } from '../../src/render/maps.js'

/**
 * The content of `test/golden/<name>.cfg`; with UPDATE_GOLDEN=1 the file is rewritten with
 * `actual` first (after a deliberate change of the rendering).
 */
export function golden(name: string, actual: string): string {
  const path = join(import.meta.dirname, '..', 'golden', `${name}.cfg`)
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual)
  return readFileSync(path, 'utf8')
}

/**
 * `haproxy -c` of the state's rendering with its route maps, in a temporary CONFIG_DIR and with
 * the shipped errorfiles (golden files name /cfg and /errorfiles, which need not exist here).
 */
export async function haproxyVerdict(state: RenderState, settings: RenderSettings): Promise<ValidationResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dfp-golden-'))
  try {
    const local = { ...settings, ERRORFILES_DIR: join(import.meta.dirname, '..', '..', 'haproxy', 'errorfiles'), CONFIG_DIR: dir }
    return await validateConfig('haproxy', dir, (mapPaths) => {
      const rendered = renderAll(state, local, { validation: { mapPaths } })
      return { config: rendered.config, mapFiles: routeMapFiles(dir, rendered.maps, mapPaths) }
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
