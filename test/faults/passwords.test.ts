// Issue 12, item 5: passwords are never shown: /config blanks them (the lines stay readable),
// the files that hold them are 0600, and no answer, log line or metric carries one.
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { startDaemon } from '../helpers/daemon.js'
import { httpUpstream } from '../helpers/net.js'

const upstream = await httpUpstream('app')
t.teardown(() => upstream.close())
const logLines: Array<Record<string, unknown>> = []
const daemon = await startDaemon({ STATS_USER: 'admin', STATS_PASS: 'stats-pass-4711', DISPLAY_CONFIG_ON_ERROR: 'true' }, { logLines })
t.teardown(() => daemon.close())
const secrets = ['stats-pass-4711', 'alice-pass-4711', 'bob-pass-4711']

t.test('reconfigure with users, then nothing shows a password', async (t) => {
  const reply = await daemon.call('reconfigure', { serviceName: 'guarded', servicePath: '/guarded', port: String(upstream.port), outboundHostname: '127.0.0.1', users: 'alice:alice-pass-4711,bob:bob-pass-4711' })
  t.equal(reply.status, 200, reply.body)
  const config = (await daemon.call('config')).body
  t.match(config, /^ {4}user alice insecure-password <redacted>$/m, 'userlist line kept, password blanked')
  t.match(config, /stats auth admin:<redacted>/, 'stats auth kept, password blanked')
  const answers = [
    reply.body,
    config,
    (await daemon.call('config', { type: 'json' })).body,
    (await daemon.call('status', { type: 'json' })).body,
    (await daemon.api('/metrics')).body,
    (await daemon.call('metrics')).body,
  ]
  for (const secret of secrets) {
    t.notOk(answers.some((a) => a.includes(secret)), `no answer carries ${secret}`)
    t.notOk(logLines.some((l) => JSON.stringify(l).includes(secret)), `no log line carries ${secret}`)
  }
})

t.test('a refused configuration quoting a password does not echo it', async (t) => {
  // HAProxy quotes the line it refuses; with DISPLAY_CONFIG_ON_ERROR the whole file is logged.
  const reply = await daemon.call('reconfigure', { serviceName: 'guarded', servicePath: '/guarded', port: String(upstream.port), outboundHostname: '127.0.0.1', users: 'alice:alice-pass-4711', timeoutServer: 'never' })
  t.equal(reply.status, 400)
  for (const secret of secrets) {
    t.notOk(reply.body.includes(secret), `the answer does not carry ${secret}`)
    t.notOk(logLines.some((l) => JSON.stringify(l).includes(secret)), `no log line carries ${secret}`)
  }
})

t.test('haproxy.cfg and the state file are readable by their owner only', async (t) => {
  for (const file of ['haproxy.cfg', 'dfp-state.json']) {
    const mode = (await stat(join(daemon.configDir, file))).mode & 0o777
    t.equal(mode.toString(8), '600', `${file} is 0600`)
  }
})
