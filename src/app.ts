import Fastify, { type FastifyError, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { ApiAuthenticator, parseApiUsers } from './auth/api-users.js'
import { DfpError } from './errors.js'
import type { ApplyCore } from './apply/core.js'
import type { HaproxyClient } from './haproxy/client.js'
import { outcomeOf, type Metrics } from './metrics/index.js'
import { metricsRoutes } from './routes/metrics.js'
import { proxyRoutes } from './routes/proxy.js'
import { nok } from './routes/responses.js'
import { statusRoutes } from './routes/status.js'
import type { Settings } from './settings.js'
import type { LiveState } from './state/live.js'
import type { Distributor } from './swarm/distribute.js'
import type { ListenerSync } from './swarm/listener.js'

export interface AppOptions {
  settings: Settings
  applier: ApplyCore
  /** What HAProxy serves (read-only here). */
  live: LiveState
  haproxy: HaproxyClient
  metrics: Metrics
  logger: Logger
  listener: ListenerSync
  distributor: Distributor
}

const prefix = '/v1/docker-flow-proxy'
/** Endpoints whose requests are logged and counted one by one, with their action. */
const changeEndpoints = new Map([
  [`${prefix}/reconfigure`, 'reconfigure'],
  [`${prefix}/remove`, 'remove'],
  [`${prefix}/reload`, 'reload'],
])

/** The serviceName of a request (query first, then form body, as the routes read it). */
function serviceNameOf(request: FastifyRequest): string {
  const query = request.query as Record<string, unknown>
  const body = (request.body && typeof request.body === 'object' ? request.body : {}) as Record<string, unknown>
  const value = [query.serviceName, body.serviceName].flat().find((v) => v !== undefined)
  return value === undefined ? '' : String(value)
}

/** Builds the control API. Listening is main.ts's job; tests use this with `inject` or port 0. */
export function buildApp({ settings, applier, live, haproxy, metrics, logger, listener, distributor }: AppOptions) {
  const app = Fastify({ loggerInstance: logger, bodyLimit: 1024 * 1024 })

  // Form bodies carry reconfigure parameters too (gorilla/schema read query and form alike).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.setErrorHandler((error: FastifyError | DfpError, request, reply) => {
    if (error instanceof DfpError) {
      if (error.statusCode >= 500) request.log.error({ err: error }, error.message)
      else request.log.info({ code: error.code, service: error.serviceName }, error.message)
      return reply.code(error.statusCode).send(nok(error.message, error.serviceName))
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500
    if (status === 500) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(500).send(nok('Internal error'))
    }
    return reply.code(status).send(nok(error.message))
  })

  // API_USERS: basic auth on the control API, except what health checks, scrapers and (unless
  // STATUS_PUBLIC=false) people reading the status page need.
  const auth = new ApiAuthenticator(parseApiUsers(settings.API_USERS))
  if (auth.enabled) {
    const open = new Set(['/metrics', `${prefix}/ping`, `${prefix}/successfulinitreload`])
    if (settings.STATUS_PUBLIC) for (const path of [`${prefix}/status`, `${prefix}/status.json`]) open.add(path)
    app.addHook('onRequest', auth.hook((request) => open.has(request.routeOptions.url ?? '')))
  }

  app.setNotFoundHandler((request, reply) => reply.code(404).send(nok(`${request.method} ${request.url.split('?')[0]} not found`)))

  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unknown'
    metrics.requests.inc({ endpoint, code: reply.statusCode })
    // One line per change request: which service, how it ended, how long it took.
    const action = changeEndpoints.get(endpoint)
    if (!action) return
    const outcome = outcomeOf(reply.statusCode)
    if (action === 'reconfigure') metrics.reconfigureRequests.inc({ outcome })
    if (action === 'remove') metrics.removeRequests.inc({ outcome })
    const service = action === 'reload' ? undefined : serviceNameOf(request)
    request.log.info({ action, service, outcome, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, `${action} ${outcome}`)
  })

  app.register(proxyRoutes, { prefix, settings, applier, live, listener, distributor })
  app.register(statusRoutes, { prefix, applier, live, haproxy, metrics, listener })
  app.register(metricsRoutes, { haproxy, metrics, distributor })

  return app
}
