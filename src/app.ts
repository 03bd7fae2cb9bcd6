import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { type FastifyError, type FastifyRequest } from 'fastify'
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
import { isReplicaToken, PEER_STATE_PATH, type PeerSync, REPLICA_TOKEN_HEADER } from './swarm/peer-sync.js'
import { peerStateRoutes } from './routes/peer-state.js'
import { ok } from './routes/responses.js'

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
  peerSync: PeerSync
  acme: Acme
}

const prefix = '/v1/docker-flow-proxy'
/** Endpoints whose requests are logged and counted one by one, with their action. */
const changeEndpoints = new Map([
  [`${prefix}/reconfigure`, 'reconfigure'],
  [`${prefix}/remove`, 'remove'],
  [`${prefix}/reload`, 'reload'],
])

/**
 * How long the API waits on a client, so idle or slow connections cannot pile up (docs/usage.md
 * "API timeouts"). None bounds the time a handler takes: a reconfigure waits for HAProxy, whose
 * check and reload have limits of their own (docs/config.md "Limits"), and is always answered.
 */
export const apiTimeouts = {
  /** A connection that has not sent a byte of a request, or is idle between requests. */
  idleMs: 10_000,
  /** From the connection (or the previous request) to the end of the request's headers. */
  headersMs: 10_000,
  /** The whole request, body included. */
  requestMs: 30_000,
  /** A keep-alive connection after its last answer. */
  keepAliveMs: 5_000,
  /** How often Node checks the two above. */
  checkEveryMs: 1_000,
} as const

/**
 * Closes connections that stay silent: Node's header and request timeouts only start with the
 * first byte. A request whose handler is still working (a reconfigure waiting for `haproxy -c`
 * and the reload) is never cut: the apply's own limits answer it (docs/config.md "Limits").
 * The silence is watched through the server's `timeout` event: with a listener there, Node
 * leaves the socket to it (without one, Node destroys every socket that times out, busy or not:
 * the empty reply at 10 s of issue 20).
 */
function closeIdleConnections(server: Server, idleMs: number, sweepMs: number): void {
  const inFlight = new WeakMap<Socket, number>()
  // When each open socket last sent or was answered: the sweep below, should a socket's own
  // timeout event not come (a CI run once kept an idle connection open for 60 s).
  const lastActive = new Map<Socket, number>()
  server.on('request', (request, response) => {
    const socket = request.socket
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1)
    response.once('close', () => {
      inFlight.set(socket, (inFlight.get(socket) ?? 1) - 1)
      if (lastActive.has(socket)) lastActive.set(socket, Date.now())
    })
  })
  server.on('connection', (socket: Socket) => {
    socket.setTimeout(idleMs)
    lastActive.set(socket, Date.now())
    socket.on('data', () => lastActive.set(socket, Date.now()))
    socket.once('close', () => lastActive.delete(socket))
  })
  server.on('timeout', (socket: Socket) => {
    if (!inFlight.get(socket)) socket.destroy()
  })
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [socket, at] of lastActive) if (now - at > idleMs + sweepMs && !inFlight.get(socket)) socket.destroy()
  }, sweepMs).unref()
  server.once('close', () => clearInterval(sweep))
}

/** Builds the control API. Listening is main.ts's job; tests use this with `inject` or port 0. */
export function buildApp({ settings, applier, live, haproxy, metrics, logger, listener, distributor, peerSync, acme }: AppOptions) {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: 1024 * 1024,
    requestTimeout: apiTimeouts.requestMs,
    keepAliveTimeout: apiTimeouts.keepAliveMs,
    http: { headersTimeout: apiTimeouts.headersMs, connectionsCheckingInterval: apiTimeouts.checkEveryMs },
  })
  closeIdleConnections(app.server, apiTimeouts.idleMs, apiTimeouts.checkEveryMs)

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
    // Another replica proves itself with the token derived from API_USERS (it may hold only hashes).
    const isReplica = (request: FastifyRequest) => request.routeOptions.url === PEER_STATE_PATH && isReplicaToken(settings.API_USERS, request.headers[REPLICA_TOKEN_HEADER])
    app.addHook('onRequest', auth.hook((request) => open.has(request.routeOptions.url ?? '') || isReplica(request)))
  }

  // The original's test endpoints, which some clients call to see that the proxy answers.
  for (const version of ['v1', 'v2']) app.all(`/${version}/test`, async () => ok(`Test ${version}`))

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

  app.register(proxyRoutes, { prefix, settings, applier, live, listener, distributor, peerSync, acme: acme.manager, pending: metrics.pendingChanges })
  app.register(peerStateRoutes, { live })
  app.register(acmeRoutes, { prefix, live, acme: acme.manager, challenges: acme.challenges, replicas: acme.replicas })
  app.register(statusRoutes, { prefix, applier, live, haproxy, metrics, listener, acme: acme.manager })
  app.register(metricsRoutes, { haproxy, metrics, distributor })

  return app
}
