import { messageOf } from '../errors.js'
import type { Logger } from 'pino'
import type { Settings } from '../settings.js'
import { type Change, type ServiceEntry, ServiceState } from '../state/registry.js'
import type { HaproxyClient } from '../haproxy/client.js'
import { ChallengeMap } from './challenge-map.js'
import { AcmeManager } from './manager.js'
import { trustDirectoryCa } from './order.js'
import { AcmeReplicas, type ReplicaDirectory } from './replicas.js'
import { acmeRequestOf, type AcmeRequest, wantsAcme } from '../service/acme-request.js'
import { AcmeStore } from './store.js'

export interface AcmeWiring {
  /** Makes changes live (the apply loop); resolves once HAProxy serves them. */
  apply: (changes: Change[]) => Promise<void>
  directory: ReplicaDirectory
  /** The running HAProxy's Runtime API (challenge answers). */
  haproxy: Pick<HaproxyClient, 'send'>
}

/** The certificate a service asks for, if any; a request that no longer parses is logged and left out. */
function requestOf(entry: ServiceEntry, settings: Pick<Settings, 'ACME_EMAIL'>, log: Logger): AcmeRequest | undefined {
  const { service, params } = entry
  if (!wantsAcme(params)) return undefined
  try {
    return acmeRequestOf(service.serviceName, params, service.destinations.flatMap((d) => d.serviceDomain), settings.ACME_EMAIL)
  } catch (err) {
    log.warn({ service: service.serviceName, error: messageOf(err) }, 'ACME request of a service skipped')
    return undefined
  }
}

/**
 * The certificates the services of each live state ask for, by service name, kept from one
 * state to the next through the services that changed (`ServiceState.changedSince`): at 10 000
 * services, asking every service again on each change cost more than the change.
 */
export class AcmeRequests {
  private state = ServiceState.empty()
  private readonly byService = new Map<string, AcmeRequest>()

  constructor(
    private readonly settings: Pick<Settings, 'ACME_EMAIL'>,
    private readonly log: Logger,
  ) {}

  /** The requests of `state`, sorted by service name. */
  of(state: ServiceState): AcmeRequest[] {
    const changed = state.changedSince(this.state)
    if (!changed) this.byService.clear()
    for (const name of changed ?? state.entryMap.keys()) {
      const entry = state.entryMap.get(name)
      const request = entry && requestOf(entry, this.settings, this.log)
      if (request) this.byService.set(name, request)
      else this.byService.delete(name)
    }
    this.state = state
    return [...this.byService].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, request]) => request)
  }
}

/**
 * The credentials of the calls replicas make to each other on their own: REPLICA_USER, else the
 * first API_USERS entry with a clear-text password; none without API_USERS.
 */
export function replicaAuthorization(settings: Pick<Settings, 'API_USERS' | 'REPLICA_USER'>): string | undefined {
  const users = settings.API_USERS
  if (users.length === 0) return undefined
  const plain = users.find((user) => !user.hashed)
  const credentials = settings.REPLICA_USER || (plain ? `${plain.name}:${plain.password}` : '')
  return credentials ? `Basic ${Buffer.from(credentials).toString('base64')}` : undefined
}

/** ACME wired to the daemon: challenge map, store, replica rule and the manager. */
export function createAcme(settings: Settings, logger: Logger, { apply, directory, haproxy }: AcmeWiring) {
  const log = logger.child({ component: 'acme' })
  trustDirectoryCa(settings.ACME_CA_FILE)
  const challenges = new ChallengeMap(settings.CONFIG_DIR, haproxy, log)
  const authorization = replicaAuthorization(settings)
  if (!authorization && settings.API_USERS.length > 0) log.warn('API_USERS has only hashed passwords and REPLICA_USER is not set: replicas cannot share ACME certificates and challenges')
  const replicas = new AcmeReplicas(directory, log, authorization)
  const requests = new AcmeRequests(settings, log)
  const manager = new AcmeManager({
    directoryUrl: settings.ACME_DIRECTORY_URL,
    store: new AcmeStore(settings.CONFIG_DIR, log),
    replicas,
    challenges,
    install: (views) => apply(views.map((view) => ({ kind: 'acme-put', name: view.name, pem: view.pem }))),
    log,
    retryMinMs: settings.ACME_RETRY_MIN * 1000,
  })
  return {
    manager,
    challenges,
    replicas,
    /** Writes the empty challenge map and returns the saved certificates as changes for HAProxy's first load. */
    async load(): Promise<Change[]> {
      await challenges.init()
      return (await manager.load()).map((view) => ({ kind: 'acme-put' as const, name: view.name, pem: view.pem }))
    },
    /** Called with every state that became live. */
    stateLive(state: ServiceState): void {
      manager.setRequests(requests.of(state))
    },
    close: () => manager.close(),
  }
}

export type Acme = ReturnType<typeof createAcme>
