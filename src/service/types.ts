/**
 * How a destination is routed: rules in `frontend services` (http), its own `tcpFE_<srcPort>` or
 * TCP group (tcp), or by TLS server name in `frontend service_<srcPort>` (sni).
 */
export type ReqMode = 'http' | 'tcp' | 'sni'

/** One route of a service (inventory §3.4). `index` is N of `param.N`, 0 when not indexed. */
export interface Destination {
  index: number
  reqMode: ReqMode
  /** Port of the service's tasks; '' only on indexed destinations that route nothing. */
  port: string
  /** http: an extra `dst_port` condition; tcp: the port the frontend binds. */
  srcPort?: number
  servicePath: string[]
  pathType: string
  servicePathExclude: string[]
  serviceDomain: string[]
  /** Host of the server line; the service name when absent. */
  outboundHostname?: string
  /** `search,replace` pairs applied with regsub, in order. */
  reqPathSearchReplace: Array<[search: string, replace: string]>
  timeoutServer?: string
  timeoutTunnel?: string
  /** Redirect plain-HTTP requests of this destination to HTTPS (its backend's first rule). */
  httpsOnly: boolean
  /** Status of the HTTPS redirects (301, 302, 303, 307 or 308); HAProxy's 302 when absent. */
  httpsRedirectCode?: string
  /** Only these methods pass (others get 403). */
  allowedMethods: string[]
  /** These methods get 403. */
  deniedMethods: string[]
  /** Plain-HTTP requests get 403 (the backend only serves TLS connections). */
  denyHttp: boolean
  /** No authentication on this destination, whatever the service or USERS say. */
  ignoreAuthorization: boolean
  /** The service speaks TLS: servers get ` ssl verify none`. */
  sslVerifyNone: boolean
  /** tcp: `timeout client <v>s` of its frontend (from the first destination on that port). */
  timeoutClient?: string
  /** tcp: TCP keep-alive towards clients (`option clitcpka`, first destination on the port). */
  clitcpka: boolean
  /** tcp: health checks (`option tcp-check`, ` check` on the server). */
  checkTcp: boolean
  /** http: a second backend `https-<aclName>-be<httpsPort>_<index>` for requests on srcHttpsPort. */
  httpsPort?: number
  /** http: the port HTTPS requests arrive on (443 when httpsPort is set). */
  srcHttpsPort?: number
  /** http: `Header:value` pairs that must all match, sorted by header name. */
  serviceHeader: Array<[name: string, value: string]>
  /** http: substrings of User-Agent; one must match. */
  userAgent: string[]
  /** Hosts redirected (301) to the first serviceDomain. */
  redirectFromDomain: string[]
  /** http: only clients with a valid certificate (CA_FILE) pass. */
  verifyClientSsl: boolean
  /** tcp: member of the TCP group `listen tcpListen_<serviceGroup>_<srcPort>` instead of a tcpFE. */
  serviceGroup?: string
  /** tcp group: `balance <balanceGroup>` (the first member in frontend order sets it). */
  balanceGroup?: string
  /** Free text for custom templates. */
  userDef?: string
}

/** A user of an HAProxy userlist; `encrypted`: the password is a crypt(3) hash. */
export interface User {
  name: string
  password: string
  encrypted: boolean
}

/** Header rules of a service's http backends, in the original's order (inventory §5.6). */
export interface HeaderRules {
  addReqHeader: string[]
  setReqHeader: string[]
  addResHeader: string[]
  setResHeader: string[]
  delReqHeader: string[]
  delResHeader: string[]
}

/** A service as the proxy stores it: service-level settings and 1..10 destinations. */
export interface Service {
  serviceName: string
  /** Prefix of every ACL and backend name (inventory §5.8); equals serviceName for now. */
  aclName: string
  /** Fetch for domain ACLs; the SERVICE_DOMAIN_ALGO setting when absent. */
  serviceDomainAlgo?: string
  isDefaultBackend: boolean
  /** Redirect to HTTPS when X-Forwarded-Proto is http (TLS ended before the proxy). */
  redirectWhenHttpProto: boolean
  /** Redirect to HTTPS unless X-Forwarded-Proto is https. */
  redirectUnlessHttpsProto: boolean
  /** `compression algo` (and `compression type`) in the service's http backends. */
  compressionAlgo?: string
  compressionType?: string
  /** Health checks on the servers (` check`), names resolved through `resolvers docker`. */
  checkResolvers: boolean
  /** `DNS`: one `server-template` on the host, with `replicas` slots. */
  discoveryType?: 'DNS'
  /** Slots of the server-template (DNS discovery, sticky sessions; kept only with those); absent: a default. */
  replicas?: number
  /** `sticky-server`: a cookie binds each client to one task. */
  sessionType?: 'sticky-server'
  /** The proxy instance the service is meant for (FILTER_PROXY_INSTANCE_NAME). */
  proxyInstanceName?: string
  /** Free text for custom templates. */
  userDef?: string
  /** Rendered `templateFePath`: replaces the service's generated rules in `frontend services`. */
  customFrontend?: string
  /** Rendered `templateBePath`: replaces the service's generated backends. */
  customBackend?: string
  /** Deprecated single rewrite, applied before reqPathSearchReplace. */
  reqPathSearch?: string
  reqPathReplace?: string
  headers: HeaderRules
  /** `option <connectionMode>` in its http backends. */
  connectionMode?: string
  /** A line of the user's own appended to each of its backends. */
  backendExtra?: string
  /** Users allowed on its http backends (`users`, `usersSecret`); they replace USERS for it. */
  users: User[]
  destinations: Destination[]
}
