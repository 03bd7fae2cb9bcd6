// Issue 12, item 6: failures of the machinery are not verdicts on the request. When `haproxy -c`
// or the master dies under a reconfigure, the answer is a retry (200) or a 503 with the reason,
// never 400 "rejected", and the service is not dropped.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { faultyHaproxy } from '../helpers/faults.js'
import { startWithUpstreams } from '../helpers/daemon.js'
import { until } from '../helpers/net.js'
import { defined } from '../helpers/checks.js'

const faulty = await faultyHaproxy()
const logLines: Array<Record<string, unknown>> = []
const { daemon, upstreams } = await startWithUpstreams(['app'], { HAPROXY_BIN: faulty.bin }, { logLines })
const port = String(upstreams.app.port)
// A header rule gives the service a backend of its own, so it needs `haproxy -c` and a reload
// (a plain service can be served at run time from a spare backend, without either).
const service = (name: string) => ({ serviceName: name, servicePath: `/${name}`, port, outboundHostname: '127.0.0.1', setResHeader: 'X-Machinery yes' })

t.test('the validator killed during a reconfigure', async (t) => {
  await faulty.killNextCheck()
  const reply = await daemon.call('reconfigure', service('checked'))
  t.notOk(existsSync(join(faulty.dir, 'kill-check')), 'the validator ran and was killed')
  t.not(reply.status, 400, `not refused as invalid: ${reply.status} ${reply.body}`)
  t.ok(reply.status === 200 || reply.status === 503, `retried (200) or 503 (${reply.status})`)
  if (reply.status === 503) t.match(reply.json?.Message, /haproxy -c|validat/i, 'the reason names the validator')
  const again = reply.status === 200 ? reply : await daemon.call('reconfigure', service('checked'))
  t.equal(again.status, 200, 'the same change is accepted (at the latest when sent again)')
  t.equal((await daemon.proxy('/checked')).status, 200, 'and served')
})

t.test('the master killed during the reload', async (t) => {
  const before = logLines.length
  const pending = daemon.call('reconfigure', service('reloaded'))
  const reloading = await until(async () => logLines.slice(before).some((l) => String(l.haproxy ?? '').includes('Reloading HAProxy')), 30_000)
  t.ok(reloading, 'the reload started')
  process.kill(defined(daemon.port.master.pid, 'the master pid'), 'SIGKILL')
  const reply = await pending
  t.not(reply.status, 400, `not refused as invalid: ${reply.status} ${reply.body}`)
  t.ok(reply.status === 200 || reply.status === 503, `retried (200) or 503 (${reply.status})`)
  const served = await until(async () => (await daemon.proxy('/checked')).status === 200, 30_000)
  t.ok(served, 'HAProxy is back with the services it had')
  if (reply.status === 200) t.equal((await daemon.proxy('/reloaded')).status, 200, 'a 200 means served')
})
