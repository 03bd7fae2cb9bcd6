import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream, until } from '../helpers/net.js'
import { handshake, Pebble } from '../helpers/pebble.js'
import { type StatusAnswer, timeOf } from '../helpers/api-json.js'

// A real ACME server (pebble, validating HTTP-01 for real through HAProxy's HTTP port, names
// resolved by pebble-challtestsrv to 127.0.0.1), one daemon, real TLS handshakes with SNI.
const httpPort = await freePort()
const httpsPort = await freePort()
const pebble = await new Pebble().start({ httpPort })
const upstream = await httpUpstream('site')
const port = String(upstream.port)
const env = {
  DEFAULT_PORTS: `${httpPort},${httpsPort}:ssl`,
  ACME_DIRECTORY_URL: pebble.directoryUrl,
  ACME_CA_FILE: pebble.caFile,
  ACME_EMAIL: 'ops@dfp.test',
  // tasks.proxy resolves to 127.0.0.1 there: this daemon is the only replica.
  DNS_SERVERS: pebble.dnsServer,
}
let daemon: TestDaemon = await startDaemon(env, { proxyPort: httpPort })
const root = await pebble.root()
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
  await pebble.stop()
})

const metric = async (name: string, labels = '') => Number(new RegExp(`^${name}${labels.replaceAll(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec((await daemon.api('/metrics')).body)?.[1] ?? 0)
const acmeEntry = async (domain: string) => (await daemon.call('certs')).json.Acme?.find((a) => a.Domains.includes(domain))

t.test('a new domain is served with its issued certificate within 10 s of the reconfigure', async (t) => {
  const started = Date.now()
  const reply = await daemon.call('reconfigure', { serviceName: 'shop', serviceDomain: 'shop.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'shop.acme.test,www.shop.acme.test' })
  t.equal(reply.status, 200, reply.body)
  let served = await handshake(httpsPort, 'shop.acme.test', root).catch(() => undefined)
  const issued = await until(async () => {
    served = await handshake(httpsPort, 'shop.acme.test', root).catch(() => undefined)
    return served?.authorized === true
  }, 10_000)
  t.ok(issued, `served and verified against pebble's root within 10 s (${Date.now() - started} ms after the reconfigure)`)
  t.comment(`issuance: ${Date.now() - started} ms from reconfigure to a verified handshake`)
  t.match(served?.issuer, /^Pebble Intermediate CA/, 'issued by pebble')
  t.same(served?.names.sort(), ['shop.acme.test', 'www.shop.acme.test'], 'both domains in the SAN')
  t.equal((await handshake(httpsPort, 'www.shop.acme.test', root)).authorized, true, 'the second name verifies too')
  const entry = await acmeEntry('shop.acme.test')
  t.match(entry, { State: 'valid', Services: ['shop'], Issuer: /^Pebble Intermediate CA/, Failures: 0 })
  const lifetime = timeOf(entry?.ValidTo) - timeOf(entry?.NotBefore)
  t.ok(Math.abs(timeOf(entry?.NextAttempt) - (timeOf(entry?.ValidTo) - lifetime / 3)) < 1000, 'renewal planned when a third of the lifetime is left')
  t.equal(await metric('dfp_acme_orders_total', '{outcome="issued"}'), 1)
})

t.test('challenges are answered before redirects: httpsOnly and a token-less path', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'secure', serviceDomain: 'secure.acme.test', port, outboundHostname: '127.0.0.1', httpsOnly: 'true', 'letsencrypt.host': 'true' })
  t.equal(reply.status, 200, reply.body)
  t.ok(await until(async () => (await handshake(httpsPort, 'secure.acme.test', root).catch(() => undefined))?.authorized === true, 10_000), 'issued through an httpsOnly service')
  const unknown = await daemon.proxy('/.well-known/acme-challenge/not-a-token', { host: 'secure.acme.test' })
  t.equal(unknown.status, 302, 'an unknown token is not answered by the map: the service rules apply (the https redirect)')
  t.match(unknown.headers.location, /^https:\/\/secure\.acme\.test\//)
})

t.test('a domain failing validation gets no certificate; other services are unaffected', async (t) => {
  // Its DNS fails (SERVFAIL), as for a domain whose DNS is broken or not set up yet.
  await pebble.breakDns('broken.acme.test')
  const before = await metric('dfp_acme_orders_total', '{outcome="failed"}')
  t.equal((await daemon.call('reconfigure', { serviceName: 'broken', serviceDomain: 'broken.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })).status, 200)
  t.ok(await until(async () => (await acmeEntry('broken.acme.test'))?.State === 'failed', 20_000), 'reported as failed')
  const entry = await acmeEntry('broken.acme.test')
  t.equal(entry?.Name, null, 'no certificate')
  t.equal(entry?.Failures, 1)
  t.match(entry?.LastError, /broken\.acme\.test/)
  t.ok(timeOf(entry?.NextAttempt) > Date.now(), 'retried later, with back-off')
  t.equal(await metric('dfp_acme_orders_total', '{outcome="failed"}'), before + 1)
  t.match((await daemon.call<StatusAnswer>('status', { type: 'json' })).json.acme, [{ domains: ['broken.acme.test'], state: 'failed' }])
  t.equal((await handshake(httpsPort, 'shop.acme.test', root)).authorized, true, 'the other certificates are still served')
  t.equal((await daemon.proxy('/', { host: 'shop.acme.test' })).status, 200, 'and the other services routed')
})

t.test('bad parameters are refused, naming the parameter', async (t) => {
  const wildcard = await daemon.call('reconfigure', { serviceName: 'wild', serviceDomain: 'wild.acme.test', port, 'letsencrypt.host': '*.acme.test' })
  t.equal(wildcard.status, 400)
  t.match(wildcard.json.Message, /^letsencrypt\.host: \*\.acme\.test is a wildcard/)
  const email = await daemon.call('reconfigure', { serviceName: 'mail', serviceDomain: 'mail.acme.test', port, 'letsencrypt.host': 'true', 'letsencrypt.email': 'not an address' })
  t.equal(email.status, 400)
  t.match(email.json.Message, /^letsencrypt\.email: /)
  const challenge = await daemon.api(`/v1/docker-flow-proxy/acme/challenge?token=${encodeURIComponent('../x')}`)
  t.equal(challenge.status, 404, 'GET is not a challenge method')
})

t.test('listener re-sends do not create orders; a restart keeps account and certificates', async (t) => {
  const issuedBefore = await metric('dfp_acme_orders_total', '{outcome="issued"}')
  const params = { serviceName: 'shop', serviceDomain: 'shop.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'shop.acme.test,www.shop.acme.test' }
  const replies = await Promise.all([1, 2, 3, 4, 5].map(() => daemon.call('reconfigure', params)))
  t.same(replies.map((r) => r.status), [200, 200, 200, 200, 200])
  // A new service asking for a set being ordered must not start a second order either.
  const twins = await Promise.all(['twin-a', 'twin-b'].map((serviceName) => daemon.call('reconfigure', { serviceName, serviceDomain: 'twin.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })))
  t.same(twins.map((r) => r.status), [200, 200])
  t.ok(await until(async () => (await handshake(httpsPort, 'twin.acme.test', root).catch(() => undefined))?.authorized === true, 10_000))
  t.equal(await metric('dfp_acme_orders_total', '{outcome="issued"}'), issuedBefore + 1, 'one order: the twin set; none for the re-sent shop')
  t.match(await acmeEntry('twin.acme.test'), { Services: ['twin-a', 'twin-b'] })

  const file = join(daemon.configDir, 'dfp-acme.json')
  t.equal((await stat(file)).mode & 0o777, 0o600, 'the ACME file (account key, certificate keys) is private')
  const fingerprint = (await handshake(httpsPort, 'shop.acme.test', root)).fingerprint
  await daemon.close({ keepConfig: true })
  daemon = await startDaemon(env, { configDir: daemon.configDir, proxyPort: httpPort })
  const again = await handshake(httpsPort, 'shop.acme.test', root)
  t.equal(again.fingerprint, fingerprint, 'the same certificate is served after the restart, from the first load')
  t.equal(again.authorized, true)
  t.match(await acmeEntry('shop.acme.test'), { State: 'valid' })
  t.equal(await metric('dfp_acme_orders_total', '{outcome="issued"}'), 0, 'nothing ordered by the restarted daemon')
  t.equal(await metric('dfp_acme_orders_total', '{outcome="failed"}'), 0, 'not even the failing domain: its back-off survives the restart')
  t.match(await acmeEntry('broken.acme.test'), { State: 'failed', Failures: 1 })
  t.equal((await httpGet(httpPort, '/', { host: 'shop.acme.test' })).status, 200)
})

t.test('dfp certs lists ACME certificates with issuer, expiry and next renewal', async (t) => {
  const { execa } = await import('execa')
  const root = join(import.meta.dirname, '..', '..')
  const run = await execa(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'certs', '--address', `http://127.0.0.1:${daemon.apiPort}`], { cwd: root, reject: false, timeout: 60_000 })
  t.equal(run.exitCode, 0, run.stderr)
  t.match(run.stdout, /^shop\.acme\.test_[0-9a-f]{8}\.pem \(acme\) shop\.acme\.test,www\.shop\.acme\.test valid to \S+$/m)
  t.match(run.stdout, /^ACME shop\.acme\.test,www\.shop\.acme\.test \[shop\]: valid, issued by Pebble Intermediate CA \S+, valid to \S+, next renewal \S+$/m)
  t.match(run.stdout, /^ACME broken\.acme\.test \[broken\]: failed, next attempt \S+, 1 failure\(s\): .*broken\.acme\.test/m)
})
