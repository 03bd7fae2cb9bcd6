/** What an error adds to its answer besides status and message. */
export interface ErrorExtras {
  /** Response headers (the Basic challenge of a 401, `Allow` of a 405). */
  headers?: Readonly<Record<string, string>>
  /** Fields after `Status`, `Message` and `ServiceName` in the body (a distributed request's `Replicas`). */
  fields?: Readonly<Record<string, unknown>>
}

/**
 * Every error the API can answer with: a stable code, its HTTP status and message.
 * Routes throw these; the error handler in app.ts renders them in DFP's
 * `{"Status":"NOK","Message":…}` shape. Retired codes are never reused.
 */
export class DfpError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    readonly serviceName?: string,
    readonly extras: ErrorExtras = {},
  ) {
    super(message)
    this.name = 'DfpError'
  }

  /** The answer's body in DFP's shape. */
  body(): Record<string, unknown> {
    return { Status: 'NOK', Message: this.message, ...(this.serviceName === undefined ? {} : { ServiceName: this.serviceName }), ...this.extras.fields }
  }
}

export const errors = {
  /** inventory §3.5 check 1 (message kept verbatim for clients that match on it) */
  serviceNameMissing: () => new DfpError('DFP_SERVICE_NAME_MISSING', 400, 'serviceName parameter is mandatory.'),
  /** inventory §3.5 check 2, http: the listener stops retrying on 409 */
  httpWithoutPathOrDomain: (service: string) =>
    new DfpError('DFP_HTTP_ROUTE_MISSING', 409, 'When using reqMode http, servicePath or serviceDomain are mandatory', service),
  /** inventory §3.5 check 2, other modes */
  tcpWithoutPorts: (service: string) =>
    new DfpError('DFP_TCP_PORTS_MISSING', 400, 'When NOT using reqMode http (e.g. tcp), srcPort and port parameters are mandatory.', service),
  /** inventory §3.5 check 3 */
  portMissing: (service: string) =>
    new DfpError('DFP_PORT_MISSING', 400, 'When MODE is set to "service" or "swarm", the port query is mandatory', service),
  invalidParameter: (param: string, problem: string, service?: string) =>
    new DfpError('DFP_INVALID_PARAMETER', 400, `${param}: ${problem}`, service),
  /** The service would generate a backend or ACL name another service already has (D3, D18). */
  nameTaken: (service: string, name: string, owner: string) =>
    new DfpError('DFP_NAME_TAKEN', 409, `${service} would generate ${name}, which service ${owner} already uses: give one of them another aclName`, service),
  /** A tcp/sni/TCP-group destination on a srcPort another kind of section binds (D12). */
  portTaken: (service: string, port: number, section: string, ownerSection: string, owner: string) =>
    new DfpError(
      'DFP_PORT_TAKEN',
      409,
      `${service} would bind srcPort ${port} with ${section}, but ${ownerSection} of service ${owner} binds it: a tcp, an sni and a TCP-group section cannot share a port`,
      service,
    ),
  removeNameMissing: () => new DfpError('DFP_REMOVE_NAME_MISSING', 400, 'The serviceName query is mandatory'),
  /** HAProxy refused the candidate configuration; the message carries its own error line. */
  rejectedByHaproxy: (service: string, line: string) =>
    new DfpError('DFP_REJECTED_BY_HAPROXY', 400, `HAProxy rejected the configuration of ${service}: ${line}`, service),
  /** The validated configuration could not be made live (for example a port already in use). */
  reloadFailed: (detail: string, service?: string) =>
    new DfpError('DFP_RELOAD_FAILED', 500, `HAProxy could not load the new configuration: ${detail}`, service),
  /** SKIP_ADDRESS_VALIDATION=false and the service's host does not resolve (yet). */
  addressUnresolved: (param: string, host: string, reason: string, service: string) =>
    new DfpError('DFP_ADDRESS_UNRESOLVED', 503, `${param}: ${host} does not resolve (${reason}); SKIP_ADDRESS_VALIDATION=false asks for a name that resolves`, service),
  /**
   * The validator or HAProxy died or timed out while a change was checked or loaded: no verdict
   * on the change, which was not applied (the previous state is kept whole); it may be sent again.
   */
  haproxyUnavailable: (detail: string, service?: string) =>
    new DfpError('DFP_HAPROXY_UNAVAILABLE', 503, `HAProxy could not check or load the configuration, try again: ${detail}`, service),
  /**
   * The state could not be saved, so the change would not survive a restart: it was not made
   * live, or rolled back (docs/guarantees.md "A full disk").
   */
  stateNotSaved: (detail: string, service?: string) =>
    new DfpError('DFP_STATE_NOT_SAVED', 503, `The state could not be saved (${detail}); the change was not applied`, service),
  shuttingDown: () => new DfpError('DFP_SHUTTING_DOWN', 503, 'The proxy is shutting down'),
  /** MAX_PENDING_CHANGES change requests are waiting already: nothing of this one was applied. */
  tooManyPending: (limit: number, service?: string) =>
    new DfpError('DFP_TOO_MANY_PENDING', 503, `${limit} changes are waiting to be applied (MAX_PENDING_CHANGES); this one was not applied, try again`, service, { headers: { 'Retry-After': '1' } }),
  /** `/reload?fromListener=true` could not reach every listener (failures joined as the original did). */
  listenerUnreachable: (failures: string[]) => new DfpError('DFP_LISTENER_UNREACHABLE', 500, failures.join(' ,')),
  /** A certificate (`PUT /cert` body, `serviceCert`) that does not parse, has no matching key or an encrypted one. */
  invalidCertificate: (param: string, problem: string, service?: string) => new DfpError('DFP_INVALID_CERTIFICATE', 400, `${param}: ${problem}`, service),
  /** API_USERS is set and the request has no valid `Authorization: Basic` credentials (RFC 7617). */
  authenticationRequired: () =>
    new DfpError('DFP_AUTHENTICATION_REQUIRED', 401, 'Authentication required: send the credentials of an API_USERS user', undefined, {
      headers: { 'www-authenticate': 'Basic realm="dfp", charset="UTF-8"' },
    }),
  /** `/cert` takes PUT only; the original answered other methods with `Certs: null`. */
  certMethodNotAllowed: () =>
    new DfpError('DFP_METHOD_NOT_ALLOWED', 405, 'Use PUT to upload a certificate', undefined, { headers: { allow: 'PUT' }, fields: { Certs: null } }),
  /** `successfulinitreload` before the listener's services were applied. */
  notReady: () => new DfpError('DFP_NOT_READY', 503, 'The services of the listener have not been applied yet'),
  /** A starting replica has not yet taken the API services and uploaded certificates of a peer (src/swarm/peer-sync.ts). */
  peersNotTaken: () => new DfpError('DFP_PEERS_NOT_TAKEN', 503, 'The state of the other replicas has not been taken yet'),
  /** `distribute=true` and `tasks.<SERVICE_NAME>` does not resolve (the original's message plus the resolver's error). */
  replicaLookupFailed: (message: string, service?: string) => new DfpError('DFP_REPLICA_LOOKUP_FAILED', 500, message, service),
  /** `distribute=true` and some replicas did not take the request (the answer lists every replica's outcome). */
  replicasFailed: (addresses: string[], replicas: unknown[], service?: string) =>
    new DfpError('DFP_REPLICAS_FAILED', 500, `Could not send distribute request to the following addresses: [${addresses.join(' ')}]`, service, { fields: { Replicas: replicas } }),
  /** `/v1/docker-flow-proxy/metrics`: the statistics of this or another replica could not be read. */
  statisticsUnavailable: (detail: string) => new DfpError('DFP_STATISTICS_UNAVAILABLE', 500, `Could not collect HAProxy statistics: ${detail}`),
  /** No route has this method and path. */
  routeNotFound: (method: string, path: string) => new DfpError('DFP_NOT_FOUND', 404, `${method} ${path} not found`),
  /** A request Fastify itself refused (a body over the limit, an unsupported content type): its status and message. */
  requestRefused: (statusCode: number, message: string) => new DfpError('DFP_REQUEST_REFUSED', statusCode, message),
  /** HAProxy did not take an ACME challenge answer (its Runtime API said why). */
  acmeChallengeRefused: (detail: string) => new DfpError('DFP_ACME_CHALLENGE_REFUSED', 503, `the challenge answer could not be published: ${detail}`),
  /** `POST /acme/share` for an address that is not another replica of tasks.<SERVICE_NAME>. */
  notAReplica: (address: string) => new DfpError('DFP_NOT_A_REPLICA', 403, `${address} is not a replica of this proxy service: certificates are only sent to replicas`),
  /** Anything unexpected: details go to the log, not to the client. */
  internal: () => new DfpError('DFP_INTERNAL', 500, 'Internal error'),
} as const

/** The message of anything thrown: an Error's message, or the thrown value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
