import t from 'tap'
import { startDaemon, startWithUpstream } from '../helpers/daemon.js'
import { httpGet } from '../helpers/net.js'

// Header rules, method rules, denyHttp, connectionMode and backendExtra seen from outside.
const { daemon, port } = await startWithUpstream('rules')
const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', port, ...params })
const send = (path: string, method = 'GET', headers: Record<string, string> = {}) => httpGet(daemon.proxyPort, path, headers, 5000, '127.0.0.1', method)

t.test('header rules reach the upstream and the client', async (t) => {
  const reply = await reconfigure({
    serviceName: 'headers',
    servicePath: '/headers',
    addReqHeader: 'X-Added hello world,X-Quoted "as sent",X-Second 2',
    setReqHeader: 'X-Set replaced',
    delReqHeader: 'X-Secret',
    addResHeader: 'X-Res-Added yes',
    setResHeader: 'X-Upstream masked',
    delResHeader: 'Date',
    backendExtra: 'http-response set-header X-Extra from-backend-extra',
  })
  t.equal(reply.status, 200)
  const answer = await send('/headers', 'GET', { 'x-set': 'original', 'x-secret': 'leak' })
  const seen = JSON.parse(answer.body).headers
  t.equal(seen['x-added'], 'hello world', 'a value with a blank reaches the upstream as given')
  t.equal(seen['x-quoted'], '"as sent"', 'quotes are part of the value (issue 21: values are data)')
  t.equal(seen['x-second'], '2')
  t.equal(seen['x-set'], 'replaced')
  t.notOk('x-secret' in seen, 'del-header')
  t.equal(answer.headers['x-res-added'], 'yes')
  t.equal(answer.headers['x-upstream'], 'masked')
  t.notOk('date' in answer.headers)
  t.equal(answer.headers['x-extra'], 'from-backend-extra', 'backendExtra is a line of the backend')
})

t.test('allowedMethods and deniedMethods answer 403', async (t) => {
  t.equal((await reconfigure({ serviceName: 'readonly', servicePath: '/readonly', allowedMethods: 'GET,HEAD' })).status, 200)
  t.equal((await send('/readonly')).status, 200)
  t.equal((await send('/readonly', 'POST')).status, 403)
  t.equal((await reconfigure({ serviceName: 'nodelete', servicePath: '/nodelete', deniedMethods: 'DELETE' })).status, 200)
  t.equal((await send('/nodelete', 'DELETE')).status, 403)
  t.equal((await send('/nodelete', 'PUT')).status, 200)
})

t.test('denyHttp refuses plain HTTP', async (t) => {
  t.equal((await reconfigure({ serviceName: 'tlsonly', servicePath: '/tlsonly', denyHttp: 'true' })).status, 200)
  t.equal((await send('/tlsonly')).status, 403)
})

t.test('connectionMode is the backend option', async (t) => {
  t.equal((await reconfigure({ serviceName: 'closing', servicePath: '/closing', connectionMode: 'httpclose' })).status, 200)
  t.match((await daemon.call('config')).body, /backend closing-be\d+_0\n {4}mode http\n {4}http-request add-header X-Forwarded-Proto https if \{ ssl_fc \}\n {4}option httpclose\n/)
  t.equal((await send('/closing')).status, 200)
})

t.test('a backendExtra HAProxy refuses is refused like any value', async (t) => {
  const reply = await reconfigure({ serviceName: 'extra', servicePath: '/extra', backendExtra: 'not-a-keyword here' })
  t.equal(reply.status, 400)
  t.match(reply.json.Message, /not-a-keyword/)
})

t.test('HTTPS_ONLY redirects every http destination', async (t) => {
  const forced = await startDaemon({ HTTPS_ONLY: 'true' })
  t.teardown(() => forced.close())
  t.equal((await forced.call('reconfigure', { serviceName: 'any', servicePath: '/any', port, outboundHostname: '127.0.0.1' })).status, 200)
  const reply = await forced.proxy('/any/page', { host: 'site.test' })
  t.equal(reply.status, 302)
  t.equal(reply.headers.location, 'https://site.test/any/page')
})
