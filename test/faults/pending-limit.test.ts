// Issue 24: the change requests waiting to be applied are bounded (MAX_PENDING_CHANGES), so a
// flood of clients cannot grow the daemon. HAPROXY_BIN is a wrapper whose `haproxy -c` waits
// while a gate file exists: the first change holds the apply loop, the next ones wait behind it.
// One more than the limit is answered 503 at once with Retry-After, naming the setting, and is
// not applied; those admitted are all applied and served once the gate opens.
import { execFileSync } from 'node:child_process'
import { access, chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { ConfigAnswer } from '../../src/routes/proxy.js'
import { startWithUpstreams } from '../helpers/daemon.js'
import { until } from '../helpers/net.js'

const dir = await mkdtemp(join(tmpdir(), 'dfp-pending-'))
const real = execFileSync('sh', ['-c', 'command -v haproxy']).toString().trim()
const bin = join(dir, 'haproxy')
const gate = join(dir, 'gate')
const started = join(dir, 'started')
// While the gate exists, `haproxy -c` says it started and waits (at most 60 s), then runs.
await writeFile(bin, `#!/bin/sh\nif [ "$1" = "-c" ] && [ -e "${gate}" ]; then touch "${started}"; i=0; while [ -e "${gate}" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; fi\nexec ${real} "$@"\n`)
await chmod(bin, 0o755)
const { daemon, upstreams } = await startWithUpstreams(['held'], { HAPROXY_BIN: bin, MAX_PENDING_CHANGES: '3' })
t.teardown(() => rm(dir, { recursive: true, force: true }))
const port = String(upstreams.held.port)
// A header rule gives the service a backend of its own: it needs `haproxy -c` and a reload.
const service = (name: string) => ({ serviceName: name, servicePath: `/${name}`, port, outboundHostname: '127.0.0.1', setResHeader: 'X-Held yes' })

t.test('one change more than MAX_PENDING_CHANGES: 503 at once, not applied; the others applied', async (t) => {
  await writeFile(gate, '')
  const first = daemon.call('reconfigure', service('held0'))
  t.ok(await until(() => access(started).then(() => true), 30_000), 'the first change is being checked')
  const admitted = [first, daemon.call('reconfigure', service('held1')), daemon.call('reconfigure', service('held2'))]
  // The three above are waiting (one in the check, two queued), as /metrics shows: a fourth, and a remove, are refused.
  t.ok(await until(async () => /^dfp_pending_changes 3$/m.test((await daemon.api('/metrics')).body), 30_000), 'dfp_pending_changes 3')
  const refused = await daemon.call('reconfigure', service('held3'))
  t.equal(refused.status, 503, refused.body)
  t.match(refused.json.Message, /MAX_PENDING_CHANGES/)
  t.equal(refused.headers['retry-after'], '1')
  const refusedRemove = await daemon.call('remove', { serviceName: 'held0' })
  t.equal(refusedRemove.status, 503, 'a remove counts too')
  await rm(gate)
  for (const reply of await Promise.all(admitted)) t.equal(reply.status, 200, reply.body)
  for (const name of ['held0', 'held1', 'held2']) t.equal((await daemon.proxy(`/${name}`)).status, 200, `${name} served`)
  const config = (await daemon.call<ConfigAnswer>('config', { type: 'json' })).json
  t.notOk('held3' in config, 'the refused change is not in the state')
  t.ok('held0' in config, 'the refused remove removed nothing')
  // Once the queue drained, the same request is taken.
  t.equal((await daemon.call('reconfigure', service('held3'))).status, 200)
  t.match((await daemon.api('/metrics')).body, /^dfp_pending_changes 0$/m)
})
