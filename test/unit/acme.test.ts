import t from 'tap'
import pino from 'pino'
import { AcmeManager } from '../../src/acme/manager.js'
import type { OrderInput } from '../../src/acme/order.js'
import { chooseOrderer } from '../../src/acme/replicas.js'
import { acmeRequestOf, certificateName, domainSetKey } from '../../src/service/acme-request.js'
import { dueFor, renewalAt, retryAt, RETRY_MAX_MS } from '../../src/acme/schedule.js'
import { viewOf, type AcmeAccount, type AcmeCertificate, type AcmeFailure } from '../../src/acme/store.js'
import { makeCertificate } from '../helpers/certs.js'

t.test('letsencrypt.host and letsencrypt.email', async (t) => {
  t.equal(acmeRequestOf('a', {}, ['a.test'], ''), undefined, 'absent: no certificate')
  t.equal(acmeRequestOf('a', { 'letsencrypt.host': 'false' }, ['a.test'], ''), undefined)
  t.same(acmeRequestOf('a', { 'letsencrypt.host': 'B.test, a.test,b.test' }, [], 'ops@x.test'), { serviceName: 'a', domains: ['b.test', 'a.test'], email: 'ops@x.test' }, 'a list: lower case, duplicates out, order kept')
  t.same(acmeRequestOf('a', { 'letsencrypt.host': 'true' }, ['a.test', '*.wild.test', 'www.a.test'], '')?.domains, ['a.test', 'www.a.test'], 'true: the serviceDomain names without wildcards')
  t.same(acmeRequestOf('a', { 'letsencrypt.host': 'yes', 'letsencrypt.email': 'me@a.test' }, ['a.test'], 'ops@x.test')?.email, 'me@a.test', 'the service email wins over ACME_EMAIL')
  t.throws(() => acmeRequestOf('a', { 'letsencrypt.host': 'true' }, ['*.a.test'], ''), { message: /^letsencrypt\.host: is true but the service has no serviceDomain/ })
  t.throws(() => acmeRequestOf('a', { 'letsencrypt.host': '*.a.test' }, [], ''), { message: /^letsencrypt\.host: \*\.a\.test is a wildcard/ })
  t.throws(() => acmeRequestOf('a', { 'letsencrypt.host': 'a_b.test' }, [], ''), { message: /^letsencrypt\.host: a_b\.test is not a host name/ })
  t.throws(() => acmeRequestOf('a', { 'letsencrypt.host': 'localhost' }, [], ''), { message: /not a host name/ }, 'one label is not a public name')
  t.throws(() => acmeRequestOf('a', { 'letsencrypt.host': 'a.test', 'letsencrypt.email': 'me' }, [], ''), { message: /^letsencrypt\.email: me is not an email address/ })
})

t.test('certificate names and domain set keys', async (t) => {
  t.equal(domainSetKey(['b.test', 'a.test']), domainSetKey(['a.test', 'b.test']), 'order does not matter')
  t.equal(certificateName(['a.test']), 'a.test.pem')
  t.match(certificateName(['a.test', 'b.test']), /^a\.test_[0-9a-f]{8}\.pem$/)
  t.not(certificateName(['a.test', 'b.test']), certificateName(['a.test', 'c.test']), 'two sets starting alike get two files')
})

t.test('renewal at a third of the lifetime left; retries back off to 6 h', async (t) => {
  t.equal(renewalAt(0, 90), 60)
  t.same([1, 2, 3, 4].map((n) => retryAt(0, n)), [60_000, 120_000, 240_000, 480_000])
  t.equal(retryAt(0, 30), RETRY_MAX_MS, 'capped')
  const cert = { notBefore: 0, notAfter: 90_000 }
  t.same(dueFor(0, undefined, undefined), { kind: 'order' })
  t.same(dueFor(10_000, cert, undefined), { kind: 'none', at: 60_000 })
  t.same(dueFor(60_000, cert, undefined), { kind: 'renew' })
  t.same(dueFor(61_000, cert, { failures: 1, lastFailureAt: 60_500 }), { kind: 'none', at: 120_500 }, 'a failed renewal waits for its back-off')
  t.same(dueFor(121_000, cert, { failures: 1, lastFailureAt: 60_500 }), { kind: 'retry' })
  t.same(dueFor(1000, undefined, { failures: 2, lastFailureAt: 0 }, 1000), { kind: 'none', at: 2000 }, 'retry delay from the setting')
})

t.test('the orderer: lowest address that answers; alone when not a replica', async (t) => {
  const up = (...addresses: string[]) => async (a: string) => addresses.includes(a)
  t.equal(await chooseOrderer(['10.0.0.3', '10.0.0.2'], new Set(['10.0.0.2']), up()), 'self', 'this replica is the lowest')
  t.equal(await chooseOrderer(['10.0.0.3', '10.0.0.2'], new Set(['10.0.0.3']), up('10.0.0.2')), '10.0.0.2')
  t.equal(await chooseOrderer(['10.0.0.3', '10.0.0.2'], new Set(['10.0.0.3']), up()), 'self', 'the lower one does not answer: failover')
  t.equal(await chooseOrderer(['10.0.0.10', '10.0.0.9', '10.0.0.11'], new Set(['10.0.0.11']), up('10.0.0.9', '10.0.0.10')), '10.0.0.9', 'numeric order, not text order')
  t.equal(await chooseOrderer([], new Set(['10.0.0.3']), up()), 'self', 'no replicas found')
  t.equal(await chooseOrderer(['10.0.0.1'], new Set(['10.0.0.3']), up('10.0.0.1')), 'self', 'not among them')
})

/** A manager on fakes: the ACME protocol, the replicas and HAProxy replaced; times from `clock`. */
function fakeManager({ orderer = 'self' as 'self' | string, fail = false, saved: initial = [] as AcmeCertificate[] } = {}) {
  const clock = { now: Date.now() }
  const orders: OrderInput[] = []
  const installed: string[] = []
  let saved: { accounts: AcmeAccount[]; certificates: AcmeCertificate[]; failures: AcmeFailure[] } = { accounts: [], certificates: [], failures: [] }
  let release: () => void = () => undefined
  const gate = new Promise<void>((resolve) => (release = resolve))
  const manager = new AcmeManager({
    directoryUrl: 'https://acme.test/dir',
    log: pino({ level: 'silent' }),
    now: () => clock.now,
    accountKey: async () => 'account-key',
    store: { load: async () => ({ accounts: [], certificates: initial.map(viewOf), failures: [] }), save: async (accounts, certificates, failures) => void (saved = { accounts: [...accounts], certificates: [...certificates], failures: [...failures] }) },
    replicas: { askPeersToShare: async () => undefined, orderer: async () => orderer, shareChallenge: async () => undefined, pushCertificates: async () => 0 },
    challenges: { publish: async () => undefined, withdraw: async () => undefined },
    install: async (views) => void installed.push(...views.map((v) => v.name)),
    order: async (input) => {
      orders.push(input)
      await gate
      if (fail) throw new Error('urn:ietf:params:acme:error:connection: refused')
      return { pem: makeCertificate(input.domains[0] ?? 'x'), accountUrl: 'https://acme.test/acct/1' }
    },
  })
  const settled = () => manager.close()
  return { manager, orders, installed, release, settled, clock, saved: () => saved }
}

t.test('one order per domain set, however often it is asked for', async (t) => {
  const { manager, orders, installed, release, settled, saved } = fakeManager()
  const request = { serviceName: 'a', domains: ['a.test'], email: '' }
  manager.setRequests([request])
  manager.setRequests([request, { ...request, serviceName: 'b' }])
  manager.setRequests([request])
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(orders.length, 1, 'one order in flight')
  release()
  await settled()
  t.same(installed, ['a.test.pem'])
  t.equal(saved().accounts[0]?.url, 'https://acme.test/acct/1', 'the account URL is kept')
  t.equal(saved().certificates.length, 1)
  t.match(manager.status(), [{ domains: ['a.test'], state: 'valid', failures: 0 }])
})

t.test('a failure is recorded, saved and backed off; a replica that does not order waits', async (t) => {
  const failing = fakeManager({ fail: true })
  failing.release()
  failing.manager.setRequests([{ serviceName: 'a', domains: ['a.test'], email: '' }])
  await new Promise((resolve) => setTimeout(resolve, 50))
  await failing.settled()
  t.equal(failing.orders.length, 1, 'not retried at once')
  t.match(failing.manager.status(), [{ state: 'failed', failures: 1, lastError: /connection: refused/, nextAttemptAt: failing.clock.now + 60_000 }])
  t.match(failing.saved().failures, [{ key: 'a.test', failures: 1 }], 'kept for a restart')

  const follower = fakeManager({ orderer: '10.0.0.2' })
  follower.manager.setRequests([{ serviceName: 'a', domains: ['a.test'], email: '' }])
  await new Promise((resolve) => setTimeout(resolve, 50))
  await follower.settled()
  t.equal(follower.orders.length, 0, 'the other replica orders')
  t.match(follower.manager.status(), [{ state: 'waiting', nextAttemptAt: follower.clock.now + 30_000 }])
})

t.test('a saved certificate of this directory is kept; one of another directory is replaced at once', async (t) => {
  const pem = makeCertificate('a.test', 30)
  const same = fakeManager({ saved: [{ domains: ['a.test'], pem, issuedAt: 0, directoryUrl: 'https://acme.test/dir' }] })
  await same.manager.load()
  same.release()
  same.manager.setRequests([{ serviceName: 'a', domains: ['a.test'], email: '' }])
  await same.settled()
  t.equal(same.orders.length, 0, 'valid and from this directory: nothing to order')

  const staging = fakeManager({ saved: [{ domains: ['a.test'], pem, issuedAt: 0, directoryUrl: 'https://staging.test/dir' }] })
  await staging.manager.load()
  staging.release()
  staging.manager.setRequests([{ serviceName: 'a', domains: ['a.test'], email: '' }])
  await new Promise((resolve) => setTimeout(resolve, 50))
  await staging.settled()
  t.equal(staging.orders.length, 1, 'ordered from the configured directory')
  t.equal(staging.saved().certificates[0]?.directoryUrl, 'https://acme.test/dir')
})

t.test('ACME settings are checked at start', async (t) => {
  const { loadSettings } = await import('../../src/settings.js')
  t.throws(() => loadSettings({ ACME_CA_FILE: '/nonexistent/ca.pem', SECRETS_DIR: '/nonexistent' }), { message: /ACME_CA_FILE must be a readable PEM file of CA certificates/ })
  t.throws(() => loadSettings({ ACME_EMAIL: 'nobody', SECRETS_DIR: '/nonexistent' }), { message: /ACME_EMAIL must be an email address/ })
  t.throws(() => loadSettings({ ACME_DIRECTORY_URL: 'ftp://acme.test/dir', SECRETS_DIR: '/nonexistent' }), { message: /ACME_DIRECTORY_URL must be an http\(s\) URL/ })
  t.throws(() => loadSettings({ REPLICA_USER: 'no-colon', SECRETS_DIR: '/nonexistent' }), { message: /REPLICA_USER must be user:password \(value not shown\)/ })
  t.equal(loadSettings({ SECRETS_DIR: '/nonexistent' }).ACME_DIRECTORY_URL, 'https://acme-v02.api.letsencrypt.org/directory', "Let's Encrypt production by default")
})

t.test('replicas authenticate with REPLICA_USER or the first clear-text API user', async (t) => {
  const { replicaAuthorization } = await import('../../src/acme/index.js')
  const { parseApiUsers } = await import('../../src/auth/api-users.js')
  const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`
  const users = (text: string) => parseApiUsers(text)
  t.equal(replicaAuthorization({ API_USERS: users(''), REPLICA_USER: '' }), undefined, 'no API_USERS: no credentials')
  t.equal(replicaAuthorization({ API_USERS: users('a:$6$salt$hash,b:clear'), REPLICA_USER: '' }), basic('b:clear'))
  t.equal(replicaAuthorization({ API_USERS: users('a:$6$salt$hash'), REPLICA_USER: '' }), undefined, 'hashes only: none (logged at start)')
  t.equal(replicaAuthorization({ API_USERS: users('a:$6$salt$hash'), REPLICA_USER: 'a:secret' }), basic('a:secret'))
})

t.test('orders of several domain sets started together share one new account', async (t) => {
  const { manager, orders, release, settled, saved } = fakeManager()
  release()
  manager.setRequests(['a.test', 'b.test', 'c.test'].map((domain) => ({ serviceName: domain, domains: [domain], email: 'ops@x.test' })))
  await new Promise((resolve) => setTimeout(resolve, 100))
  await settled()
  t.equal(orders.length, 3)
  t.equal(new Set(orders.map((o) => o.account)).size, 1, 'the same account object')
  t.equal(saved().accounts.length, 1)
})
