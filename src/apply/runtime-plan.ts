import type { RuntimeCommand } from '../haproxy/commands.js'
import type { Rendered } from '../render/index.js'
import type { RouteMapName } from '../render/maps.js'
import { diffBackends, diffMaps, type ViewChanges, type WorkerView } from './worker-view.js'

/** Runtime commands that make the worker serve a configuration, and what they change in its view. */
export interface RuntimeDelta {
  commands: RuntimeCommand[]
  changes: ViewChanges
  /** The worker keeps backends the file no longer has; a reload would free them. */
  leftovers: boolean
  /** New services live in spares: the file names backends the worker lacks until a reload. */
  usedSpares: boolean
  /** A backend of the file changed (new, or a server address): the next reload validates first. */
  backendsChanged: boolean
}

/**
 * The Runtime API commands that make the running worker route as the whole rendering `next`
 * does, or undefined when only a reload can (a new or changed backend with lines of its own, any
 * change outside the backends and maps). Removed services keep their backend in the worker
 * (nothing routes to it once its map entries are gone) until the next reload; a service added
 * again with the same backend needs no reload.
 */
export function planRuntimeDelta(view: WorkerView, next: Rendered, configDir: string): RuntimeDelta | undefined {
  // A worker with the general map lookup routes the next maps whatever their lookup style.
  if ((view.frame !== next.frame && view.frame !== next.generalFrame) || view.crtList !== next.crtList) return undefined
  const backends = diffBackends(view, next.backends)
  if (!backends) return undefined
  const wanted = (map: RouteMapName): Array<readonly [string, string | null]> => [
    ...next.maps[map],
    ...[...view.maps[map].keys()].filter((key) => !next.maps[map].has(key)).map((key) => [key, null] as const),
  ]
  const maps = diffMaps(view, { hostPath: wanted('hostPath'), path: wanted('path') }, backends.alias, configDir)
  let kept = 0
  for (const name of view.backends.keys()) if (!next.backends.has(name)) kept++
  return {
    commands: [...backends.commands, ...maps.commands],
    changes: { backends: backends.backends, aliases: backends.aliases, sparesTaken: backends.sparesTaken, maps: maps.changes, crtList: next.crtList },
    leftovers: kept > 0,
    usedSpares: view.aliases.size + backends.aliases.size > 0,
    backendsChanged: backends.changed,
  }
}
