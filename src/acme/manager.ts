import type { Logger } from 'pino'
import { describeAcmeError, newAccountKey, orderCertificate, type ChallengePublisher } from './order.js'
import type { AcmeReplicas } from './replicas.js'
import { domainSetKey, type AcmeRequest } from '../service/acme-request.js'
import { dueFor, RETRY_MIN_MS, retryAt } from './schedule.js'
import { viewOf, type AcmeAccount, type AcmeCertificate, type AcmeCertificateView, type AcmeStore } from './store.js'

export interface AcmeManagerOptions {
  directoryUrl: string
  store: Pick<AcmeStore, 'load' | 'save'>
  replicas: Pick<AcmeReplicas, 'askPeersToShare' | 'orderer' | 'shareChallenge' | 'pushCertificates'>
  /** This replica's challenge answers (the HAProxy map). */
  challenges: ChallengePublisher
  /** Serves certificates: a change through the apply loop, resolved once HAProxy serves it. */
  install: (certificates: AcmeCertificateView[]) => Promise<void>
  log: Logger
  /** First retry delay after a failed order (doubles per failure). */
  retryMinMs?: number
  now?: () => number
  /** The ACME protocol; acme-client's (`orderCertificate`) unless a unit test gives another. */
  order?: typeof orderCertificate
  /** A new account key; ECDSA P-256 unless a unit test gives another. */
  accountKey?: () => Promise<string>
}

/** What `/certs`, the status page and `/metrics` tell about one requested certificate. */
export interface AcmeStatus {
  domains: string[]
  services: string[]
  certificate?: Pick<AcmeCertificateView, 'name' | 'issuer' | 'notBefore' | 'notAfter' | 'fingerprint'>
  state: 'valid' | 'ordering' | 'failed' | 'waiting'
  /** When dfp next acts on it: renewal, retry, or a check for the orderer's certificate. */
  nextAttemptAt?: number
  failures: number
  lastError?: string
}

// A replica that does not order checks again this long after asking its peers for a certificate.
const WAIT_FOR_ORDERER_MS = 30_000
// Timers further away than this are re-armed (setTimeout's limit is about 24.8 days).
const MAX_TIMER_MS = 24 * 3600_000

/**
 * Keeps a certificate for every requested domain set: loads what was issued before, orders what is
 * missing (on the replica that orders, see AcmeReplicas), renews at a third of the lifetime left,
 * backs off after failures, and never runs two orders for one domain set.
 */
export class AcmeManager {
  private accounts: AcmeAccount[] = []
  private readonly certificates = new Map<string, AcmeCertificateView>()
  private readonly failures = new Map<string, { failures: number; lastFailureAt: number; error: string }>()
  private readonly waitingUntil = new Map<string, number>()
  private readonly inFlight = new Map<string, Promise<void>>()
  private readonly accountsMade = new Map<string, Promise<AcmeAccount>>()
  private requests = new Map<string, AcmeRequest[]>()
  private timer?: NodeJS.Timeout
  private closed = false
  private saving: Promise<void> = Promise.resolve()
  /** Orders sent to the ACME server, by outcome. */
  readonly orders = { issued: 0, failed: 0 }
  private readonly now: () => number

  constructor(private readonly options: AcmeManagerOptions) {
    this.now = options.now ?? Date.now
  }

  /** The saved certificates, served from the start (before any order or renewal). */
  async load(): Promise<AcmeCertificateView[]> {
    const saved = await this.options.store.load()
    this.accounts = saved.accounts
    for (const certificate of saved.certificates) this.certificates.set(certificate.key, certificate)
    for (const { key, ...failure } of saved.failures) this.failures.set(key, failure)
    return saved.certificates
  }

  /** The domain sets the services ask for now; each is evaluated (ordered, renewed or left). */
  setRequests(requests: readonly AcmeRequest[]): void {
    const next = new Map<string, AcmeRequest[]>()
    for (const request of requests) {
      const key = domainSetKey(request.domains)
      next.set(key, [...(next.get(key) ?? []), request])
    }
    this.requests = next
    this.evaluate()
  }

  /** Certificates from a peer: those newer than ours are adopted and served. Returns how many. */
  async receive(certificates: readonly AcmeCertificate[]): Promise<number> {
    const newer: AcmeCertificateView[] = []
    for (const certificate of certificates) {
      const view = viewOf(certificate)
      const ours = this.current(view.key)
      if (view.directoryUrl !== '' && view.directoryUrl !== this.options.directoryUrl) continue
      if (!ours || view.notAfter > ours.notAfter) newer.push(view)
    }
    if (newer.length > 0) {
      await this.adopt(newer)
      this.options.log.info({ certificates: newer.map((c) => c.name) }, 'ACME certificates received from a replica')
      this.evaluate()
    }
    return newer.length
  }

  /** Every certificate this replica holds, for a peer that asks. */
  held(): AcmeCertificate[] {
    return [...this.certificates.values()]
  }

  status(): AcmeStatus[] {
    const now = this.now()
    return [...this.requests.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, requests]) => {
        const certificate = this.certificates.get(key)
        const failure = this.failures.get(key)
        const due = dueFor(now, this.current(key), failure, this.retryMinMs)
        const waiting = this.waitingUntil.get(key)
        // What is served first: a valid certificate stays `valid` while its renewal runs.
        const state = certificate && certificate.notAfter > now ? 'valid' : this.inFlight.has(key) ? 'ordering' : failure ? 'failed' : 'waiting'
        return {
          domains: requests[0]?.domains ?? [],
          services: requests.map((r) => r.serviceName).sort(),
          ...(certificate ? { certificate: { name: certificate.name, issuer: certificate.issuer, notBefore: certificate.notBefore, notAfter: certificate.notAfter, fingerprint: certificate.fingerprint } } : {}),
          state,
          ...(waiting && waiting > now ? { nextAttemptAt: waiting } : due.kind === 'none' && due.at !== undefined ? { nextAttemptAt: due.at } : {}),
          failures: failure?.failures ?? 0,
          ...(failure ? { lastError: failure.error } : {}),
        }
      })
  }

  /** Stops the timer and waits for running orders (they are not aborted: the server holds them). */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await Promise.allSettled([...this.inFlight.values()])
    await this.saving
  }

  /**
   * The certificate of a domain set if it comes from the configured directory: after a switch
   * from staging to production, staging certificates stay served until production ones replace
   * them, at once.
   */
  private current(key: string): AcmeCertificateView | undefined {
    const certificate = this.certificates.get(key)
    return certificate && (certificate.directoryUrl === '' || certificate.directoryUrl === this.options.directoryUrl) ? certificate : undefined
  }

  private get retryMinMs(): number {
    return this.options.retryMinMs ?? RETRY_MIN_MS
  }

  /** Starts what is due and arms the timer for the next due time. */
  private evaluate(): void {
    if (this.closed) return
    clearTimeout(this.timer)
    const now = this.now()
    let next = Number.POSITIVE_INFINITY
    for (const key of this.requests.keys()) {
      if (this.inFlight.has(key)) continue
      const waiting = this.waitingUntil.get(key)
      if (waiting !== undefined && now < waiting) {
        next = Math.min(next, waiting)
        continue
      }
      const due = dueFor(now, this.current(key), this.failures.get(key), this.retryMinMs)
      if (due.kind === 'none') {
        if (due.at !== undefined) next = Math.min(next, due.at)
        continue
      }
      const run = this.obtain(key, due.kind).finally(() => {
        this.inFlight.delete(key)
        this.evaluate()
      })
      this.inFlight.set(key, run)
    }
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => this.evaluate(), Math.max(0, Math.min(next - now, MAX_TIMER_MS)))
      this.timer.unref()
    }
  }

  /** Gets a certificate for `key`: from a peer that holds a newer one, else ordered here when this replica orders. */
  private async obtain(key: string, reason: 'order' | 'renew' | 'retry'): Promise<void> {
    const { log, replicas } = this.options
    const request = this.requests.get(key)?.[0]
    if (!request) return
    this.waitingUntil.delete(key)
    try {
      await replicas.askPeersToShare()
      if (dueFor(this.now(), this.current(key), undefined).kind === 'none') return
      const orderer = await replicas.orderer()
      if (orderer !== 'self') {
        log.info({ domains: request.domains, orderer }, 'ACME: another replica orders this certificate; waiting for it')
        this.waitingUntil.set(key, this.now() + WAIT_FOR_ORDERER_MS)
        return
      }
    } catch (err) {
      log.warn({ err }, 'ACME: asking the replicas failed; ordering here')
    }
    const startedAt = this.now()
    log.info({ domains: request.domains, reason, email: request.email || undefined }, 'ACME order started')
    try {
      const account = await this.account(request.email)
      const order = this.options.order ?? orderCertificate
      const { pem, accountUrl } = await order({ account, domains: request.domains, challenges: this.publisher(), log })
      if (account.url !== accountUrl) {
        account.url = accountUrl
        await this.save()
      }
      const view = viewOf({ domains: request.domains, pem, issuedAt: this.now(), directoryUrl: account.directoryUrl })
      this.orders.issued++
      await this.adopt([view])
      log.info({ domains: request.domains, certificate: view.name, issuer: view.issuer, notAfter: new Date(view.notAfter).toISOString(), ms: this.now() - startedAt }, 'ACME certificate issued and served')
      const sent = await replicas.pushCertificates([view])
      if (sent > 0) log.info({ certificate: view.name, replicas: sent }, 'ACME certificate sent to the other replicas')
    } catch (err) {
      this.orders.failed++
      const previous = this.failures.get(key)
      const failure = { failures: (previous?.failures ?? 0) + 1, lastFailureAt: this.now(), error: describeAcmeError(err) }
      this.failures.set(key, failure)
      await this.save().catch((saveErr) => log.error({ err: saveErr }, 'could not save the ACME state'))
      log.error({ domains: request.domains, failures: failure.failures, error: failure.error, nextAttemptAt: new Date(retryAt(failure.lastFailureAt, failure.failures, this.retryMinMs)).toISOString() }, 'ACME order failed')
    }
  }

  /** Challenge answers go to this replica's HAProxy and to every peer's. */
  private publisher(): ChallengePublisher {
    const { challenges, replicas } = this.options
    return {
      publish: async (token, keyAuthorization) => {
        await Promise.all([challenges.publish(token, keyAuthorization), replicas.shareChallenge(token, keyAuthorization)])
      },
      withdraw: async (token) => {
        await Promise.all([challenges.withdraw(token), replicas.shareChallenge(token)])
      },
    }
  }

  /** The account of the directory and `email`, made once even when several orders start together. */
  private account(email: string): Promise<AcmeAccount> {
    const { directoryUrl } = this.options
    const known = this.accounts.find((a) => a.directoryUrl === directoryUrl && a.email === email)
    if (known) return Promise.resolve(known)
    const making = this.accountsMade.get(email) ?? (async () => {
      const account = { directoryUrl, email, key: await (this.options.accountKey ?? newAccountKey)(), url: '' }
      this.accounts.push(account)
      await this.save()
      return account
    })().finally(() => this.accountsMade.delete(email))
    this.accountsMade.set(email, making)
    return making
  }

  /** Keeps, saves and serves certificates; a failure to serve counts as a failed attempt. */
  private async adopt(views: AcmeCertificateView[]): Promise<void> {
    for (const view of views) {
      this.certificates.set(view.key, view)
      this.failures.delete(view.key)
      this.waitingUntil.delete(view.key)
    }
    await this.save()
    await this.options.install(views)
  }

  private save(): Promise<void> {
    this.saving = this.saving.catch(() => undefined).then(() => this.options.store.save(this.accounts, [...this.certificates.values()], [...this.failures].map(([key, failure]) => ({ key, ...failure }))))
    return this.saving
  }
}
