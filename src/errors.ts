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
  ) {
    super(message)
    this.name = 'DfpError'
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
   * The change was live but the state could not be saved, so it would not survive a restart: it
   * was rolled back (docs/architecture.md "A 200 is durable").
   */
  stateNotSaved: (detail: string, service?: string) =>
    new DfpError('DFP_STATE_NOT_SAVED', 503, `The state could not be saved (${detail}); the change was rolled back`, service),
  shuttingDown: () => new DfpError('DFP_SHUTTING_DOWN', 503, 'The proxy is shutting down'),
  /** `/reload?fromListener=true` could not reach every listener (failures joined as the original did). */
  listenerUnreachable: (failures: string[]) => new DfpError('DFP_LISTENER_UNREACHABLE', 500, failures.join(' ,')),
} as const
