import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildApp } from '../../src/app.js'
import { ConfigApplier } from '../../src/haproxy/apply.js'
import { createMetrics } from '../../src/metrics/index.js'
import { loadSettings } from '../../src/settings.js'
import { freePort, httpGet, type HttpReply } from './net.js'

export interface TestDaemon {
  /** The port `frontend services` binds (DEFAULT_PORTS). */
  proxyPort: number
  apiPort: number
  configDir: string
  applier: ConfigApplier
  /** A GET on the control API, e.g. `api('/v1/docker-flow-proxy/reconfigure?serviceName=a&…')`. */
  api: (pathAndQuery: string) => Promise<HttpReply>
  /** `api` with the `/v1/docker-flow-proxy` prefix and the parameters encoded. */
  call: (endpoint: string, params?: Record<string, string>) => Promise<HttpReply & { json: any }>
  /** A GET through HAProxy's `frontend services`. */
  proxy: (path: string, headers?: Record<string, string>) => Promise<HttpReply>
  close: () => Promise<void>
}

/**
 * Starts the daemon in this process as main.ts does, with a real haproxy, a temporary
 * CONFIG_DIR and free high ports. `env` adds or overrides variables.
 */
export async function startDaemon(env: Record<string, string> = {}): Promise<TestDaemon> {
  // haproxy looks server names up through libc when it loads a configuration. This machine's
  // DNS server does not answer, so bound each lookup to 1 s (glibc reads RES_OPTIONS).
  process.env.RES_OPTIONS ??= 'timeout:1 attempts:1'
  const configDir = await mkdtemp(join(tmpdir(), 'dfp-test-'))
  const proxyPort = await freePort()
  const settings = loadSettings({
    CONFIG_DIR: configDir,
    SECRETS_DIR: join(configDir, 'secrets'),
    DEFAULT_PORTS: String(proxyPort),
    RESOLVERS: 'nameserver dns 127.0.0.1:53',
    PATH: process.env.PATH,
    ...env,
  })
  const logger = pino({ level: process.env.DFP_TEST_LOG ?? 'silent' })
  const metrics = createMetrics()
  const applier = new ConfigApplier(settings, logger, metrics)
  await applier.start()
  const app = buildApp({ settings, applier, metrics, logger })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const apiPort = (app.server.address() as { port: number }).port
  const api = (path: string) => httpGet(apiPort, path, {}, 60_000)
  return {
    proxyPort,
    apiPort,
    configDir,
    applier,
    api,
    call: async (endpoint, params = {}) => {
      const reply = await api(`/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(params)}`)
      let json: unknown
      try {
        json = JSON.parse(reply.body)
      } catch {
        json = undefined
      }
      return { ...reply, json }
    },
    proxy: (path, headers = {}) => httpGet(proxyPort, path, headers),
    close: async () => {
      await app.close()
      await applier.close({ hard: true })
      await rm(configDir, { recursive: true, force: true })
    },
  }
}
