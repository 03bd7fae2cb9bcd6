import t from 'tap'
import { NameIndex, PortClaimants, RouteClaims } from '../../src/apply/state-index.js'
import { generatedNames } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { type Change, ServiceState } from '../../src/state/registry.js'

// The indexes kept across states must equal an index built from scratch, whether they follow
// the changed services (changedSince) or compare every entry.

const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent' })
const put = (q: string): Change => ({ kind: 'put', service: parseService(new URLSearchParams(q), { separator: ',' }) })
const web = (name: string, path = `/${name}`) => put(`serviceName=${name}&servicePath=${path}&port=80`)
const tcp = (name: string, srcPort: number) => put(`serviceName=${name}&port=80&reqMode=tcp&srcPort=${srcPort}`)
const remove = (serviceName: string): Change => ({ kind: 'remove', serviceName })

t.test('changedSince: the services a few `with` calls changed; unknown for an unrelated state', async (t) => {
  const a = ServiceState.empty().with([web('a'), web('b')])
  const b = a.with([web('c')])
  const c = b.with([remove('a'), web('b', '/moved'), web('c')])
  t.same([...(c.changedSince(a) ?? [])].sort(), ['a', 'b', 'c'])
  t.same([...(c.changedSince(b) ?? [])].sort(), ['a', 'b'], 'an unchanged put is not a change')
  t.same([...(c.changedSince(c) ?? [])], [])
  t.equal(a.changedSince(c), undefined, 'not made from it')
  t.equal(c.changedSince(ServiceState.empty().with([web('a')])), undefined)
})

const steps: Change[][] = [
  [web('a'), web('b'), web('shared1', '/same'), tcp('t1', 5000)],
  [web('shared2', '/same'), web('c'), tcp('t2', 5001)],
  [remove('shared1'), web('b', '/b2'), remove('t1')],
  [remove('a'), web('a'), tcp('t3', 5002)],
]

function names(state: ServiceState): Map<string, Set<string>> {
  const all = new Map<string, Set<string>>()
  for (const service of state.values()) for (const name of generatedNames(service)) all.set(name, (all.get(name) ?? new Set()).add(service.serviceName))
  return all
}

for (const [how, follow] of [['following the changed services', true], ['comparing every entry', false]] as const) {
  t.test(`the indexes equal ones built from scratch, ${how}`, async (t) => {
    const index = new NameIndex()
    const claims = new RouteClaims(settings)
    const ports = new PortClaimants()
    let state = ServiceState.empty()
    for (const step of steps) {
      // A copy made by `with` of an empty change list is the state itself; rebuild it without
      // its history to force the comparison of every entry.
      state = state.with(step)
      const seen = follow ? state : ServiceState.empty().with([...state.entryMap.values()].map((e) => ({ kind: 'put', service: e.service }) as Change))
      const owner = index.ownerIn(seen)
      for (const [name, owners] of names(seen)) t.ok(owners.has(owner(name) as string), `${name} is owned by one of its services`)
      const count = claims.countIn(seen)
      t.equal(count('path', '/same'), [...seen.values()].filter((s) => s.destinations.some((d) => d.servicePath.includes('/same'))).length)
      t.equal(count('path', '/b'), seen.get('b')?.destinations[0]?.servicePath.includes('/b') ? 1 : 0)
      t.same([...ports.of(seen)].map((s) => s.serviceName).sort(), [...seen.values()].filter((s) => s.serviceName.startsWith('t')).map((s) => s.serviceName).sort())
    }
    const owner = index.ownerIn(state)
    t.equal(owner(generatedNames(state.get('shared2')!)[0]!), 'shared2', 'a removed service leaves its names')
    t.equal(owner('nothing'), undefined)
  })
}
