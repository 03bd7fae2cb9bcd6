import type { FastifyInstance } from 'fastify'
import { redactConfig } from '../haproxy/redact.js'
import { withoutPasswords } from '../service/public.js'
import { checkCertName } from '../pem.js'
import { errors } from '../errors.js'
import { isTrue } from '../field-values.js'
import type { ApplyCore } from '../apply/core.js'
import { checkAddress, forThisInstance } from '../service/instance.js'
import { parseChange } from '../service/params.js'
import { addressCount, unsizedTemplateHost } from '../service/template-slots.js'
import type { Settings } from '../settings.js'
import type { LiveState } from '../state/live.js'
import type { Change } from '../state/registry.js'
import type { Distributor } from '../swarm/distribute.js'
import type { ListenerSync } from '../swarm/listener.js'
import type { AcmeManager } from '../acme/manager.js'
import { certRoutes, checkCertificate } from './certs.js'
import { applyChangesWith } from './distributed.js'
import { requestParams } from './request-params.js'
import { ok, serviceFields } from './responses.js'

/** `/config?type=json`: the services by name, passwords left out; a saved one HAProxy does not serve (yet) carries `notServed`. */
export type ConfigAnswer = Record<string, ReturnType<typeof withoutPasswords> & { notServed?: { reason: string; since: string } }>

export interface ProxyRoutesOptions {
  settings: Settings
  applier: ApplyCore
  live: LiveState
  listener: ListenerSync
  distributor: Distributor
  /** Ready once a starting replica has taken its peers' state (src/swarm/peer-sync.ts). */
  peerSync: { ready: boolean }
  acme: Pick<AcmeManager, 'status'>
  /** Where the number of change requests waiting to be applied is shown (`dfp_pending_changes`). */
  pending?: { set(value: number): void }
}

/** The `/v1/docker-flow-proxy/*` control API (inventory §2). Every method is accepted, as before. */
export async function proxyRoutes(app: FastifyInstance, { settings, applier, live, listener, distributor, peerSync, acme, pending }: ProxyRoutesOptions): Promise<void> {
  const applyChanges = applyChangesWith(applier, distributor, { max: settings.MAX_PENDING_CHANGES, gauge: pending })

  app.all('/reconfigure', async (request) => {
    const params = requestParams(request)
    if (!forThisInstance(params, settings)) {
      return ok(`Ignored: proxyInstanceName ${JSON.stringify(params.proxyInstanceName ?? '')} is not ${JSON.stringify(settings.PROXY_INSTANCE_NAME)}`, params.serviceName)
    }
    const forReplicas = { kind: 'form' as const, endpoint: 'reconfigure', params }
    let change = parseChange(params, settings.PARSE_OPTIONS)
    if (change.kind === 'remove') return applyChanges({ request, changes: [change], forReplicas, done: ok('replicas=0: the service was removed', change.serviceName) })
    await checkAddress(change.service, settings)
    // A server-template without `replicas` gets as many slots as its name has addresses now (kept
    // as the service's `replicas`, so a restart renders the same without a lookup); replicas
    // sized by their own lookup.
    const templateHost = unsizedTemplateHost(change.service)
    const slots = templateHost === undefined ? undefined : await addressCount(templateHost, settings.DNS_SERVERS)
    if (slots !== undefined) {
      const sized = parseChange({ ...params, replicas: String(slots) }, settings.PARSE_OPTIONS)
      if (sized.kind === 'put') change = sized
    }
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
    return applyChanges({ request, changes: [...certs, change], forReplicas, done: ok(warning, change.service.serviceName, serviceFields(change.service)) })
  })

  app.all('/remove', async (request) => {
    const params = requestParams(request)
    const serviceName = params.serviceName ?? ''
    if (serviceName === '') throw errors.removeNameMissing()
    // Always queued, so a remove that follows a pending reconfigure of the same service wins.
    const known = live.services.get(serviceName) !== undefined
    const done = ok(known ? '' : `${serviceName} was not configured, no reload required`, serviceName)
    return applyChanges({ request, changes: [{ kind: 'remove', serviceName }], forReplicas: { kind: 'form', endpoint: 'remove', params }, done })
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

  app.all('/successfulinitreload', async () => {
    if (!listener.ready) throw errors.notReady()
    if (!peerSync.ready) throw errors.peersNotTaken()
    return ok()
  })

  app.all('/config', async (request, reply) => {
    if ((requestParams(request).type ?? '').toLowerCase() === 'json') {
      // Saved services HAProxy does not serve (yet) are listed too, with the reason.
      const unserved = [...live.unserved].map(([name, { change, reason, since }]) => [name, { ...withoutPasswords(change.service), notServed: { reason, since } }])
      const answer: ConfigAnswer = { ...live.services.toJSON(), ...Object.fromEntries(unserved) }
      return answer
    }
    // Passwords are blanked (src/haproxy/redact.ts); the lines stay, so the text reads as HAProxy's.
    return reply.type('text/plain; charset=utf-8').send(redactConfig(live.config))
  })

  app.all('/ping', async () => ok())

  await app.register(certRoutes, { settings, live, applyChanges, acme })
}
