/**
 * When certificates are renewed and failed orders retried. Pure: times in milliseconds since the
 * epoch, no clock of its own.
 */

/** A certificate is renewed when a third of its lifetime is left (Let's Encrypt's advice). */
export function renewalAt(notBefore: number, notAfter: number): number {
  return notAfter - (notAfter - notBefore) / 3
}

/** First retry after a failed order, doubling with each further failure up to `RETRY_MAX_MS`. */
export const RETRY_MIN_MS = 60_000
export const RETRY_MAX_MS = 6 * 3600_000

/**
 * When a domain set that failed `failures` times in a row (at `failedAt`) is tried again:
 * 1 min, 2, 4, … up to 6 h. Let's Encrypt allows 5 failed validations per account, host name and
 * hour; this stays under it after the third failure and keeps a broken domain from eating the
 * account's budget.
 */
export function retryAt(failedAt: number, failures: number, minMs = RETRY_MIN_MS): number {
  const exponent = Math.max(0, Math.min(failures - 1, 20))
  return failedAt + Math.min(minMs * 2 ** exponent, RETRY_MAX_MS)
}

/** What is due for a domain set now: nothing, a first order, a renewal or a retry. */
export type Due = { kind: 'none'; at?: number } | { kind: 'order' | 'renew' | 'retry' }

export interface CertificateTimes {
  notBefore: number
  notAfter: number
}

export interface FailureRecord {
  failures: number
  lastFailureAt: number
}

/**
 * The decision for one domain set. A failure newer than the certificate postpones the next
 * attempt (order or renewal) by the back-off; otherwise a missing certificate is ordered and an
 * existing one renewed at `renewalAt`. `at` tells when the next decision is due.
 */
export function dueFor(now: number, certificate: CertificateTimes | undefined, failure: FailureRecord | undefined, retryMinMs = RETRY_MIN_MS): Due {
  const retry = failure && failure.failures > 0 ? retryAt(failure.lastFailureAt, failure.failures, retryMinMs) : undefined
  if (retry !== undefined && now < retry) return { kind: 'none', at: retry }
  if (!certificate) return { kind: retry === undefined ? 'order' : 'retry' }
  const renewal = renewalAt(certificate.notBefore, certificate.notAfter)
  if (now >= renewal) return { kind: retry === undefined ? 'renew' : 'retry' }
  return { kind: 'none', at: renewal }
}
