import { messageOf } from './errors.js'
import { parseChange } from './service/params.js'
import { type Settings, SettingsError } from './settings.js'
import type { ServiceChange } from './state/registry.js'

/**
 * The services the environment defines (settings.ENV_SERVICES, `DFP_SERVICE[_N]_*`) parsed as
 * reconfigure requests, in the same order. Each is checked as a request would be, so a bad one
 * stops the start with its prefix (a SettingsError, as a bad variable does).
 */
export function envChanges(settings: Settings): ServiceChange[] {
  const problems: string[] = []
  const changes = settings.ENV_SERVICES.flatMap(({ prefix, params }) => {
    try {
      return [parseChange(params, settings.PARSE_OPTIONS)]
    } catch (err) {
      problems.push(`${prefix}: ${messageOf(err)}`)
      return []
    }
  })
  if (problems.length) throw new SettingsError(problems)
  return changes
}
