import type { FastifyInstance } from 'fastify'
import type { HaproxyClient } from '../haproxy/client.js'
import { parseStats } from '../haproxy/stats.js'
import { haproxyMetricsText } from '../metrics/haproxy.js'
import type { Metrics } from '../metrics/index.js'
import type { Distributor } from '../swarm/distribute.js'
import { firstValue, isTrue } from './proxy.js'
import { nok } from './responses.js'

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
      request.log.warn({ error: (err as Error).message }, 'could not read haproxy statistics')
    }
    const text = (await metrics.registry.metrics()) + (await haproxyMetricsText(rows))
    return reply.type(metrics.registry.contentType).send(text)
  })

  app.all('/v1/docker-flow-proxy/metrics', async (request, reply) => {
    const query = request.query as Record<string, unknown>
    const local = () => haproxy.stats()
    try {
      if (!isTrue(firstValue(query.distribute))) {
        return reply.type('text/plain; charset=utf-8').send(await local())
      }
      const own = distributor.ownAddresses()
      const timeout = AbortSignal.timeout(10_000)
      const authorization = request.headers.authorization
      const bodies = await Promise.all(
        (await distributor.replicas()).map(async (address) => {
          if (own.has(address)) return local()
          const answer = await fetch(distributor.urlOf(address, '/v1/docker-flow-proxy/metrics?distribute=false'), {
            signal: timeout,
            ...(authorization ? { headers: { authorization } } : {}),
          })
          if (answer.status >= 300) throw new Error(`${address} answered ${answer.status}`)
          return answer.text()
        }),
      )
      return reply.type('text/plain; charset=utf-8').send(bodies.map((body) => `${body}\n`).join(''))
    } catch (err) {
      request.log.error({ error: (err as Error).message }, 'could not collect haproxy statistics')
      return reply.code(500).send(nok(`Could not collect HAProxy statistics: ${(err as Error).message}`))
    }
  })
}
