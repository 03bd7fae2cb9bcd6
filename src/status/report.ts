import type { AcmeStatus } from '../acme/manager.js'
import type { StatRow } from '../haproxy/stats.js'
import { statType } from '../haproxy/stats.js'
import type { ReloadRecord } from '../metrics/index.js'
import { destinationBackends } from '../render/index.js'
import type { ServiceEntry } from '../state/registry.js'
import { type ServerState, serverState } from '../haproxy/server-state.js'
import type { Traffic } from './traffic.js'

/** A server of a backend as HAProxy reports it (`show stat`). */
export interface ServerHealth {
  name: string
  /** `UP`, `DOWN`, `MAINT`, `no check`, … (the CSV's `status`). */
  status: string
  /** Address HAProxy currently uses (`addr`), when it has one. */
  address: string
  /** Result of the last health check (`check_status`), when servers are checked. */
  check: string
  /** Seconds since the status last changed (`lastchg`). */
  sinceChange: number | null
  sessions: number
  /** Its weight as the worker runs it (`weight`: the `weight` parameter, or 1). */
  weight: number | null
  /** What its status and weight mean for traffic (src/haproxy/server-state.ts). */
  state: ServerState
}

export interface BackendHealth {
  name: string
  status: string
  servers: ServerHealth[]
  traffic: Traffic
}

export interface RouteStatus {
  index: number
  mode: string
  paths: string[]
  domains: string[]
  port: string
  srcPort: number | null
  backends: BackendHealth[]
}

export interface ServiceStatus {
  serviceName: string
  /** Where the definition came from: `api`, `listener` or `env`. */
  source: string
  routes: RouteStatus[]
  /** Its backends' traffic together (rates and totals summed, the busiest backend's time). */
  traffic: Traffic
}

/** Which part of the services a paged report holds (`q`, `page`, `perPage` given). */
export interface Paging {
  /** The search: services whose name, a path or a domain contains it (any case). */
  query: string
  page: number
  perPage: number
  /** Services matching the search; `total`: all services. */
  matched: number
  total: number
}

/** The status page's data; `GET /v1/docker-flow-proxy/status?type=json` returns it as is. */
export interface StatusReport {
  generatedAt: string
  haproxy: {
    /** False when the statistics could not be read (health is then unknown). */
    statsAvailable: boolean
    statsError?: string
    masterPid: number | null
    /** 1 after start, one more per confirmed reload. */
    workerGeneration: number
    lastReload: ReloadRecord | null
  }
  listener: { addresses: string[]; ready: boolean; lastSync: string | null }
  /** Present when the request asked for a page or a search; `services` is then that page. */
  paging?: Paging
  services: ServiceStatus[]
  /** Saved services HAProxy does not serve (yet): retried until it does (docs/guarantees.md). */
  unserved: Array<{ serviceName: string; reason: string; since: string }>
  /** Certificates services ask ACME for (docs/certs.md). */
  acme: AcmeStatusRow[]
}

export interface AcmeStatusRow {
  domains: string[]
  services: string[]
  state: AcmeStatus['state']
  issuer: string | null
  validTo: string | null
  nextAttempt: string | null
  failures: number
  lastError: string | null
}

export interface ReportInput {
  entries: ServiceEntry[]
  /** Saved services HAProxy does not serve, with the reason. */
  unserved?: Array<{ serviceName: string; reason: string; since: string }>
  stats: StatRow[] | undefined
  statsError?: string
  masterPid: number | undefined
  reloads: number
  lastReload: ReloadRecord | undefined
  listener: { addresses: string[]; ready: boolean; lastSync: number | undefined }
  acme?: AcmeStatus[]
  traffic?: ReadonlyMap<string, Traffic>
  paging?: Paging
}

const NO_TRAFFIC: Traffic = { requestsPerSecond: null, http5xxPerSecond: null, responseTimeMs: null, requestsTotal: null }

const sum = (values: Array<number | null>) => (values.every((v) => v === null) ? null : values.reduce<number>((a, v) => a + (v ?? 0), 0))

function together(traffic: Traffic[]): Traffic {
  if (traffic.length === 1) return traffic[0] as Traffic
  const busiest = [...traffic].sort((a, b) => (b.requestsTotal ?? 0) - (a.requestsTotal ?? 0))[0]
  return {
    requestsPerSecond: sum(traffic.map((t) => t.requestsPerSecond)),
    http5xxPerSecond: sum(traffic.map((t) => t.http5xxPerSecond)),
    responseTimeMs: busiest?.responseTimeMs ?? null,
    requestsTotal: sum(traffic.map((t) => t.requestsTotal)),
  }
}

/** Whether a service matches a search of the status page (lowercase `query`). */
export const matchesQuery = ({ service }: ServiceEntry, query: string): boolean =>
  query === '' ||
  service.serviceName.toLowerCase().includes(query) ||
  service.destinations.some((d) => d.servicePath.some((p) => p.toLowerCase().includes(query)) || d.serviceDomain.some((h) => h.toLowerCase().includes(query)))

const count = (value: string | undefined) => (value === undefined || value === '' ? null : Number(value))

/** Joins the desired state with HAProxy's statistics: each route with the health of its backends. */
export function buildStatusReport(input: ReportInput): StatusReport {
  const backends = new Map<string, BackendHealth>()
  for (const row of input.stats ?? []) {
    const name = row.pxname ?? ''
    if (row.type === statType.backend) {
      const backend = backends.get(name) ?? { name, status: '', servers: [], traffic: NO_TRAFFIC }
      backend.status = row.status ?? ''
      backend.traffic = input.traffic?.get(name) ?? NO_TRAFFIC
      backends.set(name, backend)
    } else if (row.type === statType.server) {
      const backend = backends.get(name) ?? { name, status: '', servers: [], traffic: NO_TRAFFIC }
      backend.servers.push({
        name: row.svname ?? '',
        status: row.status ?? '',
        address: row.addr ?? '',
        check: row.check_status ?? '',
        sinceChange: count(row.lastchg),
        sessions: count(row.scur) ?? 0,
        weight: count(row.weight),
        state: serverState(row.status ?? '', count(row.weight)),
      })
      backends.set(name, backend)
    }
  }
  const services = input.entries.map(({ service, source }) => {
    const routes = service.destinations.map((dest) => ({
      index: dest.index,
      mode: dest.reqMode,
      paths: dest.servicePath,
      domains: dest.serviceDomain,
      port: dest.port,
      srcPort: dest.srcPort ?? null,
      backends: destinationBackends(service, dest).flatMap((name) => {
        const found = backends.get(name)
        return found ? [found] : []
      }),
    }))
    const traffic = routes.flatMap((r) => r.backends.map((b) => b.traffic))
    return { serviceName: service.serviceName, source, routes, traffic: traffic.length > 0 ? together(traffic) : NO_TRAFFIC }
  })
  return {
    generatedAt: new Date().toISOString(),
    haproxy: {
      statsAvailable: input.stats !== undefined,
      ...(input.statsError ? { statsError: input.statsError } : {}),
      masterPid: input.masterPid ?? null,
      workerGeneration: input.reloads + 1,
      lastReload: input.lastReload ?? null,
    },
    listener: {
      addresses: input.listener.addresses,
      ready: input.listener.ready,
      lastSync: input.listener.lastSync === undefined ? null : new Date(input.listener.lastSync).toISOString(),
    },
    ...(input.paging ? { paging: input.paging } : {}),
    services,
    unserved: input.unserved ?? [],
    acme: (input.acme ?? []).map((a) => ({
      domains: a.domains,
      services: a.services,
      state: a.state,
      issuer: a.certificate?.issuer ?? null,
      validTo: a.certificate ? new Date(a.certificate.notAfter).toISOString() : null,
      nextAttempt: a.nextAttemptAt === undefined ? null : new Date(a.nextAttemptAt).toISOString(),
      failures: a.failures,
      lastError: a.lastError ?? null,
    })),
  }
}
