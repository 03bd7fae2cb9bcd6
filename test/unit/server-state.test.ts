import t from 'tap'
import { serverState } from '../../src/haproxy/server-state.js'

t.test("a server's state from HAProxy's status and its weight", async (t) => {
  const cases: Array<[string, number | null, string]> = [
    ['UP', 1, 'ready'],
    ['UP 1/3', 10, 'ready'],
    ['no check', null, 'ready'],
    ['OPEN', null, 'ready'],
    ['UP', 0, 'draining'],
    ['no check', 0, 'draining'],
    ['DRAIN', 5, 'draining'],
    ['NOLB', 5, 'draining'],
    ['DOWN', 1, 'down'],
    ['DOWN 1/2', 1, 'down'],
    ['MAINT', 1, 'down'],
    ['MAINT (resolution)', 1, 'down'],
    ['', null, 'down'],
  ]
  for (const [status, weight, state] of cases) t.equal(serverState(status, weight), state, `${JSON.stringify(status)} weight ${weight}`)
})
