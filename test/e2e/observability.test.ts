import tap from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { until } from '../helpers/net.js'

const { daemon, port } = await startWithUpstream('shop')

const sample = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

tap.test('/metrics has the daemon figures and HAProxy figures in the original families', async (t) => {
  // A backend line of its own (no spare fits it): the change is a reload, counted below.
  t.equal((await daemon.call('reconfigure', { serviceName: 'shop', servicePath: '/shop', port, outboundHostname: '127.0.0.1', timeoutServer: '30' })).status, 200)
  t.equal((await daemon.call('reconfigure', { serviceName: 'broken' })).status, 409)
  t.equal((await daemon.call('remove', { serviceName: 'ghost' })).status, 200)
  t.equal((await daemon.proxy('/shop/cart')).status, 200)
  // HAProxy counts a response once its stream ends, which can be just after the client has it.
  const backend = `shop-be${port}_0`
  const counted = (body: string) => (sample(body, `haproxy_backend_http_responses_total{backend="${backend}",code="2xx"}`) ?? 0) >= 1
  let reply = await daemon.api('/metrics')
  await until(async () => counted((reply = await daemon.api('/metrics')).body), 5_000)
  t.equal(reply.status, 200)
  t.match(reply.headers['content-type'], /^text\/plain/)
  const text = reply.body
  t.equal(sample(text, 'dfp_reconfigure_requests_total{outcome="ok"}'), 1)
  t.equal(sample(text, 'dfp_reconfigure_requests_total{outcome="refused"}'), 1)
  t.equal(sample(text, 'dfp_remove_requests_total{outcome="ok"}'), 1)
  t.equal(sample(text, 'dfp_services_by_mode{mode="http"}'), 1)
  t.equal(sample(text, 'dfp_services_by_mode{mode="tcp"}'), 0)
  t.equal(sample(text, 'dfp_haproxy_worker_generation'), 2, 'one reload after start')
  t.equal(sample(text, 'dfp_last_reload_success'), 1)
  t.ok(Number.isNaN(sample(text, 'dfp_listener_last_sync_age_seconds')), 'no listener: NaN')
  t.ok(sample(text, 'dfp_validation_failures_total') !== undefined)
  t.ok(text.includes('# TYPE dfp_runtime_changes_total counter'))
  t.equal(sample(text, 'haproxy_up'), 1)
  t.equal(sample(text, `haproxy_backend_up{backend="${backend}"}`), 1)
  t.ok(counted(text), 'the request through the proxy is counted')
  t.ok((sample(text, 'haproxy_frontend_http_requests_total{frontend="services"}') ?? 0) >= 1)
  t.ok(new RegExp(`^haproxy_server_current_sessions\\{backend="${backend}",server="[^"]+"\\} 0$`, 'm').test(text), 'server series carry backend and server labels')
})

tap.test('/v1/docker-flow-proxy/metrics serves HAProxy CSV statistics', async (t) => {
  const reply = await daemon.api('/v1/docker-flow-proxy/metrics')
  t.equal(reply.status, 200)
  t.ok(reply.body.startsWith('# pxname,svname,qcur,qmax,'), 'the CSV header of the stats page')
  t.match(reply.body, new RegExp(`^shop-be${port}_0,BACKEND,`, 'm'))
})

tap.test('the status page JSON has each service with its routes, source and health', async (t) => {
  const dbAnswer = await daemon.call('reconfigure', { serviceName: 'db', reqMode: 'tcp', srcPort: String(daemon.proxyPort + 1), port: '5432' })
  t.equal(dbAnswer.status, 200, `the tcp service is applied (${JSON.stringify(dbAnswer.body).slice(0, 200)})`)
  for (const path of ['/v1/docker-flow-proxy/status?type=json', '/v1/docker-flow-proxy/status.json']) {
    const reply = await daemon.api(path)
    t.equal(reply.status, 200)
    const report = JSON.parse(reply.body)
    t.equal(report.haproxy.statsAvailable, true)
    t.equal(report.haproxy.lastReload.ok, true)
    t.ok(report.haproxy.workerGeneration >= 3)
    const shop = report.services.find((s: { serviceName: string }) => s.serviceName === 'shop')
    t.equal(shop.source, 'api')
    t.same(shop.routes[0].paths, ['/shop'])
    t.equal(shop.routes[0].mode, 'http')
    t.equal(shop.routes[0].port, port)
    t.equal(shop.routes[0].backends[0].name, `shop-be${port}_0`)
    t.equal(shop.routes[0].backends[0].status, 'UP')
    t.match(shop.routes[0].backends[0].servers, [{ status: 'no check', address: `127.0.0.1:${port}` }])
    const db = report.services.find((s: { serviceName: string }) => s.serviceName === 'db')
    t.equal(db.routes[0].mode, 'tcp')
    t.equal(db.routes[0].srcPort, daemon.proxyPort + 1)
  }
  const html = await daemon.api('/v1/docker-flow-proxy/status')
  t.equal(html.status, 200)
  t.match(html.headers['content-type'], /^text\/html/)
  t.match(html.body, /<meta name="viewport"/)
})
