import { addMapCommands, type RuntimeCommand } from '../haproxy/commands.js'
import { movableServer, type Rendered, type ServiceBackends } from '../render/index.js'
import { type RouteMapName, routeMapPaths } from '../render/maps.js'
import { type PlainBackend, plainBackends, spareShape } from '../render/spares.js'

/**
 * What the running worker has loaded, and taken since through the Runtime API, as far as a
 * runtime plan needs to know. Its collections are its own: the record (src/apply/served.ts)
 * changes them in place (`applyChanges`), so a change costs no copy of 10 000 entries.
 */
export interface WorkerView {
  frame: string
  crtList: string
  /** Backends by serviceName; may hold backends of removed services (leftovers). */
  backends: Map<string, ServiceBackends>
  /** The maps as the worker has them: backends that live in a spare named by the spare. */
  maps: Record<RouteMapName, Map<string, string>>
  /** Spare backends the worker loaded and has not used yet (src/render/spares.ts). */
  freeSpares: string[]
  /** What a plain backend looks like without its name and server line ('' without spares). */
  plainShape: string
  /** Backend name → the spare it lives in, for services added since the worker loaded. */
  aliases: Map<string, string>
  /** It runs the `host-path` map lookup, which routes any maps (src/render/maps.ts). */
  generalLookup: boolean
}

/** The view of a worker that loaded `rendered`. */
export const workerView = (rendered: Rendered): WorkerView => ({
  frame: rendered.frame,
  crtList: rendered.crtList,
  backends: new Map(rendered.backends),
  maps: { hostPath: new Map(rendered.maps.hostPath), path: new Map(rendered.maps.path) },
  freeSpares: [...rendered.spares.names],
  plainShape: spareShape(rendered.spares.text),
  aliases: new Map(),
  generalLookup: rendered.frame === rendered.generalFrame,
})

/** What runtime commands change in the worker's view. */
export interface ViewChanges {
  /** Backends the worker has once the commands ran (new ones, moved addresses). */
  backends: ReadonlyMap<string, ServiceBackends>
  /** Backends now living in spares: backend → spare. */
  aliases: ReadonlyMap<string, string>
  /** How many free spares the commands take (from the front). */
  sparesTaken: number
  /** Map entries set (a value) or deleted (null). */
  maps: ReadonlyArray<readonly [RouteMapName, string, string | null]>
  crtList?: string
}

/** Changes `view` in place as the commands of `changes` changed the worker. */
export function applyChanges(view: WorkerView, changes: ViewChanges): void {
  for (const [name, backends] of changes.backends) view.backends.set(name, backends)
  for (const [backend, spare] of changes.aliases) view.aliases.set(backend, spare)
  view.freeSpares.splice(0, changes.sparesTaken)
  for (const [map, key, value] of changes.maps) {
    if (value === null) view.maps[map].delete(key)
    else view.maps[map].set(key, value)
  }
  if (changes.crtList !== undefined) view.crtList = changes.crtList
}

/** The commands that put a plain backend into a spare (management.txt 9.3 "add server"). */
const spareCommands = (spare: string, plain: PlainBackend): RuntimeCommand[] => [
  { kind: 'add server', backend: spare, server: plain.server, host: plain.host, port: plain.port },
  { kind: 'enable server', backend: spare, server: plain.server },
]

/**
 * `set server <backend>/<server> addr <ip>` for each server whose IP literal changed and
 * `set weight <backend>/<server> <n>` for each `server` whose weight changed, when that is all
 * that changed between two renderings of a service's backends (management.txt 9.3 "set server",
 * "set weight"), or undefined when anything else changed: their shapes (the text without those
 * addresses and weights) must be equal. A server-template's weight needs a reload. A weight that
 * goes up is in `raises`, one that goes down in `lowers`: the caller sends every raise of a
 * batch before every lowering, so a route shared by weight never passes through all weights 0
 * between two commands when it had a non-zero weight before and after (100/0 → 0/100 in one
 * batch, whatever the services' order).
 */
function serverAddressChanges(running: ServiceBackends, next: ServiceBackends, alias: (backend: string) => string | undefined): WeightedCommands | undefined {
  if (running.shape !== next.shape || running.servers.length !== next.servers.length) return undefined
  const changes: WeightedCommands = { raises: [], others: [], lowers: [] }
  for (const [i, now] of next.servers.entries()) {
    const old = running.servers[i]
    if (!old || old.backend !== now.backend || old.name !== now.name) return undefined
    const backend = alias(now.backend) ?? now.backend
    if (old.weight !== now.weight) {
      if (now.template || now.weight === undefined) return undefined
      // no weight in the file is HAProxy's default, 1
      const list = now.weight > (old.weight ?? 1) ? changes.raises : changes.lowers
      list.push({ kind: 'set weight', backend, server: now.name, weight: now.weight })
    }
    if (old.host === now.host) continue
    if (!movableServer(old) || !movableServer(now)) return undefined
    changes.others.push({ kind: 'set server addr', backend, server: now.name, address: now.host })
  }
  return changes
}

interface WeightedCommands {
  raises: RuntimeCommand[]
  others: RuntimeCommand[]
  lowers: RuntimeCommand[]
}

/** The backend half of a diff: commands, and what they change. */
export interface BackendDiff {
  commands: RuntimeCommand[]
  backends: Map<string, ServiceBackends>
  aliases: Map<string, string>
  sparesTaken: number
  /** Services the worker had no backend for. */
  added: number
  /** A backend of the file changed (new, or a server address): the next reload validates first. */
  changed: boolean
  /** The spare a backend lives in, the worker's or this diff's. */
  alias: (backend: string) => string | undefined
}

/**
 * The commands that give the worker the `next` backends of some services: a new service into
 * free spares when every one of its backends is plain (src/render/spares.ts), a changed one by
 * moving server addresses. Undefined when only a reload can (a backend with lines of its own).
 */
export function diffBackends(view: WorkerView, next: Iterable<readonly [string, ServiceBackends]>): BackendDiff | undefined {
  const free = [...view.freeSpares]
  const aliases = new Map<string, string>()
  const alias = (backend: string) => aliases.get(backend) ?? view.aliases.get(backend)
  const diff: BackendDiff = { commands: [], backends: new Map(), aliases, sparesTaken: 0, added: 0, changed: false, alias }
  const weights: WeightedCommands = { raises: [], others: [], lowers: [] }
  for (const [name, backends] of next) {
    const running = view.backends.get(name)
    if (running === undefined) diff.added++
    if (running?.text === backends.text) continue
    diff.changed = true
    diff.backends.set(name, backends)
    if (running === undefined) {
      const plain = plainBackends(backends.text, view.plainShape)
      if (!plain || plain.length > free.length) return undefined
      for (const backend of plain) {
        const spare = free.shift() as string
        aliases.set(backend.backend, spare)
        diff.commands.push(...spareCommands(spare, backend))
      }
      continue
    }
    const moved = serverAddressChanges(running, backends, alias)
    if (!moved) return undefined
    weights.raises.push(...moved.raises)
    diff.commands.push(...moved.others)
    weights.lowers.push(...moved.lowers)
  }
  diff.commands = [...weights.raises, ...diff.commands, ...weights.lowers]
  diff.sparesTaken = view.freeSpares.length - free.length
  return diff
}

/** A map value (`<length>:<backend>`) as the worker has it: naming the spare its backend lives in, if any. */
export function valueInWorker(value: string, alias: (backend: string) => string | undefined): string {
  const colon = value.indexOf(':')
  const spare = alias(value.slice(colon + 1))
  return spare === undefined ? value : `${value.slice(0, colon + 1)}${spare}`
}

/**
 * The map half of a diff: the entries wanted (a value, or null for an entry to remove) against
 * the worker's maps. New entries first (one payload per map), changed ones, removed ones last,
 * so a moved route never has a gap.
 */
export function diffMaps(
  view: WorkerView,
  wanted: Record<RouteMapName, Iterable<readonly [string, string | null]>>,
  alias: (backend: string) => string | undefined,
  configDir: string,
): { commands: RuntimeCommand[]; changes: Array<readonly [RouteMapName, string, string | null]> } {
  const files = routeMapPaths(configDir)
  const adds: RuntimeCommand[] = []
  const sets: RuntimeCommand[] = []
  const dels: RuntimeCommand[] = []
  const changes: Array<readonly [RouteMapName, string, string | null]> = []
  for (const map of ['hostPath', 'path'] as const) {
    const newEntries: string[] = []
    for (const [key, value] of wanted[map]) {
      const old = view.maps[map].get(key)
      if (value === null) {
        if (old === undefined) continue
        dels.push({ kind: 'del map', file: files[map], key })
        changes.push([map, key, null])
        continue
      }
      const target = valueInWorker(value, alias)
      if (old === target) continue
      if (old === undefined) newEntries.push(`${key} ${target}`)
      else sets.push({ kind: 'set map', file: files[map], key, value: target })
      changes.push([map, key, target])
    }
    adds.push(...addMapCommands(files[map], newEntries))
  }
  return { commands: [...adds, ...sets, ...dels], changes }
}

/** A copy of `view` with `changes` applied; `view` itself is left as it is. */
export function viewAfter(view: WorkerView, changes: ViewChanges): WorkerView {
  const copy: WorkerView = {
    ...view,
    backends: new Map(view.backends),
    maps: { hostPath: new Map(view.maps.hostPath), path: new Map(view.maps.path) },
    freeSpares: [...view.freeSpares],
    aliases: new Map(view.aliases),
  }
  applyChanges(copy, changes)
  return copy
}
