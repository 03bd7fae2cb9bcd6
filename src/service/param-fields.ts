import { z } from 'zod'
import { errors } from '../errors.js'
import { firstValue } from '../field-values.js'
import { checkParameters, MAX_VALUE_LENGTH } from './value-guards.js'

/**
 * The building blocks of the parameter schemas: how a flat parameter map is read, and the field
 * schemas (text, word, list, optional value) every parameter is declared with.
 */

/** A flat parameter map: an HTTP query, one element of the listener's JSON, or DFP_SERVICE_* env. */
export type ParamSource = Record<string, unknown> | URLSearchParams

/** Each parameter with its first value (a repeated key counts once, with its first value). */
export function readParams(source: ParamSource): Record<string, string> {
  const values = new Map<string, string>()
  const entries = source instanceof URLSearchParams ? source.entries() : Object.entries(source)
  for (const [key, raw] of entries) {
    const value = firstValue(raw)
    if (values.has(key) || value === undefined) continue
    values.set(key, value)
  }
  // Bounds and what a value could make HAProxy read, for every parameter at once (value-guards.ts).
  const refused = checkParameters([...values.entries()])
  if (refused) throw errors.invalidParameter(refused.parameter, refused.problem, values.get('serviceName'))
  return Object.fromEntries(values)
}

/** Whether a parameter has a value (an empty one counts as absent, as everywhere). */
export const isSet = (values: Record<string, string>, name: string): boolean => (values[name] ?? '') !== ''

// Values are spliced into haproxy.cfg as given. A newline or control character would end the
// line and let a value add directives of its own, so every value is refused if it has one.
const controlChars = /[\x00-\x1f\x7f]/
// Values that HAProxy reads as one word (names, ports, hosts, times) must not contain blanks
// or a comment start either, or they would add words to the line they are spliced into.
export const wordBreakers = /[\s#]/
// A word written as it is must not hold what parse_line interprets either: quotes, a backslash,
// `$` (src/haproxy-text.ts). Values that may hold those are written with configWord instead.
const wordSyntax = /[\s#'"\\$]/

/**
 * What is wrong with a raw value whatever the parameter: the one place every value of every
 * parameter passes before its own schema. Undefined when nothing is.
 */
function valueProblem(value: string): string | undefined {
  if (value.length > MAX_VALUE_LENGTH) return `must be at most ${MAX_VALUE_LENGTH} characters`
  if (controlChars.test(value)) return 'must not contain newlines or control characters'
  return undefined
}

type Issues = { issues: z.core.$ZodRawIssue[] }
/** Reports `message` as the field's problem (the message becomes `<param>: <message>`). */
export function refuse(ctx: Issues, value: unknown, message: string): never {
  ctx.issues.push({ code: 'custom', message, input: value })
  return z.NEVER
}

/** The raw value; '' when absent. Every field schema starts here. */
export const text = z
  .string()
  .check((ctx) => {
    const problem = valueProblem(ctx.value)
    if (problem !== undefined) refuse(ctx, ctx.value, problem)
  })
  .prefault('')

/** A value HAProxy reads as one word. */
export const word = text.transform((value, ctx) => (wordSyntax.test(value) ? refuse(ctx, value, 'must not contain spaces, quotes, backslashes, "$" or "#"') : value))

/** A word, undefined when absent or empty. */
export const optionalWord = word.transform((value) => (value === '' ? undefined : value))

/** A value read by `schema` (with its first message on failure); undefined when absent or empty. */
export const optionalOf = <T>(schema: z.ZodType<T, string>) =>
  text.transform((value, ctx): T | undefined => {
    if (value === '') return undefined
    const result = schema.safeParse(value)
    return result.success ? result.data : refuse(ctx, value, result.error.issues[0]?.message ?? 'is invalid')
  })

/** A SEPARATOR-delimited list of words; empty items are dropped. */
export const listOf = (separator: string) =>
  text.transform((value, ctx) => {
    const items = value.split(separator).filter((item) => item !== '')
    return items.some((item) => wordBreakers.test(item)) ? refuse(ctx, value, 'items must not contain spaces or "#"') : items
  })

/** `{ [field]: value }`, or nothing when the value is absent (so absent fields have no key). */
export const optional = <K extends string, V>(field: K, value: V | undefined): Partial<Record<K, V>> =>
  value === undefined ? {} : ({ [field]: value } as Record<K, V>)

/**
 * The first problem zod found, as the 400 naming the parameter. Schemas check fields in the
 * order the parameters are declared, so the first issue is the first parameter that is wrong.
 */
export function refusal(error: z.ZodError, paramOf: (path: PropertyKey[]) => string, serviceName?: string) {
  // A failed parse has at least one issue.
  const issue = error.issues[0] as z.core.$ZodIssue
  return errors.invalidParameter(paramOf(issue.path), issue.message, serviceName)
}

/** Reads one parameter with `schema`, throwing the 400 naming it. */
export function readParam<T>(schema: z.ZodType<T, string | undefined>, values: Record<string, string>, name: string, serviceName?: string): T {
  const result = schema.safeParse(values[name])
  if (!result.success) throw refusal(result.error, () => name, serviceName)
  return result.data
}
