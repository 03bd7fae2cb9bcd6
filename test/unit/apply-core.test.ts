import { pino } from 'pino'
import t from 'tap'
import { ApplyCore } from '../../src/apply/core.js'
import type { HaproxyPort, LoadVerdict, StatePort, Verdict } from '../../src/apply/port.js'
import { DfpError } from '../../src/errors.js'
import { createMetrics } from '../../src/metrics/index.js'
import type { Rendered } from '../../src/render/index.js'
import { commandLine, type RuntimeCommand } from '../../src/haproxy/commands.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { FakeTimers } from './fake-timers.js'
import type { Change, ServiceState } from '../../src/state/registry.js'

// The apply core's decisions, driven through a fake HAProxy: every answer HAProxy can give is
// scripted, so each test pins what the core does with it. (test/e2e/ drives the real one.)

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent' })
const put = (q: string): Change => ({ kind: 'put', service: parseService(new URLSearchParams(q), { separator: ',' }) })
const web = (name: string, extra = '') => put(`serviceName=${name}&servicePath=/${name}&port=80${extra}`)
/** A service with a backend line of its own: no spare fits it, so it needs validation and a reload. */
const own = (name: string) => web(name, '&timeoutServer=9')

/**
 * A scripted HAProxy. `haproxy -c` refuses any state with a service named `bad…`; a reload fails
 * (and a start) when the files hold a service named `unbindable…` (as a port held by another
 * process does);
 * `validator` and `reloadOutcomes` script machinery failures.
 */
class FakeHaproxy implements HaproxyPort {
  validations = 0
  reloadCalls = 0
  commands: string[] = []
  validator: 'up' | 'down' = 'up'
  /** Outcomes of the next reloads, in order, before the scripted behaviour applies. */
  reloadOutcomes: LoadVerdict[] = []
  /** What the configuration file holds (the last write). */
  file?: Rendered
  served?: string
  pid = 100

  async validate(state: ServiceState): Promise<Verdict> {
    this.validations++
    if (this.validator === 'down') return { ok: false, kind: 'unavailable', error: 'haproxy -c killed by SIGKILL' }
    const bad = [...state.values()].find((s) => s.serviceName.startsWith('bad'))
    return bad ? { ok: false, kind: 'refused', error: `[/cfg/haproxy.cfg:99] unknown keyword in backend ${bad.serviceName}` } : { ok: true }
  }
  async writeArtefacts(): Promise<void> {}
  /** Every configuration written, in order. */
  writes: Rendered[] = []
  async writeConfig(rendered: Rendered): Promise<void> {
    this.file = rendered
    this.writes.push(rendered)
  }
  async start(version: string): Promise<LoadVerdict> {
    const unbindable = [...(this.file?.backends.keys() ?? [])].find((name) => name.startsWith('unbindable'))
    if (unbindable) return { ok: false, kind: 'refused', error: `Starting frontend tcpFE_${unbindable}: cannot bind socket` }
    this.served = version
    return { ok: true, pid: this.pid }
  }
  restarts = 0
  /** What happened to the files and the master, in order. */
  events: string[] = []
  async restart(version: string): Promise<LoadVerdict> {
    this.restarts++
    this.events.push('restart')
    return this.start(version)
  }
  /** While set, a reload waits for it before answering. */
  reloadGate?: Promise<void>
  private exitListeners: Array<() => void> = []
  onExit(listener: () => void): void {
    this.exitListeners.push(listener)
  }
  /** The master dies (kill -9): the worker is gone until a restart. */
  crash(): void {
    this.served = undefined
    this.pid++
    for (const listener of this.exitListeners) listener()
  }
  async reload(version: string): Promise<LoadVerdict> {
    this.reloadCalls++
    this.events.push('reload')
    if (this.reloadGate) await this.reloadGate
    const scripted = this.reloadOutcomes.shift()
    if (scripted) return scripted
    const unbindable = [...(this.file?.backends.keys() ?? [])].find((name) => name.startsWith('unbindable'))
    if (unbindable) return { ok: false, kind: 'refused', error: `Starting frontend tcpFE_${unbindable}: cannot bind socket` }
    this.served = version
    return { ok: true, pid: ++this.pid }
  }
  async stop(): Promise<void> {}
  async workerPid(): Promise<number | undefined> {
    return this.pid
  }
  /** Runtime command batches to refuse, from now on. */
  runtimeFailures = 0
  async runtimeCommands(commands: readonly RuntimeCommand[]): Promise<void> {
    if (this.runtimeFailures > 0) {
      this.runtimeFailures--
      throw new Error('No such backend.')
    }
    this.commands.push(...commands.map(commandLine))
  }
  async swapCertificate(): Promise<void> {}
  /** Ports another process holds. */
  held = new Set<number>()
  async portsInUse(ports: readonly number[]): Promise<number[]> {
    return ports.filter((port) => this.held.has(port))
  }
}

/** A state file that records every save, and fails while `failing`. */
class FakeStore implements StatePort {
  saved: ServiceState[] = []
  failing = false
  async save(state: ServiceState): Promise<void> {
    if (this.failing) throw new Error('ENOSPC: no space left on device')
    this.saved.push(state)
  }
  get last(): string[] {
    return [...(this.saved.at(-1)?.values() ?? [])].map((s) => s.serviceName).sort()
  }
}

async function started(initial: Change[] = []) {
  const port = new FakeHaproxy()
  const store = new FakeStore()
  const clock = new FakeTimers()
  const core = new ApplyCore({ settings, port, store, log: pino({ level: 'silent' }), metrics: createMetrics(), timers: clock })
  await core.start(initial)
  port.validations = 0
  const names = () => [...core.live.services.values()].map((s) => s.serviceName).sort()
  /** Moves the fake clock `ms` on, waiting for the work each timer starts. */
  const later = (ms: number) => clock.advance(ms, () => core.idle())
  return { port, store, core, names, clock, later }
}

/** Settles every promise; each answer as 200 or the error's status and code. */
const answers = (promises: Array<Promise<void>>) =>
  Promise.all(promises.map((p) => p.then(() => ({ status: 200, code: 'OK', message: '' }), (err: DfpError) => ({ status: err.statusCode, code: err.code, message: err.message }))))

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
