import t from 'tap'
import { parseService } from '../../src/service/params.js'
import { ServiceState } from '../../src/state/registry.js'

const service = (query: string) => parseService(new URLSearchParams(query), { separator: ',' })
const params = (query: string) => Object.fromEntries(new URLSearchParams(query))
const a = 'serviceName=a&servicePath=/a&port=80'

t.test('an unchanged state stays the same object, so nothing is saved again', async (t) => {
  const state = ServiceState.empty().with([{ kind: 'put', service: service(a), params: params(a) }])
  t.equal(state.with([{ kind: 'put', service: service(a), params: params(a) }]), state, 'same definition again')
  t.equal(state.with([{ kind: 'remove', serviceName: 'unknown' }]), state, 'removing what is not there')
  t.not(state.with([{ kind: 'put', service: service(`${a}&timeoutServer=5`), params: params(`${a}&timeoutServer=5`) }]), state)
  t.equal(state.with([{ kind: 'remove', serviceName: 'a' }]).size, 0)
})

t.test('an API update of a listener service keeps it a listener service', async (t) => {
  const pulled = ServiceState.empty().with([{ kind: 'put', service: service(a), params: params(a), source: 'listener' }])
  const pushed = pulled.with([{ kind: 'put', service: service(`${a}&replicas=2`), params: params(`${a}&replicas=2`), source: 'api' }])
  t.equal(pushed.list()[0]?.source, 'listener')
  const byHand = ServiceState.empty().with([{ kind: 'put', service: service(a), params: params(a), source: 'api' }])
  t.equal(byHand.with([{ kind: 'put', service: service(a), params: params(a), source: 'listener' }]).list()[0]?.source, 'listener', 'a pull adopts a service it reports')
})

t.test('acmeChallenges and hasHttp, kept by `with`, are what every entry says, after any changes', async (t) => {
  const { default: fc } = await import('fast-check')
  const { wantsAcme } = await import('../../src/service/acme-request.js')
  const put = (name: string, host: string) => {
    // Every other name is a tcp service.
    const mode = name === 'b' || name === 'd' ? '&reqMode=tcp&srcPort=30000' : ''
    const query = `serviceName=${name}&servicePath=/${name}&port=80${mode}${host === '' ? '' : `&letsencrypt.host=${host}&serviceDomain=${name}.example.com`}`
    return { kind: 'put' as const, service: service(query), params: params(query) }
  }
  const change = fc.oneof(
    fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.constantFrom('', 'true', 'false', 'x.example.com')).map(([name, host]) => put(name, host)),
    fc.constantFrom('a', 'b', 'c', 'd').map((serviceName) => ({ kind: 'remove' as const, serviceName })),
  )
  fc.assert(
    fc.property(fc.array(fc.array(change, { maxLength: 4 }), { maxLength: 12 }), (batches) => {
      let state = ServiceState.empty()
      for (const batch of batches) {
        state = state.with(batch)
        if (state.acmeChallenges !== state.list().some((entry) => wantsAcme(entry.params))) return false
        if (state.hasHttp !== state.list().some((entry) => entry.service.destinations.some((d) => d.reqMode === 'http'))) return false
      }
      return true
    }),
    { numRuns: 300 },
  )
  t.pass('300 runs')
})
