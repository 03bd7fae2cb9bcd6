// Issue 20, item 5: a lost ACME account. pebble is restarted between two orders, so it no longer
// knows the account dfp saved ("Account … not found"); the next order registers the key again
// (RFC 8555 §7.3) and is issued, instead of failing and backing off for hours.
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, httpUpstream, until } from '../helpers/net.js'
import { handshake, Pebble } from '../helpers/pebble.js'

const httpPort = await freePort()
const httpsPort = await freePort()
const pebble = await new Pebble().start({ httpPort })
const upstream = await httpUpstream('site')
const port = String(upstream.port)
const logLines: Array<Record<string, unknown>> = []
const daemon = await startDaemon(
  {
    DEFAULT_PORTS: `${httpPort},${httpsPort}:ssl`,
    ACME_DIRECTORY_URL: pebble.directoryUrl,
    ACME_CA_FILE: pebble.caFile,
    ACME_EMAIL: 'ops@dfp.test',
    DNS_SERVERS: pebble.dnsServer,
  },
  { proxyPort: httpPort, logLines },
)
t.teardown(async () => {
  await daemon.close()
  await upstream.close()
  await pebble.stop()
})

const acmeEntry = async (domain: string) => (await daemon.call('certs')).json.Acme?.find((entry) => entry.Domains.includes(domain))
const issued = async (domain: string) => {
  const root = await pebble.root()
  return until(async () => (await handshake(httpsPort, domain, root).catch(() => undefined))?.authorized === true, 30_000)
}

t.test('an order after the ACME server forgot the account registers it again and is issued', async (t) => {
  t.equal((await daemon.call('reconfigure', { serviceName: 'first', serviceDomain: 'first.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })).status, 200)
  t.ok(await issued('first.acme.test'), 'the first certificate is issued (the account is registered)')
  await pebble.restartServer()
  t.equal((await daemon.call('reconfigure', { serviceName: 'second', serviceDomain: 'second.acme.test', port, outboundHostname: '127.0.0.1', 'letsencrypt.host': 'true' })).status, 200)
  t.ok(await issued('second.acme.test'), 'the second certificate is issued by the restarted server')
  const entry = await acmeEntry('second.acme.test')
  t.match(entry, { State: 'valid', Failures: 0 }, `no failure, no back-off (${entry?.LastError ?? ''})`)
  t.ok(logLines.some((line) => line.msg === 'the ACME server no longer knows the account; registering it again'), 'the new registration is logged')
})

t.test('the spellings of a lost account, and what is not one', async (t) => {
  const { isLostAccount } = await import('../../src/acme/order.js')
  for (const message of ['Account https://ca.test/acct/1 not found.', 'urn:ietf:params:acme:error:accountDoesNotExist', 'account does not exist', 'Unknown account', 'No such account: 17', 'The account no longer exists'])
    t.ok(isLostAccount(new Error(message)), `lost: ${message}`)
  for (const message of ['Order not found', 'Rate limit for new accounts exceeded', 'Account is deactivated', 'connect ECONNREFUSED 127.0.0.1:14000'])
    t.notOk(isLostAccount(new Error(message)), `not lost: ${message}`)
})
