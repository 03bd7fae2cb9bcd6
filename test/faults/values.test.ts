// Issue 21: what a user sends reaches HAProxy as data. The ten reproductions, each against a real
// daemon and a real HAProxy, plus variants (other quotes, escapes, keywords, names). Each
// reproduction answered 200 on e82721c and made HAProxy do what the value said.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { httpGet, httpUpstream } from '../helpers/net.js'

const upstream = await httpUpstream('app')
const other = await httpUpstream('other')
t.teardown(async () => {
  await upstream.close()
  await other.close()
})
const daemon = await startDaemon({ USERS: 'globaluser:global-pass-1' })
t.teardown(() => daemon.close())
const port = String(upstream.port)
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
const service = (serviceName: string, params: Record<string, string>) =>
  daemon.call('reconfigure', { serviceName, port, outboundHostname: '127.0.0.1', ...params })

t.test('1. backendExtra cannot make HAProxy serve a file, however "file" is spelled', async (t) => {
  const spellings = [
    'http-request return status 200 content-type text/plain "file" /etc/passwd',
    'http-request return status 200 content-type text/plain fi""le /etc/passwd',
    "http-request return status 200 content-type text/plain 'fi'le /etc/passwd",
    'http-request return status 200 content-type text/plain fil\\x65 /etc/passwd',
    'http-request return status 200 content-type text/plain "lf-file" /etc/passwd',
    'http-request deny deny_status 200 "errorfile" /etc/passwd',
    'http-request return status 200 content-type text/plain string x if { path "-f" /etc/passwd }',
  ]
  for (const backendExtra of spellings) {
    const reply = await service('f1', { servicePath: '/f1', backendExtra, ignoreAuthorization: 'true' })
    t.equal(reply.status, 400, backendExtra)
    t.match(reply.json?.Message, /backendExtra/, 'the refusal names the parameter')
  }
  t.notMatch((await daemon.proxy('/f1')).body, /root:/, 'no file is served')
})

t.test('2. a header value cannot read the environment: it is sent as written', async (t) => {
  for (const value of ['%[e""nv(PATH)]', '%[env(PATH)]', '"${PATH}"', "'$PATH'", '%[e\\x6ev(PATH)]']) {
    const reply = await service('env1', { servicePath: '/env1', setResHeader: `X-E ${value}`, ignoreAuthorization: 'true' })
    t.equal(reply.status, 200, reply.body)
    const served = await daemon.proxy('/env1')
    t.equal(served.headers['x-e'], value, `X-E is the user's bytes: ${value}`)
  }
  const extra = await service('env2', { servicePath: '/env2', backendExtra: 'http-response set-header X-E %[e""nv(PATH)]' })
  t.equal(extra.status, 400, 'backendExtra cannot call env() either')
})

t.test('3. a header value cannot add headers', async (t) => {
  const reply = await service('inj', { servicePath: '/inj', addReqHeader: 'X-A "a\\r\\nX-Injected: yes"', setResHeader: 'X-B x\\r\\nSet-Cookie: evil=1', ignoreAuthorization: 'true' })
  t.equal(reply.status, 200, reply.body)
  const served = await daemon.proxy('/inj')
  const seen = (JSON.parse(served.body) as { headers: Record<string, string> }).headers
  t.equal(seen['x-a'], '"a\\r\\nX-Injected: yes"', 'the upstream receives the value as written')
  t.notOk('x-injected' in seen, 'and no other header')
  t.equal(served.headers['x-b'], 'x\\r\\nSet-Cookie: evil=1')
  t.notOk('set-cookie' in served.headers, 'no cookie reaches the client')
  // raw CR/LF, tabs and runs of blanks HAProxy would merge are refused, naming the parameter
  for (const value of ['X-A a\r\nX-Injected: yes', 'X-A a\tb', 'X-A a  b']) {
    const refused = await service('inj', { servicePath: '/inj', addReqHeader: value })
    t.equal(refused.status, 400, JSON.stringify(value))
    t.match(refused.json?.Message, /addReqHeader/)
  }
  const badName = await service('inj', { servicePath: '/inj', setReqHeader: 'X"A b' })
  t.match(badName.json?.Message, /setReqHeader: header name .* RFC 9110 token/)
})

t.test('4. a user name with a quote is refused; HAProxy keeps serving', async (t) => {
  for (const users of ['b"ob:x', "b'ob:x", 'b\\ob:x', 'b ob:x', 'b#ob:x', 'b$ob:x']) {
    const reply = await service('usr2', { servicePath: '/usr2', users })
    t.equal(reply.status, 400, users)
    t.match(reply.json?.Message, /^users: entry 1: the user name/)
  }
  const ok = await service('usr2', { servicePath: '/usr2', users: 'bob:p "a\' \\x #;$x' })
  t.equal(ok.status, 200, 'a password is data, quotes, blanks, backslash and all')
  t.equal((await daemon.proxy('/usr2', basic('bob', 'p "a\' \\x #;$x'))).status, 200, 'and authenticates byte for byte')
  t.equal((await daemon.proxy('/usr2', basic('bob insecure-password x', 'any'))).status, 401)
  t.equal((await daemon.proxy('/usr2', basic('bob', 'any'))).status, 401)
})

t.test('5. a service named default does not merge with USERS; no service reaches another userlist', async (t) => {
  t.equal((await service('default', { servicePath: '/def', users: 'mallory:m-pass-1' })).status, 200)
  t.equal((await service('plain', { servicePath: '/plain' })).status, 200)
  t.equal((await daemon.proxy('/plain', basic('mallory', 'm-pass-1'))).status, 401, 'mallory is not a user of other services')
  t.equal((await daemon.proxy('/plain', basic('globaluser', 'global-pass-1'))).status, 200, 'USERS still work there')
  t.equal((await daemon.proxy('/def', basic('mallory', 'm-pass-1'))).status, 200, 'the service’s own user is accepted')
  t.equal((await daemon.proxy('/def', basic('globaluser', 'global-pass-1'))).status, 401, 'its users replace USERS')
  // no other spelling of a name reaches dfp's namespace (serviceName has no ":")
  for (const serviceName of ['dfp:users', 'users:plain']) t.equal((await daemon.call('reconfigure', { serviceName, servicePath: '/x', port })).status, 400, serviceName)
})

t.test('6. a user named like the keyword does not show its password', async (t) => {
  t.equal((await service('leak', { servicePath: '/leak', users: 'my-password:LeakMe-789,password:LeakMe-790,insecure-password:LeakMe-791' })).status, 200)
  const config = (await daemon.call('config')).body
  for (const secret of ['LeakMe-789', 'LeakMe-790', 'LeakMe-791']) t.notOk(config.includes(secret), `/config does not show ${secret}`)
  t.match(config, /user my-password insecure-password <redacted>/)
})

t.test("7. backendExtra cannot name another service's backend; removing that service leaves everyone able to change", async (t) => {
  t.equal((await service('victim', { servicePath: '/victim' })).status, 200)
  for (const backendExtra of ['http-request set-var(txn.x) be_conn(victim-be' + port + '_0)', 'http-request set-var(txn.x) nbsrv(victim-be' + port + '_0)', 'acl up srv_is_up(victim-be' + port + '_0/victim)', 'http-request set-var(txn.x) "be_conn(victim-be' + port + '_0)"']) {
    const reply = await service('poison', { servicePath: '/poison', backendExtra })
    t.equal(reply.status, 400, backendExtra)
    t.match(reply.json?.Message, /backendExtra: must not use/)
  }
  t.equal((await daemon.call('remove', { serviceName: 'victim' })).status, 200)
  // a change that needs a reload still succeeds for everyone
  t.equal((await service('after', { servicePath: '/after', setResHeader: 'X-After yes' })).status, 200)
})

t.test('8. a path that would open a Runtime API payload is not map-routed: remove removes it', async (t) => {
  t.equal((await service('lt', { servicePath: '/lt<<' })).status, 200)
  t.equal((await daemon.proxy('/lt<<')).status, 401, 'routed (to a backend asking for USERS)')
  t.equal((await daemon.call('remove', { serviceName: 'lt' })).status, 200)
  t.equal((await daemon.proxy('/lt<<')).status, 503, 'and gone once removed')
  for (const servicePath of ['/a;show info', '/b\\', "/c'", '/d"']) {
    const key = servicePath.replace(/ .*/, '')
    t.equal((await service('lt2', { servicePath: key, ignoreAuthorization: 'true' })).status, 200, key)
    t.equal((await daemon.proxy(encodeURI(key).replace(/%5C/g, '\\'))).status, key.includes('"') ? 503 : 200, `${key} routed as written`)
  }
})

t.test('9. a malformed usersSecret is refused without quoting the file', async (t) => {
  await mkdir(daemon.settings.SECRETS_DIR, { recursive: true })
  await writeFile(join(daemon.settings.SECRETS_DIR, 'dfp_users_bad'), 'sec"ret-user-4711:pw-4711\n')
  const reply = await service('sec', { servicePath: '/sec', usersSecret: 'bad' })
  t.equal(reply.status, 400)
  t.match(reply.json?.Message, /usersSecret: entry 1/)
  t.notOk(reply.body.includes('4711'), 'nothing of the file is quoted')
})

t.test('10. a non-ASCII path is routed as clients send it (percent-encoded UTF-8)', async (t) => {
  t.equal((await service('uni', { servicePath: '/ünï', ignoreAuthorization: 'true' })).status, 200)
  const served = await daemon.proxy('/%C3%BCn%C3%AF/x')
  t.equal(served.status, 200)
  t.equal((JSON.parse(served.body) as { path: string }).path, '/%C3%BCn%C3%AF/x')
  // an internationalised domain is matched in its ASCII (punycode) form
  t.equal((await service('idn', { serviceDomain: 'bücher.example', ignoreAuthorization: 'true' })).status, 200)
  t.equal((await httpGet(daemon.proxyPort, '/', { host: 'xn--bcher-kva.example' })).status, 200)
})

t.test('other services were never affected', async (t) => {
  t.equal((await daemon.proxy('/plain', basic('globaluser', 'global-pass-1'))).status, 200)
  t.equal((await daemon.proxy('/after', basic('globaluser', 'global-pass-1'))).headers['x-after'], 'yes')
})

t.test('generated ACL names cannot be taken by another service: serviceHeader ACLs of a1:23 and a12:3', async (t) => {
  const first = await daemon.call('reconfigure', { serviceName: 'a1', servicePath: '/hdr-a', port: '23', outboundHostname: '127.0.0.1', serviceHeader: 'X-Team:blue' })
  t.equal(first.status, 200, first.body)
  const second = await daemon.call('reconfigure', { serviceName: 'a12', servicePath: '/hdr-b', port: '3', outboundHostname: '127.0.0.1', serviceHeader: 'X-Team:red' })
  t.equal(second.status, 409, 'hdr_a123_0 would OR the two services’ header conditions')
  t.match(second.json?.Message, /a1/)
})

t.test('8 (variant). a server host cannot end a Runtime API command', async (t) => {
  for (const outboundHostname of ['127.0.0.1;shutdown sessions server x/y', '127.0.0.1<<', 'unix@/tmp/x', "a'b", 'a\\;b']) {
    const reply = await daemon.call('reconfigure', { serviceName: 'hostword', servicePath: '/hostword', port, outboundHostname })
    t.equal(reply.status, 400, outboundHostname)
    t.match(reply.json?.Message, /^outboundHostname: /)
  }
  for (const outboundHostname of ['127.0.0.1', '::1', 'tasks.my_app', 'localhost.']) {
    t.equal((await daemon.call('reconfigure', { serviceName: 'hostword', servicePath: '/hostword', port, outboundHostname })).status, 200, outboundHostname)
  }
})
