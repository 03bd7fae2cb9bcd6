import { messageOf } from '../errors.js'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { lookupAddresses } from '../dns-lookup.js'
import type { Settings } from '../settings.js'

/** A request for every other replica, sent with `distribute=false` so it goes no further. */
export type ReplicaRequest =
  /**
   * reconfigure, remove: GET with the parameters in the query, as the original sends and reads
   * them (it takes destination parameters from the query only), so replicas of both kinds work
   * together during a rolling update; a POST with a form body (which only dfp reads whole) when
   * they would not fit a request line (a serviceCert).
   */
  | { kind: 'form'; endpoint: string; params: Record<string, string> }
  /** cert: PUT with the parameters in the query and the PEM bundle as the body. */
  | { kind: 'upload'; endpoint: string; params: Record<string, string>; body: string }
  /** metrics: GET with the parameters in the query; each replica's body is the result. */
  | { kind: 'read'; endpoint: string; params: Record<string, string> }

/** What one replica answered: `ok` when it answered 200 (its body kept), else why not. */
export type ReplicaOutcome =
  | { address: string; ok: true; status: number; message: string; body: string; attempts: number }
  | { address: string; ok: false; status?: number; message: string; attempts: number }

/** A request applied here and sent to every other replica. The local result is there in every case. */
export type FanOutResult<Local> =
  /** Every other replica answered 200 (none: a single replica). */
  | { kind: 'done'; local: Local; replicas: ReplicaOutcome[] }
  /** Some replicas did not answer 200 after their retries; `failed` names them. */
  | { kind: 'replicas-failed'; local: Local; replicas: ReplicaOutcome[]; failed: string[] }
  /** `tasks.<SERVICE_NAME>` did not resolve: no replica was asked. */
  | { kind: 'lookup-failed'; local: Local; message: string }

// Longest query sent in a request line: Node's limit for the request line and headers is 16 KiB.
const MAX_QUERY_LENGTH = 8000
// A replica that could not be reached or failed on its side (5xx) is asked again this often.
const RETRY_DELAYS_MS = [500, 1500]
const API_PREFIX = '/v1/docker-flow-proxy'

/**
 * Replica fan-out, the one place a request reaches the other replicas of the proxy service: the
 * addresses of `tasks.<SERVICE_NAME>` (resolved with DNS_SERVERS, or the system resolver), on
 * PORT, in parallel, each call with the same timeout and retries.
 */
export class Distributor {
  constructor(
    private readonly settings: Settings,
    private readonly log: Logger,
  ) {}

  /**
   * Runs `applyLocally` here while `request` goes to every other replica (with the caller's
   * `authorization` header: the replicas share API_USERS). Throws what `applyLocally` throws,
   * once the replicas have answered; never throws for a replica.
   */
  async fanOut<Local>(request: ReplicaRequest, authorization: string | undefined, applyLocally: () => Promise<Local>): Promise<FanOutResult<Local>> {
    const [local, remote] = await Promise.allSettled([applyLocally(), this.others().then((addresses) => Promise.all(addresses.map((address) => this.sendTo(address, request, authorization))))])
    if (local.status === 'rejected') throw local.reason
    if (remote.status === 'rejected') {
      if (remote.reason instanceof LookupError) return { kind: 'lookup-failed', local: local.value, message: remote.reason.message }
      throw remote.reason
    }
    const failed = remote.value.filter((outcome) => !outcome.ok).map((outcome) => outcome.address)
    return failed.length === 0 ? { kind: 'done', local: local.value, replicas: remote.value } : { kind: 'replicas-failed', local: local.value, replicas: remote.value, failed }
  }

  /** Addresses of every other replica: this daemon applies a request itself, not over HTTP. */
  private async others(): Promise<string[]> {
    const own = this.ownAddresses()
    return (await this.replicas()).filter((address) => !own.has(address))
  }

  /** Addresses of every replica (`tasks.<SERVICE_NAME>`), this one included, sorted. */
  async replicas(): Promise<string[]> {
    const name = `tasks.${this.settings.SERVICE_NAME}`
    let addresses: string[]
    try {
      addresses = await lookupAddresses(name, this.settings.DNS_SERVERS, { timeoutMs: 2000, tries: 2, family: 0 })
    } catch (err) {
      throw new LookupError(
        `Could not perform DNS lookup for ${name}. If the proxy is not called 'proxy', you must set SERVICE_NAME=<name-of-the-proxy> on the proxy service. (${messageOf(err)})`,
      )
    }
    return [...new Set(addresses)].sort()
  }

  /** This daemon's own addresses (IP and every interface's). */
  ownAddresses(): Set<string> {
    const own = new Set<string>()
    if (isIP(this.settings.IP)) own.add(this.settings.IP)
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) own.add(a.address)
    return own
  }

  /** The URL of `path` on the replica at `address` (the API listens on PORT on every replica). */
  urlOf(address: string, path: string): string {
    return `http://${isIP(address) === 6 ? `[${address}]` : address}:${this.settings.PORT}${path}`
  }

  /** The call `request` is to one replica. */
  private callOf(address: string, request: ReplicaRequest, authorization: string | undefined) {
    const base = this.urlOf(address, `${API_PREFIX}/${request.endpoint}`)
    const auth: Record<string, string> = authorization ? { authorization } : {}
    const query = new URLSearchParams({ ...request.params, distribute: 'false' })
    switch (request.kind) {
      case 'form':
        if (query.toString().length <= MAX_QUERY_LENGTH) return { url: `${base}?${query}`, init: { method: 'GET', headers: auth } }
        return { url: `${base}?distribute=false`, init: { method: 'POST', body: new URLSearchParams(request.params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth } } }
      case 'upload':
        return { url: `${base}?${query}`, init: { method: 'PUT', body: request.body, headers: { 'content-type': 'application/x-pem-file', ...auth } } }
      case 'read':
        return { url: `${base}?${query}`, init: { method: 'GET', headers: auth } }
    }
  }

  private async sendTo(address: string, request: ReplicaRequest, authorization: string | undefined): Promise<ReplicaOutcome> {
    const { url, init } = this.callOf(address, request, authorization)
    // A replica answers when the change is live there, which can take up to RELOAD_TIMEOUT.
    const timeoutMs = this.settings.RELOAD_TIMEOUT * 1000 + 5000
    let outcome: ReplicaOutcome = { address, ok: false, message: 'not sent', attempts: 0 }
    for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
      if (attempt > 0) await sleep(RETRY_DELAYS_MS[attempt - 1])
      try {
        const reply = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) })
        const body = await reply.text()
        const message = answerMessage(body)
        outcome = reply.status === 200 ? { address, ok: true, status: 200, message, body, attempts: attempt + 1 } : { address, ok: false, status: reply.status, message, attempts: attempt + 1 }
        // A 4xx is the replica's verdict on the request; asking again would not change it.
        if (reply.status < 500) break
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : ''
        outcome = { address, ok: false, message: `${messageOf(err)}${cause}`, attempts: attempt + 1 }
      }
      this.log.warn({ replica: address, attempt: attempt + 1, status: outcome.status, error: outcome.message }, 'distributing to a replica failed')
    }
    return outcome
  }
}

class LookupError extends Error {}

/** The `Message` of a DFP answer; the start of any other body (a CSV, an HTML error page). */
function answerMessage(body: string): string {
  try {
    return String((JSON.parse(body) as { Message?: unknown }).Message ?? '')
  } catch {
    return body.slice(0, 200)
  }
}
