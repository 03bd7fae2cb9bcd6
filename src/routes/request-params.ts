import type { FastifyRequest } from 'fastify'
import { firstValue } from '../field-values.js'

/**
 * A request's parameters: the query merged with an urlencoded form body (the query wins, as in
 * the original), each field with its first value.
 */
export function requestParams(request: FastifyRequest): Record<string, string> {
  const body = request.body && typeof request.body === 'object' && !Array.isArray(request.body) ? request.body : {}
  const merged: Record<string, string> = {}
  for (const [key, value] of Object.entries({ ...(body as Record<string, unknown>), ...(request.query as Record<string, unknown>) })) {
    merged[key] = firstValue(value) ?? ''
  }
  return merged
}
