import t from 'tap'
import { outputLevel } from '../../src/haproxy/master.js'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'

// HAProxy prints a line per proxy at every reload (the old worker stopping each backend). At
// 10 000 services that was 11 000 warnings per reload in the daemon's log, and CPU on the
// request path. They are routine: logged at debug, whatever way the reload was made.

const PINO = { debug: 20, info: 30, warn: 40, error: 50 } as const
const routine = /Proxy \S+ stopped|Stopping (frontend|backend|proxy) |Former worker \(\d+\) exited with code 0|leaving forced maintenance/

t.test('reloads put no per-proxy line above debug in the log', async (t) => {
  const logLines: Array<Record<string, unknown>> = []
  const daemon = await startDaemon({ LOG_LEVEL: 'debug' }, { logLines })
  const upstream = await httpUpstream('quiet')
  t.teardown(async () => {
    await daemon.close()
    await upstream.close()
  })
  // Plain services first: made live through the Runtime API (`add server`, `enable server`), after
  // which HAProxy prefixes the worker's lines with `CLI : `.
  for (let i = 0; i < 3; i++) {
    const reply = await daemon.call('reconfigure', { serviceName: `p${i}`, servicePath: `/p${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1' })
    t.equal(reply.status, 200, reply.body)
  }
  t.ok(daemon.applier.runtimeChanges >= 1, 'made live at run time')
  // Services with a backend line of their own: each change is a reload.
  for (let i = 0; i < 3; i++) {
    const reply = await daemon.call('reconfigure', { serviceName: `q${i}`, servicePath: `/q${i}/`, port: String(upstream.port), outboundHostname: '127.0.0.1', timeoutServer: String(20 + i) })
    t.equal(reply.status, 200, reply.body)
  }
  await daemon.applier.reload()
  await daemon.applier.idle()
  const haproxyLines = logLines.filter((line) => typeof line.haproxy === 'string')
  const chatter = haproxyLines.filter((line) => routine.test(String(line.haproxy)))
  // The reloads did make HAProxy print them (else this test proves nothing)…
  t.ok(chatter.length >= 3, `routine lines seen: ${chatter.length}`)
  t.ok(chatter.some((line) => String(line.haproxy).includes('CLI : Proxy')), 'a worker that took runtime commands stopped')
  t.ok(chatter.some((line) => String(line.haproxy).includes('leaving forced maintenance')), 'a server enabled at run time')
  // …and each went to debug.
  t.same(chatter.filter((line) => Number(line.level) > PINO.debug).map((line) => line.haproxy), [])
})

t.test('the level of each spelling of the routine lines, and of real warnings and alerts', async (t) => {
  const cases: Array<[string, ReturnType<typeof outputLevel>]> = [
    ['[WARNING]  (14647) : Proxy dfp_spare_3 stopped (cumulated conns: FE: 0, BE: 0).', 'debug'],
    ['[WARNING]  (14647) : CLI : Proxy dfp_spare_3 stopped (cumulated conns: FE: 0, BE: 0).', 'debug'],
    ['[WARNING]  (14647) : CLI : Stopping backend web-be80 in 0 ms.', 'debug'],
    ['[WARNING]  (14647) : Stopping frontend services in 0 ms.', 'debug'],
    ['[WARNING]  (13534) : Former worker (14647) exited with code 0 (Exit)', 'debug'],
    ['[WARNING]  (13534) : Current worker (14647) exited with code 0 (Exit)', 'warn'],
    ['[WARNING]  (13536) : CLI : Server dfp_spare_0/m0 is UP/READY (leaving forced maintenance).', 'debug'],
    ['[WARNING]  (13536) : CLI : Server dfp_spare_0/m0 is going DOWN for maintenance. 0 active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.', 'debug'],
    ['[WARNING]  (14647) : Server web-be80/web is DOWN, reason: Layer4 connection problem.', 'warn'],
    ['[WARNING]  (14647) : Server web-be80/web is going DOWN for maintenance (DNS NX status). 0 active and 0 backup servers left.', 'warn'],
    ['[WARNING]  (14647) : Server web-be80/web is UP, reason: Layer4 check passed.', 'warn'],
    ['[ALERT]    (14647) : config : parsing [haproxy.cfg:12] : unknown keyword', 'error'],
    ['[NOTICE]   (13534) : New worker (14700) forked', 'info'],
  ]
  for (const [line, level] of cases) t.equal(outputLevel(line), level, line)
})
