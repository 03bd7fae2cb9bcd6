import { z } from 'zod'

/**
 * How one value of a query field, form field, listener entry or variable is read: the same
 * rules for the routes, the reconfigure parameters and the settings.
 */

/** The first value of a field (repeated fields arrive as arrays, as Go's `url.Values.Get` read them); undefined when absent. */
export function firstValue(value: unknown): string | undefined {
  const first: unknown = Array.isArray(value) ? value[0] : value
  return first === undefined || first === null ? undefined : String(first)
}

const trueForms = ['1', 't', 'true', 'on']
const falseForms = ['0', 'f', 'false', 'off']
/** A boolean as the original read them: strconv.ParseBool's forms plus gorilla/schema's on/off, any case. */
export const booleanSchema = z
  .string()
  .transform((value) => value.toLowerCase())
  .pipe(z.enum([...trueForms, ...falseForms] as [string, ...string[]], 'must be true or false'))
  .transform((value) => trueForms.includes(value))

/** A flag that steers a request (`distribute`, `fromListener`): true only when it reads as true; anything else is false, as in the original. */
export const isTrue = (value: string | undefined): boolean => booleanSchema.safeParse(value ?? '').data === true

// HAProxy's compression algorithms (configuration.txt 4.2 "compression").
export const COMPRESSION_ALGOS = ['identity', 'gzip', 'deflate', 'raw-deflate'] as const

/** A comma list (settings, inventory §4): items trimmed, empty ones dropped. */
export const commaList = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')

/** The listener's own port, added when an address names none (inventory §7.1). */
const LISTENER_PORT = 8080

/**
 * `host`, `host:port` or an http(s) URL → the listener's base URL, with `:8080` when the
 * address gives no port. Throws on anything else.
 */
export function listenerUrl(address: string): string {
  const withScheme = /^https?:\/\//i.test(address) ? address : `http://${address}`
  const url = new URL(withScheme)
  // URL drops a port equal to the scheme's default, so look for one in the text itself.
  const authority = withScheme.replace(/^https?:\/\//i, '').split('/')[0] ?? ''
  const explicitPort = /:\d+$/.test(authority)
  if (!url.hostname || url.pathname !== '/' || url.search) throw new Error(`not a host, host:port or base URL: ${address}`)
  return explicitPort ? `${url.protocol}//${authority}` : `${url.protocol}//${url.host}:${LISTENER_PORT}`
}
