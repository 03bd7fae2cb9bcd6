/** How a destination is routed: rules in `frontend services`, or its own `tcpFE_<srcPort>`. */
export type ReqMode = 'http' | 'tcp'

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
  /** Deprecated single rewrite, applied before reqPathSearchReplace. */
  reqPathSearch?: string
  reqPathReplace?: string
  destinations: Destination[]
}
