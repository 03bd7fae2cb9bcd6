import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import t from 'tap'
import type { LogLine } from '../helpers/daemon.js'
import { freePort, httpGet, httpUpstream, until } from '../helpers/net.js'

// The daemon as a process (src/main.ts), as the container runs it: SIGTERM lets the change in
// flight finish, stops HAProxy and exits 0; the logs are pino JSON lines on stdout.
const root = fileURLToPath(new URL('../..', import.meta.url))

/** src/main.ts as a process on `configDir` and free ports, logging at info. */
async function mainProcess(configDir: string, env: Record<string, string> = {}) {
  const [apiPort, proxyPort] = [await freePort(), await freePort()]
  const child = execa(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    reject: false,
    timeout: 120_000,
    env: {
      CONFIG_DIR: configDir,
      SECRETS_DIR: join(configDir, 'secrets'),
      CERTS_DIR: join(configDir, 'certs-folder'),
      DEFAULT_PORTS: String(proxyPort),
      RESOLVERS: 'nameserver dns 127.0.0.1:53',
      IP: '127.0.0.1',
      PORT: String(apiPort),
      LOG_LEVEL: 'info',
      RES_OPTIONS: 'timeout:1 attempts:1',
      ...env,
    },
  })
  return { apiPort, child }
}

t.test('SIGTERM finishes the apply in flight, stops HAProxy and exits 0', async (t) => {
  const configDir = await mkdtemp(join(tmpdir(), 'dfp-test-'))
  const upstream = await httpUpstream('drain')
  t.teardown(async () => {
    await upstream.close()
    await rm(configDir, { recursive: true, force: true })
  })
  const { apiPort, child } = await mainProcess(configDir)
  const lines: Array<LogLine> = []
  const waiters: Array<{ test: (l: LogLine) => boolean; resolve: () => void }> = []
  const nonJson: string[] = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine
    try {
      line = JSON.parse(text)
    } catch {
      nonJson.push(text)
      return
    }
    lines.push(line)
    for (const w of waiters.splice(0)) (w.test(line) ? w.resolve() : waiters.push(w))
  })
  const logged = (test: (l: LogLine) => boolean) =>
    lines.some(test) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ test, resolve }))
  const exited = child.then((r) => r)

  await Promise.race([logged((l) => /listening/i.test(l.msg ?? '')), exited])
  t.equal(child.exitCode, null, 'the daemon started')
  const masterPid = Number(readFileSync(join(configDir, 'haproxy-master.pid'), 'utf8'))
  t.ok(existsSync(`/proc/${masterPid}`), 'haproxy runs')

  // A change in flight when SIGTERM arrives is still applied and answered.
  const query = `serviceName=drain&servicePath=/drain&port=${upstream.port}&outboundHostname=127.0.0.1&users=admin:hunter2secret`
  const answer = httpGet(apiPort, `/v1/docker-flow-proxy/reconfigure?${query}`, {}, 60_000)
  await logged((l) => l.msg === 'incoming request' && l.req?.url === '/v1/docker-flow-proxy/reconfigure')
  child.kill('SIGTERM')
  const reply = await answer
  t.equal(reply.status, 200, reply.body)
  t.equal(JSON.parse(reply.body).Status, 'OK')

  const result = await exited
  if (result.exitCode !== 0) t.comment(lines.slice(-25).map((l) => `${l.time} ${l.msg} ${JSON.stringify(l).slice(0, 300)}`).join('\n'))
  t.equal(result.exitCode, 0, result.stderr)
  t.notOk(result.signal, 'exited by itself')
  t.ok(await until(async () => !existsSync(`/proc/${masterPid}`), 15_000), 'haproxy master stopped')
  t.match(readFileSync(join(configDir, 'haproxy.cfg'), 'utf8'), /^backend drain-be\d+_0$/m, 'the change was written before stopping')
  await t.rejects(httpGet(apiPort, '/v1/docker-flow-proxy/ping'), 'the API no longer listens')

  t.same(nonJson, [], 'every stdout line is JSON')
  t.ok(lines.some((l) => l.msg === 'stopping' && l.signal === 'SIGTERM'), 'the stop is logged')
  t.ok(lines.some((l) => l.action === 'reconfigure' && l.service === 'drain' && l.outcome === 'ok' && typeof l.ms === 'number'), 'one line for the reconfigure')
  const stopping = lines.findIndex((l) => l.msg === 'stopping')
  const answered = lines.findIndex((l) => l.action === 'reconfigure')
  t.ok(stopping !== -1 && stopping < answered, 'the reconfigure was still in flight when the stop began')
  t.ok(lines.some((l) => l.msg === 'haproxy reloaded' && l.outcome === 'ok' && typeof l.ms === 'number'), 'one line for the reload')
  t.ok(lines.some((l) => l.component === 'haproxy' && typeof l.haproxy === 'string'), "HAProxy's own messages are in the stream")
  const all = lines.map((l) => JSON.stringify(l)).join('\n')
  t.notOk(all.includes('hunter2secret'), 'the password never reaches the logs')
})

t.test('SIGTERM while HAProxy is being started: the start finishes, HAProxy is stopped, exit 0', async (t) => {
  const configDir = await mkdtemp(join(tmpdir(), 'dfp-test-'))
  t.teardown(() => rm(configDir, { recursive: true, force: true }))
  // HAPROXY_BIN: the master's start waits 3 s (a start on a large saved state), after saying so
  // and writing its pid (the wrapper's, which exec keeps for HAProxy's master).
  const real = execFileSync('sh', ['-c', 'command -v haproxy']).toString().trim()
  const bin = join(configDir, 'slow-haproxy')
  const starting = join(configDir, 'master-starting')
  await writeFile(bin, `#!/bin/sh\ncase " $* " in *" -W "*) echo $$ > "${starting}"; sleep 3;; esac\nexec ${real} "$@"\n`)
  await chmod(bin, 0o755)
  const { apiPort, child } = await mainProcess(configDir, { HAPROXY_BIN: bin })
  t.ok(await until(async () => existsSync(starting), 60_000), 'the master is being started')
  child.kill('SIGTERM')
  const result = await child
  t.equal(result.exitCode, 0, result.stderr)
  t.notOk(result.signal, 'exited by itself')
  const masterPid = Number(readFileSync(starting, 'utf8'))
  t.match(result.stdout, /"msg":"haproxy started"/, 'the start finished')
  t.ok(masterPid > 0 && (await until(async () => !existsSync(`/proc/${masterPid}`), 15_000)), 'and the master was stopped, not left running')
  await t.rejects(httpGet(apiPort, '/v1/docker-flow-proxy/ping'), 'the API never listened')
  t.match(result.stdout, /"msg":"stopping"/, 'the stop is logged')
})
