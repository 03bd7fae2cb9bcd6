import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDaemon } from '../../src/daemon.js'
import type { ApplyCore } from '../../src/apply/core.js'
import type { LiveHaproxy } from '../../src/apply/haproxy-port.js'
import type { HaproxyClient } from '../../src/haproxy/client.js'
import { createLogger } from '../../src/logger.js'
import { loadSettings, type Settings } from '../../src/settings.js'
import type { LiveState } from '../../src/state/live.js'
import tap from 'tap'
import type { ApiAnswer } from './api-json.js'
import { freePort, httpGet, httpUpstream, type HttpReply, type Upstream, withJson } from './net.js'
import { defined, portOf } from './checks.js'

export interface TestDaemon {
  /** The port `frontend services` binds (DEFAULT_PORTS). */
  proxyPort: number
  apiPort: number
  /** The address the API listens on. */
  apiHost: string
  configDir: string
  settings: Settings
  applier: ApplyCore
  /** What HAProxy serves: services and configuration text. */
  live: LiveState
  /** The running HAProxy's Runtime API and master pid. */
  haproxy: HaproxyClient
  /** The apply core's port to this daemon's HAProxy. */
  port: LiveHaproxy
  /** A GET on the control API, e.g. `api('/v1/docker-flow-proxy/reconfigure?serviceName=a&…')`. */
  api: (pathAndQuery: string) => Promise<HttpReply>
  /** `api` with the `/v1/docker-flow-proxy` prefix and the parameters encoded. */
  call: <T = ApiAnswer>(endpoint: string, params?: Record<string, string>) => Promise<HttpReply & { json: T }>
  /** A GET through HAProxy's `frontend services`. */
  proxy: (path: string, headers?: Record<string, string>) => Promise<HttpReply>
  /** Stops the daemon; its CONFIG_DIR is removed unless `keepConfig`. */
  close: (options?: { keepConfig?: boolean }) => Promise<void>
}

export interface StartOptions {
  /** Reuse a CONFIG_DIR (a restart); a new temporary one otherwise. */
  configDir?: string
  proxyPort?: number
  /** Address and port of the API; 127.0.0.1 and a free port otherwise. */
  apiHost?: string
  apiPort?: number
  /** Collects every log line of the daemon (debug level and up), parsed. */
  logLines?: Array<Record<string, unknown>>
}

/** A pino line of the daemon as an object, with the fields tests read by shape typed. */
export interface LogLine {
  msg?: string
  /** The request of a Fastify request line. */
  req?: { url?: string }
  [field: string]: unknown
}

/** One pino line as the object it holds. */
const parseLogLine = (line: string): LogLine => JSON.parse(line)

/**
 * Starts the daemon in this process as main.ts does (createDaemon), with a real haproxy, a
 * temporary CONFIG_DIR and free high ports. `env` adds or overrides variables.
 */
export async function startDaemon(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestDaemon> {
  // haproxy looks server names up through libc when it loads a configuration. This machine's
  // DNS server does not answer, so bound each lookup to 1 s (glibc reads RES_OPTIONS).
  process.env.RES_OPTIONS ??= 'timeout:1 attempts:1'
  const configDir = options.configDir ?? (await mkdtemp(join(tmpdir(), 'dfp-test-')))
  const proxyPort = options.proxyPort ?? (await freePort())
  const apiHost = options.apiHost ?? '127.0.0.1'
  const settings = loadSettings({
    CONFIG_DIR: configDir,
    SECRETS_DIR: join(configDir, 'secrets'),
    CERTS_DIR: join(configDir, 'certs-folder'),
    DEFAULT_PORTS: String(proxyPort),
    RESOLVERS: 'nameserver dns 127.0.0.1:53',
    IP: apiHost,
    PORT: String(options.apiPort ?? 8080),
    PATH: process.env.PATH,
    ...env,
  })
  // The daemon's own logger (redaction included), writing to the test when it collects lines.
  const lines = options.logLines
  const logger = lines
    ? createLogger('debug', { write: (line: string) => void lines.push(parseLogLine(line)) })
    : createLogger(process.env.DFP_TEST_LOG ?? 'silent')
  const daemon = createDaemon(settings, logger)
  await daemon.start()
  await daemon.app.listen({ host: apiHost, port: options.apiPort ?? 0 })
  const apiPort = portOf(daemon.app.server)
  const api = (path: string) => httpGet(apiPort, path, {}, 60_000, apiHost)
  return {
    proxyPort,
    apiPort,
    apiHost,
    configDir,
    settings,
    applier: daemon.applier,
    live: daemon.live,
    haproxy: daemon.haproxy,
    port: daemon.port,
    api,
    call: async <T = ApiAnswer>(endpoint: string, params: Record<string, string> = {}) => withJson<T>(await api(`/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(params)}`)),
    proxy: (path, headers = {}) => httpGet(proxyPort, path, headers),
    close: async ({ keepConfig = false } = {}) => {
      await daemon.close({ hard: true })
      if (!keepConfig) await rm(configDir, { recursive: true, force: true })
    },
  }
}

/**
 * The set-up most end-to-end files share: a daemon and HTTP upstreams named `names` (each answers
 * with its name), all stopped when the test file ends.
 */
export async function startWithUpstreams<N extends string>(names: readonly N[], env: Record<string, string> = {}, options: StartOptions = {}) {
  const daemon = await startDaemon(env, options)
  const upstreams = Object.fromEntries(await Promise.all(names.map(async (name) => [name, await httpUpstream(name)] as const))) as Record<N, Upstream>
  tap.teardown(async () => {
    await daemon.close()
    await Promise.all(Object.values<Upstream>(upstreams).map((upstream) => upstream.close()))
  })
  return { daemon, upstreams }
}

/** `startWithUpstreams` with one upstream; `port` is its port as a parameter value. */
export async function startWithUpstream(name: string, env: Record<string, string> = {}) {
  const { daemon, upstreams } = await startWithUpstreams([name], env)
  const upstream = defined(upstreams[name], `upstream ${name}`)
  return { daemon, upstream, port: String(upstream.port) }
}
