import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import t from 'tap'
import { startWithUpstream } from '../helpers/daemon.js'
import { freePort } from '../helpers/net.js'

// The real CLI (src/cli.ts, built to the package's `bin`) against a real daemon and HAProxy.
const root = fileURLToPath(new URL('../..', import.meta.url))
const { daemon, port } = await startWithUpstream('clidemo', { API_USERS: 'admin:cli-secret' })
const address = `http://127.0.0.1:${daemon.apiPort}`
const dfp = (...args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, reject: false, timeout: 120_000, env: { DFP_ADDRESS: '', DFP_USER: '' } })
const withCreds = ['--address', address, '--user', 'admin:cli-secret']

t.test('the package bin is the CLI', async (t) => {
  const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'))
  t.equal(pkg.bin.dfp, 'dist/cli.js')
  t.match(readFileSync(`${root}/src/cli.ts`, 'utf8'), /^#!\/usr\/bin\/env node\n/)
})

t.test('reconfigure turns --kebab-case options into parameters', async (t) => {
  const run = await dfp('reconfigure', '--service-name', 'clidemo', '--service-path', '/cli', '--port', port, '--outbound-hostname=127.0.0.1', ...withCreds)
  t.equal(run.exitCode, 0, run.stderr)
  t.match(run.stdout, /clidemo/)
  t.equal((await daemon.proxy('/cli/x')).status, 200, 'the route is live')
  const state = daemon.live.services.get('clidemo')
  t.same(state?.destinations[0]?.servicePath, ['/cli'])
  t.equal(state?.destinations[0]?.outboundHostname, '127.0.0.1')
})

t.test('a refused request exits non-zero with the message on stderr', async (t) => {
  const noPath = await dfp('reconfigure', '--service-name', 'nopath', '--port', '80', ...withCreds)
  t.equal(noPath.exitCode, 1)
  t.match(noPath.stderr, /409.*servicePath or serviceDomain are mandatory/)
  t.equal(noPath.stdout, '')
  const noCreds = await dfp('config', '--address', address)
  t.equal(noCreds.exitCode, 1)
  t.match(noCreds.stderr, /401.*Authentication required/)
  const wrong = await dfp('config', '--address', address, '--user', 'admin:nope')
  t.equal(wrong.exitCode, 1)
})

t.test('config, config --type json and status', async (t) => {
  const text = await dfp('config', ...withCreds)
  t.equal(text.exitCode, 0, text.stderr)
  t.match(text.stdout, new RegExp(`^backend clidemo-be${port}_0$`, 'm'))
  const json = await dfp('config', '--type', 'json', ...withCreds)
  t.equal(json.exitCode, 0)
  t.ok(JSON.parse(json.stdout).clidemo, 'the state as JSON')
  const status = await dfp('status', ...withCreds)
  t.equal(status.exitCode, 0, status.stderr)
  t.match(status.stdout, /^clidemo \(api\)$/m)
  t.match(status.stdout, new RegExp(`http /cli → :${port}  clidemo-be${port}_0 UP`))
  const raw = await dfp('status', '--json', ...withCreds)
  t.equal(JSON.parse(raw.stdout).services[0].serviceName, 'clidemo')
})

t.test('remove', async (t) => {
  const run = await dfp('remove', '--service-name', 'clidemo', ...withCreds)
  t.equal(run.exitCode, 0, run.stderr)
  t.equal((await daemon.proxy('/cli/x')).status, 503)
})

t.test('usage errors and an unreachable proxy', async (t) => {
  t.equal((await dfp('frobnicate', ...withCreds)).exitCode, 2)
  const missing = await dfp('remove', ...withCreds)
  t.equal(missing.exitCode, 2)
  t.match(missing.stderr, /--service-name is required/)
  t.equal((await dfp('--help')).exitCode, 0)
  const closed = await dfp('status', '--address', `http://127.0.0.1:${await freePort()}`)
  t.equal(closed.exitCode, 1)
  t.match(closed.stderr, /^dfp: fetch failed/)
})
