import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import type { ConfigApplier } from '../haproxy/apply.js'
import { parseChange } from '../service/params.js'
import type { Settings } from '../settings.js'
import { ok, serviceFields } from './responses.js'

export interface ProxyRoutesOptions {
  settings: Settings
  applier: ConfigApplier
}

/** Query parameters merged with an urlencoded form body (the query wins, as in the original). */
function requestParams(request: FastifyRequest): Record<string, unknown> {
  const body = request.body && typeof request.body === 'object' && !Array.isArray(request.body) ? request.body : {}
  return { ...(body as Record<string, unknown>), ...(request.query as Record<string, unknown>) }
}

const firstValue = (value: unknown): string => String((Array.isArray(value) ? value[0] : value) ?? '')

/** The `/v1/docker-flow-proxy/*` control API (inventory §2). Every method is accepted, as before. */
export async function proxyRoutes(app: FastifyInstance, { settings, applier }: ProxyRoutesOptions): Promise<void> {
  app.all('/reconfigure', async (request) => {
    const change = parseChange(requestParams(request), { separator: settings.SEPARATOR })
    await applier.apply([change])
    if (change.kind === 'remove') return ok('replicas=0: the service was removed', change.serviceName)
    return ok('', change.service.serviceName, serviceFields(change.service))
  })

  app.all('/remove', async (request) => {
    const serviceName = firstValue(requestParams(request).serviceName)
    if (serviceName === '') throw errors.removeNameMissing()
    // Always queued, so a remove that follows a pending reconfigure of the same service wins.
    const known = applier.services.get(serviceName) !== undefined
    await applier.apply([{ kind: 'remove', serviceName }])
    return ok(known ? '' : `${serviceName} was not configured, no reload required`, serviceName)
  })

  // With or without `recreate`, the configuration is rendered from the state: the live file
  // always is that rendering, so both reload the same text.
  app.all('/reload', async () => {
    await applier.reload()
    return ok()
  })

  app.all('/config', async (request, reply) => {
    if (firstValue(requestParams(request).type).toLowerCase() === 'json') return applier.services.toJSON()
    return reply.type('text/plain; charset=utf-8').send(applier.liveConfig)
  })

  app.all('/ping', async () => ok())
}
