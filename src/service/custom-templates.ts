import { messageOf } from '../errors.js'
import { readFileSync, realpathSync } from 'node:fs'
import { resolve, sep } from 'node:path'
import Handlebars from 'handlebars'
import type { Service } from './types.js'

export type CustomTemplateResult = { ok: true; text: string } | { ok: false; problem: string }

/**
 * Renders a custom template (`templateFePath`/`templateBePath`) of TEMPLATES_DIR with the service
 * as data. The path may be relative to the folder or absolute, but must lead to a file inside it
 * (symbolic links are followed first). Values are not HTML-escaped (the original's D5) and the
 * output is never rendered again (D6): it reaches haproxy.cfg as the template produced it.
 */
export function renderCustomTemplate(path: string, templatesDir: string | undefined, service: Service): CustomTemplateResult {
  if (templatesDir === undefined) return { ok: false, problem: 'custom templates are not enabled (no TEMPLATES_DIR)' }
  let folder: string
  let file: string
  try {
    folder = realpathSync(templatesDir)
  } catch {
    return { ok: false, problem: `TEMPLATES_DIR ${templatesDir} does not exist` }
  }
  // Refused before looking at the file, so answers tell nothing about files outside the folder.
  const outside = { ok: false as const, problem: `${JSON.stringify(path)} is outside TEMPLATES_DIR` }
  if (!resolve(templatesDir, path).startsWith(resolve(templatesDir) + sep)) return outside
  try {
    file = realpathSync(resolve(templatesDir, path))
  } catch {
    return { ok: false, problem: `no file ${JSON.stringify(path)} in TEMPLATES_DIR` }
  }
  if (!file.startsWith(folder + sep)) return outside
  let source: string
  try {
    source = readFileSync(file, 'utf8')
  } catch (err) {
    return { ok: false, problem: `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}` }
  }
  try {
    const text = Handlebars.compile(source, { noEscape: true })(service)
    return { ok: true, text: text === '' || text.endsWith('\n') ? text : `${text}\n` }
  } catch (err) {
    return { ok: false, problem: `the template does not render: ${messageOf(err).split('\n')[0]}` }
  }
}
