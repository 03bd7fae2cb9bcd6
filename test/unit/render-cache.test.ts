import t from 'tap'
import { sameState } from '../../src/apply/render-cache.js'
import { ServiceState } from '../../src/state/registry.js'

// The render cache answers from its last rendering when two states are "the same": a state that
// differs only in its certificates must not be, or a new certificate never reaches HAProxy.
t.test('states that differ only in a certificate are not the same rendering', async (t) => {
  const empty = ServiceState.empty()
  t.ok(sameState(empty, empty.with([])), 'no change: the same')
  t.notOk(sameState(empty, empty.with([{ kind: 'acme-put', name: 'a.test.pem', pem: 'PEM' }])), 'an ACME certificate')
  t.notOk(sameState(empty, empty.with([{ kind: 'cert-put', name: 'b.pem', pem: 'PEM' }])), 'an uploaded certificate')
})
