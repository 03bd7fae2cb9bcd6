// Issue 12, item 11: after a crash HAProxy restarts on the configuration it served (the one
// record of src/apply/served.ts), not on whatever haproxy.cfg holds by then.
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startWithUpstreams } from '../helpers/daemon.js'
import { until } from '../helpers/net.js'
import { defined } from '../helpers/checks.js'

t.test('a line appended to haproxy.cfg by hand does not keep HAProxy down after a crash', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const { daemon, upstreams } = await startWithUpstreams(['good'], {}, { logLines })
  const port = String(upstreams.good.port)
  // No catch-up reload in the test's time: the restart alone must serve what was made live.
  daemon.applier.catchUpDelayMs = 120_000
  t.equal((await daemon.call('reconfigure', { serviceName: 'good', servicePath: '/good/', port, outboundHostname: '127.0.0.1' })).status, 200)
  await appendFile(join(daemon.configDir, 'haproxy.cfg'), 'this is not haproxy\n')
  const masterPid = defined(daemon.port.master.pid, 'the master pid')
  process.kill(masterPid, 'SIGKILL')
  const back = await until(async () => daemon.port.master.pid !== masterPid && (await daemon.proxy('/good/')).status === 200, 20_000)
  t.ok(back, 'served again on the configuration it served')
  t.ok(logLines.some((l) => l.msg === 'haproxy restarted on the configuration it served'), 'the restart is logged')
  // Not rescued later by the file sync of the change made at run time: the first start worked.
  t.notOk(logLines.some((l) => l.msg === 'haproxy could not be restarted; trying again'), 'the first restart loaded the record, not the edited file')
  // The file on disk, not /config (rendered from memory): the restart loaded what it wrote.
  const onDisk = await readFile(join(daemon.configDir, 'haproxy.cfg'), 'utf8')
  t.notMatch(onDisk, /this is not haproxy/, 'the file HAProxy loaded is the one of the record')
  t.match(onDisk, /\nbackend good-be/, 'with the backend of the service made live before the crash')
  t.match(onDisk, `127.0.0.1:${port}`, 'and its server')
})
