import t from 'tap'
import type { Change } from '../../src/state/registry.js'
import { answers, own, started, web } from './fake-haproxy.js'

// One plan per batch, and the one record of what HAProxy serves through a master's death,
// driven through the fake HAProxy on a fake clock.

t.test('a batch is planned once, and renders the whole configuration at most twice', async (t) => {
  const { port, core } = await started([web('kept')])
  core.catchUpDelayMs = 60_000
  const figures = async (changes: Change[]) => {
    const before = core.work
    const replies = await answers(changes.map((change) => core.apply([change])))
    const after = core.work
    return { statuses: replies.map((r) => r.status), plans: after.plans - before.plans, renders: after.renders - before.renders }
  }
  const runtime = await figures(Array.from({ length: 20 }, (_, i) => web(`plain${i}`)))
  t.same(runtime, { statuses: Array(20).fill(200), plans: 1, renders: 0 }, 'new plain services: one plan from the services alone, nothing rendered')
  const reload = await figures(Array.from({ length: 20 }, (_, i) => own(`own${i}`)))
  t.same(reload.statuses, Array(20).fill(200))
  t.equal(reload.plans, 1, 'services with backends of their own: one plan (a reload)')
  t.ok(reload.renders <= 2, `the candidate and the live state rendered, nothing more (${reload.renders})`)
  port.runtimeFailures = 1
  const failed = await figures([web('late')])
  t.same(failed.statuses, [200])
  t.equal(failed.plans, 1, 'a runtime plan that fails falls back to the reload, not to another plan')
  t.ok(failed.renders <= 3, `renders: ${failed.renders}`)
  t.comment(`per batch: runtime ${JSON.stringify(runtime)}, reload ${JSON.stringify({ plans: reload.plans, renders: reload.renders })}, failed runtime ${JSON.stringify({ plans: failed.plans, renders: failed.renders })}`)
  await core.close()
})

t.test('the master dies after changes made at run time: the restart writes and loads the files of what the worker served', async (t) => {
  const { port, core, later } = await started([web('kept')])
  core.catchUpDelayMs = 60_000
  await core.apply([web('p1')])
  t.notMatch(port.file?.config, /\nbackend p1-be80_0\n/, 'the files are behind the worker')
  port.crash()
  await later(0)
  t.equal(port.restarts, 1, 'restarted at once')
  t.match(port.file?.config, /\nbackend p1-be80_0\n/, 'on the files of what it served, written first')
  t.equal(port.served, port.file?.version, 'which HAProxy serves')
  t.same([...core.live.services.values()].map((s) => s.serviceName).sort(), ['kept', 'p1'])
  await core.close()
})

t.test('the master dies during a reload: the restart waits for it, the change is 503 and not applied', async (t) => {
  const { port, core, names, later } = await started([web('kept')])
  const served = port.file
  let open = () => {}
  port.reloadGate = new Promise<void>((resolve) => (open = resolve))
  port.reloadOutcomes = [
    { ok: false, kind: 'unavailable', error: 'haproxy exited during the reload' },
    { ok: false, kind: 'unavailable', error: 'haproxy is not running (it is being restarted)' },
  ]
  const reply = answers([core.apply([own('x')])])
  while (port.events.at(-1) !== 'reload') await new Promise((resolve) => setImmediate(resolve))
  port.crash()
  // The restart's timer fires while the reload holds the files: it waits for it.
  const restarting = later(0)
  t.equal(port.restarts, 0, 'no restart while the reload runs')
  port.reloadGate = undefined
  open()
  await restarting
  const [answer] = await reply
  t.equal(answer?.status, 503, 'the change is answered 503')
  t.same(port.events.slice(-3), ['reload', 'reload', 'restart'], 'the reload, its restore, then the restart')
  t.equal(port.file?.config, served?.config, 'the restart loaded the files of what was served')
  t.equal(port.served, served?.version)
  t.same(names(), ['kept'], 'not applied')
  await core.close()
})

t.test('a restart that fails is tried again with a growing pause, on the fake clock', async (t) => {
  const { port, core, clock, later } = await started([web('kept')])
  const start = port.start.bind(port)
  let failures = 2
  port.start = async (version: string) => (failures-- > 0 ? { ok: false, kind: 'unavailable', error: 'haproxy exited' } : start(version))
  port.crash()
  await later(0)
  t.equal(port.restarts, 1, 'the first attempt at once')
  await later(249)
  t.equal(port.restarts, 1, 'the second not before 250 ms')
  await later(1)
  t.equal(port.restarts, 2)
  await later(500)
  t.equal(port.restarts, 3, 'the third after 500 ms more')
  t.equal(port.served, port.file?.version, 'and HAProxy serves again')
  t.equal(clock.waiting, 0, 'no retry left pending')
  await core.close()
})
