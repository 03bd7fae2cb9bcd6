import t from 'tap'
import { planRuntimeDelta, type RuntimeDelta } from '../../src/apply/runtime-plan.js'
import { viewAfter, workerView, type WorkerView } from '../../src/apply/worker-view.js'
import { commandLine } from '../../src/haproxy/commands.js'
import { renderAll } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent', HAPROXY_USER: 'none' })
const put = (q: string) => ({ kind: 'put' as const, service: parseService(new URLSearchParams(q), { separator: ',' }) })
const base = ServiceState.empty().with([put('serviceName=a&servicePath=/a&port=80&outboundHostname=10.0.0.1'), put('serviceName=b&servicePath=/b&port=80')])
const worker = workerView(renderAll(base, settings))
const plan = (state: ServiceState) => planRuntimeDelta(worker, renderAll(state, settings), '/cfg')
/** The commands as HAProxy reads them. */
const textOf = (delta: RuntimeDelta | undefined) => delta?.commands.map(commandLine)
/** The worker once a delta's commands ran. */
const after = (view: WorkerView, delta: RuntimeDelta | undefined) => viewAfter(view, delta!.changes)

t.test('map changes become map commands: additions first (one payload per map), removals last', async (t) => {
  const delta = plan(base.with([put('serviceName=a&servicePath=/a2,/a3&port=80&outboundHostname=10.0.0.1')]))
  t.same(textOf(delta), ['add map /cfg/maps/path.map <<\n/a2 3:a-be80_0\n/a3 3:a-be80_0\n', 'del map /cfg/maps/path.map /a'])
  t.equal(delta?.leftovers, false)
  const withDomain = base.with([put('serviceName=a&servicePath=/a&serviceDomain=A.example&port=80&outboundHostname=10.0.0.1')])
  t.equal(plan(withDomain), undefined, 'the first domain entry needs the host lookup: a reload')
  const general = workerView(renderAll(base.with([put('serviceName=d&serviceDomain=d.example&port=80')]), settings))
  const domain = planRuntimeDelta(general, renderAll(withDomain.with([put('serviceName=d&serviceDomain=d.example&port=80')]), settings), '/cfg')
  t.same(textOf(domain), ['add map /cfg/maps/host-path.map <<\na.example/a 2:a-be80_0\n', 'del map /cfg/maps/path.map /a'])
  const lastDomainGone = planRuntimeDelta(general, renderAll(base, settings), '/cfg')
  t.same(textOf(lastDomainGone), ['del map /cfg/maps/host-path.map d.example/'], 'a worker with the host lookup routes path-only maps')
  t.equal(after(general, lastDomainGone).frame, general.frame, 'and keeps its frame')
})

t.test('a removal deletes the entries and leaves the backend in the worker', async (t) => {
  const delta = plan(base.with([{ kind: 'remove', serviceName: 'b' }]))
  t.same(textOf(delta), ['del map /cfg/maps/path.map /b'])
  t.equal(delta?.leftovers, true)
  t.ok(after(worker, delta).backends.has('b'), 'the worker still has it')
  const back = planRuntimeDelta(after(worker, delta), renderAll(base, settings), '/cfg')
  t.same(textOf(back), ['add map /cfg/maps/path.map <<\n/b 2:b-be80_0\n'], 'added back without reload')
})

t.test('an IP change is a set server command; anything else needs a reload', async (t) => {
  const moved = plan(base.with([put('serviceName=a&servicePath=/a&port=80&outboundHostname=10.0.0.2')]))
  t.same(textOf(moved), ['set server a-be80_0/a addr 10.0.0.2'])
  t.equal(plan(base.with([put('serviceName=a&servicePath=/a&port=80&outboundHostname=a.internal')])), undefined, 'an IP becoming a name')
  t.equal(plan(base.with([put('serviceName=c&servicePath=/c&port=80&timeoutServer=9')])), undefined, 'a new backend with lines of its own')
  t.equal(plan(base.with([put('serviceName=a&servicePath=/a&port=80&outboundHostname=10.0.0.1&timeoutServer=9')])), undefined, 'a backend line')
  t.equal(plan(base.with([put('serviceName=a&servicePath=/a&servicePathExclude=/a/x&port=80&outboundHostname=10.0.0.1')])), undefined, 'a service moving to ACL routing changes the frontend')
  t.same(plan(base)?.commands, [], 'nothing changed: no command')
})

t.test('a new plain service takes a spare backend: add server, enable, map entries naming the spare', async (t) => {
  const added = plan(base.with([put('serviceName=c&servicePath=/c&port=80'), put('serviceName=d&servicePath=/d&port=81&outboundHostname=10.0.0.9')]))
  t.same(textOf(added), [
    'add server dfp_spare_0/c c:80',
    'enable server dfp_spare_0/c',
    'add server dfp_spare_1/d 10.0.0.9:81',
    'enable server dfp_spare_1/d',
    'add map /cfg/maps/path.map <<\n/c 2:dfp_spare_0\n/d 2:dfp_spare_1\n',
  ])
  t.equal(added?.usedSpares, true)
  t.equal(after(worker, added).freeSpares.length, worker.freeSpares.length - 2, 'two spares fewer')
  const moved = planRuntimeDelta(after(worker, added), renderAll(base.with([put('serviceName=c&servicePath=/c2&port=80'), put('serviceName=d&servicePath=/d&port=81&outboundHostname=10.0.0.8')]), settings), '/cfg')
  t.same(textOf(moved), ['set server dfp_spare_1/d addr 10.0.0.8', 'add map /cfg/maps/path.map <<\n/c2 3:dfp_spare_0\n', 'del map /cfg/maps/path.map /c'], 'its path and address change in the spare')
  const none = { ...worker, freeSpares: [] }
  t.equal(planRuntimeDelta(none, renderAll(base.with([put('serviceName=c&servicePath=/c&port=80')]), settings), '/cfg'), undefined, 'no spare left: a reload')
  t.equal(plan(base.with([put('serviceName=c&servicePath=/c&port=80&sessionType=sticky-server')])), undefined, 'a server-template is not plain')
})

t.test('weights: a changed weight is a set weight command, on a shared route in each backend holding the server', async (t) => {
  const q = (name: string, weight: number | undefined, extra = '') => put(`serviceName=${name}&servicePath=/w&port=80${weight === undefined ? '' : `&weight=${weight}`}${extra}`)
  const shared = ServiceState.empty().with([q('blue', 90), q('green', 10)])
  const running = workerView(renderAll(shared, settings))
  const text = renderAll(shared, settings).config
  t.match(text, /backend blue-be80_0\n(?:.*\n)*? {4}server blue blue:80 init-addr last,libc,none resolvers docker weight 90\n {4}server green green:80 init-addr last,libc,none resolvers docker weight 10\n/, "the first by name's backend holds both servers, looked up at load when new")
  const step = planRuntimeDelta(running, renderAll(ServiceState.empty().with([q('blue', 0), q('green', 100)]), settings), '/cfg')
  t.same(textOf(step), ['set weight blue-be80_0/green 100', 'set weight green-be80_0/green 100', 'set weight blue-be80_0/blue 0'], 'raises first, then lowerings')
  t.equal(planRuntimeDelta(running, renderAll(ServiceState.empty().with([q('blue', 90), q('green', undefined)]), settings), '/cfg'), undefined, 'leaving the shared route needs a reload')
  t.equal(planRuntimeDelta(running, renderAll(shared.with([q('red', 5)]), settings), '/cfg'), undefined, 'a third member needs a reload')
  const sticky = ServiceState.empty().with([q('s', 5, '&sessionType=sticky-server&replicas=2')])
  const stickyWorker = workerView(renderAll(sticky, settings))
  t.equal(planRuntimeDelta(stickyWorker, renderAll(ServiceState.empty().with([q('s', 6, '&sessionType=sticky-server&replicas=2')]), settings), '/cfg'), undefined, "a server-template's weight needs a reload")
  const ip = ServiceState.empty().with([q('solo', 3, '&outboundHostname=10.0.0.1')])
  const both = planRuntimeDelta(workerView(renderAll(ip, settings)), renderAll(ServiceState.empty().with([q('solo', 4, '&outboundHostname=10.0.0.2')]), settings), '/cfg')
  t.same(textOf(both), ['set weight solo-be80_0/solo 4', 'set server solo-be80_0/solo addr 10.0.0.2'], 'weight and address together')
})

t.test('routes are shared only between services that set weight and claim the same route', async (t) => {
  const render = (...queries: string[]) => renderAll(ServiceState.empty().with(queries.map(put)), settings).config
  const servers = (config: string, backend: string) => (new RegExp(`backend ${backend}\\n((?: {4}.*\\n)*)`).exec(config)?.[1] ?? '').split('\n').filter((l) => /^ {4}server/.test(l)).map((l) => l.trim().split(' ')[1])
  t.same(servers(render('serviceName=a&servicePath=/x&port=80&weight=1', 'serviceName=b&servicePath=/x&port=81'), 'a-be80_0'), ['a'], 'one without weight: no sharing')
  t.same(servers(render('serviceName=a&servicePath=/x&port=80&weight=1', 'serviceName=b&servicePath=/y&port=81&weight=1'), 'a-be80_0'), ['a'], 'other paths: no sharing')
  t.same(servers(render('serviceName=a&servicePath=/x,/z&port=80&weight=1', 'serviceName=b&servicePath=/z,/x&port=81&weight=1'), 'a-be80_0'), ['a', 'b'], 'the same paths in another order')
  t.same(servers(render('serviceName=a&servicePath=/x&serviceDomain=A.example&port=80&weight=1', 'serviceName=b&servicePath=/x&serviceDomain=a.example&port=81&weight=1'), 'a-be80_0'), ['a', 'b'], 'domains in any case')
  t.same(servers(render('serviceName=a&servicePath=/x&serviceDomain=a.example&port=80&weight=1', 'serviceName=b&servicePath=/x&port=81&weight=1'), 'a-be80_0'), ['a'], 'a domain makes another route')
  t.same(servers(render('serviceName=c&servicePath=/x&port=80&weight=1', 'serviceName=b&servicePath=/x&port=81&weight=1', 'serviceName=a&servicePath=/x&port=82&weight=1'), 'a-be82_0'), ['a', 'b', 'c'], 'three members, in the first by name')
})
