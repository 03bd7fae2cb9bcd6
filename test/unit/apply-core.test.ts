import { pino } from 'pino'
import t from 'tap'
import { ApplyCore } from '../../src/apply/core.js'
import { createMetrics } from '../../src/metrics/index.js'
import { answers, FakeHaproxy, FakeStore, own, put, settings, started, web } from './fake-haproxy.js'
import { FakeTimers } from './fake-timers.js'

// The apply core's decisions, driven through a fake HAProxy (test/unit/fake-haproxy.ts): every
// answer HAProxy can give is scripted, so each test pins what the core does with it.

t.test('a batch with one refused service among many: only it is refused, the rest applied, saved, with one reload', async (t) => {
  const { port, store, core, names } = await started()
  const changes = ['s1', 's2', 's3', 'bad4', 's5', 's6', 's7', 's8'].map((name) => own(name))
  const replies = await answers(changes.map((change) => core.apply([change])))
  t.same(replies.map((r) => r.status), [200, 200, 200, 400, 200, 200, 200, 200])
  t.equal(replies[3]?.code, 'DFP_REJECTED_BY_HAPROXY')
  t.match(replies[3]?.message, /bad4: .*unknown keyword/, 'names the service and carries HAProxy\'s line')
  t.same(names(), ['s1', 's2', 's3', 's5', 's6', 's7', 's8'])
  t.ok(port.validations <= 1 + 2 * Math.ceil(Math.log2(8)), `bisected, not one check per service (${port.validations} checks)`)
  t.equal(port.reloadCalls, 1, 'one reload for the whole batch')
  t.same(store.last, names(), 'the state saved is the live one')
  t.equal(port.served, port.file?.version, 'HAProxy serves the file on disk')
})

t.test('concurrent requests coalesce: N requests, one validation, one reload, one save', async (t) => {
  const { port, store, core, names } = await started()
  const replies = await answers(Array.from({ length: 20 }, (_, i) => core.apply([own(`svc${i}`)])))
  t.ok(replies.every((r) => r.status === 200))
  t.equal(names().length, 20)
  t.equal(port.validations, 1)
  t.equal(port.reloadCalls, 1)
  t.equal(store.saved.length, 1)
})

t.test('a 200 is durable: every request is answered after the state holding it was saved', async (t) => {
  const { store, core } = await started()
  await core.apply([web('first')])
  t.same(store.last, ['first'], 'saved by the time the request settled')
  await core.apply([{ kind: 'remove', serviceName: 'first' }])
  t.same(store.last, [], 'a removal too')
})

t.test('srcPort and user-agent ACL names that collide across services are conflicts too (D18)', async (t) => {
  const { core, names } = await started()
  await core.apply([put('serviceName=a1&servicePath=/a&port=80&srcPort=23')])
  const [srcPort] = await answers([core.apply([put('serviceName=a12&servicePath=/b&port=80&srcPort=3')])])
  t.equal(srcPort?.status, 409)
  t.match(srcPort?.message, /srcPort_a123_0/)
  await core.apply([put('serviceName=a_b&servicePath=/c&port=80&userAgent=c')])
  const [agent] = await answers([core.apply([put('serviceName=a&servicePath=/d&port=80&userAgent=b_c')])])
  t.equal(agent?.status, 409)
  t.match(agent?.message, /user_agent_a_b_c_0/)
  t.same(names(), ['a1', 'a_b'])
})

t.test('name conflicts: 409 naming the owner; the others in the batch go on', async (t) => {
  const { core, names } = await started([web('first', '&aclName=shared')])
  const replies = await answers([core.apply([web('second', '&aclName=shared')]), core.apply([web('third')])])
  t.same(replies.map((r) => r.status), [409, 200])
  t.equal(replies[0]?.code, 'DFP_NAME_TAKEN')
  t.match(replies[0]?.message, /second would generate shared-be80_0, which service first already uses/)
  t.same(names(), ['first', 'third'])
})

t.test('a reload that fails after validation: the previous files are restored and reloaded, the request refused', async (t) => {
  const { port, store, core, names } = await started([web('good')])
  const before = port.file
  const replies = await answers([core.apply([own('unbindable')])])
  t.equal(replies[0]?.status, 400)
  t.match(replies[0]?.message, /unbindable: .*cannot bind socket/)
  t.same(names(), ['good'], 'the live state is the previous one')
  t.equal(port.file?.config, before?.config, 'the file on disk is the previous one again')
  t.equal(port.served, before?.version, 'and HAProxy serves it')
  t.equal(port.reloadCalls, 2, 'the failed reload, then the restoring one')
  t.same(store.saved, [], 'nothing saved: nothing changed')
  // In a batch, the one HAProxy cannot load is found and the others are made live.
  const batch = await answers([core.apply([own('a')]), core.apply([own('unbindable2')]), core.apply([own('b')])])
  t.same(batch.map((r) => r.status), [200, 400, 200])
  t.same(names(), ['a', 'b', 'good'])
  t.same(store.last, ['a', 'b', 'good'])
})

t.test('a validator that dies is no verdict: 503 with the reason, nothing dropped, nothing bisected', async (t) => {
  const { port, store, core, names } = await started([web('kept')])
  port.validator = 'down'
  const replies = await answers(['x1', 'x2', 'x3', 'x4'].map((name) => core.apply([own(name)])))
  t.ok(replies.every((r) => r.status === 503 && r.code === 'DFP_HAPROXY_UNAVAILABLE'), 'every request: 503, not 400')
  t.match(replies[0]?.message, /haproxy -c killed by SIGKILL/)
  t.equal(port.validations, 1, 'one check, not a bisection that would blame a change')
  t.same(names(), ['kept'])
  t.equal(port.reloadCalls, 0)
  t.same(store.saved, [])
  port.validator = 'up'
  t.same((await answers([core.apply([own('x1')])]))[0]?.status, 200, 'sent again once the validator works, it is applied')
})

t.test('a master that dies or times out during the reload: 503, the previous state restored and kept', async (t) => {
  const { port, store, core, names } = await started([web('kept')])
  const before = port.file
  port.reloadOutcomes = [{ ok: false, kind: 'unavailable', error: 'haproxy exited' }]
  const replies = await answers([core.apply([own('new1')]), core.apply([own('new2')])])
  t.same(replies.map((r) => r.status), [503, 503])
  t.same(replies.map((r) => r.code), ['DFP_HAPROXY_UNAVAILABLE', 'DFP_HAPROXY_UNAVAILABLE'])
  t.match(replies[0]?.message, /haproxy exited/)
  t.equal(port.reloadCalls, 2, 'not bisected: the failed reload and the restoring one')
  t.same(names(), ['kept'])
  t.equal(port.file?.config, before?.config, 'the previous files are back for the restarted master')
  t.same(store.saved, [])
  port.reloadOutcomes = [{ ok: false, kind: 'unavailable', error: 'the new configuration was not served within 5000 ms' }]
  t.equal((await answers([core.reload()]))[0]?.status, 503, 'a plain reload request too')
})

t.test('a state that cannot be saved: the change is rolled back and answered 503', async (t) => {
  const { port, store, core, names } = await started([web('kept')])
  const before = port.file
  store.failing = true
  const replies = await answers([core.apply([web('unsaved')]), core.apply([{ kind: 'remove', serviceName: 'kept' }])])
  t.same(replies.map((r) => r.code), ['DFP_STATE_NOT_SAVED', 'DFP_STATE_NOT_SAVED'])
  t.same(replies.map((r) => r.status), [503, 503])
  t.match(replies[0]?.message, /ENOSPC/)
  t.same(names(), ['kept'], 'the live state is the saved one')
  t.equal(port.file?.config, before?.config, 'and so is the file HAProxy serves')
  t.equal(port.served, before?.version)
  store.failing = false
  await core.apply([web('unsaved')])
  t.same(store.last, ['kept', 'unsaved'], 'applied and saved once the disk allows')
})

t.test('an address change of an IP server goes through the Runtime API, no reload', async (t) => {
  const { port, core } = await started([web('ip', '&outboundHostname=10.0.0.1')])
  const reloads = port.reloadCalls
  await core.apply([web('ip', '&outboundHostname=10.0.0.2')])
  t.same(port.commands, ['set server ip-be80_0/ip addr 10.0.0.2'])
  t.equal(port.reloadCalls, reloads)
  t.equal(core.runtimeChanges, 1)
  await core.apply([web('ip', '&outboundHostname=ip.internal')])
  t.equal(port.reloadCalls, reloads + 1, 'an address becoming a host name needs a reload')
})

t.test('a tcp service on a port another process holds is refused before any reload, naming the port', async (t) => {
  const { port, core, names } = await started()
  await core.apply([web('other')])
  const reloads = port.reloadCalls
  port.held.add(9123)
  const replies = await answers([core.apply([put('serviceName=tcp1&reqMode=tcp&srcPort=9123&port=5432')]), core.apply([own('fine')])])
  t.same(replies.map((r) => r.status), [400, 200])
  t.match(replies[0]?.message, /port 9123 \(.*\) is in use by another process/)
  t.same(names(), ['fine', 'other'])
  t.equal(port.reloadCalls, reloads + 1, 'one reload, for the good change only')
  port.held.delete(9123)
  t.equal((await answers([core.apply([put('serviceName=tcp1&reqMode=tcp&srcPort=9123&port=5432')])]))[0]?.status, 200, 'accepted once the port is free')
})

t.test('saved services HAProxy does not serve at start stay saved, are reported and retried', async (t) => {
  const port = new FakeHaproxy()
  const store = new FakeStore()
  const clock = new FakeTimers()
  const core = new ApplyCore({ settings, port, store, log: pino({ level: 'silent' }), metrics: createMetrics(), timers: clock })
  port.held.add(9200)
  // The saved state together fails to load (the fake's unbindable service), so the core starts
  // empty and applies each saved service through the loop.
  // Services with backend lines of their own: a plain one would go live in a spare backend, without the load that fails.
  await core.start([own('good'), put('serviceName=tcp9200&reqMode=tcp&srcPort=9200&port=5432'), own('unbindable1')])
  t.teardown(() => core.close())
  t.same([...core.live.services.values()].map((s) => s.serviceName), ['good'])
  t.same([...core.live.unserved.keys()].sort(), ['tcp9200', 'unbindable1'], 'reported as unserved')
  t.same(store.last, ['good', 'tcp9200', 'unbindable1'], 'and still saved')
  port.held.delete(9200)
  // The first retry comes after a second.
  await clock.advance(1000, () => core.idle())
  t.notOk(core.live.unserved.has('tcp9200'), 'served by a retry once the port is free')
  t.ok(core.live.unserved.has('unbindable1'), 'the other one is still retried')
  await core.apply([{ kind: 'remove', serviceName: 'unbindable1' }])
  t.notOk(store.last.includes('unbindable1'), 'a removal takes it out of the state file')
})

t.test('new plain services go into spare backends: no haproxy -c, no reload; the catch-up validates, then reloads', async (t) => {
  const { port, store, core, names, later } = await started([web('kept')])
  core.catchUpDelayMs = 20
  const reloads = port.reloadCalls
  const replies = await answers([core.apply([web('p1')]), core.apply([web('p2', '&outboundHostname=10.0.0.7')])])
  t.same(replies.map((r) => r.status), [200, 200])
  t.same(port.commands, [
    'add server dfp_spare_0/p1 p1:80',
    'enable server dfp_spare_0/p1',
    'add server dfp_spare_1/p2 10.0.0.7:80',
    'enable server dfp_spare_1/p2',
    'add map /cfg/maps/path.map <<\n/p1 3:dfp_spare_0\n/p2 3:dfp_spare_1\n',
  ])
  t.equal(port.validations, 0, 'nothing to validate on the request path')
  t.equal(port.reloadCalls, reloads, 'nor to reload')
  t.same(names(), ['kept', 'p1', 'p2'])
  t.same(store.last, ['kept', 'p1', 'p2'], 'saved before the answer')
  t.notMatch(port.file?.config, /\nbackend p1-be80_0\n/, 'no file is written on the request path')
  await later(20)
  t.equal(port.reloadCalls, reloads + 1, 'one catch-up reload, once changes pause')
  t.match(port.file?.config, /\nbackend p1-be80_0\n/, 'its file names the service\'s own backend')
  t.equal(port.validations, 1, 'validated first')
  t.equal(port.served, port.file?.version)
})

t.test('after changes made live at run time, the files catch up once changes pause, as the configuration the worker serves, without a reload', async (t) => {
  const { port, core, later } = await started([web('kept')])
  core.catchUpDelayMs = 60_000
  const reloads = port.reloadCalls
  const before = port.file?.config
  await core.apply([web('p1')])
  await core.apply([web('p2')])
  t.equal(port.file?.config, before, 'nothing written while the changes come')
  await later(1000)
  t.not(port.file?.config, before, 'the files are written once changes pause')
  t.match(port.file?.config, /\nbackend p1-be80_0\n[\s\S]*\nbackend p2-be80_0\n/, 'as the configuration of the live state')
  t.equal(port.reloadCalls, reloads, 'no reload for it')
  t.equal(core.live.config, port.file?.config, 'the live text is that file')
  await core.close()
})

t.test('a worker the master started again loaded the files, not the view: no runtime commands for it, a reload instead', async (t) => {
  const { port, core, names } = await started([web('kept')])
  core.catchUpDelayMs = 60_000
  const reloads = port.reloadCalls
  // As after a crash of the master: a new worker, on the files.
  port.pid = 500
  t.same((await answers([core.apply([web('p1')])])).map((r) => r.status), [200])
  t.same(port.commands, [], 'no command planned for the old worker')
  t.equal(port.reloadCalls, reloads + 1, 'validated and reloaded instead')
  t.same(names(), ['kept', 'p1'])
  t.match(port.file?.config, /\nbackend p1-be80_0\n/)
  await core.close()
})

t.test('a catch-up that haproxy -c refuses does not reload; the worker keeps serving', async (t) => {
  const { port, core, names, later } = await started([web('kept')])
  core.catchUpDelayMs = 20
  const reloads = port.reloadCalls
  await core.apply([web('bad-plain')])
  await later(20)
  t.equal(port.validations, 1, 'the catch-up validated the file')
  t.equal(port.reloadCalls, reloads, 'and did not reload it')
  t.same(names(), ['bad-plain', 'kept'])
})

t.test('runtime commands that fail: the change is validated and made live again, and a catch-up reload follows', async (t) => {
  const { port, core, names } = await started([web('kept')])
  core.catchUpDelayMs = 20
  const reloads = port.reloadCalls
  port.runtimeFailures = 1
  t.same((await answers([core.apply([web('p1')])])).map((r) => r.status), [200])
  t.equal(port.validations, 1, 'no longer trusted without haproxy -c')
  t.same(names(), ['kept', 'p1'])
  t.ok(port.reloadCalls > reloads, 'a reload puts the worker on the files, whatever part of the commands it took')
  t.equal(port.served, port.file?.version, 'HAProxy serves the file on disk')
})
