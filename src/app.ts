import Fastify, { type FastifyError } from 'fastify'
import type { Logger } from 'pino'
import { DfpError } from './errors.js'
import type { ConfigApplier } from './haproxy/apply.js'
import type { Metrics } from './metrics/index.js'
import { proxyRoutes } from './routes/proxy.js'
import { nok } from './routes/responses.js'
import type { Settings } from './settings.js'
import type { Distributor } from './swarm/distribute.js'
import type { ListenerSync } from './swarm/listener.js'

export interface AppOptions {
  settings: Settings
  applier: ConfigApplier
  metrics: Metrics
  logger: Logger
  listener: ListenerSync
  distributor: Distributor
}

/** Builds the control API. Listening is main.ts's job; tests use this with `inject` or port 0. */
export function buildApp({ settings, applier, metrics, logger, listener, distributor }: AppOptions) {
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

  app.setNotFoundHandler((request, reply) => reply.code(404).send(nok(`${request.method} ${request.url.split('?')[0]} not found`)))

  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unknown'
    metrics.requests.inc({ endpoint, code: reply.statusCode })
  })

  app.register(proxyRoutes, { prefix: '/v1/docker-flow-proxy', settings, applier, listener, distributor })

  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  return app
}
