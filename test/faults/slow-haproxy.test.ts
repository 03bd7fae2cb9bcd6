// Issue 20, item 4: every request is answered, whatever `haproxy -c` or the reload take. HAPROXY_BIN
// is a wrapper that sleeps before `haproxy -c` (past the API's 10 s idle and 30 s request
// timeouts), and the master is stopped (SIGSTOP) while a reload waits on it. Each reconfigure
// gets its answer (200, served) instead of an empty reply.
import { execFileSync } from 'node:child_process'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstreams } from '../helpers/daemon.js'

const dir = await mkdtemp(join(tmpdir(), 'dfp-slow-haproxy-'))
const real = execFileSync('sh', ['-c', 'command -v haproxy']).toString().trim()
const bin = join(dir, 'haproxy')
const delayFile = join(dir, 'check-delay')
// Sleeps the seconds written in check-delay before each `haproxy -c`, then runs the real one.
await writeFile(bin, `#!/bin/sh\nif [ "$1" = "-c" ] && [ -e "${delayFile}" ]; then sleep "$(cat "${delayFile}")"; fi\nexec ${real} "$@"\n`)
await chmod(bin, 0o755)
const { daemon, upstreams } = await startWithUpstreams(['slow'], { HAPROXY_BIN: bin })
t.teardown(() => rm(dir, { recursive: true, force: true }))
const port = String(upstreams.slow.port)
// A header rule gives the service a backend of its own: it needs `haproxy -c` and a reload.
const service = (name: string) => ({ serviceName: name, servicePath: `/${name}`, port, outboundHostname: '127.0.0.1', setResHeader: 'X-Slow yes' })

t.test('a haproxy -c slower than every API timeout: answered 200, and served', async (t) => {
  await writeFile(delayFile, '31')
  t.teardown(() => rm(delayFile, { force: true }))
  const reply = await daemon.call('reconfigure', service('slow-check'))
  t.equal(reply.status, 200, `answered (${reply.status}${reply.status === 200 ? '' : ` ${reply.body}`})`)
  t.equal((await daemon.proxy('/slow-check')).status, 200, 'and served')
})

t.test('a reload that waits on a stopped master: answered 200, and served', async (t) => {
  const master = daemon.port.master.pid as number
  process.kill(master, 'SIGSTOP')
  // Resumed once the reload has waited past the API's idle timeout (10 s).
  let resumed = false
  const resume = () => {
    if (resumed) return
    resumed = true
    process.kill(master, 'SIGCONT')
  }
  t.teardown(resume)
  const pending = daemon.call('reconfigure', service('slow-reload'))
  const timer = setTimeout(resume, 12_000)
  t.teardown(() => clearTimeout(timer))
  const reply = await pending
  t.ok(resumed, 'the answer came after the master was resumed')
  t.equal(reply.status, 200, `answered (${reply.status}${reply.status === 200 ? '' : ` ${reply.body}`})`)
  t.equal((await daemon.proxy('/slow-reload')).status, 200, 'and served')
})
