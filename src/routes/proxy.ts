import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.js'
import type { ApplyCore } from '../apply/core.js'
import { forThisInstance, checkAddress } from '../service/instance.js'
import { parseChange, parseOptions } from '../service/params.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import type { Change } from '../state/registry.js'
import { DistributeLookupError, type Distributor, type ReplicaOutcome } from '../swarm/distribute.js'
import type { ListenerSync } from '../swarm/listener.js'
import { checkCertName } from '../certs/pem.js'
import { certRoutes, checkCertificate } from './certs.js'
import { nok, ok, serviceFields } from './responses.js'

export interface ProxyRoutesOptions {
  settings: Settings
  applier: ApplyCore
  live: LiveState
  listener: ListenerSync
  distributor: Distributor
}

/** Query parameters merged with an urlencoded form body (the query wins, as in the original). */
function requestParams(request: FastifyRequest): Record<string, string> {
  const body = request.body && typeof request.body === 'object' && !Array.isArray(request.body) ? request.body : {}
  const merged: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...(body as Record<string, unknown>), ...(request.query as Record<string, unknown>) })) {
    merged[key] = firstValue(value)
  }
  return merged
}

/** The first value of a query or form field (repeated fields arrive as arrays). */
export const firstValue = (value: unknown): string => String((Array.isArray(value) ? value[0] : value) ?? '')
/** A flag parameter (`distribute`, `fromListener`): the forms the original accepted as true. */
export const isTrue = (value: string | undefined) => ['1', 't', 'true', 'on'].includes((value ?? '').toLowerCase())

/** The `/v1/docker-flow-proxy/*` control API (inventory §2). Every method is accepted, as before. */
export async function proxyRoutes(app: FastifyInstance, { settings, applier, live, listener, distributor }: ProxyRoutesOptions): Promise<void> {
  /**
   * Applies a change here and, with `distribute=true`, on every other replica too. The answer
   * lists each replica's outcome; it is 500 when one failed, so the listener sends it again.
   */
  async function applyEverywhere(
    endpoint: string,
    params: Record<string, string>,
    change: Change | Change[],
    reply: FastifyReply,
    done: Record<string, unknown>,
    request?: { method: string; body: string },
  ) {
    const changes = Array.isArray(change) ? change : [change]
    if (!isTrue(params.distribute)) {
      await applier.apply(changes)
      return done
    }
    const [local, remote] = await Promise.allSettled([applier.apply(changes), distributor.send(endpoint, params, { ...request, authorization: reply.request.headers.authorization })])
    if (local.status === 'rejected') throw local.reason
    if (remote.status === 'rejected') {
      const message = remote.reason instanceof DistributeLookupError ? remote.reason.message : String(remote.reason)
      return reply.code(500).send(nok(message, done.ServiceName as string))
    }
    const replicas = remote.value.map(replicaFields)
    const failed = remote.value.filter((r) => !r.ok)
    if (failed.length > 0) {
      const message = `Could not send distribute request to the following addresses: [${failed.map((r) => r.address).join(' ')}]`
      return reply.code(500).send({ ...nok(message, done.ServiceName as string), Replicas: replicas })
    }
    const distributed = 'Distributed to all instances'
    return { ...done, Message: done.Message ? `${done.Message}; ${distributed}` : distributed, Replicas: replicas }
  }

  app.all('/reconfigure', async (request, reply) => {
    const params = requestParams(request)
    if (!forThisInstance(params, settings)) {
      return ok(`Ignored: proxyInstanceName ${JSON.stringify(params.proxyInstanceName ?? '')} is not ${JSON.stringify(settings.PROXY_INSTANCE_NAME)}`, params.serviceName)
    }
    const change = parseChange(params, parseOptions(settings))
    if (change.kind === 'remove') return applyEverywhere('reconfigure', params, change, reply, ok('replicas=0: the service was removed', change.serviceName))
    await checkAddress(change.service, settings)
    // serviceCert: the service's certificate, named after its first domain (or the service).
    const certs: Change[] = []
    let warning = ''
    if (params.serviceCert) {
      const pem = params.serviceCert.replaceAll('\\n', '\n')
      const checked = checkCertificate('serviceCert', pem)
      warning = checked.warning
      const domain = change.service.destinations[0]?.serviceDomain[0]?.replace(/^\*\./, 'wildcard.')
      const name = domain && !checkCertName(domain) ? domain : change.service.serviceName
      const problem = checkCertName(name)
      if (problem) throw errors.invalidParameter('serviceCert', `cannot be stored under the name ${JSON.stringify(name)}: it ${problem}`, name)
      certs.push({ kind: 'cert-put', name, pem })
    }
    return applyEverywhere('reconfigure', params, [...certs, change], reply, ok(warning, change.service.serviceName, serviceFields(change.service)))
  })

  app.all('/remove', async (request, reply) => {
    const params = requestParams(request)
    const serviceName = params.serviceName ?? ''
    if (serviceName === '') throw errors.removeNameMissing()
    // Always queued, so a remove that follows a pending reconfigure of the same service wins.
    const known = live.services.get(serviceName) !== undefined
    const done = ok(known ? '' : `${serviceName} was not configured, no reload required`, serviceName)
    return applyEverywhere('remove', params, { kind: 'remove', serviceName }, reply, done)
  })

  // With or without `recreate`, the configuration is rendered from the state: the live file
  // always is that rendering, so both reload the same text. `fromListener=true` instead asks
  // every listener to send its services again.
  app.all('/reload', async (request) => {
    if (isTrue(requestParams(request).fromListener)) {
      if (listener.addresses.length === 0) return ok('No listener is configured (LISTENER_ADDRESS)')
      const results = await listener.notifyAll()
      const failed = results.filter((r) => r.error)
      if (failed.length > 0) throw errors.listenerUnreachable(failed.map((r) => `${r.address}: ${r.error}`))
      return ok('Listeners asked to send their services again')
    }
    await applier.reload()
    return ok()
  })

  app.all('/successfulinitreload', async (_request, reply) => {
    if (listener.ready) return ok()
    return reply.code(503).send(nok('The services of the listener have not been applied yet'))
  })

  app.all('/config', async (request, reply) => {
    if ((requestParams(request).type ?? '').toLowerCase() === 'json') return live.services.toJSON()
    return reply.type('text/plain; charset=utf-8').send(live.config)
  })

  app.all('/ping', async () => ok())

  await app.register(certRoutes, { settings, live, applyEverywhere })
}

const replicaFields = (r: ReplicaOutcome) => ({ Address: r.address, Status: r.status ?? 0, Message: r.message, Attempts: r.attempts })
