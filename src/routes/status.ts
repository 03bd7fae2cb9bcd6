import type { FastifyInstance } from 'fastify'
import { errors } from '../errors.js'
import { statusPage } from '../status/page.js'
import { type PageRequest, StatusReporter, type StatusSources } from '../status/reporter.js'
import { requestParams } from './request-params.js'

/** Seconds between two refreshes of the status page. */
const REFRESH_SECONDS = 5
const MAX_PER_PAGE = 500
const DEFAULT_PER_PAGE = 50
const MAX_PAGE = 1_000_000
const MAX_QUERY = 200

/** `q`, `page` and `perPage` of a status request; undefined when none is given (everything). */
function pagingOf(params: Record<string, string>): PageRequest | undefined {
  const { q, page, perPage } = params
  if (q === undefined && page === undefined && perPage === undefined) return undefined
  const whole = (name: string, value: string | undefined, fallback: number, max: number) => {
    if (value === undefined) return fallback
    if (!/^\d{1,7}$/.test(value) || Number(value) < 1 || Number(value) > max) throw errors.invalidParameter(name, `must be a whole number from 1 to ${max}, not ${JSON.stringify(value.slice(0, 40))}`)
    return Number(value)
  }
  if ((q ?? '').length > MAX_QUERY) throw errors.invalidParameter('q', `must be at most ${MAX_QUERY} characters long`)
  return { query: (q ?? '').trim().toLowerCase(), page: whole('page', page, 1, MAX_PAGE), perPage: whole('perPage', perPage, DEFAULT_PER_PAGE, MAX_PER_PAGE) }
}

/**
 * `/status`: the status page for people (HTML); `/status?type=json` and `/status.json`: the same
 * data for scripts (src/status/reporter.ts). Read-only. With `q`, `page` or `perPage` the JSON
 * holds one page of the services matching `q`.
 */
export async function statusRoutes(app: FastifyInstance, sources: StatusSources): Promise<void> {
  const status = new StatusReporter(sources)
  const report = (params: Record<string, string>) => status.report(pagingOf(params))

  app.get('/status', async (request, reply) => {
    const params = requestParams(request)
    if ((params.type ?? '').toLowerCase() === 'json') return report(params)
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(statusPage(REFRESH_SECONDS))
  })
  app.get('/status.json', async (request) => report(requestParams(request)))
}
