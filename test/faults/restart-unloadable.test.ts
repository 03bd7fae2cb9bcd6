// Issue 12, item 4: a restart never drops a saved service. A tcp service whose port another
// process holds at start-up stays in the state, is reported (log, /config?type=json, status page,
// metric) and is retried; it is served once the port is free.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { holdPort } from '../helpers/faults.js'
import { startDaemon } from '../helpers/daemon.js'
import { freePort, httpUpstream, tcpEcho, tcpExchange, until } from '../helpers/net.js'
import type { StatusAnswer } from '../helpers/api-json.js'
import type { SavedState } from '../../src/state/store.js'

const web = await httpUpstream('good')
const echo = await tcpEcho('held')
t.teardown(async () => {
  await web.close()
  await echo.close()
})

t.test('a saved tcp service whose port is held at start is kept, reported, retried and served once free', async (t) => {
  const srcPort = await freePort()
  const first = await startDaemon()
  t.equal((await first.call('reconfigure', { serviceName: 'good', servicePath: '/good/', port: String(web.port), outboundHostname: '127.0.0.1' })).status, 200)
  const tcp = { serviceName: 'held', reqMode: 'tcp', srcPort: String(srcPort), port: String(echo.port), outboundHostname: '127.0.0.1' }
  t.equal((await first.call('reconfigure', tcp)).status, 200)
  await first.close({ keepConfig: true })

  const holder = await holdPort(srcPort)
  t.teardown(() => holder.release())
  const logLines: Array<Record<string, unknown>> = []
  const second = await startDaemon({}, { configDir: first.configDir, proxyPort: first.proxyPort, logLines })
  t.teardown(() => second.close())

  t.equal((await second.proxy('/good/')).status, 200, 'the other service is served')
  const saved: SavedState = JSON.parse(await readFile(join(first.configDir, 'dfp-state.json'), 'utf8'))
  t.ok(saved.services.some((s) => s.params.serviceName === 'held'), 'still in the state file')
  t.ok(Object.keys((await second.call('config', { type: 'json' })).json).includes('held'), 'listed by /config?type=json')
  t.ok(logLines.some((l) => JSON.stringify(l).includes('held') && /not served|cannot be served|could not/.test(String(l.msg))), 'logged')
  const metrics = (await second.api('/metrics')).body
  t.match(metrics, /^dfp_services_unserved 1$/m, 'counted by a metric')
  const status = (await second.call<StatusAnswer>('status', { type: 'json' })).json
  t.match(JSON.stringify(status?.unserved ?? null), /held/, 'shown by the status page')

  await holder.release()
  const served = await until(async () => (await tcpExchange(srcPort, 'ping', 1000)).startsWith('held:'), 60_000)
  t.ok(served, 'served once the port is free')
  // The request that served it settles just after the reload is confirmed.
  t.ok(await until(async () => /^dfp_services_unserved 0$/m.test((await second.api('/metrics')).body), 10_000), 'no longer counted')
})
