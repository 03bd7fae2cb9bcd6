import type { z } from 'zod'
import { errors } from '../errors.js'
import { firstValue } from '../field-values.js'

/** A flat parameter map: an HTTP query, one element of the listener's JSON, or DFP_SERVICE_* env. */
export type ParamSource = Record<string, unknown> | URLSearchParams

const MAX_VALUE_LENGTH = 4096

// Values are spliced into haproxy.cfg as given. A newline or control character would end the
// line and let a value add directives of its own, so every value is refused if it has one.
const controlChars = /[\x00-\x1f\x7f]/
// Values that HAProxy reads as one word (names, ports, hosts, paths) must not contain blanks
// or a comment start either, or they would add words to the line they are spliced into.
export const wordBreakers = /[\s#]/

/** Reads values from one source, refusing values that cannot be written into haproxy.cfg. */
export class ParamReader {
  private readonly values = new Map<string, string>()
  /** The service the parameters describe, named in errors once known. */
  serviceName?: string
  readonly separator: string
  constructor(source: ParamSource, separator: string) {
    this.separator = separator
    const entries = source instanceof URLSearchParams ? source.entries() : Object.entries(source)
    for (const [key, raw] of entries) {
      // A repeated key counts once, with its first value.
      const value = firstValue(raw)
      if (this.values.has(key) || value === undefined) continue
      this.values.set(key, value)
    }
  }

  /** The raw value of `name`; '' when absent. Checked for control characters and length. */
  text(name: string): string {
    const value = this.values.get(name) ?? ''
    if (value.length > MAX_VALUE_LENGTH) throw this.invalid(name, `must be at most ${MAX_VALUE_LENGTH} characters`)
    if (controlChars.test(value)) throw this.invalid(name, 'must not contain newlines or control characters')
    return value
  }

  /** A value HAProxy reads as one word. */
  word(name: string): string {
    const value = this.text(name)
    if (wordBreakers.test(value)) throw this.invalid(name, 'must not contain spaces or "#"')
    return value
  }

  /** A SEPARATOR-delimited list of words; empty items are dropped. */
  list(name: string): string[] {
    const value = this.text(name)
    const items = value.split(this.separator).filter((item) => item !== '')
    for (const item of items) {
      if (wordBreakers.test(item)) throw this.invalid(name, 'items must not contain spaces or "#"')
    }
    return items
  }

  parsed<T>(name: string, schema: z.ZodType<T>): T | undefined {
    const value = this.text(name)
    if (value === '') return undefined
    const result = schema.safeParse(value)
    if (!result.success) throw this.invalid(name, result.error.issues[0]?.message ?? 'is invalid')
    return result.data
  }

  invalid(name: string, problem: string) {
    return errors.invalidParameter(name, problem, this.serviceName)
  }

  has(name: string): boolean {
    return (this.values.get(name) ?? '') !== ''
  }

  /** Every parameter with its (first) value. */
  toRecord(): Record<string, string> {
    return Object.fromEntries(this.values)
  }
}

export const optional = <K extends string, V>(field: K, value: V | undefined): Partial<Record<K, V>> =>
  value === undefined ? {} : ({ [field]: value } as Record<K, V>)

export function optionalWord<K extends string>(params: ParamReader, name: string, field: K): Partial<Record<K, string>> {
  const value = params.word(name)
  return value === '' ? {} : ({ [field]: value } as Record<K, string>)
}
