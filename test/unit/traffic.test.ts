import t from 'tap'
import { TrafficRates } from '../../src/status/traffic.js'

const backend = (req_tot: string, hrsp_5xx: string, rtime = '3') => ({ type: '1', pxname: 'web-be80_0', svname: 'BACKEND', req_tot, hrsp_5xx, rtime })

t.test('rates come from two samples at least a second apart', async (t) => {
  const rates = new TrafficRates()
  t.same(rates.read([backend('100', '2')], 10_000).get('web-be80_0'), { requestsPerSecond: null, http5xxPerSecond: null, responseTimeMs: 3, requestsTotal: 100 }, 'one sample: no rate yet')
  t.equal(rates.read([backend('150', '2')], 10_500).get('web-be80_0')?.requestsPerSecond, null, 'half a second later: still none')
  t.same(rates.read([backend('400', '12')], 12_000).get('web-be80_0'), { requestsPerSecond: 150, http5xxPerSecond: 5, responseTimeMs: 3, requestsTotal: 400 }, 'over the two seconds since the kept sample')
  t.equal(rates.read([backend('10', '0')], 14_000).get('web-be80_0')?.requestsPerSecond, null, 'counters that went down (a new worker) start over')
  t.same(rates.read([backend('0', '0', '0')], 16_000).get('web-be80_0')?.responseTimeMs, null, 'no requests: no response time')
  t.equal(rates.read([{ type: '2', pxname: 'web-be80_0', svname: 'web' }]).size, 0, 'server rows carry no traffic of their own')
})

t.test('backends no longer configured are forgotten', async (t) => {
  const rates = new TrafficRates()
  rates.read([backend('1', '0'), { ...backend('1', '0'), pxname: 'gone-be80_0' }], 0)
  rates.keepOnly(new Set(['web-be80_0']))
  t.equal(rates.size, 1)
})
