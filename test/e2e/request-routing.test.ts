import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import t from 'tap'
import { startDaemon, startWithUpstreams } from '../helpers/daemon.js'
import { freePort } from '../helpers/net.js'
import { nameInBody } from '../helpers/checks.js'

// Routing by header and user agent, redirects, compression and custom templates, seen from
// outside: real requests through a real haproxy to real upstreams on 127.0.0.1.
const templatesDir = await mkdtemp(join(tmpdir(), 'dfp-templates-'))
const {
  daemon,
  upstreams: { alpha, beta },
} = await startWithUpstreams(['alpha', 'beta'], { TEMPLATES_DIR: templatesDir })
t.teardown(() => rm(templatesDir, { recursive: true, force: true }))

const reconfigure = (params: Record<string, string>) => daemon.call('reconfigure', { outboundHostname: '127.0.0.1', ...params })
const upstreamName = async (path: string, headers?: Record<string, string>) => {
  const reply = await daemon.proxy(path, headers)
  return reply.status === 200 ? nameInBody(reply.body) : reply.status
}

t.test('serviceHeader routes by request header', async (t) => {
  t.equal((await reconfigure({ serviceName: 'api-v2', servicePath: '/api', port: String(alpha.port), serviceHeader: 'X-Version:2' })).status, 200)
  t.equal((await reconfigure({ serviceName: 'api-v1', aclName: 'b-api-v1', servicePath: '/api', port: String(beta.port) })).status, 200)
  t.equal(await upstreamName('/api/x', { 'x-version': '2' }), 'alpha')
  t.equal(await upstreamName('/api/x', { 'x-version': '1' }), 'beta')
  t.equal(await upstreamName('/api/x'), 'beta')
  for (const name of ['api-v2', 'api-v1']) await daemon.call('remove', { serviceName: name })
})

t.test('serviceHeader on several destinations (the original generated an invalid config: D4)', async (t) => {
  const reply = await reconfigure({
    serviceName: 'two-headers',
    'servicePath.1': '/first',
    'port.1': String(alpha.port),
    'serviceHeader.1': 'X-Team:red',
    'servicePath.2': '/second',
    'port.2': String(beta.port),
    'serviceHeader.2': 'X-Team:blue,X-Env:prod',
  })
  t.equal(reply.status, 200, reply.body)
  t.equal(await upstreamName('/first', { 'x-team': 'red' }), 'alpha')
  t.equal(await upstreamName('/first', { 'x-team': 'blue' }), 503)
  t.equal(await upstreamName('/second', { 'x-team': 'blue', 'x-env': 'prod' }), 'beta')
  t.equal(await upstreamName('/second', { 'x-team': 'blue' }), 503, 'every header must match')
  await daemon.call('remove', { serviceName: 'two-headers' })
})

t.test('userAgent routes by User-Agent substring', async (t) => {
  t.equal((await reconfigure({ serviceName: 'mobile', servicePath: '/app', port: String(alpha.port), userAgent: 'iPhone,Android' })).status, 200)
  t.equal((await reconfigure({ serviceName: 'web', servicePath: '/app', port: String(beta.port) })).status, 200)
  t.equal(await upstreamName('/app', { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)' }), 'alpha')
  t.equal(await upstreamName('/app', { 'user-agent': 'Mozilla/5.0 (Linux; android 14)' }), 'alpha', 'case-insensitive')
  t.equal(await upstreamName('/app', { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)' }), 'beta')
  t.match((await daemon.call('config')).body, 'acl user_agent_mobile_iPhone_Android_0 hdr_sub(User-Agent) -i iPhone Android')
  for (const name of ['mobile', 'web']) await daemon.call('remove', { serviceName: name })
})

t.test('redirectFromDomain answers 301 to the first serviceDomain', async (t) => {
  t.equal((await reconfigure({ serviceName: 'moved', serviceDomain: 'new.example.com,www.new.example.com', port: String(alpha.port), redirectFromDomain: 'old.example.com' })).status, 200)
  const reply = await daemon.proxy('/some/page?q=1', { host: 'old.example.com' })
  t.equal(reply.status, 301)
  t.equal(reply.headers.location, 'http://new.example.com/some/page?q=1')
  t.equal(await upstreamName('/', { host: 'new.example.com' }), 'alpha')
  await daemon.call('remove', { serviceName: 'moved' })
})

t.test('redirectFromDomain without serviceDomain is a 400 and changes nothing (D16)', async (t) => {
  const before = (await daemon.call('config')).body
  const reply = await reconfigure({ serviceName: 'nowhere', servicePath: '/nowhere', port: String(alpha.port), redirectFromDomain: 'old.example.com' })
  t.equal(reply.status, 400)
  t.equal(reply.json.Message, 'redirectFromDomain: needs serviceDomain: its first domain is where the redirect goes')
  t.equal((await daemon.call('config')).body, before)
})

t.test('redirectUnlessHttpsProto redirects unless X-Forwarded-Proto is https', async (t) => {
  t.equal((await reconfigure({ serviceName: 'behind-lb', servicePath: '/lb', port: String(alpha.port), redirectUnlessHttpsProto: 'true', httpsRedirectCode: '301' })).status, 200)
  const reply = await daemon.proxy('/lb/page', { host: 'site.test' })
  t.equal(reply.status, 301)
  t.equal(reply.headers.location, 'https://site.test/lb/page')
  t.equal((await daemon.proxy('/lb/page', { host: 'site.test', 'x-forwarded-proto': 'http' })).status, 301)
  t.equal(await upstreamName('/lb/page', { host: 'site.test', 'x-forwarded-proto': 'https' }), 'alpha')
  await daemon.call('remove', { serviceName: 'behind-lb' })
})

/** A GET whose body is returned as bytes, with the response headers. */
const rawGet = (path: string, headers: Record<string, string>) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: daemon.proxyPort, path, headers, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })

t.test('compression applies to the service that asks for it, and only to it (D9)', async (t) => {
  t.equal((await reconfigure({ serviceName: 'zipped', servicePath: '/zipped', port: String(alpha.port), compressionAlgo: 'gzip', compressionType: 'application/json' })).status, 200)
  t.equal((await reconfigure({ serviceName: 'plain', servicePath: '/plain', port: String(beta.port) })).status, 200)
  const zipped = await rawGet('/zipped/data', { 'accept-encoding': 'gzip' })
  t.equal(zipped.status, 200)
  t.equal(zipped.headers['content-encoding'], 'gzip')
  t.equal(JSON.parse(gunzipSync(zipped.body).toString('utf8')).name, 'alpha')
  const plain = await rawGet('/plain/data', { 'accept-encoding': 'gzip' })
  t.equal(plain.status, 200)
  t.equal(plain.headers['content-encoding'], undefined, 'the other service is not compressed')
  t.equal(JSON.parse(plain.body.toString('utf8')).name, 'beta')
  const unasked = await rawGet('/zipped/data', {})
  t.equal(unasked.headers['content-encoding'], undefined, 'no compression without Accept-Encoding')
  for (const name of ['zipped', 'plain']) await daemon.call('remove', { serviceName: name })
})

t.test('custom templates: rendered with the service, stored, listed and removable (R6, D10)', async (t) => {
  await writeFile(join(templatesDir, 'fe.hbs'), '    acl url_{{serviceName}}_custom path_beg /custom\n    use_backend {{serviceName}}-custom if url_{{serviceName}}_custom\n')
  await writeFile(
    join(templatesDir, 'be.hbs'),
    'backend {{serviceName}}-custom\n    mode http\n    http-request set-header X-User-Def "{{userDef}}"\n{{#each destinations}}\n    server {{../serviceName}} {{outboundHostname}}:{{port}}\n{{/each}}\n',
  )
  const reply = await reconfigure({ serviceName: 'custom', servicePath: '/custom', port: String(alpha.port), templateFePath: 'fe.hbs', templateBePath: join(templatesDir, 'be.hbs'), userDef: 'a&b <c> {{x}}' })
  t.equal(reply.status, 200, reply.body)
  // A tcp frontend comes after frontend services: the custom rules must not land in it.
  t.equal((await reconfigure({ serviceName: 'tcp-after', reqMode: 'tcp', srcPort: String(await freePort()), port: String(beta.port) })).status, 200)
  const answer = await daemon.proxy('/custom/x')
  t.equal(answer.status, 200)
  t.equal(JSON.parse(answer.body).headers['x-user-def'], 'a&b <c> {{x}}', 'no escaping, no second template pass')
  const config = (await daemon.call('config')).body
  const frontend = config.slice(config.indexOf('frontend services'), config.indexOf('frontend tcpFE_'))
  t.match(frontend, 'use_backend custom-custom if url_custom_custom', 'custom rules inside frontend services')
  t.ok(Object.keys((await daemon.call('config', { type: 'json' })).json).includes('custom'), 'listed')
  // Without http services frontend services binds nothing (as the original): remove the tcp one first.
  await daemon.call('remove', { serviceName: 'tcp-after' })
  t.equal((await daemon.call('remove', { serviceName: 'custom' })).status, 200)
  t.equal((await daemon.proxy('/custom/x')).status, 503, 'removed')
  t.notMatch((await daemon.call('config')).body, 'custom-custom')
})

t.test('a template path outside TEMPLATES_DIR is a 400', async (t) => {
  const reply = await reconfigure({ serviceName: 'evil', servicePath: '/evil', port: String(alpha.port), templateFePath: '../../etc/passwd' })
  t.equal(reply.status, 400)
  t.equal(reply.json.Message, 'templateFePath: "../../etc/passwd" is outside TEMPLATES_DIR')
})

t.test('a wildcard domain survives a restart (D1)', async (t) => {
  const first = await startDaemon()
  t.equal((await first.call('reconfigure', { serviceName: 'wild', serviceDomain: '*.example.org', port: String(beta.port), outboundHostname: '127.0.0.1' })).status, 200)
  await first.close({ keepConfig: true })
  const again = await startDaemon({}, { configDir: first.configDir, proxyPort: first.proxyPort })
  t.teardown(() => again.close())
  const reply = await again.proxy('/', { host: 'api.example.org' })
  t.equal(reply.status, 200)
  t.equal(JSON.parse(reply.body).name, 'beta')
  t.match((await again.call('config')).body, 'acl domain_wild')
  t.match((await again.call('config')).body, 'hdr_end(host) -i .example.org')
})
