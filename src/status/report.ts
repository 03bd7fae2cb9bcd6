import type { AcmeStatus } from '../acme/manager.js'
import type { StatRow } from '../haproxy/stats.js'
import { statType } from '../haproxy/stats.js'
import type { ReloadRecord } from '../metrics/index.js'
import { destinationBackends } from '../render/index.js'
import type { ServiceEntry } from '../state/registry.js'

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
}

export interface BackendHealth {
  name: string
  status: string
  servers: ServerHealth[]
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
}

const count = (value: string | undefined) => (value === undefined || value === '' ? null : Number(value))

/** Joins the desired state with HAProxy's statistics: each route with the health of its backends. */
export function buildStatusReport(input: ReportInput): StatusReport {
  const backends = new Map<string, BackendHealth>()
  for (const row of input.stats ?? []) {
    const name = row.pxname ?? ''
    if (row.type === statType.backend) {
      const backend = backends.get(name) ?? { name, status: '', servers: [] }
      backend.status = row.status ?? ''
      backends.set(name, backend)
    } else if (row.type === statType.server) {
      const backend = backends.get(name) ?? { name, status: '', servers: [] }
      backend.servers.push({
        name: row.svname ?? '',
        status: row.status ?? '',
        address: row.addr ?? '',
        check: row.check_status ?? '',
        sinceChange: count(row.lastchg),
        sessions: count(row.scur) ?? 0,
      })
      backends.set(name, backend)
    }
  }
  const services = input.entries.map(({ service, source }) => ({
    serviceName: service.serviceName,
    source,
    routes: service.destinations.map((dest) => ({
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
    })),
  }))
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
