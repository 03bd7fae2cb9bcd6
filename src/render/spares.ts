/**
 * Spare backends (issue 14): empty `backend dfp_spare_<n>` sections at the end of the
 * configuration. A new *plain* service — one whose backends are exactly what the spares are
 * plus one `server` line — becomes routable without a reload: each of its backends takes a free
 * spare (`add server <spare>/<server> <address>`, `enable server`), and its map entries name that
 * spare. The configuration file names the service's own backend; the next reload (a coalesced
 * catch-up after runtime changes) loads it, and the worker then has fresh spares again.
 */

import { parseService } from '../service/params.js'
import { renderServiceBackends } from './backends.js'

export const SPARE_PREFIX = 'dfp_spare_'

/**
 * How many spares a configuration of `services` services carries: a tenth of them, in steps of
 * 100, from 100 to 1 000 — enough for a burst of new services of that order between two reloads,
 * at a few bytes of HAProxy memory each.
 */
export const spareCount = (services: number) => Math.min(1000, Math.max(100, Math.ceil(services / 1000) * 100))

export const spareNames = (count: number) => Array.from({ length: count }, (_, i) => `${SPARE_PREFIX}${i}`)

// `    server <name> <address>:<port>` with an optional ` resolvers docker`: the only server line
// a plain backend may have. A dynamic server cannot use resolvers (HAProxy 2.6: "'resolvers'
// option is not accepted for dynamic server"), so a host name is resolved once, by the worker's
// libc, when it is added; the reload that follows gives the server its resolvers back.
const PLAIN_SERVER = /^ {4}server ([A-Za-z0-9._-]+) (\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})( resolvers docker)?$/

/** One backend section split into its name, its server line and everything else. */
function splitSection(section: string): { name: string; server: string | undefined; shape: string } | undefined {
  const lines = section.split('\n')
  const header = /^backend (\S+)$/.exec(lines[0] ?? '')
  if (!header) return undefined
  const servers = lines.filter((line) => /^ {4}(server|server-template) /.test(line))
  if (servers.length > 1) return undefined
  return { name: header[1] as string, server: servers[0], shape: lines.slice(1).filter((line) => line !== servers[0]).join('\n') }
}

/** The sections of a service's backend text (`\nbackend a…\nbackend b…`); undefined for anything else. */
function sections(text: string): string[] | undefined {
  if (!text.startsWith('\nbackend ')) return undefined
  return text.slice(1).split(/\n(?=backend )/)
}

/** The shape a plain backend must have: a spare's section without its name. */
export const spareShape = (spareText: string) => {
  const first = sections(spareText)?.[0]
  return first === undefined ? '' : (splitSection(first)?.shape ?? '')
}

export interface PlainBackend {
  /** The service's own backend name (what the file and the maps name). */
  backend: string
  server: string
  /** An IP literal (IPv6 in brackets) or a host name. */
  host: string
  port: string
}

/**
 * The backends of a service's text when every one is plain (the spares' shape plus one plain
 * server line), else undefined: such a service can live in spares until the next reload.
 */
export function plainBackends(text: string, shape: string): PlainBackend[] | undefined {
  const parts = sections(text)
  if (!parts || parts.length === 0 || shape === '') return undefined
  const plain: PlainBackend[] = []
  for (const part of parts) {
    const section = splitSection(part.endsWith('\n') ? part.slice(0, -1) : part)
    if (!section || section.shape !== shape.replace(/\n$/, '')) return undefined
    const server = PLAIN_SERVER.exec(section.server ?? '')
    if (!server) return undefined
    plain.push({ backend: section.name, server: server[1] as string, host: server[2] as string, port: server[3] as string })
  }
  return plain
}


/**
 * The spares' texts kept by whoever renders again and again (the apply core's render cache, the
 * port's validation): the same few counts and settings come back at every rendering. Owned, not
 * module state, so a test's renderings share nothing it did not give them.
 */
export class SpareTexts {
  private readonly kept = new Map<string, { names: string[]; text: string }>()

  get(count: number, hasGlobalUsers: boolean, debug: boolean): { names: string[]; text: string } {
    const key = `${count}/${hasGlobalUsers}/${debug}`
    const cached = this.kept.get(key)
    if (cached) return cached
    const spares = renderSpares(count, hasGlobalUsers, debug)
    if (this.kept.size >= 16) this.kept.clear()
    this.kept.set(key, spares)
    return spares
  }
}

/**
 * The spare backends of a configuration: what a plain service's backend renders to (a
 * placeholder service through the same template), renamed, without its server line.
 */
export function renderSpares(count: number, hasGlobalUsers: boolean, debug: boolean): { names: string[]; text: string } {
  const names = spareNames(count)
  const placeholder = parseService({ serviceName: 'spare', servicePath: '/', port: '1', outboundHostname: '127.0.0.1' }, { separator: ',' })
  // The placeholder's address is an IP: no name of /etc/hosts to look for.
  const section = renderServiceBackends(placeholder, hasGlobalUsers, debug, new Set()).text.replace(/^ {4}server .*\n/m, '')
  const [, rest] = /^\nbackend \S+\n([\s\S]*)$/.exec(section) ?? []
  return { names, text: names.map((name) => `\nbackend ${name}\n${rest ?? ''}`).join('') }
}
