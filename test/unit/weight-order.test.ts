import fc from 'fast-check'
import t from 'tap'
import { planRuntimeDelta } from '../../src/apply/runtime-plan.js'
import { workerView } from '../../src/apply/worker-view.js'
import { renderAll } from '../../src/render/index.js'
import { parseService } from '../../src/service/params.js'
import { loadSettings } from '../../src/settings.js'
import { ServiceState } from '../../src/state/registry.js'

// Canary weights moved in one batch (issue 23): two or more services share a route by weight and
// their new weights reach dfp together (two `docker service update --label-add` sent at once).
// Whatever the services' names (their order) and the weights, the Runtime API commands never
// leave the route's backend with every weight 0 between two commands when it had a non-zero
// weight before and has one after: HAProxy answers 503 at that moment (no usable server).
const settings = loadSettings({ CONFIG_DIR: '/cfg', ERRORFILES_DIR: '/errorfiles', SECRETS_DIR: '/nonexistent', HAPROXY_USER: 'none' })
const state = (names: readonly string[], weights: readonly number[]) =>
  ServiceState.empty().with(names.map((name, i) => ({ kind: 'put' as const, service: parseService(new URLSearchParams(`serviceName=${name}&servicePath=/shared&port=80&weight=${weights[i]}`), { separator: ',' }) })))

/** The weights of the route's backend (the first name's) after each command, starting from `before`. */
function weightsAlongTheWay(names: readonly string[], before: readonly number[], after: readonly number[]): number[][] {
  const owner = `${[...names].sort()[0]}-be80_0`
  const delta = planRuntimeDelta(workerView(renderAll(state(names, before), settings)), renderAll(state(names, after), settings), '/cfg')
  if (!delta) throw new Error('a weight change is applied without a reload')
  const current = new Map(names.map((name, i) => [name, before[i] ?? 0]))
  const steps = [[...current.values()]]
  for (const command of delta.commands) {
    if (command.kind !== 'set weight' || command.backend !== owner) continue
    current.set(command.server, command.weight)
    steps.push([...current.values()])
  }
  if (JSON.stringify(steps.at(-1)) !== JSON.stringify(after)) throw new Error(`the commands end on ${JSON.stringify(steps.at(-1))}, not ${JSON.stringify(after)}`)
  return steps
}

const sum = (weights: readonly number[]) => weights.reduce((a, b) => a + b, 0)

t.test('100/0 → 0/100 in one batch, the lowered service first by name', async (t) => {
  const steps = weightsAlongTheWay(['api', 'api-canary'], [100, 0], [0, 100])
  t.same(steps, [[100, 0], [100, 100], [0, 100]], 'the canary is raised before the stable one is lowered')
})

t.test('any weights of 2–4 services moved in one batch: never all 0 on the way when non-zero before and after', async (t) => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/)
  const weight = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 256 }))
  const members = fc.uniqueArray(name, { minLength: 2, maxLength: 4 }).chain((names) =>
    fc.tuple(fc.constant(names), fc.array(weight, { minLength: names.length, maxLength: names.length }), fc.array(weight, { minLength: names.length, maxLength: names.length })),
  )
  fc.assert(
    fc.property(members, ([names, before, after]) => {
      fc.pre(sum(before) > 0 && sum(after) > 0)
      return weightsAlongTheWay(names, before, after).every((step) => sum(step) > 0)
    }),
    { numRuns: 200 },
  )
  t.pass('200 random batches')
})
