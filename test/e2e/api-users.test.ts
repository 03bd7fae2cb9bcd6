import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon, type TestDaemon } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream } from '../helpers/net.js'
import { FakeDns } from '../helpers/swarm.js'

const hash = execFileSync('openssl', ['passwd', '-6', 'hashed-secret'], { encoding: 'utf8' }).trim()
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
const get = (d: TestDaemon, path: string, headers: Record<string, string> = {}) => httpGet(d.apiPort, path, headers, 60_000, d.apiHost)
const upstream = await httpUpstream('guarded')
const port = String(upstream.port)
t.teardown(() => upstream.close())

t.test('API_USERS puts basic auth on the control API', async (t) => {
  const daemon = await startDaemon({ API_USERS: `admin:plain-secret,ops:${hash}` })
  t.teardown(() => daemon.close())
  const reconfigure = `/v1/docker-flow-proxy/reconfigure?serviceName=guarded&servicePath=/guarded&port=${port}&outboundHostname=127.0.0.1`

  const refused = await get(daemon, reconfigure)
  t.equal(refused.status, 401)
  t.equal(refused.headers['www-authenticate'], 'Basic realm="dfp", charset="UTF-8"')
  t.match(JSON.parse(refused.body), { Status: 'NOK' })
  t.equal((await daemon.proxy('/guarded')).status, 503, 'the refused request changed nothing')
  t.equal((await get(daemon, reconfigure, basic('admin', 'wrong'))).status, 401, 'wrong password')
  t.equal((await get(daemon, reconfigure, basic('nobody', 'plain-secret'))).status, 401, 'unknown user')
  t.equal((await get(daemon, reconfigure, { authorization: 'Bearer abc' })).status, 401, 'other scheme')
  t.equal((await get(daemon, reconfigure, basic('ops', hash))).status, 401, 'the hash itself is not the password')

  t.equal((await get(daemon, reconfigure, basic('admin', 'plain-secret'))).status, 200, 'clear-text password')
  t.equal((await daemon.proxy('/guarded')).status, 200)
  for (let i = 0; i < 2; i++) t.equal((await get(daemon, '/v1/docker-flow-proxy/config', basic('ops', 'hashed-secret'))).status, 200, 'SHA-512 crypt hash (openssl passwd -6)')
  t.equal((await get(daemon, '/v1/docker-flow-proxy/config', { authorization: `basic ${Buffer.from('ops:hashed-secret').toString('base64')}` })).status, 200, 'the scheme is case-insensitive')
  t.equal((await get(daemon, '/v1/docker-flow-proxy/config')).status, 401)
  t.equal((await get(daemon, '/v1/docker-flow-proxy/certs')).status, 401)
  t.equal((await get(daemon, '/v1/docker-flow-proxy/no-such-endpoint')).status, 401, 'unknown paths do not reveal what exists')

  for (const open of ['/v1/docker-flow-proxy/ping', '/metrics', '/v1/docker-flow-proxy/successfulinitreload', '/v1/docker-flow-proxy/status', '/v1/docker-flow-proxy/status.json']) {
    t.equal((await get(daemon, open)).status, 200, `${open} needs no credentials`)
  }
})

t.test('the secret dfp_api_users and STATUS_PUBLIC=false', async (t) => {
  const configDir = await mkdtemp(join(tmpdir(), 'dfp-test-'))
  await mkdir(join(configDir, 'secrets'))
  await writeFile(join(configDir, 'secrets', 'dfp_api_users'), `reader:${hash}\n`)
  const daemon = await startDaemon({ STATUS_PUBLIC: 'false' }, { configDir })
  t.teardown(() => daemon.close())
  t.equal((await get(daemon, '/v1/docker-flow-proxy/status')).status, 401)
  t.equal((await get(daemon, '/v1/docker-flow-proxy/status?type=json')).status, 401)
  t.equal((await get(daemon, '/v1/docker-flow-proxy/status', basic('reader', 'hashed-secret'))).status, 200)
  t.equal((await get(daemon, '/v1/docker-flow-proxy/ping')).status, 200)
})

t.test('without API_USERS the API stays open, as in the original', async (t) => {
  const daemon = await startDaemon()
  t.teardown(() => daemon.close())
  t.equal((await get(daemon, '/v1/docker-flow-proxy/config')).status, 200)
})

t.test('distributed requests carry the caller credentials to the other replicas', async (t) => {
  const ips = ['127.0.0.6', '127.0.0.7']
  const dns = await new FakeDns().start({ 'tasks.proxy': ips })
  const apiPort = await freePort()
  const replicas: TestDaemon[] = []
  t.teardown(async () => {
    for (const r of replicas) await r.close()
    await dns.stop()
  })
  for (const ip of ips) replicas.push(await startDaemon({ DNS_SERVERS: dns.server, SERVICE_NAME: 'proxy', API_USERS: `admin:${hash}` }, { apiHost: ip, apiPort }))
  const [first, second] = replicas as [TestDaemon, TestDaemon]
  const creds = basic('admin', 'hashed-secret')
  const reply = await get(first, `/v1/docker-flow-proxy/reconfigure?serviceName=everywhere&servicePath=/everywhere&port=${port}&outboundHostname=127.0.0.1&distribute=true`, creds)
  t.equal(reply.status, 200)
  t.match(JSON.parse(reply.body).Replicas, [{ Address: '127.0.0.7', Status: 200 }])
  t.equal((await second.proxy('/everywhere')).status, 200, 'the other replica applied it')

  const csv = await get(first, '/v1/docker-flow-proxy/metrics?distribute=true', creds)
  t.equal(csv.status, 200)
  t.equal(csv.body.split('# pxname,').length - 1, 2, "both replicas' CSV statistics")
  t.equal((await get(first, '/v1/docker-flow-proxy/metrics?distribute=true')).status, 401)
})
