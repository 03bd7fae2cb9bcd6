import Fastify, { type FastifyError } from 'fastify'
import type { Logger } from 'pino'
import type { Acme } from './acme/index.js'
import { ApiAuthenticator } from './auth/api-users.js'
import { DfpError, errors } from './errors.js'
import type { ApplyCore } from './apply/core.js'
import type { HaproxyClient } from './haproxy/client.js'
import { outcomeOf, type Metrics } from './metrics/index.js'
import { acmeRoutes } from './routes/acme.js'
import { metricsRoutes } from './routes/metrics.js'
import { proxyRoutes } from './routes/proxy.js'
import { requestParams } from './routes/request-params.js'
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
  acme: Acme
}

const prefix = '/v1/docker-flow-proxy'
/** Endpoints whose requests are logged and counted one by one, with their action. */
const changeEndpoints = new Map([
  [`${prefix}/reconfigure`, 'reconfigure'],
  [`${prefix}/remove`, 'remove'],
  [`${prefix}/reload`, 'reload'],
])

/** Builds the control API. Listening is main.ts's job; tests use this with `inject` or port 0. */
export function buildApp({ settings, applier, live, haproxy, metrics, logger, listener, distributor, acme }: AppOptions) {
  const app = Fastify({ loggerInstance: logger, bodyLimit: 1024 * 1024 })

  // Form bodies carry reconfigure parameters too (gorilla/schema read query and form alike).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  app.setErrorHandler((error: FastifyError | DfpError, request, reply) => {
    const refusedByFastify = !(error instanceof DfpError) && error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
    const dfpError = error instanceof DfpError ? error : refusedByFastify ? errors.requestRefused(error.statusCode as number, error.message) : errors.internal()
    if (dfpError.code === 'DFP_INTERNAL') request.log.error({ err: error }, 'request failed')
    else if (dfpError.statusCode >= 500) request.log.error({ err: error }, error.message)
    else request.log.info({ code: dfpError.code, service: dfpError.serviceName }, dfpError.message)
    return reply.code(dfpError.statusCode).headers(dfpError.extras.headers ?? {}).send(dfpError.body())
  })

  // API_USERS: basic auth on the control API, except what health checks, scrapers and (unless
  // STATUS_PUBLIC=false) people reading the status page need.
  const auth = new ApiAuthenticator(settings.API_USERS)
  if (auth.enabled) {
    const open = new Set(['/metrics', `${prefix}/ping`, `${prefix}/successfulinitreload`])
    if (settings.STATUS_PUBLIC) for (const path of [`${prefix}/status`, `${prefix}/status.json`]) open.add(path)
    app.addHook('onRequest', auth.hook((request) => open.has(request.routeOptions.url ?? '')))
  }

  app.setNotFoundHandler(async (request) => {
    throw errors.routeNotFound(request.method, request.url.split('?')[0] ?? '')
  })

  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unknown'
    metrics.requests.inc({ endpoint, code: reply.statusCode })
    // One line per change request: which service, how it ended, how long it took.
    const action = changeEndpoints.get(endpoint)
    if (!action) return
    const outcome = outcomeOf(reply.statusCode)
    if (action === 'reconfigure') metrics.reconfigureRequests.inc({ outcome })
    if (action === 'remove') metrics.removeRequests.inc({ outcome })
    const service = action === 'reload' ? undefined : (requestParams(request).serviceName ?? '')
    request.log.info({ action, service, outcome, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, `${action} ${outcome}`)
  })

  app.register(proxyRoutes, { prefix, settings, applier, live, listener, distributor, acme: acme.manager })
  app.register(acmeRoutes, { prefix, acme: acme.manager, challenges: acme.challenges, replicas: acme.replicas })
  app.register(statusRoutes, { prefix, applier, live, haproxy, metrics, listener, acme: acme.manager })
  app.register(metricsRoutes, { haproxy, metrics, distributor })

  return app
}
