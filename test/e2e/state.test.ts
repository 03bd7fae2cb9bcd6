import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'
import type { ConfigAnswer } from '../helpers/api-json.js'
import type { SavedState } from '../../src/state/store.js'

const upstream = await httpUpstream('kept')
t.teardown(() => upstream.close())
const port = String(upstream.port)

t.test('services survive a restart of the daemon', async (t) => {
  const first = await startDaemon()
  for (const name of ['one', 'two']) {
    t.equal((await first.call('reconfigure', { serviceName: name, servicePath: `/${name}`, port, outboundHostname: '127.0.0.1', distribute: 'false' })).status, 200)
  }
  t.equal((await first.call('remove', { serviceName: 'two' })).status, 200)
  const saved: SavedState = JSON.parse(await readFile(join(first.configDir, 'dfp-state.json'), 'utf8'))
  t.same(saved.services.map((s) => [s.source, s.params.serviceName, s.params.distribute]), [['api', 'one', undefined]], 'request-only parameters are not saved')
  t.notMatch(await readFile(join(first.configDir, 'dfp-state.log'), 'utf8'), 'distribute', 'nor in the log of changes since')
  await first.close({ keepConfig: true })

  const second = await startDaemon({}, { configDir: first.configDir, proxyPort: first.proxyPort })
  t.teardown(() => second.close())
  t.equal((await second.proxy('/one')).status, 200, 'the saved route is served right after start')
  t.equal((await second.proxy('/two')).status, 503, 'the removed one stays removed')
  t.equal(second.applier.reloads, 0, 'started on the saved state, no extra reload')
})

t.test('a corrupt state file is moved aside and the daemon starts empty', async (t) => {
  const first = await startDaemon()
  await first.close({ keepConfig: true })
  await writeFile(join(first.configDir, 'dfp-state.json'), '{"format":1,"services":[{"source":"api","par')
  const second = await startDaemon({}, { configDir: first.configDir, proxyPort: first.proxyPort })
  t.teardown(() => second.close())
  t.equal((await second.call('ping')).status, 200)
  t.same((await second.call('config', { type: 'json' })).json, {})
  const files = await readdir(first.configDir)
  t.ok(files.some((f) => f.startsWith('dfp-state.json.corrupt-')), 'moved aside')
  t.equal((await second.call('reconfigure', { serviceName: 'fresh', servicePath: '/fresh', port, outboundHostname: '127.0.0.1' })).status, 200)
  t.equal(JSON.parse(await readFile(join(first.configDir, 'dfp-state.json'), 'utf8')).services.length, 1, 'and saves again')
})

t.test('saved services HAProxy no longer accepts are kept, reported as not served, the others served', async (t) => {
  const first = await startDaemon()
  await first.close({ keepConfig: true })
  const services = [
    { source: 'api', params: { serviceName: 'good', servicePath: '/good', port, outboundHostname: '127.0.0.1' } },
    { source: 'listener', params: { serviceName: 'bad', servicePath: '/bad', port, timeoutServer: 'never' } },
    { source: 'api', params: { serviceName: 'invalid', port } },
  ]
  await writeFile(join(first.configDir, 'dfp-state.json'), JSON.stringify({ format: 1, services }))
  const second = await startDaemon({}, { configDir: first.configDir, proxyPort: first.proxyPort })
  t.teardown(() => second.close())
  t.equal((await second.proxy('/good')).status, 200)
  const listed = (await second.call<ConfigAnswer>('config', { type: 'json' })).json
  t.same(Object.keys(listed).sort(), ['bad', 'good'], 'the refused one is still listed; the one that no longer parses is not')
  t.match(listed.bad?.notServed?.reason, /timeout/, 'with the reason it is not served')
  t.equal(listed.good?.notServed, undefined)
  const saved: SavedState = JSON.parse(await readFile(join(first.configDir, 'dfp-state.json'), 'utf8'))
  t.same(saved.services.map((s) => s.params.serviceName).sort(), ['bad', 'good'], 'and kept in the state file')
})

t.test('replicas=0 removes; the same notification twice does not reload', async (t) => {
  const daemon = await startDaemon()
  t.teardown(() => daemon.close())
  const notification = { serviceName: 'scaled', servicePath: '/scaled', port, outboundHostname: '127.0.0.1', replicas: '3', distribute: 'false', nodeInfo: '[["node-1","10.0.0.5","x"]]' }
  t.equal((await daemon.call('reconfigure', notification)).status, 200)
  const reloads = daemon.applier.reloads
  t.equal((await daemon.call('reconfigure', notification)).status, 200)
  t.equal(daemon.applier.reloads, reloads, 'no reload for a repeated notification')
  t.equal((await daemon.proxy('/scaled')).status, 200)
  const removed = await daemon.call('reconfigure', { ...notification, replicas: '0' })
  t.equal(removed.status, 200)
  t.equal((await daemon.proxy('/scaled')).status, 503)
  t.equal((await daemon.call('reconfigure', { ...notification, replicas: 'many' })).status, 400)
})
