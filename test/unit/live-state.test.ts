import t from 'tap'
import { parseService } from '../../src/service/params.js'
import { LiveState } from '../../src/state/live.js'
import { ServiceState } from '../../src/state/registry.js'

// A replica holds an ACME challenge answer until its own HAProxy serves the rule that answers
// challenges (src/routes/acme.ts): LiveState.until is what it waits on.
const acmeService = parseService(new URLSearchParams('serviceName=shop&serviceDomain=shop.test&port=80'), { separator: ',' })
const wantsAcme = (services: ServiceState) => services.acmeChallenges

t.test('until resolves when a later live state meets the check, and leaves no listener behind', async (t) => {
  const live = new LiveState()
  const waiting = live.until(wantsAcme, 10_000)
  live.set(ServiceState.empty().with([{ kind: 'put', service: acmeService, params: { serviceName: 'shop' } }]), 'without acme')
  t.equal(await Promise.race([waiting, new Promise((resolve) => setImmediate(() => resolve('pending')))]), 'pending', 'a state without ACME does not end the wait')
  live.set(ServiceState.empty().with([{ kind: 'put', service: acmeService, params: { serviceName: 'shop', 'letsencrypt.host': 'true' } }]), 'with acme')
  t.equal(await waiting, true)
  t.equal(await live.until(wantsAcme, 0), true, 'already true: at once')
})

t.test('until gives false after its time', async (t) => {
  const live = new LiveState()
  t.equal(await live.until(wantsAcme, 20), false)
})
