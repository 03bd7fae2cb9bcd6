import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { envChanges } from '../../src/env-services.js'
import { loadSettings, SettingsError } from '../../src/settings.js'

const secrets = mkdtempSync(join(tmpdir(), 'dfp-secrets-'))
t.teardown(() => rmSync(secrets, { recursive: true, force: true }))

t.test('defaults are the official image defaults', async (t) => {
  const settings = loadSettings({ SECRETS_DIR: secrets })
  t.match(settings, {
    IP: '0.0.0.0',
    PORT: 8080,
    CONFIG_DIR: '/cfg',
    CERTS_DIR: '/certs',
    TEMPLATES_DIR: '/templates',
    HAPROXY_BIN: 'haproxy',
    DEFAULT_PORTS: '80,443:ssl',
    CONNECTION_MODE: 'http-keep-alive',
    SEPARATOR: ',',
    SERVICE_DOMAIN_ALGO: 'hdr_beg(host)',
    RESOLVERS: 'nameserver dns 127.0.0.11:53',
    TIMEOUT_CONNECT: '5',
    TIMEOUT_CLIENT: '20',
    TIMEOUT_SERVER: '20',
    TIMEOUT_QUEUE: '30',
    TIMEOUT_TUNNEL: '3600',
    TIMEOUT_HTTP_REQUEST: '5',
    TIMEOUT_HTTP_KEEP_ALIVE: '15',
  })
  t.ok(Object.isFrozen(settings))
})

t.test('a secret file replaces any variable; a non-empty variable replaces the default', async (t) => {
  writeFileSync(join(secrets, 'dfp_timeout_server'), '45\n\n')
  writeFileSync(join(secrets, 'dfp_port'), '9090\n')
  writeFileSync(join(secrets, 'dfp_extra_global'), '')
  const settings = loadSettings({ SECRETS_DIR: secrets, TIMEOUT_SERVER: '30', TIMEOUT_CLIENT: '25', EXTRA_GLOBAL: 'maxconn 100', BIND_PORTS: '' })
  t.equal(settings.TIMEOUT_SERVER, '45', 'secret wins, trailing newlines trimmed')
  t.equal(settings.PORT, 9090)
  t.equal(settings.TIMEOUT_CLIENT, '25', 'variable used when there is no secret')
  t.equal(settings.EXTRA_GLOBAL, '', 'an empty secret still wins')
  t.equal(settings.BIND_PORTS, '', 'an empty variable means the default')
  rmSync(join(secrets, 'dfp_timeout_server'))
  rmSync(join(secrets, 'dfp_port'))
  rmSync(join(secrets, 'dfp_extra_global'))
})

t.test('one error lists every bad variable', async (t) => {
  const err = t.throws(() => loadSettings({ SECRETS_DIR: secrets, PORT: '0x50', TIMEOUT_SERVER: '20s', CONNECTION_MODE: 'keep', EXTRA_FRONTEND: 'a\nb' }))
  t.type(err, SettingsError)
  if (!(err instanceof SettingsError)) return
  t.same(
    err.problems.map((p) => p.split(' ')[0]),
    ['PORT', 'CONNECTION_MODE', 'EXTRA_FRONTEND', 'TIMEOUT_SERVER'],
  )
})

t.test('USERS must be user:password entries', async (t) => {
  t.equal(loadSettings({ SECRETS_DIR: secrets, USERS: 'a:1,b:2' }).USERS, 'a:1,b:2')
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, USERS: 'a"b:one' }), { message: /USERS must be user:password entries/ })
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, USERS: 'nopassword' }), { message: /USERS/ })
})

t.test('the daemon refuses to start with bad settings and says why', async (t) => {
  const root = join(import.meta.dirname, '..', '..')
  const result = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'main.ts')], {
    cwd: root,
    env: { ...process.env, SECRETS_DIR: secrets, PORT: 'eighty', TIMEOUT_CONNECT: '-1', CONFIG_DIR: join(secrets, 'cfg') },
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(result.status, 2)
  t.match(result.stderr, /PORT must be a whole number/)
  t.match(result.stderr, /TIMEOUT_CONNECT must be a whole number of seconds/)
  t.equal(result.stderr.trim().split('\n').length, 1, 'one message')
})

t.test('CAPTURE_REQUEST_HEADER entries without a length are a start error, not a crash (D17)', async (t) => {
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, CAPTURE_REQUEST_HEADER: 'X-Id:20,User-Agent' }), { message: /CAPTURE_REQUEST_HEADER must be a comma list of header:length/ })
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, CAPTURE_REQUEST_HEADER: 'X Id:20' }), { name: 'Error', message: /CAPTURE_REQUEST_HEADER/ })
  t.equal(loadSettings({ SECRETS_DIR: secrets, CAPTURE_REQUEST_HEADER: 'X-Id:20, Host:30' }).CAPTURE_REQUEST_HEADER, 'X-Id:20, Host:30')
})

t.test('stats values come through the variables STATS_*_ENV name, secrets first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dfp-stats-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'dfp_ops_pass'), 'from-secret\n')
  const settings = loadSettings({ SECRETS_DIR: dir, STATS_USER_ENV: 'OPS_USER', STATS_PASS_ENV: 'OPS_PASS', OPS_USER: 'ops', OPS_PASS: 'ignored' })
  t.match(settings, { STATS_USER: 'ops', STATS_PASS: 'from-secret', STATS_URI: '/admin?stats' })
  t.throws(() => loadSettings({ SECRETS_DIR: dir, STATS_USER: 'a:b', STATS_PASS: 'x' }), { message: /STATS_USER must not contain blanks, ':'/ })
  t.throws(() => loadSettings({ SECRETS_DIR: dir, STATS_URI: 'stats' }), { message: /STATS_URI must be a path/ })
  t.throws(() => loadSettings({ SECRETS_DIR: dir, STATS_PORT: 'eighty' }), { message: /STATS_PORT/ })
})

t.test('COMPRESSION_ALGO accepts HAProxy algorithms only', async (t) => {
  t.equal(loadSettings({ SECRETS_DIR: secrets, COMPRESSION_ALGO: 'gzip deflate' }).COMPRESSION_ALGO, 'gzip deflate')
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, COMPRESSION_ALGO: 'brotli' }), { message: /COMPRESSION_ALGO must be a space-separated list of identity, gzip, deflate, raw-deflate/ })
})

t.test('SKIP_ADDRESS_VALIDATION: only the value false turns the check on', async (t) => {
  t.equal(loadSettings({ SECRETS_DIR: secrets }).SKIP_ADDRESS_VALIDATION, true)
  t.equal(loadSettings({ SECRETS_DIR: secrets, SKIP_ADDRESS_VALIDATION: 'FALSE' }).SKIP_ADDRESS_VALIDATION, false)
  t.equal(loadSettings({ SECRETS_DIR: secrets, SKIP_ADDRESS_VALIDATION: '0' }).SKIP_ADDRESS_VALIDATION, true)
})

t.test('DFP_SERVICE_* variables become reconfigure parameters (inventory §3.7)', async (t) => {
  const settings = loadSettings({
    SECRETS_DIR: secrets,
    DEFAULT_PROTOCOL: 'tcp',
    DFP_SERVICE_SERVICE_NAME: 'db',
    DFP_SERVICE_PORT: '5432',
    DFP_SERVICE_SRC_PORT: '5432',
    DFP_SERVICE_3_SERVICE_NAME: 'web',
    DFP_SERVICE_3_REQ_MODE: 'http',
    DFP_SERVICE_3_SERVICE_PATH_1: '/a',
    DFP_SERVICE_3_PORT_1: '80',
    DFP_SERVICE_3_SERVICE_DOMAIN_ALGO: 'hdr_dom(host)',
    DFP_SERVICE_3_DISCOVERYTYPE: 'DNS',
    DFP_SERVICE_3_REPLICAS: '0',
  })
  t.same(settings.ENV_SERVICES, [
    { prefix: 'DFP_SERVICE', params: { serviceName: 'db', port: '5432', srcPort: '5432', reqMode: 'tcp' } },
    {
      prefix: 'DFP_SERVICE_3',
      params: { serviceName: 'web', reqMode: 'http', 'servicePath.1': '/a', 'port.1': '80', serviceDomainAlgo: 'hdr_dom(host)', discoveryType: 'DNS' },
    },
  ])
})

t.test('a bad DFP_SERVICE_* definition stops the start, naming its prefix', async (t) => {
  t.throws(() => loadSettings({ SECRETS_DIR: secrets, DFP_SERVICE_2_SERVICE_PATH: '/x' }), { message: /DFP_SERVICE_2_\* variables are set but DFP_SERVICE_2_SERVICE_NAME is not/ })
  t.throws(() => envChanges(loadSettings({ SECRETS_DIR: secrets, DFP_SERVICE_1_SERVICE_NAME: 'x', DFP_SERVICE_1_PORT: '80' })), { message: /DFP_SERVICE_1: When using reqMode http, servicePath or serviceDomain are mandatory/ })
  t.throws(() => envChanges(loadSettings({ SECRETS_DIR: secrets, DFP_SERVICE_SERVICE_NAME: 'x', DFP_SERVICE_SERVICE_PATH: '/x', DFP_SERVICE_PORT: 'http' })), { message: /DFP_SERVICE: port/ })
})

t.test('SEPARATOR and SERVICE_DOMAIN_ALGO left empty keep their defaults (D19)', async (t) => {
  // The original split lists per character with an empty SEPARATOR and wrote an ACL with no fetch.
  const settings = loadSettings({ SECRETS_DIR: secrets, SEPARATOR: '', SERVICE_DOMAIN_ALGO: '' })
  t.equal(settings.SEPARATOR, ',')
  t.equal(settings.SERVICE_DOMAIN_ALGO, 'hdr_beg(host)')
})
