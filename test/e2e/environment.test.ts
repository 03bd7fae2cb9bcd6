import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tap from 'tap'
import { showInfo } from '../../src/haproxy/runtime.js'
import { statsSocketPath } from '../../src/render/index.js'
import { startDaemon, startWithUpstream } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream, until } from '../helpers/net.js'
import { portOf } from '../helpers/checks.js'

// Variables of inventory §4 whose effect shows from outside, each through real HAProxy.

const basic = (user: string, pass: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` })

tap.test('stats page on the services port, behind STATS_USER/STATS_PASS', async (t) => {
  const { daemon } = await startWithUpstream('stats', { STATS_USER: 'admin', STATS_PASS: 's3cret' })
  const anonymous = await daemon.proxy('/admin?stats')
  t.equal(anonymous.status, 401, 'no credentials: 401')
  t.match(String(anonymous.headers['www-authenticate']), /Strictly Private/)
  t.equal((await daemon.proxy('/admin?stats', basic('admin', 'wrong'))).status, 401, 'wrong password: 401')
  const page = await daemon.proxy('/admin?stats', basic('admin', 's3cret'))
  t.equal(page.status, 200)
  t.match(page.body, /Statistics Report/)
})

tap.test('stats through the *_ENV indirections and secrets, on STATS_PORT with STATS_URI', async (t) => {
  const statsPort = await freePort()
  const { daemon } = await startWithUpstream('stats2', {
    STATS_USER_ENV: 'MY_STATS_USER',
    STATS_PASS_ENV: 'MY_STATS_PASS',
    STATS_URI_ENV: 'MY_STATS_URI',
    MY_STATS_USER: 'ops',
    MY_STATS_URI: '/haproxy-stats',
    STATS_PORT: String(statsPort),
    // the password comes from the secret named after MY_STATS_PASS
    SECRETS_DIR: await secretsWith({ dfp_my_stats_pass: 'from-secret\n' }),
  })
  t.equal((await httpGet(statsPort, '/haproxy-stats')).status, 401)
  const page = await httpGet(statsPort, '/haproxy-stats', basic('ops', 'from-secret'))
  t.equal(page.status, 200)
  t.match(page.body, /Statistics Report/)
  t.not((await daemon.proxy('/haproxy-stats', basic('ops', 'from-secret'))).body.includes('Statistics Report'), 'not on the services port')
})

tap.test('STATS_USER=none: the page has no credentials', async (t) => {
  const { daemon } = await startWithUpstream('stats3', { STATS_USER: 'none', STATS_PASS: 'none' })
  const page = await daemon.proxy('/admin?stats')
  t.equal(page.status, 200)
  t.match(page.body, /Statistics Report/)
})

tap.test('COMPRESSION_ALGO/COMPRESSION_TYPE compress matching responses', async (t) => {
  const { daemon, port } = await startWithUpstream('gz', { COMPRESSION_ALGO: 'gzip', COMPRESSION_TYPE: 'application/json' })
  t.equal((await daemon.call('reconfigure', { serviceName: 'gz', servicePath: '/gz', port, outboundHostname: '127.0.0.1' })).status, 200)
  const zipped = await daemon.proxy('/gz', { 'accept-encoding': 'gzip' })
  t.equal(zipped.status, 200)
  t.equal(zipped.headers['content-encoding'], 'gzip')
  const plain = await daemon.proxy('/gz')
  t.equal(plain.headers['content-encoding'], undefined, 'not without Accept-Encoding')
  t.match(JSON.parse(plain.body), { name: 'gz' })
})

tap.test('CAPTURE_REQUEST_HEADER: captured headers appear in the DEBUG request log', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const logPort = await freePort()
  const upstream = await httpUpstream('dbg')
  const daemon = await startDaemon(
    { DEBUG: 'true', DEBUG_LOG_ADDRESS: `127.0.0.1:${logPort}`, CAPTURE_REQUEST_HEADER: 'X-Trace-Id:20,User-Agent:10' },
    { logLines },
  )
  t.teardown(async () => {
    await daemon.close()
    await upstream.close()
  })
  await daemon.call('reconfigure', { serviceName: 'dbg', servicePath: '/dbg', port: String(upstream.port), outboundHostname: '127.0.0.1' })
  t.equal((await daemon.proxy('/dbg/logged', { 'x-trace-id': 'trace-4711' })).status, 200)
  const seen = await until(async () => logLines.some((l) => String(l.haproxy ?? '').includes('GET /dbg/logged')), 10_000)
  t.ok(seen, 'the request line reached the daemon log')
  const line = String(logLines.find((l) => String(l.haproxy ?? '').includes('GET /dbg/logged'))?.haproxy)
  t.match(line, /trace-4711/, 'the captured header is in the line')
  // Its own backend, or until the catch-up reload the spare backend it went live in.
  t.match(line, /(dbg-be\d+_0|dfp_spare_\d+)\/dbg /, 'httplog names the backend and server')
})

tap.test('DFP_SERVICE_* services are served when the daemon starts, and dropped when no longer defined', async (t) => {
  const a = await httpUpstream('env-a')
  const b = await httpUpstream('env-b')
  const c = await httpUpstream('env-c')
  t.teardown(async () => Promise.all([a.close(), b.close(), c.close()]))
  const env = {
    DFP_SERVICE_SERVICE_NAME: 'env-a',
    DFP_SERVICE_SERVICE_PATH: '/a',
    DFP_SERVICE_PORT: String(a.port),
    DFP_SERVICE_OUTBOUND_HOSTNAME: '127.0.0.1',
    // indexed destinations of one service get their own backends (the original gave all index 0: D20)
    DFP_SERVICE_1_SERVICE_NAME: 'env-multi',
    DFP_SERVICE_1_OUTBOUND_HOSTNAME: '127.0.0.1',
    DFP_SERVICE_1_SERVICE_PATH_1: '/b',
    DFP_SERVICE_1_PORT_1: String(b.port),
    DFP_SERVICE_1_SERVICE_PATH_2: '/c',
    DFP_SERVICE_1_PORT_2: String(c.port),
    DFP_SERVICE_1_ADD_RES_HEADER: 'X-From-Env yes',
  }
  const daemon = await startDaemon(env)
  t.equal(daemon.applier.reloads, 0, 'started on them: no reload')
  t.match(JSON.parse((await daemon.proxy('/a')).body), { name: 'env-a' })
  const viaB = await daemon.proxy('/b')
  t.match(JSON.parse(viaB.body), { name: 'env-b' })
  t.equal(viaB.headers['x-from-env'], 'yes')
  t.match(JSON.parse((await daemon.proxy('/c')).body), { name: 'env-c' })
  const config = (await daemon.api('/v1/docker-flow-proxy/config')).body
  t.match(config, /backend env-multi-be\d+_1\n/)
  t.match(config, /backend env-multi-be\d+_2\n/)
  await daemon.close({ keepConfig: true })

  // Restarted without DFP_SERVICE_1_*: env-multi goes, env-a stays.
  const onlyA = Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('DFP_SERVICE_1_')))
  const again = await startDaemon(onlyA, { configDir: daemon.configDir })
  t.teardown(() => again.close())
  t.equal((await again.proxy('/b')).status, 503, 'env-multi is gone')
  t.match(JSON.parse((await again.proxy('/a')).body), { name: 'env-a' })
})

tap.test('FILTER_PROXY_INSTANCE_NAME: requests for another instance are ignored with 200', async (t) => {
  const { daemon, port } = await startWithUpstream('inst', { FILTER_PROXY_INSTANCE_NAME: 'true', PROXY_INSTANCE_NAME: 'edge' })
  const other = await daemon.call('reconfigure', { serviceName: 'inst', servicePath: '/inst', port, outboundHostname: '127.0.0.1', proxyInstanceName: 'internal' })
  t.equal(other.status, 200)
  t.match(other.json.Message, /Ignored/)
  t.equal((await daemon.proxy('/inst')).status, 503, 'not configured')
  t.equal(daemon.applier.reloads, 0)
  const mine = await daemon.call('reconfigure', { serviceName: 'inst', servicePath: '/inst', port, outboundHostname: '127.0.0.1', proxyInstanceName: 'EDGE' })
  t.equal(mine.status, 200)
  t.match(JSON.parse((await daemon.proxy('/inst')).body), { name: 'inst' })
})

tap.test('SKIP_ADDRESS_VALIDATION=false: a host that does not resolve gets 503 naming it, and nothing changes', async (t) => {
  const { daemon, port } = await startWithUpstream('addr', { SKIP_ADDRESS_VALIDATION: 'false' })
  const bad = await daemon.call('reconfigure', { serviceName: 'addr', servicePath: '/addr', port, outboundHostname: 'no-such-host.invalid' })
  t.equal(bad.status, 503)
  t.match(bad.json.Message, /^outboundHostname: no-such-host\.invalid does not resolve/)
  t.equal(daemon.applier.reloads, 0)
  const good = await daemon.call('reconfigure', { serviceName: 'addr', servicePath: '/addr', port, outboundHostname: 'localhost' })
  t.equal(good.status, 200)
  t.equal((await daemon.proxy('/addr')).status, 200)
})

tap.test('TERMINATE_ON_RELOAD: a reload stops the previous worker at once, cutting its requests', async (t) => {
  const slow = await slowUpstream(3000)
  const daemon = await startDaemon({ TERMINATE_ON_RELOAD: 'true' })
  t.teardown(async () => {
    await daemon.close()
    await new Promise((resolve) => slow.close(resolve))
  })
  const slowPort = String(portOf(slow))
  await daemon.call('reconfigure', { serviceName: 'slow', servicePath: '/slow', port: slowPort, outboundHostname: '127.0.0.1' })
  const before = await showInfo(statsSocketPath(daemon.configDir))
  const inFlight = daemon.proxy('/slow').then(
    (reply) => `answered ${reply.status}`,
    (err: Error) => `failed: ${err.message}`,
  )
  await slow.arrived
  // A backend line of its own: no spare backend fits it, so the change reloads.
  t.equal((await daemon.call('reconfigure', { serviceName: 'other', servicePath: '/other', port: slowPort, outboundHostname: '127.0.0.1', timeoutServer: '9' })).status, 200)
  t.match(await inFlight, /^failed/, 'the request on the old worker was cut')
  t.ok(await until(async () => !alive(before.pid), 5000), 'the old worker is gone')
})

tap.test('without TERMINATE_ON_RELOAD the previous worker finishes its requests', async (t) => {
  const slow = await slowUpstream(1500)
  const daemon = await startDaemon()
  t.teardown(async () => {
    await daemon.close()
    await new Promise((resolve) => slow.close(resolve))
  })
  const slowPort = String(portOf(slow))
  await daemon.call('reconfigure', { serviceName: 'slow', servicePath: '/slow', port: slowPort, outboundHostname: '127.0.0.1' })
  const inFlight = daemon.proxy('/slow')
  await slow.arrived
  await daemon.call('reconfigure', { serviceName: 'other', servicePath: '/other', port: slowPort, outboundHostname: '127.0.0.1', timeoutServer: '9' })
  t.equal((await inFlight).status, 200)
})

tap.test('DISPLAY_CONFIG_ON_ERROR logs the refused candidate', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const daemon = await startDaemon({ DISPLAY_CONFIG_ON_ERROR: 'true' }, { logLines })
  t.teardown(() => daemon.close())
  const refused = await daemon.call('reconfigure', { serviceName: 'bad', servicePath: '/bad', port: '80', backendExtra: 'timeout server no-such-time' })
  t.equal(refused.status, 400)
  const logged = logLines.find((l) => l.msg === 'configuration refused by haproxy')
  t.match(String(logged?.config), /timeout server no-such-time/)
})

/** A secrets folder holding `files`, removed when the test file ends. */
async function secretsWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dfp-secrets-'))
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content)
  tap.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** An upstream answering after `delayMs`; `arrived` settles when the first request reaches it. */
async function slowUpstream(delayMs: number): Promise<Server & { arrived: Promise<void> }> {
  let arrive = () => {}
  const arrived = new Promise<void>((resolve) => (arrive = resolve))
  const server = createServer((_req, res) => {
    arrive()
    setTimeout(() => res.end('slow'), delayMs)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return Object.assign(server, { arrived })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

tap.test('CFG_TEMPLATE_PATH (the original base template) is warned about at start', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const daemon = await startDaemon({ CFG_TEMPLATE_PATH: '/cfg/tmpl/haproxy.tmpl' }, { logLines })
  t.teardown(() => daemon.close())
  const warning = logLines.find((l) => l.CFG_TEMPLATE_PATH === '/cfg/tmpl/haproxy.tmpl')
  t.equal(warning?.level, 40, 'one warning, naming the value')
  t.match(String(warning?.msg), /^CFG_TEMPLATE_PATH is not used/)
  t.notMatch((await daemon.call('config')).body, 'haproxy.tmpl', 'the configuration is dfp\'s own')
})
