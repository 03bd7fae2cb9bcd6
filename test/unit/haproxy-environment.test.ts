import t from 'tap'
import { haproxyEnvironment } from '../../src/haproxy/master.js'

// HAProxy's system lookups while a configuration loads (init-addr … libc) are bounded: a name
// Docker's DNS does not know yet held a load 10 s with glibc's defaults (docs/swarm.md).
t.test('RES_OPTIONS: one attempt of 1 s unless the daemon is given its own', async (t) => {
  t.same(haproxyEnvironment({ PATH: '/usr/bin', USERS: 'secret' }), { RES_OPTIONS: 'timeout:1 attempts:1', PATH: '/usr/bin' }, 'the bound added, secrets left out')
  t.equal(haproxyEnvironment({ RES_OPTIONS: 'timeout:3 attempts:2' }).RES_OPTIONS, 'timeout:3 attempts:2', "the operator's value wins")
})
