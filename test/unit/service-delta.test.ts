import t from 'tap'
import { planServiceDelta } from '../../src/apply/service-delta.js'
import { RouteClaims } from '../../src/apply/state-index.js'
import { planRuntimeDelta } from '../../src/apply/runtime-plan.js'
import { viewAfter, workerView, type WorkerView } from '../../src/apply/worker-view.js'
import { commandLine, type RuntimeCommand } from '../../src/haproxy/commands.js'
import { renderAll } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { type Change, ServiceState } from '../../src/state/registry.js'

// The delta planned from the changed services alone must be the delta the whole comparison
// plans (src/haproxy/runtime-delta.ts), or none at all when it cannot tell.

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent' })
const put = (q: string): Change => ({ kind: 'put', service: parseService(new URLSearchParams(q), { separator: ',' }) })
/** A plain service; `extra` parameters come first, so they win over the defaults (the first value of a key counts). */
const plain = (name: string, extra = '') => put(`serviceName=${name}${extra}&servicePath=/${name}&port=80&outboundHostname=10.0.0.1`)
const remove = (serviceName: string): Change => ({ kind: 'remove', serviceName })

function base(withDomains: boolean): ServiceState {
  const changes = Array.from({ length: 20 }, (_, i) => plain(`s${i}`))
  if (withDomains) changes.push(plain('d1', '&serviceDomain=a.example.com'))
  // Two services claiming one key: the one first in frontend order wins it.
  changes.push(put('serviceName=shared1&servicePath=/shared&port=80'), put('serviceName=shared2&servicePath=/shared&port=81'))
  // Routed by ACLs (a path pattern the maps cannot hold).
  changes.push(put('serviceName=acl1&servicePath=/acl&pathType=path_reg&port=80'))
  return ServiceState.empty().with(changes)
}

/** Commands with their payload lines split out, sorted: the two planners may order entries of one payload differently. */
const lines = (commands: readonly RuntimeCommand[]) => commands.flatMap((c) => commandLine(c).split('\n').filter((l) => l !== '')).sort()

const mapsOf = (worker: WorkerView) => ({ hostPath: [...worker.maps.hostPath].sort(), path: [...worker.maps.path].sort() })

function plans(before: ServiceState, changes: Change[], worker = workerView(renderAll(before, settings))) {
  const after = before.with(changes)
  const names = new Set(changes.map((c) => (c.kind === 'put' ? c.service.serviceName : c.kind === 'remove' ? c.serviceName : '')))
  const claims = new RouteClaims(settings)
  const whole = planRuntimeDelta(worker, renderAll(after, settings), settings.CONFIG_DIR)
  const delta = planServiceDelta(worker, before, after, names, settings, claims.countIn(before))
  return {
    whole: whole && { ...whole, worker: viewAfter(worker, whole.changes) },
    delta: delta && { ...delta, worker: viewAfter(worker, delta.changes) },
  }
}

const same = [
  ['a new plain service', [plain('new1')]],
  ['three new plain services', [plain('new1'), plain('new2', '&servicePath=/new2,/other'), plain('new3', '&outboundHostname=web3')]],
  ['a removed service', [remove('s3')]],
  ['a new path', [plain('s4', '&servicePath=/s4,/s4b')]],
  ['a moved server (IP literal)', [plain('s5', '&outboundHostname=10.0.0.9')]],
  ['a new service with a domain, when the worker looks up domains', [plain('new4', '&serviceDomain=b.example.com')]],
  ['a removal and a new service in one batch', [remove('s6'), plain('new5')]],
  ['the removal of the last domain', [remove('d1')]],
] as const

for (const [what, changes] of same) {
  t.test(`${what}: the same commands and worker as the whole comparison`, async (t) => {
    const { whole, delta } = plans(base(true), [...changes])
    t.ok(whole, 'the whole comparison plans it')
    t.ok(delta, 'so does the delta of the changed services')
    if (!whole || !delta) return
    t.ok(delta.commands.length > 0, 'there is something to do')
    t.same(lines(delta.commands), lines(whole.commands))
    const worker = delta.worker
    t.same(mapsOf(worker), mapsOf(whole.worker))
    t.same([...worker.aliases].sort(), [...whole.worker.aliases].sort())
    t.same(worker.freeSpares, whole.worker.freeSpares)
    t.same([...worker.backends.keys()].sort(), [...whole.worker.backends.keys()].sort())
    t.equal(delta.leftovers, whole.leftovers)
    t.equal(delta.usedSpares, whole.usedSpares)
  })
}

t.test('after one delta, the next one plans from its worker as the whole comparison does', async (t) => {
  const before = base(true)
  const first = plans(before, [plain('new1'), plain('new2')])
  t.ok(first.delta)
  const middle = before.with([plain('new1'), plain('new2')])
  const { whole, delta } = plans(middle, [remove('new1'), plain('new2', '&servicePath=/moved'), plain('new3')], first.delta?.worker)
  t.ok(whole && delta)
  t.same(lines(delta?.commands ?? []), lines(whole?.commands ?? []))
  t.same(mapsOf(delta!.worker), mapsOf(whole!.worker))
})

const refused = [
  ['a key another service claims', [plain('new1', '&servicePath=/shared')], true],
  ['the removal of a service whose key another claims too', [remove('shared1')], true],
  ['two new services claiming one key', [plain('new1', '&servicePath=/same'), plain('new2', '&servicePath=/same')], true],
  ['a service routed by ACLs', [put('serviceName=acl2&servicePath=/x&pathType=path_reg&port=80')], true],
  ['the default backend', [plain('new1', '&isDefaultBackend=true')], true],
  ['an ACME certificate', [{ ...(plain('new1') as Extract<Change, { kind: 'put' }>), params: { 'letsencrypt.host': 'true' } }], true],
  ['a backend line of its own', [plain('new1', '&timeoutServer=9')], true],
  ['the first domain, when the worker looks up paths only', [plain('new1', '&serviceDomain=c.example.com')], false],
] as const

for (const [what, changes, domains] of refused) {
  t.test(`${what}: no delta from the changed services alone`, async (t) => {
    const { delta } = plans(base(domains), [...changes] as Change[])
    t.equal(delta, undefined)
  })
}

t.test('more new services than free spares: no delta', async (t) => {
  const before = base(true)
  const worker = workerView(renderAll(before, settings))
  const many = Array.from({ length: worker.freeSpares.length + 1 }, (_, i) => plain(`many${i}`))
  const { whole, delta } = plans(before, many, worker)
  t.equal(whole, undefined)
  t.equal(delta, undefined)
})
