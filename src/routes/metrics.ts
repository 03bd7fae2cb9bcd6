import type { FastifyInstance } from 'fastify'
import { errors, messageOf } from '../errors.js'
import { isTrue } from '../field-values.js'
import type { HaproxyClient } from '../haproxy/client.js'
import { parseStats } from '../haproxy/stats.js'
import { haproxyMetricsText } from '../metrics/haproxy.js'
import type { Metrics } from '../metrics/index.js'
import type { Distributor } from '../swarm/distribute.js'
import { requestParams } from './request-params.js'

export interface MetricsRoutesOptions {
  haproxy: HaproxyClient
  metrics: Metrics
  distributor: Distributor
}

/**
 * `/metrics`: the daemon's figures and HAProxy's (read over the stats socket, converted into the
 * original's `haproxy_*` families). `/v1/docker-flow-proxy/metrics`: HAProxy's raw CSV, as the
 * original served it; with `distribute=true` every replica's CSV, each followed by a newline.
 */
export async function metricsRoutes(app: FastifyInstance, { haproxy, metrics, distributor }: MetricsRoutesOptions): Promise<void> {
  app.get('/metrics', async (request, reply) => {
    metrics.haproxyScrapes.inc()
    let rows
    try {
      rows = parseStats(await haproxy.stats())
    } catch (err) {
      metrics.haproxyParseFailures.inc()
      request.log.warn({ error: messageOf(err) }, 'could not read haproxy statistics')
    }
    const text = (await metrics.registry.metrics()) + (await haproxyMetricsText(rows))
    return reply.type(metrics.registry.contentType).send(text)
  })

  app.all('/v1/docker-flow-proxy/metrics', async (request, reply) => {
    const local = () => haproxy.stats()
    const csv = (bodies: string[]) => reply.type('text/plain; charset=utf-8').send(bodies.map((body) => `${body}\n`).join(''))
    // The error handler logs the 500 these become.
    const distribute = isTrue(requestParams(request).distribute)
    let result
    try {
      if (!distribute) return reply.type('text/plain; charset=utf-8').send(await local())
      result = await distributor.fanOut({ kind: 'read', endpoint: 'metrics', params: {} }, request.headers.authorization, local)
    } catch (err) {
      throw errors.statisticsUnavailable(messageOf(err))
    }
    switch (result.kind) {
      case 'lookup-failed':
        throw errors.statisticsUnavailable(result.message)
      case 'replicas-failed':
        throw errors.statisticsUnavailable(
          result.replicas.flatMap((r) => (r.ok ? [] : [`${r.address} ${r.status === undefined ? `could not be reached: ${r.message}` : `answered ${r.status}`}`])).join(', '),
        )
      case 'done':
        // This replica's statistics first, then the others' in address order.
        return csv([result.local, ...result.replicas.flatMap((r) => (r.ok ? [r.body] : []))])
    }
  })
}
