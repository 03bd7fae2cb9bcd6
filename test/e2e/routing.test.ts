import t from 'tap'
import { startWithUpstreams } from '../helpers/daemon.js'
import { tcpEcho, tcpExchange, freePort } from '../helpers/net.js'
import { nameInBody } from '../helpers/checks.js'

// Every test here sends real requests through a real haproxy to real upstreams on 127.0.0.1.
const {
  daemon,
  upstreams: { alpha, beta },
} = await startWithUpstreams(['alpha', 'beta'])

const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', ...params })
const upstreamName = async (path: string, headers?: Record<string, string>) => {
  const reply = await daemon.proxy(path, headers)
  return reply.status === 200 ? nameInBody(reply.body) : reply.status
}

t.test('a path route reaches its upstream, and remove takes it away', async (t) => {
  const added = await reconfigure({ serviceName: 'alpha', servicePath: '/alpha', port: String(alpha.port) })
  t.equal(added.status, 200)
  t.equal(added.json.Status, 'OK')
  t.equal(added.json.ServiceName, 'alpha')
  const reply = await daemon.proxy('/alpha/x?y=1')
  t.equal(reply.status, 200)
  t.match(JSON.parse(reply.body), { name: 'alpha', path: '/alpha/x?y=1' })
  t.equal((await daemon.proxy('/other')).status, 503, 'paths of no service get 503')

  const removed = await daemon.call('remove', { serviceName: 'alpha' })
  t.equal(removed.status, 200)
  t.equal(removed.json.Status, 'OK')
  t.equal((await daemon.proxy('/alpha/x')).status, 503, 'the route is gone once remove answered')
  t.notMatch((await daemon.call('config')).body, /alpha/)
})

t.test('two services side by side', async (t) => {
  t.equal((await reconfigure({ serviceName: 'one', servicePath: '/one', port: String(alpha.port) })).status, 200)
  t.equal((await reconfigure({ serviceName: 'two', servicePath: '/two', port: String(beta.port) })).status, 200)
  t.equal(await upstreamName('/one'), 'alpha')
  t.equal(await upstreamName('/two'), 'beta')
  const json = (await daemon.call('config', { type: 'json' })).json
  t.same(Object.keys(json), ['one', 'two'])
  await daemon.call('remove', { serviceName: 'one' })
  t.equal(await upstreamName('/two'), 'beta', 'removing one leaves the other')
  await daemon.call('remove', { serviceName: 'two' })
})

t.test('indexed destinations route to two upstreams', async (t) => {
  const reply = await reconfigure({
    serviceName: 'multi',
    'servicePath.1': '/first',
    'port.1': String(alpha.port),
    'servicePath.2': '/second',
    'port.2': String(beta.port),
  })
  t.equal(reply.status, 200)
  t.equal(reply.json.ServiceDest?.length, 2)
  t.equal(await upstreamName('/first'), 'alpha')
  t.equal(await upstreamName('/second'), 'beta')
  const config = (await daemon.call('config')).body
  t.match(config, `backend multi-be${alpha.port}_1`)
  t.match(config, `backend multi-be${beta.port}_2`)
  await daemon.call('remove', { serviceName: 'multi' })
})

t.test('an exact and a wildcard domain are matched on the Host header', async (t) => {
  t.equal((await reconfigure({ serviceName: 'exact', serviceDomain: 'app.example.com', port: String(alpha.port) })).status, 200)
  t.equal((await reconfigure({ serviceName: 'wild', serviceDomain: '*.example.org', port: String(beta.port) })).status, 200)
  t.equal(await upstreamName('/', { host: 'app.example.com' }), 'alpha')
  t.equal(await upstreamName('/any/path', { host: 'app.example.com:80' }), 'alpha', 'hdr_beg tolerates a port')
  t.equal(await upstreamName('/', { host: 'api.example.org' }), 'beta')
  t.equal(await upstreamName('/', { host: 'deep.api.example.org' }), 'beta')
  t.equal(await upstreamName('/', { host: 'example.net' }), 503)
  // The original lost the wildcard on the next regeneration (its D1): change something else.
  t.equal((await reconfigure({ serviceName: 'other', servicePath: '/other', port: String(alpha.port) })).status, 200)
  t.equal(await upstreamName('/', { host: 'api.example.org' }), 'beta', 'the wildcard survives regeneration')
  for (const name of ['exact', 'wild', 'other']) await daemon.call('remove', { serviceName: name })
})

t.test('a rewrite arrives upstream as the new path', async (t) => {
  const reply = await reconfigure({
    serviceName: 'rewrite',
    servicePath: '/api/v1',
    port: String(alpha.port),
    reqPathSearchReplace: '^/api/v1/,/',
  })
  t.equal(reply.status, 200)
  const answer = await daemon.proxy('/api/v1/users?id=7')
  t.match(JSON.parse(answer.body), { name: 'alpha', path: '/users?id=7' })

  const legacy = await reconfigure({ serviceName: 'rewrite', servicePath: '/old', port: String(alpha.port), reqPathSearch: '/old/', reqPathReplace: '/new/' })
  t.equal(legacy.status, 200)
  t.equal(JSON.parse((await daemon.proxy('/old/thing')).body).path, '/new/thing', 'the deprecated pair works too')
  await daemon.call('remove', { serviceName: 'rewrite' })
})

t.test('a rewrite with capture groups (refused by the original\'s regsub)', async (t) => {
  const reply = await reconfigure({ serviceName: 'groups', servicePath: '/plus', port: String(alpha.port), reqPathSearchReplace: '^/plus/([a-z]+)/,/demo/\\1/:/x([0-9]),/y\\1%z' })
  t.equal(reply.status, 200)
  t.match(JSON.parse((await daemon.proxy('/plus/abc/rest?q=1')).body), { path: '/demo/abc/rest?q=1' }, 'the group is put back, the query kept')
  t.match(JSON.parse((await daemon.proxy('/plus/abc/x7/x8')).body), { path: '/demo/abc/y7%z/x8' }, 'only the first match of each pair is replaced, % kept')
  t.match(JSON.parse((await daemon.proxy('/plus/ABC/')).body), { path: '/plus/ABC/' }, 'no match: the path stays')
  const unknownGroup = await reconfigure({ serviceName: 'groups', servicePath: '/plus', port: String(alpha.port), reqPathSearchReplace: '^/plus/([a-z]+)/,/\\2/' })
  t.equal(unknownGroup.status, 400)
  t.match(unknownGroup.json.Message, /^reqPathSearchReplace: .*refers to \\2, but the search has 1 capture group$/)
  await daemon.call('remove', { serviceName: 'groups' })
})

t.test('pathType and servicePathExclude', async (t) => {
  t.equal((await reconfigure({ serviceName: 'regex', servicePath: '^/v[0-9]+/items', pathType: 'path_reg', servicePathExclude: '/v9/items', port: String(alpha.port) })).status, 200)
  t.equal(await upstreamName('/v2/items'), 'alpha')
  t.equal(await upstreamName('/v9/items'), 503, 'excluded path')
  t.equal(await upstreamName('/x/v2/items'), 503, 'regex anchored')
  await daemon.call('remove', { serviceName: 'regex' })
})

t.test('isDefaultBackend catches every unmatched request', async (t) => {
  t.equal((await reconfigure({ serviceName: 'fallback', servicePath: '/fallback', port: String(beta.port), isDefaultBackend: 'true' })).status, 200)
  t.equal(await upstreamName('/anything/else'), 'beta')
  await daemon.call('remove', { serviceName: 'fallback' })
  t.equal(await upstreamName('/anything/else'), 503)
})

t.test('srcPort adds a dst_port condition', async (t) => {
  t.equal((await reconfigure({ serviceName: 'portbound', servicePath: '/pb', port: String(alpha.port), srcPort: String(daemon.proxyPort) })).status, 200)
  t.equal(await upstreamName('/pb'), 'alpha')
  t.match((await daemon.call('config')).body, `acl srcPort_portbound${daemon.proxyPort}_0 dst_port ${daemon.proxyPort}`)
  t.equal((await reconfigure({ serviceName: 'portbound', servicePath: '/pb', port: String(alpha.port), srcPort: '1' })).status, 200)
  t.equal(await upstreamName('/pb'), 503, 'requests on another port do not match')
  await daemon.call('remove', { serviceName: 'portbound' })
})

t.test('a TCP service gets its own frontend on srcPort', async (t) => {
  const echo = await tcpEcho('echo')
  t.teardown(echo.close)
  const srcPort = await freePort()
  const reply = await reconfigure({ serviceName: 'tcpsvc', reqMode: 'tcp', srcPort: String(srcPort), port: String(echo.port), timeoutClient: '30', clitcpka: 'true', checkTcp: 'true' })
  t.equal(reply.status, 200)
  t.equal(await tcpExchange(srcPort, 'hello'), 'echo:hello')
  t.match((await daemon.call('config')).body, `frontend tcpFE_${srcPort}\n    bind *:${srcPort}\n    mode tcp\n    timeout client 30s\n    option clitcpka\n`)
  t.match((await daemon.call('config')).body, `server tcpsvc 127.0.0.1:${echo.port} check\n`, 'checkTcp: health-checked server')
  t.equal((await daemon.call('remove', { serviceName: 'tcpsvc' })).status, 200)
  await t.rejects(tcpExchange(srcPort, 'gone', 1000), 'the port is closed after remove')
})
