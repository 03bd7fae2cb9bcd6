// Issue 12, item 11: after a crash HAProxy restarts on the last configuration it confirmed
// serving, not on whatever haproxy.cfg holds by then.
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstreams } from '../helpers/daemon.js'
import { until } from '../helpers/net.js'

t.test('a line appended to haproxy.cfg by hand does not keep HAProxy down after a crash', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const { daemon, upstreams } = await startWithUpstreams(['good'], {}, { logLines })
  const port = String(upstreams.good.port)
  // No catch-up reload in the test's time: the restart alone must serve what was made live.
  daemon.applier.catchUpDelayMs = 120_000
  t.equal((await daemon.call('reconfigure', { serviceName: 'good', servicePath: '/good/', port, outboundHostname: '127.0.0.1' })).status, 200)
  await appendFile(join(daemon.configDir, 'haproxy.cfg'), 'this is not haproxy\n')
  const masterPid = daemon.port.master.pid as number
  process.kill(masterPid, 'SIGKILL')
  const back = await until(async () => daemon.port.master.pid !== masterPid && (await daemon.proxy('/good/')).status === 200, 20_000)
  t.ok(back, 'served again on the last good configuration')
  t.ok(logLines.some((l) => l.msg === 'haproxy restarted on the last good configuration'), 'the restart is logged')
  // The file HAProxy loaded on the restart (/config renders from memory and cannot show this).
  const loaded = await readFile(join(daemon.configDir, 'haproxy.cfg'), 'utf8')
  t.notMatch(loaded, /this is not haproxy/, 'the restart loaded the last good configuration, not the edited file')
  t.match(loaded, `127.0.0.1:${port}`, 'the file loaded holds the service made live')
})
