import { createHash } from 'node:crypto'
import { errors } from '../errors.js'

/** What a service asks ACME for: one certificate naming `domains`, ordered with `email`'s account. */
export interface AcmeRequest {
  serviceName: string
  /** Lower-case, without duplicates, in the order given (the first names the certificate). */
  domains: string[]
  email: string
}

// The companion's parameters (labels `com.df.letsencrypt.host` / `.email` reach dfp through the
// listener without their `com.df.` prefix).
export const HOST_PARAM = 'letsencrypt.host'
export const EMAIL_PARAM = 'letsencrypt.email'

// The boolean forms of every other flag (field-values.ts), plus yes/no of the companion's docs.
const TRUE_LIKE = new Set(['true', '1', 't', 'on', 'yes'])
const FALSE_LIKE = new Set(['', 'false', '0', 'f', 'off', 'no'])
// A host name of RFC 1123 labels (letters, digits, inner hyphens; 63 characters each), at least
// two labels. HTTP-01 cannot prove wildcards (RFC 8555 §8.3 needs a host to connect to).
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
// An address as RFC 5322's addr-spec reduced to what ACME servers accept (no spaces, one @).
const EMAIL = /^[^\s@,<>]+@[^\s@,<>]+\.[^\s@,<>]+$/

/** Whether saved parameters ask for an ACME certificate (their values checked by `acmeRequestOf`). */
export const wantsAcme = (params: Readonly<Record<string, string>>) => !FALSE_LIKE.has((params[HOST_PARAM] ?? '').trim().toLowerCase())

/**
 * The ACME request of a service from its saved parameters, or undefined when it asks for none.
 * `letsencrypt.host` is a comma list of domains, or a true-like word (`true`, `1`, `t`, `on`, `yes`) for the
 * service's `serviceDomain` names (wildcards among them left out). Throws a 400 naming the
 * parameter when a value cannot be used.
 */
export function acmeRequestOf(serviceName: string, params: Readonly<Record<string, string>>, serviceDomains: readonly string[], defaultEmail: string): AcmeRequest | undefined {
  const host = (params[HOST_PARAM] ?? '').trim().toLowerCase()
  if (FALSE_LIKE.has(host)) return undefined
  const listed = TRUE_LIKE.has(host)
    ? serviceDomains.map((domain) => domain.toLowerCase()).filter((domain) => !domain.includes('*'))
    : host.split(',').map((domain) => domain.trim()).filter((domain) => domain !== '')
  if (listed.length === 0) throw errors.invalidParameter(HOST_PARAM, 'is true but the service has no serviceDomain without a wildcard: list the domains', serviceName)
  for (const domain of listed) {
    if (domain.includes('*')) throw errors.invalidParameter(HOST_PARAM, `${domain} is a wildcard, which HTTP-01 validation cannot prove`, serviceName)
    if (!HOST_NAME.test(domain)) throw errors.invalidParameter(HOST_PARAM, `${domain} is not a host name`, serviceName)
  }
  const domains = [...new Set(listed)]
  if (domains.length > 100) throw errors.invalidParameter(HOST_PARAM, 'lists more than 100 domains, the most one certificate can name', serviceName)
  const email = (params[EMAIL_PARAM] ?? '').trim() || defaultEmail
  if (email !== '' && !EMAIL.test(email)) throw errors.invalidParameter(params[EMAIL_PARAM] ? EMAIL_PARAM : 'ACME_EMAIL', `${email} is not an email address`, serviceName)
  return { serviceName, domains, email }
}

/** One key per set of domains, whatever their order: two services naming the same set share a certificate. */
export const domainSetKey = (domains: readonly string[]) => [...domains].sort().join(',')

/**
 * The file name of a domain set's certificate: its first domain, with a short hash of the whole
 * set when it names several (two sets may start with the same domain).
 */
export function certificateName(domains: readonly string[]): string {
  const first = domains[0] ?? 'certificate'
  if (domains.length === 1) return `${first}.pem`
  const hash = createHash('sha256').update(domainSetKey(domains)).digest('hex').slice(0, 8)
  return `${first}_${hash}.pem`
}
