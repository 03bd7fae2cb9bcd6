import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { fingerprintOf, httpsGet, makeCertificate, servedCertificate } from '../helpers/certs.js'
import type { ApiAnswer } from '../helpers/api-json.js'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream, until } from '../helpers/net.js'
import { portOf } from '../helpers/checks.js'
import { messageOf } from '../../src/errors.js'

// Certificates made by openssl; TLS clients with SNI against the real haproxy.
const upstream = await httpUpstream('secure')
const folder = await mkdtemp(join(tmpdir(), 'dfp-certs-'))
const secrets = await mkdtemp(join(tmpdir(), 'dfp-secrets-'))
const httpPort = await freePort()
const httpsPort = await freePort()
const env = { CERTS_DIR: folder, SECRETS_DIR: secrets, DEFAULT_PORTS: `${httpPort},${httpsPort}:ssl` }
const logLines: Array<Record<string, unknown>> = []
let daemon: TestDaemon = await startDaemon(env, { proxyPort: httpPort, logLines })
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
  await rm(folder, { recursive: true, force: true })
  await rm(secrets, { recursive: true, force: true })
})
const put = (name: string, pem: string) =>
  fetch(`http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/cert?certName=${encodeURIComponent(name)}`, { method: 'PUT', body: pem }).then(async (r) => {
    const json: ApiAnswer = await r.json()
    return { status: r.status, json }
  })

t.test('without a certificate the :ssl port is not bound, and /config says why', async (t) => {
  await t.rejects(servedCertificate(httpsPort, 'a.test'))
  t.match((await daemon.call('config')).body, `# ${httpsPort}:ssl is not bound: no certificate is loaded`)
  t.equal((await daemon.call('reconfigure', { serviceName: 'site', servicePath: '/', port: String(upstream.port), outboundHostname: '127.0.0.1' })).status, 200)
})

t.test('folder and secret certificates: each domain gets its own, over HTTP/2', async (t) => {
  await writeFile(join(folder, 'a.test.pem'), makeCertificate('a.test'))
  await writeFile(join(folder, 'b.test.pem'), makeCertificate('b.test'))
  await writeFile(join(secrets, 'cert-s.test'), makeCertificate('s.test'))
  await writeFile(join(secrets, 'dfp_other'), 'not a certificate')
  t.ok(await until(async () => (await servedCertificate(httpsPort, 's.test')).cn === 's.test'), 'picked up while running')
  t.equal((await servedCertificate(httpsPort, 'a.test')).cn, 'a.test')
  t.equal((await servedCertificate(httpsPort, 'b.test')).cn, 'b.test')
  t.equal((await servedCertificate(httpsPort, 'a.test')).alpn, 'h2', 'HTTP/2 negotiated')
  t.equal(await httpsGet(httpsPort, 'a.test', '/'), 200)
  const certs = (await daemon.call('certs')).json.Certs
  t.same(certs?.map((c) => [c.Name, c.Source, c.Domains]), [
    ['a.test.pem', 'folder', ['a.test']],
    ['b.test.pem', 'folder', ['b.test']],
    ['cert-s.test', 'secret', ['s.test']],
  ])
  t.notMatch(JSON.stringify(certs), /PRIVATE KEY|BEGIN/, 'no PEM, no key in the listing')
})

t.test('TLS connections reach the upstream with X-Forwarded-Proto: https', async (t) => {
  const { request } = await import('node:https')
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port: httpsPort, servername: 'a.test', path: '/x', rejectUnauthorized: false, headers: { host: 'a.test' } }, (res) => {
      let data = ''
      res.on('data', (c) => (data += c))
      res.on('end', () => resolve(data))
    })
      .on('error', reject)
      .end()
  })
  t.match(JSON.parse(body), { name: 'secure', proto: 'https' })
})

t.test('a certificate uploaded through the API is served without a restart', async (t) => {
  const master = daemon.haproxy.masterPid
  const reply = await put('c.test', makeCertificate('c.test'))
  t.equal(reply.status, 200)
  t.match(reply.json, { Status: 'OK', Certs: [{ Name: 'c.test', Domains: ['c.test'], Expired: false }] })
  t.equal((await servedCertificate(httpsPort, 'c.test')).cn, 'c.test')
  t.equal(daemon.haproxy.masterPid, master, 'same haproxy master')
})

t.test('an expired certificate is accepted with a warning, and served', async (t) => {
  const reply = await put('old.test', makeCertificate('old.test', -1))
  t.equal(reply.status, 200)
  t.match(reply.json.Message, /expired on .*served anyway/)
  t.match(reply.json.Certs, [{ Name: 'old.test', Expired: true }])
  t.equal((await servedCertificate(httpsPort, 'old.test')).cn, 'old.test')
})

t.test('replacing a certificate in the folder is swapped without a reload', async (t) => {
  const replacement = makeCertificate('a.test')
  const reloads = daemon.applier.reloads
  await writeFile(join(folder, 'a.test.pem'), replacement)
  t.ok(await until(async () => (await servedCertificate(httpsPort, 'a.test')).fingerprint === fingerprintOf(replacement)))
  t.equal(daemon.applier.reloads, reloads)
  const metrics = (await daemon.api('/metrics')).body
  t.ok(Number(/^dfp_runtime_changes_total\{kind="ssl-cert",outcome="ok"\} (\d+)$/m.exec(metrics)?.[1]) >= 1, 'counted as a Runtime API change')
})

t.test('replacing a certificate while clients connect fails no request and needs no reload', async (t) => {
  const replacement = makeCertificate('c.test')
  const reloads = daemon.applier.reloads
  let stop = false
  let ok = 0
  const failures: string[] = []
  const client = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      try {
        const status = await httpsGet(httpsPort, 'c.test', '/')
        if (status === 200) ok++
        else failures.push(`status ${status}`)
      } catch (err) {
        failures.push(messageOf(err))
      }
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const reply = await put('c.test', replacement)
  await new Promise((resolve) => setTimeout(resolve, 300))
  stop = true
  await client
  t.equal(reply.status, 200)
  t.same(failures, [], `no failed request (${ok} succeeded)`)
  t.ok(ok > 10)
  t.equal((await servedCertificate(httpsPort, 'c.test')).fingerprint, fingerprintOf(replacement), 'the new certificate is served')
  t.equal(daemon.applier.reloads, reloads, 'swapped through the Runtime API')
})

t.test('an invalid PEM and a traversal certName are refused and change nothing', async (t) => {
  const uploads = join(daemon.configDir, 'certs', 'uploaded')
  const before = { files: await readdir(uploads), crtList: await readFile(join(daemon.configDir, 'crt-list.txt'), 'utf8'), config: (await daemon.call('config')).body, reloads: daemon.applier.reloads }
  const pemA = makeCertificate('x.test')
  const pemB = makeCertificate('y.test')
  const mismatched = pemA.slice(0, pemA.indexOf('-----BEGIN PRIVATE KEY')) + pemB.slice(pemB.indexOf('-----BEGIN PRIVATE KEY'))
  const cases: Array<[string, string, RegExp]> = [
    ['bad.test', 'hello', /^body: no PEM certificate/],
    ['bad.test', mismatched, /^body: the private key does not match the certificate/],
    ['bad.test', pemA.slice(0, pemA.indexOf('-----BEGIN PRIVATE KEY')), /^body: no PEM private key/],
    ['../../etc/evil', pemA, /^certName: must be a file name/],
    ['/etc/evil', pemA, /^certName: /],
    ['..', pemA, /^certName: /],
    ['', pemA, /^certName: is mandatory/],
  ]
  for (const [name, pem, message] of cases) {
    const reply = await put(name, pem)
    t.equal(reply.status, 400, `${name} refused`)
    t.match(reply.json.Message, message)
  }
  t.equal((await fetch(`http://127.0.0.1:${daemon.apiPort}/v1/docker-flow-proxy/cert?certName=x`)).status, 405, 'GET /cert is not allowed')
  t.same(await readdir(uploads), before.files, 'no file written')
  t.equal(await readFile(join(daemon.configDir, 'crt-list.txt'), 'utf8'), before.crtList)
  t.equal((await daemon.call('config')).body, before.config)
  t.equal(daemon.applier.reloads, before.reloads, 'haproxy untouched')
})

t.test('a folder certificate that turns invalid keeps its last good copy and blocks nothing', async (t) => {
  const served = (await servedCertificate(httpsPort, 'a.test')).fingerprint
  const seen = logLines.length
  await writeFile(join(folder, 'a.test.pem'), 'half-written garbage')
  // The watcher's scan of the broken file: refused, its last good copy kept, then applied.
  const scanned = () => {
    const after = logLines.slice(seen)
    const refused = after.findIndex((l) => l.msg === 'certificate file refused' && l.certificate === join(folder, 'a.test.pem'))
    return refused >= 0 && after[refused]?.keptPrevious === true && after.slice(refused).some((l) => l.msg === 'certificate folders applied')
  }
  t.ok(await until(async () => scanned()), 'the watcher refused the broken file and applied its scan')
  t.equal((await servedCertificate(httpsPort, 'a.test')).fingerprint, served, 'still the last good certificate')
  t.equal((await daemon.call('reconfigure', { serviceName: 'still-works', servicePath: '/still', port: String(upstream.port), outboundHostname: '127.0.0.1' })).status, 200)
  t.equal((await daemon.call('reload')).status, 200, 'a full reload loads the copy, not the broken file')
  t.equal((await servedCertificate(httpsPort, 'a.test')).fingerprint, served)
})

t.test('a certificate removed from the folder is no longer served', async (t) => {
  await rm(join(folder, 'b.test.pem'))
  t.ok(await until(async () => (await servedCertificate(httpsPort, 'b.test')).cn !== 'b.test'))
})

t.test('serviceCert and the HTTPS redirects', async (t) => {
  const reply = await daemon.call('reconfigure', {
    serviceName: 'shop',
    serviceDomain: 'shop.test',
    port: String(upstream.port),
    outboundHostname: '127.0.0.1',
    httpsOnly: 'true',
    serviceCert: makeCertificate('shop.test').replaceAll('\n', '\\n'),
  })
  t.equal(reply.status, 200)
  t.equal((await servedCertificate(httpsPort, 'shop.test')).cn, 'shop.test', 'served under the name of its domain')
  const plain = await httpGet(httpPort, '/cart?x=1', { host: 'shop.test' })
  t.equal(plain.status, 302)
  t.equal(plain.headers.location, 'https://shop.test/cart?x=1')
  t.equal(await httpsGet(httpsPort, 'shop.test', '/cart'), 200, 'no redirect over TLS')

  t.equal((await daemon.call('reconfigure', { serviceName: 'behind-lb', servicePath: '/lb', port: String(upstream.port), outboundHostname: '127.0.0.1', redirectWhenHttpProto: 'true', httpsRedirectCode: '301' })).status, 200)
  const forwarded = await httpGet(httpPort, '/lb/page', { host: 'example.test', 'x-forwarded-proto': 'http' })
  t.equal(forwarded.status, 301)
  t.equal(forwarded.headers.location, 'https://example.test/lb/page')
  t.equal((await httpGet(httpPort, '/lb/page', { 'x-forwarded-proto': 'https' })).status, 200)
})

t.test('sslVerifyNone: HAProxy speaks TLS to an upstream with a self-signed certificate', async (t) => {
  const { createServer } = await import('node:https')
  const pem = makeCertificate('upstream.test')
  const server = createServer({ cert: pem, key: pem }, (req, res) => res.end(`tls upstream ${req.url}`))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const tlsPort = String(portOf(server))
  t.equal((await daemon.call('reconfigure', { serviceName: 'tls-upstream', servicePath: '/tls-up', port: tlsPort, outboundHostname: '127.0.0.1', sslVerifyNone: 'true' })).status, 200)
  const reply = await httpGet(httpPort, '/tls-up/x')
  t.equal(reply.status, 200)
  t.equal(reply.body, 'tls upstream /tls-up/x')
  t.equal((await daemon.call('reconfigure', { serviceName: 'tls-upstream', servicePath: '/tls-up', port: tlsPort, outboundHostname: '127.0.0.1' })).status, 200)
  t.not((await httpGet(httpPort, '/tls-up/x')).status, 200, 'without it, plain HTTP to a TLS server fails')
})

t.test('a restart keeps the uploaded certificates', async (t) => {
  const fingerprint = (await servedCertificate(httpsPort, 'c.test')).fingerprint
  await daemon.close({ keepConfig: true })
  daemon = await startDaemon(env, { configDir: daemon.configDir, proxyPort: httpPort })
  t.equal((await servedCertificate(httpsPort, 'c.test')).fingerprint, fingerprint)
  t.equal((await servedCertificate(httpsPort, 'shop.test')).cn, 'shop.test')
})
