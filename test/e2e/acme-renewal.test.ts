import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'
import { handshake, Pebble } from '../helpers/pebble.js'
import { timeOf } from '../helpers/api-json.js'
import { messageOf } from '../../src/errors.js'

// Pebble issues 15-second certificates here, so dfp's own rule (renew when a third of the
// lifetime is left) renews after 10 s: no test knob, the real schedule.
const VALIDITY_SECONDS = 15
const httpPort = await freePort()
const httpsPort = await freePort()
const pebble = await new Pebble().start({ httpPort, validitySeconds: VALIDITY_SECONDS })
const upstream = await httpUpstream('site')
const daemon = await startDaemon(
  {
    DEFAULT_PORTS: `${httpPort},${httpsPort}:ssl`,
    ACME_DIRECTORY_URL: pebble.directoryUrl,
    ACME_CA_FILE: pebble.caFile,
    DNS_SERVERS: pebble.dnsServer,
  },
  { proxyPort: httpPort },
)
const root = await pebble.root()
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
  await pebble.stop()
})
const metric = async (line: RegExp) => Number(line.exec((await daemon.api('/metrics')).body)?.[1] ?? 0)
const reloads = () => metric(/^dfp_reloads_total (\S+)$/m)
const certSwaps = () => metric(/^dfp_runtime_changes_total\{kind="ssl-cert",outcome="ok"\} (\S+)$/m)

t.test('a certificate is renewed at a third of its lifetime left and swapped without one failed handshake', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'short', serviceDomain: 'short.acme.test', port: String(upstream.port), outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })
  t.equal(reply.status, 200, reply.body)
  t.ok(await until(async () => (await handshake(httpsPort, 'short.acme.test', root).catch(() => undefined))?.authorized === true, 10_000), 'issued')
  const first = await handshake(httpsPort, 'short.acme.test', root)
  const entry = (await daemon.call('certs')).json.Acme?.[0]
  const lifetime = timeOf(entry?.ValidTo) - timeOf(entry?.NotBefore)
  t.ok(Math.abs(timeOf(entry?.NextAttempt) - (timeOf(entry?.ValidTo) - lifetime / 3)) < 1000, `renewal planned at ${entry?.NextAttempt}, a third of ${lifetime} ms before expiry`)
  const reloadsBefore = await reloads()
  const swapsBefore = await certSwaps()

  // Client loop: a new TLS connection after another, each verified against pebble's root for the
  // domain, until the renewed certificate has been served for a while (bounded: 30 s).
  const outcomes = { ok: 0, failed: [] as string[], fingerprints: new Set<string>() }
  let renewedAt: number | undefined
  const deadline = Date.now() + 30_000
  let afterRenewal = 0
  while (Date.now() < deadline && afterRenewal < 50) {
    try {
      const served = await handshake(httpsPort, 'short.acme.test', root, 2000)
      if (!served.authorized) outcomes.failed.push(served.error ?? 'not authorized')
      else outcomes.ok++
      outcomes.fingerprints.add(served.fingerprint)
      if (served.fingerprint !== first.fingerprint) {
        renewedAt ??= Date.now()
        afterRenewal++
      }
    } catch (err) {
      outcomes.failed.push(messageOf(err))
    }
  }
  t.ok(renewedAt !== undefined, 'the renewed certificate is served')
  t.comment(`renewal: served ${renewedAt === undefined ? '-' : renewedAt - timeOf(entry?.NextAttempt)} ms after the planned time; ${outcomes.ok} verified handshakes during the loop`)
  t.same(outcomes.failed, [], 'no handshake failed while the certificate was swapped')
  t.ok(outcomes.ok > 50, `the loop ran (${outcomes.ok} handshakes)`)
  t.equal(await reloads(), reloadsBefore, 'swapped without a reload')
  t.ok((await certSwaps()) > swapsBefore, 'through set ssl cert / commit ssl cert')
  const renewed = (await daemon.call('certs')).json.Acme?.[0]
  t.ok(timeOf(renewed?.ValidTo) > timeOf(entry?.ValidTo), 'the new certificate expires later')
  t.equal(renewed?.State, 'valid')
})
