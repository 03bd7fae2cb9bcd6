// Issue 20, item 1: a fresh machine runs the README. The repository is cloned into a new folder
// and started with the README's own command (`CONFIG_DIR=… DEFAULT_PORTS=… npm start`, its
// `prestart` installing and building), with CONFIG_DIR, CRT_LIST_PATH's folder and the
// certificate folders not there yet; a reconfigure then routes a request through HAProxy.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { stopLeftoverHaproxy } from '../helpers/faults.js'
import { freePort, httpGet, httpUpstream, until, withJson } from '../helpers/net.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const dir = await mkdtemp(join(tmpdir(), 'dfp-fresh-clone-'))
const clone = join(dir, 'dfp')
execFileSync('git', ['clone', '--quiet', repo, clone])
const configDir = join(dir, 'not', 'yet', 'cfg')
const crtListDir = join(dir, 'not', 'yet', 'crt-list')
const upstream = await httpUpstream('fresh')
const apiPort = await freePort()
const proxyPort = await freePort()

/** `npm start` in its own process group, so the npm, sh and node it runs stop together. */
function npmStart(): ChildProcess {
  return spawn('npm', ['start'], {
    cwd: clone,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A login shell's variables and the README's, nothing of this test run's npm.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CONFIG_DIR: configDir,
      DEFAULT_PORTS: String(proxyPort),
      // Loopback only, on free ports (the README's 8080 may be taken on a shared machine).
      IP: '127.0.0.1',
      PORT: String(apiPort),
      CRT_LIST_PATH: join(crtListDir, 'crt-list.txt'),
      // This machine's DNS server does not answer: bound haproxy's lookups (glibc reads it).
      RES_OPTIONS: 'timeout:1 attempts:1',
      // npm ci takes the packages from the cache when they are there (the network otherwise).
      npm_config_prefer_offline: 'true',
    },
  })
}

const child = npmStart()
let output = ''
child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)))
child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)))
const exited = once(child, 'exit')
t.teardown(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    process.kill(-(child.pid as number), 'SIGTERM')
    await exited
  }
  await stopLeftoverHaproxy(configDir)
  await upstream.close()
  await rm(dir, { recursive: true, force: true })
})

const call = async (endpoint: string, params: Record<string, string> = {}) =>
  withJson(await httpGet(apiPort, `/v1/docker-flow-proxy/${endpoint}?${new URLSearchParams(params)}`, {}, 60_000).catch(() => ({ status: 0, body: '', headers: {} })))

t.test('npm start from a fresh clone creates its folders and routes a request', async (t) => {
  // npm ci, tsc, then the daemon: bounded (5 min), or as soon as npm start gives up.
  const up = await Promise.race([until(async () => (await call('ping')).status === 200, 300_000), exited.then(() => false)])
  t.ok(up, `the API answers (npm start output: ${up ? 'fine' : output.slice(-3000)})`)
  if (!up) return
  const reply = await call('reconfigure', { serviceName: 'fresh', servicePath: '/fresh', port: String(upstream.port), outboundHostname: '127.0.0.1' })
  t.equal(reply.status, 200, `reconfigure answered ${reply.status} ${reply.status === 200 ? '' : reply.body}`)
  const routed = await httpGet(proxyPort, '/fresh')
  t.equal(routed.status, 200, 'routed through HAProxy')
  t.match(routed.body, /fresh/, 'by the upstream')
  for (const folder of [configDir, join(configDir, 'certs', 'uploaded'), join(configDir, 'maps'), crtListDir]) {
    const info = await stat(folder)
    t.equal(info.mode & 0o777, 0o700, `${folder.slice(dir.length)} created, mode 0700`)
  }
  t.notMatch(output, /ENOENT/, 'no missing file or folder on the way')
})
