import { movableServer, type Rendered, type ServiceBackends } from '../render/index.js'
import { routeMapPaths, type RouteMapName, type RouteMaps } from '../render/maps.js'
import { plainBackends, type RuntimeCommand, spareCommands, spareShape } from '../render/spares.js'
import { sendCommand } from './runtime.js'

/** What the running worker has loaded, as far as a runtime delta needs to know. */
export interface WorkerView {
  frame: string
  crtList: string
  /** Backends by serviceName; may hold backends of removed services (leftovers). */
  backends: ReadonlyMap<string, ServiceBackends>
  /** The maps as the worker has them: backends that live in a spare named by the spare. */
  maps: RouteMaps
  /** Spare backends the worker loaded and has not used yet (src/render/spares.ts). */
  freeSpares: readonly string[]
  /** What a plain backend looks like without its name and server line ('' without spares). */
  plainShape: string
  /** Backend name → the spare it lives in, for services added since the worker loaded. */
  aliases: ReadonlyMap<string, string>
  /** It runs the `host-path` map lookup, which routes any maps (src/render/maps.ts). */
  generalLookup: boolean
}

export const workerView = (rendered: Rendered): WorkerView => ({
  frame: rendered.frame,
  crtList: rendered.crtList,
  backends: rendered.backends,
  maps: rendered.maps,
  freeSpares: rendered.spares.names,
  plainShape: spareShape(rendered.spares.text),
  aliases: new Map(),
  generalLookup: rendered.frame === rendered.generalFrame,
})

export interface RuntimeDelta {
  /** Runtime API commands that turn the worker's maps into the next ones. */
  commands: RuntimeCommand[]
  /** The worker once they are applied. */
  worker: WorkerView
  /** The worker keeps backends the file no longer has; a reload would free them. */
  leftovers: boolean
  /** New services live in spares: the file names backends the worker lacks until a reload. */
  usedSpares: boolean
}

/**
 * The Runtime API commands that make the running worker route as `next` does, or undefined
 * when only a reload can (a new or changed backend, any change outside the backends and maps).
 * Removed services keep their backend in the worker (nothing routes to it once its map entries
 * are gone) until the next reload; a service added again with the same backend needs no reload.
 */
export function planRuntimeDelta(worker: WorkerView, next: Rendered, configDir: string): RuntimeDelta | undefined {
  // A worker with the general map lookup routes the next maps whatever their lookup style.
  if ((worker.frame !== next.frame && worker.frame !== next.generalFrame) || worker.crtList !== next.crtList) return undefined
  const servers: RuntimeCommand[] = []
  const free = [...worker.freeSpares]
  const aliases = new Map(worker.aliases)
  for (const [service, text] of next.backends) {
    const running = worker.backends.get(service)
    if (running?.text === text.text) continue
    if (running === undefined) {
      const added = intoSpares(text, worker.plainShape, free, aliases)
      if (!added) return undefined
      servers.push(...added)
      continue
    }
    const moved = serverAddressChanges(running, text, aliases)
    if (!moved) return undefined
    servers.push(...moved)
  }
  const inWorker = (value: string) => valueInWorker(value, (backend) => aliases.get(backend))
  const nextMaps: RouteMaps = aliases.size === 0 ? next.maps : { hostPath: new Map(), path: new Map() }
  if (aliases.size > 0) {
    for (const name of Object.keys(nextMaps) as RouteMapName[]) for (const [key, value] of next.maps[name]) nextMaps[name].set(key, inWorker(value))
  }
  const files = routeMapPaths(configDir)
  const adds: string[] = []
  let newEntries: string[] = []
  const sets: string[] = []
  const dels: string[] = []
  for (const name of Object.keys(files) as RouteMapName[]) {
    const before = worker.maps[name]
    const after = nextMaps[name]
    for (const [key, backend] of after) {
      const old = before.get(key)
      if (old === undefined) newEntries.push(`${key} ${backend}`)
      else if (old !== backend) sets.push(`set map ${files[name]} ${key} ${backend}`)
    }
    for (const key of before.keys()) if (!after.has(key)) dels.push(`del map ${files[name]} ${key}`)
    adds.push(...mapAddPayloads(files[name], newEntries))
    newEntries = []
  }
  const backends = new Map([...worker.backends, ...next.backends])
  // New routes first and removed ones last, so a moved route never has a gap.
  return {
    commands: [...servers, ...adds, ...sets, ...dels],
    worker: { ...worker, crtList: next.crtList, backends, maps: nextMaps, freeSpares: free, aliases },
    leftovers: backends.size > next.backends.size,
    usedSpares: aliases.size > 0,
  }
}

/**
 * A new service's backends into free spares, when every one is plain (src/render/spares.ts) and
 * enough are left: the spares are taken from the front of `free` and recorded in `aliases`
 * (backend → spare), and their `add server` + `enable server` commands returned. Undefined
 * otherwise: a reload is needed.
 */
export function intoSpares(backends: ServiceBackends, plainShape: string, free: string[], aliases: Map<string, string>): RuntimeCommand[] | undefined {
  const plain = plainBackends(backends.text, plainShape)
  if (!plain || plain.length > free.length) return undefined
  return plain.flatMap((backend) => {
    const spare = free.shift() as string
    aliases.set(backend.backend, spare)
    return spareCommands(spare, backend)
  })
}

/** A map value (`<length>:<backend>`) as the worker has it: naming the spare its backend lives in, if any. */
export function valueInWorker(value: string, spareOf: (backend: string) => string | undefined): string {
  const colon = value.indexOf(':')
  const spare = spareOf(value.slice(colon + 1))
  return spare === undefined ? value : `${value.slice(0, colon + 1)}${spare}`
}

/**
 * `set server <backend>/<server> addr <ip>` for each server whose IP literal changed and
 * `set weight <backend>/<server> <n>` for each `server` whose weight changed, when that is all
 * that changed between two renderings of a service's backends (management.txt 9.3 "set server",
 * "set weight"), or undefined when anything else changed: their shapes (the text without those
 * addresses and weights) must be equal. A server-template's weight needs a reload.
 */
export function serverAddressChanges(running: ServiceBackends, next: ServiceBackends, aliases: Pick<ReadonlyMap<string, string>, 'get'>): string[] | undefined {
  if (running.shape !== next.shape || running.servers.length !== next.servers.length) return undefined
  const commands: string[] = []
  for (const [i, now] of next.servers.entries()) {
    const old = running.servers[i]
    if (!old || old.backend !== now.backend || old.name !== now.name) return undefined
    const server = `${aliases.get(now.backend) ?? now.backend}/${now.name}`
    if (old.weight !== now.weight) {
      if (now.template || now.weight === undefined) return undefined
      commands.push(`set weight ${server} ${now.weight}`)
    }
    if (old.host === now.host) continue
    if (!movableServer(old) || !movableServer(now)) return undefined
    commands.push(`set server ${server} addr ${now.host}`)
  }
  return commands
}

// `set server … addr` and `add server` say what they did; map commands and `enable server` say nothing.
const EXPECTED_ANSWER = /^(IP changed from .* by 'stats socket command'|New server registered\.)$/

/**
 * New map entries as `add map <file> <<` commands with the entries as payload, one line each
 * (management.txt 9.3 "add map"): HAProxy takes about a millisecond per `add map` command on this
 * machine, and a few for a payload of a thousand entries. A payload must fit HAProxy's buffer
 * (tune.bufsize, 16 kB): chunks of at most MAX_LINE bytes. Each ends with the empty line that
 * closes a payload once `sendCommand` adds its newline.
 */
export function mapAddPayloads(file: string, entries: readonly string[]): string[] {
  const commands: string[] = []
  let chunk: string[] = []
  let length = 0
  const close = () => {
    if (chunk.length > 0) commands.push(`add map ${file} <<\n${chunk.join('\n')}\n`)
    chunk = []
    length = 0
  }
  for (const entry of entries) {
    if (length + entry.length + 1 > MAX_LINE) close()
    chunk.push(entry)
    length += entry.length + 1
  }
  close()
  return commands
}

// A CLI command line must fit HAProxy's buffer (tune.bufsize, 16 kB by default).
const MAX_LINE = 8000

/**
 * Sends commands to a worker's CLI socket, several per connection separated by `;`
 * (management.txt 9.3). Map commands answer with an empty line when they succeed, and
 * `set server … addr` with `IP changed from … to … by 'stats socket command'`; any other answer
 * is an error, thrown with the command line it came from.
 */
export async function sendCommands(socketPath: string, commands: readonly string[]): Promise<void> {
  let line: string[] = []
  let length = 0
  const flush = async () => {
    if (line.length === 0) return
    const text = line.join(';')
    line = []
    length = 0
    const answer = await sendCommand(socketPath, text, 10_000)
    const unexpected = answer.split('\n').filter((l) => l.trim() !== '' && !EXPECTED_ANSWER.test(l.trim()))
    if (unexpected.length > 0) throw new Error(`${unexpected[0]} (after "${text.slice(0, 200)}")`)
  }
  for (const command of commands) {
    // A command with a payload (`add map … <<`) goes alone on its connection.
    if (command.includes('\n')) {
      await flush()
      line.push(command)
      await flush()
      continue
    }
    if (length + command.length + 1 > MAX_LINE) await flush()
    line.push(command)
    length += command.length + 1
  }
  await flush()
}
